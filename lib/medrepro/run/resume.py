"""Resuming from an earlier session's output: Kaggle's attached outputs, any folder.

A Kaggle session's ``/kaggle/working`` is gone in the next session ("Save Version" runs in a
fresh one); what survives is the saved version's output, which a new session attaches as an
input: read-only, under ``/kaggle/input/<notebook>/`` or ``/kaggle/input/notebooks/<owner>/
<notebook>/``. :func:`seed_from_earlier` finds the training runs of such an output (every
``runs/`` folder holding notebook folders, :func:`find_earlier_runs`) and copies into this run's
writable runs folder (:func:`medrepro.core.paths.runs_root`) each model folder that is further
on there than here: finished models (``done.json``; :func:`medrepro.training.train.fit_once`
then reuses them, nothing is trained again) and models in progress (their ``state.npz``;
``fit`` continues at the next epoch and ends exactly as one uninterrupted run). The earlier
output is only read.

Where to look: ``$MEDREPRO_RESUME_FROM`` (``./run_all.sh --resume-from DIR``) when set, else on
Kaggle the inputs (``$MEDREPRO_KAGGLE_INPUT``, default ``/kaggle/input``), else nowhere. On Colab
no copy is needed: ``--state-dir`` on a mounted Drive keeps the runs themselves
(``MEDREPRO_STATE``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medrepro.core import device, paths

RESUME_ENV = "MEDREPRO_RESUME_FROM"
SEARCH_DEPTH = 7  # notebooks/<owner>/<slug>/<checkout>/data/runs, and a folder more
NOTEBOOK_FOLDER = re.compile(r"^\d\d_\w+$")
# Folders never entered while looking for runs: the datasets (hundreds of thousands of files).
SKIP = {"competitions", "stage_2_train", "stage_2_test", "Training", "Testing", "studies",
        "raw", "processed", "downloads", ".git", "__pycache__"}


class ResumeError(RuntimeError):
    """An earlier output that was named but cannot be used (the message says why)."""


@dataclass(frozen=True)
class Seeded:
    """One model folder copied from an earlier output."""

    model: str  # <notebook>/<run>/<model>
    source: Path
    state: str  # "finished (9 epochs)" or "in progress (epoch 4 done)"


def search_bases() -> list[Path]:
    """Where earlier outputs are looked for (module docstring)."""
    named = os.environ.get(RESUME_ENV)
    if named:
        base = Path(named).expanduser()
        if not base.is_dir():
            raise ResumeError(f"{RESUME_ENV}={named}: no such folder (the earlier session's "
                              "output, attached as an input, or a copy of it)")
        return [base]
    if device.detect_platform() == device.KAGGLE:
        from medrepro.data import download

        inputs = download.kaggle_input_dir()
        return [inputs] if inputs.is_dir() else []
    return []


def find_earlier_runs(base: Path, *, depth: int = SEARCH_DEPTH) -> list[Path]:
    """Every ``runs/`` folder below ``base`` (``base`` itself included) that holds notebook
    folders (``NN_name``), breadth-first, not entering dataset folders (:data:`SKIP`)."""
    found, level = [], [Path(base)]
    for _ in range(depth + 1):
        nxt = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    subs = sorted(Path(e.path) for e in it if e.is_dir() and e.name not in SKIP
                                  and not e.name.startswith("."))
            except OSError:
                continue
            if folder.name == "runs" and any(NOTEBOOK_FOLDER.match(s.name) for s in subs):
                found.append(folder)
                continue
            nxt += subs
        level = nxt
    return found


def progress(model_dir: Path) -> tuple[int, int]:
    """How far a model folder is: ``(2, epochs run)`` finished, ``(1, epochs done)`` in
    progress (its saved state), ``(0, 0)`` nothing usable."""
    from medrepro.training import callbacks, train

    if train.is_done(model_dir):
        return 2, int(train.read_done(model_dir).get("epochs_run") or 0)
    state = model_dir / train.STATE_FILE
    if state.is_file():
        try:
            return 1, int(callbacks.read_meta(state)["epochs_done"])
        except (callbacks.ResumeError, KeyError, TypeError, ValueError):
            return 0, 0  # unreadable: not worth copying
    return 0, 0


def seed_from_earlier(notebook: str, *, profile: str, seed: int,
                      bases: list[Path] | None = None) -> list[Seeded]:
    """Copy the model folders of ``notebook`` (runs of ``profile`` and ``seed``) that an earlier
    output has further on into :func:`medrepro.core.paths.runs_root`; return what was copied.
    ``bases``: where to look (default :func:`search_bases`)."""
    dest_root = paths.runs_root()
    seeded: list[Seeded] = []
    for runs in [r for b in (search_bases() if bases is None else bases)
                 for r in find_earlier_runs(b)]:
        if runs.resolve() == dest_root.resolve():
            continue
        for run in sorted((runs / notebook).glob(f"{profile}-*-seed{int(seed)}")):
            for model in sorted(p for p in run.iterdir() if p.is_dir()):
                there = progress(model)
                target = dest_root / notebook / run.name / model.name
                if there <= progress(target) or there == (0, 0):
                    continue
                _copy_folder(model, target)
                state = (f"finished ({there[1]} epochs)" if there[0] == 2
                         else f"in progress (epoch {there[1]} done)")
                seeded.append(Seeded(f"{notebook}/{run.name}/{model.name}", model, state))
    return seeded


def _copy_folder(src: Path, dest: Path) -> None:
    """``src`` copied to ``dest`` through a temporary sibling (``dest`` is whole or absent)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        shutil.copytree(src, staging / "copy", copy_function=shutil.copy2)
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
        os.replace(staging / "copy", dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for path in [dest, *dest.rglob("*")]:  # an attached input is read-only: the copy must not be
        path.chmod(path.stat().st_mode | 0o200)


def print_seeded(seeded: list[Seeded]) -> None:
    """One line per model copied from an earlier output."""
    for s in seeded:
        print(f"resumed from an earlier output: {s.model}, {s.state} ({s.source})")
