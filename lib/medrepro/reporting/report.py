"""Saving figures and tables as named artifacts, with provenance.

Every artifact is written under ``reports/<profile>/``::

    figures/<id>.png   + figures/<id>.json
    tables/<id>.csv    + tables/<id>.md + tables/<id>.json

The JSON sidecar records the artifact's manifest entry, data source, profile, seed, git commit,
date, package versions, the device and, for a training notebook, its batch sizes (global and per
replica, and the rule that made them). Anything drawn from phantom data is labelled so in the
picture itself, in the Markdown table's header and in a ``data_source`` column of the CSV.

A notebook calls :func:`start_run` once (``medrepro.run.notebook.setup`` does it), then
``save_figure(fig, "A.fig11", source=...)`` and ``save_table(df, "A.table2", source=...)``.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from medrepro.core import device, devrun, manifest, paths
from medrepro.core.fileio import atomic_path, write_json
from medrepro.core.profiles import check_profile
from medrepro.data.registry import PHANTOM

PHANTOM_LABEL = ("PHANTOM DATA: shows that the pipeline runs; not clinical, not comparable "
                 "to the paper")
_VERSIONED = ("medrepro", "numpy", "scipy", "pandas", "scikit-learn", "tensorflow", "keras",
              "pydicom", "nibabel", "matplotlib", "seaborn", "pillow")


@dataclass(frozen=True)
class RunInfo:
    """Who is writing artifacts: the notebook, its profile and seed, and where reports go."""

    notebook: str
    profile: str
    seed: int
    reports_root: Path
    deviations: tuple[str, ...] = ()  # the run's departures from the papers' conditions
    batch: Mapping[str, Any] | None = None  # the batches' rule, replicas, global/per-replica sizes


_current: RunInfo | None = None


def start_run(notebook: str, *, profile: str, seed: int,
              reports_root: str | os.PathLike | None = None,
              deviations: Iterable[str] = (),
              batch: Mapping[str, Any] | None = None) -> RunInfo:
    """Set the run that later ``save_*`` calls write for, and return it. ``deviations``: the
    run's departures from the papers' conditions (e.g. a changed batch), added to every metric
    it records; ``batch``: what every sidecar states of the batch sizes
    (:meth:`medrepro.core.profiles.Batching.record`; None for a notebook that trains nothing)."""
    global _current
    check_profile(profile)
    root = Path(reports_root) if reports_root else paths.reports_root()
    _current = RunInfo(notebook=notebook, profile=profile, seed=int(seed), reports_root=root,
                       deviations=tuple(deviations), batch=batch)
    return _current


def current_run() -> RunInfo:
    if _current is None:
        raise RuntimeError("no run started: call medrepro.reporting.report.start_run(...) or "
                           "medrepro.run.notebook.setup(...) before saving artifacts")
    return _current


def is_phantom(source: str) -> bool:
    """True if any part of ``source`` is phantom data.

    ``"phantom"``, ``"phantom:<dataset>"``, and combined sources such as
    ``"brain_tumor_sartaj+phantom"`` (see :func:`combine_sources`) all count.
    """
    return any(part == PHANTOM or part.startswith(PHANTOM + ":")
               for part in str(source).split("+"))


def combine_sources(sources) -> str:
    """One label for an artifact drawn from several sources: ``"a+b"`` (sorted, unique)."""
    parts = sorted({p for s in sources if s for p in str(s).split("+")})
    return "+".join(parts) if parts else "none"


def artifact_paths(artifact_id: str, *, profile: str,
                   reports_root: str | os.PathLike | None = None) -> list[Path]:
    """The files an artifact consists of (without sidecar): ``[png]`` or ``[csv, md]``.

    ``reports_root`` defaults to :func:`medrepro.core.paths.reports_root` (not to the started run's
    root: a check of what is on disk must not depend on which run this process started last).
    """
    art = manifest.get(artifact_id)
    check_profile(profile)
    if art.kind == "figure":
        return [paths.figures_dir(profile, root=reports_root) / f"{art.id}.png"]
    tables = paths.tables_dir(profile, root=reports_root)
    return [tables / f"{art.id}.csv", tables / f"{art.id}.md"]


def save_figure(fig, artifact_id: str, *, source: str, notes: str = "", dpi: int = 120,
                show: bool = True, **overrides: Any) -> Path:
    """Save a matplotlib figure as artifact ``artifact_id``; returns the PNG path.

    ``source`` is ``"phantom"`` or the real dataset's id; phantom figures get a visible banner.
    With ``show`` (default) the saved PNG is displayed as the cell's ``image/png`` output when
    running in a Jupyter kernel (papermill, nbval, Colab, Kaggle; whatever the matplotlib
    backend), and the figure is closed either way, so long runs do not accumulate figures.
    ``overrides`` may set ``profile``, ``seed`` or ``reports_root`` instead of the started run.
    """
    art = manifest.get(artifact_id)
    if art.kind != "figure":
        raise ValueError(f"{artifact_id} is a {art.kind} in the manifest, not a figure")
    run = _resolve(overrides)
    png = artifact_paths(artifact_id, profile=run.profile, reports_root=run.reports_root)[0]
    if is_phantom(source):
        from medrepro.reporting.plots import phantom_banner

        phantom_banner(fig, PHANTOM_LABEL)
    if devrun.active():
        from medrepro.reporting.plots import dev_run_banner

        dev_run_banner(fig, devrun.LABEL)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    _write_sidecar(png.with_suffix(".json"), art, run, source, notes)
    if show:
        display_png(png)
    _close(fig)
    return png


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where ``IPython.display`` reaches the notebook)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_png(png: str | os.PathLike) -> bool:
    """Show a PNG file as an ``image/png`` output of the running cell; False outside a kernel."""
    if not in_kernel():
        return False
    from IPython.display import Image, display

    display(Image(data=Path(png).read_bytes(), format="png"))
    return True


def _close(fig) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def save_table(df, artifact_id: str, *, source: str, notes: str = "", index: bool = False,
               **overrides: Any) -> Path:
    """Save a ``pandas.DataFrame`` as artifact ``artifact_id`` (CSV + Markdown + JSON sidecar).

    The CSV gets a ``data_source`` column; the Markdown a header naming the source, profile and
    seed, and the phantom warning where it applies. Returns the CSV path.
    """
    art = manifest.get(artifact_id)
    if art.kind != "table":
        raise ValueError(f"{artifact_id} is a {art.kind} in the manifest, not a table")
    if df is None or len(df) == 0:
        raise ValueError(f"{artifact_id}: refusing to save an empty table")
    run = _resolve(overrides)
    csv_path, md_path = artifact_paths(artifact_id, profile=run.profile,
                                       reports_root=run.reports_root)
    table = df.reset_index() if index else df
    header = [f"# {art.id}: {art.description}", "",
              f"Data source: **{source}** · profile: **{run.profile}** · seed: {run.seed} · "
              f"notebook: {run.notebook}", ""]
    if is_phantom(source):
        header += [f"> **{PHANTOM_LABEL}.**", ""]
    if devrun.active():
        header += [f"> **{devrun.LABEL}.**", ""]
    if notes:
        header += [notes, ""]
    # Render everything before writing anything, so a failure leaves the old files intact.
    markdown = "\n".join(header) + table.to_markdown(index=False) + "\n"
    out = table.assign(data_source=source)
    with atomic_path(csv_path) as tmp:
        out.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(markdown, encoding="utf-8")
    _write_sidecar(csv_path.with_suffix(".json"), art, run, source, notes)
    return csv_path


def record_metric(study: str, metric: str, value: float, *, source: str, artifact: str,
                  ci: tuple[float, float] | None = None, n: int | None = None, notes: str = "",
                  deviations: Iterable[str] = (), extra: dict[str, Any] | None = None,
                  **overrides: Any) -> Path:
    """Record one reproduced headline number for ``06_compare`` (and the README results table).

    Written to ``reports/<profile>/metrics/<notebook>.json``, one record per ``(study, metric,
    seed)``: a re-run of a seed replaces its record, other seeds' records stay (the seed band of
    :mod:`medrepro.reporting.ledger`), and a record on another data source replaces every seed's
    record of that metric (a band never mixes datasets). ``metric`` should match a
    ``manifest.HEADLINES`` metric where the paper reported one; ``ci`` is the 95% interval,
    ``n`` the number of test items; ``deviations``: the run's departures from the paper's
    conditions beyond data and profile (e.g. ``["ImageNet weights unavailable: ..."]``, a
    changed batch), which make the claim "not comparable" (:mod:`medrepro.analysis.verdicts`);
    ``extra``: further fields stored in the record (e.g. ``{"dropped": 9}`` for a
    duplicate-free metric).
    """
    manifest.get(artifact)
    run = _resolve(overrides)
    path = paths.metrics_dir(run.profile, root=run.reports_root) / f"{run.notebook}.json"
    records = [r for r in _read_records(path) if (r["study"], r["metric"]) != (study, metric)
               or (r.get("seed") != run.seed and r.get("data_source") == source)]
    record = {"study": study, "metric": metric, "value": float(value),
              "ci_low": None if ci is None else float(ci[0]),
              "ci_high": None if ci is None else float(ci[1]), "n": n,
              "artifact": artifact, "notebook": run.notebook, "notes": notes,
              "deviations": list(dict.fromkeys([*run.deviations, *deviations])),
              **provenance(source, profile=run.profile, seed=run.seed)}
    clash = sorted(set(extra or {}) & set(record))
    if clash:
        raise ValueError(f"record_metric: extra fields {clash} would overwrite the record's own")
    records.append({**record, **(extra or {})})
    records.sort(key=lambda r: (r["study"], r["metric"], r.get("seed", 0)))
    write_json(path, records, indent=2, default=str)
    return path


SKIPS_DIR = "skips"  # reports/<profile>/skips/<notebook>.json: the inputs each notebook skipped
MAX_LISTED_SKIPS = 50  # files named per dataset in a skips record (the count covers them all)


def record_skips(dataset: str, skipped, *, source: str, n_files: int | None = None,
                 **overrides: Any) -> Path:
    """Record the input files a notebook skipped for ``dataset`` (for the run summary and the
    report page): ``skipped``, a frame with ``path``, ``problem`` and ``detail`` (one row per
    file; empty when none was). ``n_files``: how many files were looked at.

    Written to ``reports/<profile>/skips/<notebook>.json``, one entry per dataset (a re-run
    replaces it); the first :data:`MAX_LISTED_SKIPS` files are named, all are counted.
    """
    run = _resolve(overrides)
    path = paths.reports_dir(run.profile, root=run.reports_root) / SKIPS_DIR / \
        f"{run.notebook}.json"
    records = [r for r in _read_records(path) if r.get("dataset") != dataset]
    problems = skipped["problem"].value_counts() if len(skipped) else {}
    records.append({
        "dataset": dataset, "source": source, "notebook": run.notebook,
        "files_checked": n_files, "skipped": len(skipped),
        "by_problem": {str(k): int(v) for k, v in sorted(dict(problems).items())},
        "files": [{"path": str(p), "problem": str(pr), "detail": str(d)} for p, pr, d in
                  skipped[["path", "problem", "detail"]].head(MAX_LISTED_SKIPS).itertuples(
                      index=False)]})
    write_json(path, sorted(records, key=lambda r: r["dataset"]), indent=2)
    return path


def record_dataset_skips(resolved) -> list[Path]:
    """:func:`record_skips` for every brain-MRI dataset of ``resolved`` (``{id:
    ResolvedDataset}``), checked by the one image rule (``medrepro.data.images.scan``)."""
    from medrepro.data import images
    from medrepro.data.registry import MRI_DATASETS

    out = []
    for rd in (resolved[d] for d in MRI_DATASETS if d in resolved):
        found = images.scan(rd.root, rd.dataset_id)
        out.append(record_skips(rd.dataset_id, found.skipped, source=rd.source,
                                n_files=len(found.images) + len(found.skipped)))
    return out


def read_skips(*, profile: str, reports_root: str | os.PathLike | None = None,
               notebooks: Iterable[str] | None = None) -> list[dict]:
    """The skips records of ``notebooks`` (default: all) under ``reports/<profile>/skips/``."""
    folder = paths.reports_dir(profile, root=reports_root) / SKIPS_DIR
    wanted = None if notebooks is None else set(notebooks)
    out: list[dict] = []
    for path in sorted(folder.glob("*.json")):
        if wanted is None or path.stem in wanted:
            out.extend(_read_records(path))
    return out


def skips_by_dataset(records: Iterable[dict]) -> dict[str, int]:
    """Skipped files per dataset of :func:`read_skips`'s records, each counted once: every
    notebook that reads a dataset applies the same rule to the same files, so the largest
    count stands for them all."""
    out: dict[str, int] = {}
    for r in records:
        out[r["dataset"]] = max(out.get(r["dataset"], 0), int(r["skipped"]))
    return out


def _read_records(path: Path) -> list[dict]:
    """A JSON list of records; a damaged file is reported and replaced, never half-trusted."""
    from medrepro.core.fileio import CorruptFileError, read_json

    try:
        return read_json(path, expect=list)
    except FileNotFoundError:
        return []
    except CorruptFileError as exc:
        print(f"warning: {exc}; its records are dropped and written afresh", file=sys.stderr)
        return []


def read_metrics(*, profile: str, reports_root: str | os.PathLike | None = None) -> list[dict]:
    """Every metric recorded under ``reports/<profile>/metrics/``, in notebook order."""
    out: list[dict] = []
    for path in sorted(paths.metrics_dir(profile, root=reports_root).glob("*.json")):
        out.extend(_read_records(path))
    return out


def missing_artifacts(notebooks: Iterable[str], *, profile: str,
                      reports_root: str | os.PathLike | None = None) -> list[str]:
    """Ids of the manifest artifacts of ``notebooks`` that are absent or empty on disk."""
    missing = []
    for nb in notebooks:
        for art in manifest.for_notebook(nb):
            files = artifact_paths(art.id, profile=profile, reports_root=reports_root)
            sidecar = files[0].with_suffix(".json")
            if not all(f.is_file() and f.stat().st_size > 0 for f in [*files, sidecar]):
                missing.append(art.id)
    return missing


def read_sidecar(artifact_id: str, *, profile: str,
                 reports_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The provenance JSON of a saved artifact."""
    from medrepro.core.fileio import read_json

    first = artifact_paths(artifact_id, profile=profile, reports_root=reports_root)[0]
    return read_json(first.with_suffix(".json"))  # CorruptFileError naming a damaged one


def provenance(source: str, *, profile: str, seed: int) -> dict[str, Any]:
    """Source, the identity of the datasets behind it (files per split and class, content
    hash, the published version matched: :func:`medrepro.data.identity.for_source`), profile,
    whether a fast dev run made it (``fast_dev_run``, :mod:`medrepro.core.devrun`), seed, git
    commit, UTC date, package versions and the device (platform, GPUs, dtype policy:
    :func:`medrepro.core.device.summary`), as a dict."""
    from medrepro.data import identity

    return {
        "data_source": source,
        "phantom": is_phantom(source),
        "datasets": identity.for_source(source),
        "profile": profile,
        **devrun.stamp(),
        "seed": int(seed),
        "git_commit": git_commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "device": device.summary(),
    }


def git_commit() -> str:
    """The checkout's HEAD commit, with ``+dirty`` if tracked files changed; ``unknown`` outside git."""
    root = paths.project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (read without importing them)."""
    import platform

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _resolve(overrides: dict[str, Any]) -> RunInfo:
    unknown = set(overrides) - {"profile", "seed", "reports_root", "notebook"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
    base = _current
    if base is None and not {"profile", "seed"} <= set(overrides):
        current_run()  # raises the explanatory error
    profile = overrides.get("profile", base.profile if base else None)
    check_profile(profile)
    root = overrides.get("reports_root") or (base.reports_root if base else paths.reports_root())
    return RunInfo(notebook=overrides.get("notebook", base.notebook if base else "unknown"),
                   profile=profile, seed=int(overrides.get("seed", base.seed if base else 0)),
                   reports_root=Path(root), deviations=base.deviations if base else (),
                   batch=base.batch if base else None)


def _write_sidecar(path: Path, art: manifest.Artifact, run: RunInfo, source: str,
                   notes: str) -> None:
    meta = {"id": art.id, "study": art.study, "kind": art.kind, "description": art.description,
            "notebook": run.notebook, "manifest_notebook": art.notebook, "notes": notes,
            **provenance(source, profile=run.profile, seed=run.seed)}
    if run.batch is not None:
        meta["batch"] = dict(run.batch)
    write_json(path, meta, indent=2, default=str)


def recorded_by(metrics: Iterable[dict]) -> list[str]:
    """The notebooks that recorded ``metrics`` (:func:`read_metrics`), sorted, each once."""
    return sorted({m["notebook"] for m in metrics})
