"""Every path the project uses, in one place.

Nothing is resolved at import time: each function reads the environment when called, so tests
and notebooks can redirect output with environment variables:

- ``MEDREPRO_ROOT``     project root (default: the folder holding ``pyproject.toml`` above this file)
- ``MEDREPRO_DATA``     data folder (default ``<root>/data``)
- ``MEDREPRO_REPORTS``  reports folder (default ``<root>/reports``)
- ``MEDREPRO_SHARED``   folder of real sample data (default ``<root>/../shared/data`` if present)
- ``MEDREPRO_CACHE_DIR`` derived, rebuildable caches (default ``<data>/processed``; on Kaggle
  ``<scratch>/medrepro-cache``, see :func:`kaggle_scratch`, since ``/kaggle/working`` keeps only
  20 GB): put it on a big scratch disk when ``data/`` is a small one
- ``MEDREPRO_STATE``    where a run's state lives, training runs and reports
  (``<state>/runs``, ``<state>/reports``): a folder that outlives the session, such as a mounted
  Google Drive (default: ``<data>/runs`` and ``<root>/reports``)
- ``MEDREPRO_KAGGLE_ROOT`` Kaggle's top folder (default ``/kaggle``; emulations set it)
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The project root: ``$MEDREPRO_ROOT``, else the nearest parent holding ``pyproject.toml``."""
    env = os.environ.get("MEDREPRO_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    for parent in _PACKAGE_DIR.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lib" / "medrepro").is_dir():
            return parent
    return Path.cwd()


def data_dir() -> Path:
    """``<root>/data``: ``raw/<dataset>/`` (immutable once written) and ``processed/<dataset>/``."""
    env = os.environ.get("MEDREPRO_DATA")
    return Path(env).expanduser().resolve() if env else project_root() / "data"


def raw_dir(dataset: str) -> Path:
    """Where an acquired dataset (phantom or downloaded) lives: ``data/raw/<dataset>``."""
    return data_dir() / "raw" / dataset


def cache_root() -> Path:
    """Where derived, rebuildable data goes: ``$MEDREPRO_CACHE_DIR``, else on Kaggle
    ``<scratch>/medrepro-cache`` (:func:`kaggle_scratch`), else ``data/processed``."""
    env = os.environ.get("MEDREPRO_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    from medrepro.core import device

    if device.detect_platform() == device.KAGGLE:
        return kaggle_scratch() / "medrepro-cache"
    return data_dir() / "processed"


def kaggle_root() -> Path:
    """Kaggle's top folder: ``$MEDREPRO_KAGGLE_ROOT`` or ``/kaggle``."""
    return Path(os.environ.get("MEDREPRO_KAGGLE_ROOT") or "/kaggle").expanduser()


def kaggle_working() -> Path:
    """``/kaggle/working``: the notebook's working folder, saved (at most 20 GB) as its output."""
    return kaggle_root() / "working"


def kaggle_scratch() -> Path:
    """``/kaggle/temp``: scratch on the session's disk, not saved. Kaggle's notebook template
    names it ("You can also write temporary files to /kaggle/temp/, but they won't be saved
    outside of the current session"); it is not mounted, so writers create it."""
    return kaggle_root() / "temp"


def state_root() -> Path | None:
    """``$MEDREPRO_STATE`` (a run's training runs and reports), None when unset."""
    env = os.environ.get("MEDREPRO_STATE")
    return Path(env).expanduser().resolve() if env else None


def runs_root() -> Path:
    """Every notebook's training runs: ``<state>/runs`` with ``$MEDREPRO_STATE``, else
    ``data/runs``."""
    state = state_root()
    return state / "runs" if state else data_dir() / "runs"


def processed_dir(dataset: str) -> Path:
    """Derived, rebuildable data (caches, splits): ``<cache root>/<dataset>``."""
    return cache_root() / dataset


def runs_dir(notebook: str, *, profile: str, source: str, seed: int) -> Path:
    """Training runs of a notebook: ``<runs root>/<notebook>/<profile>-<source>-seed<seed>``
    (:func:`runs_root`: ``data/runs``).

    One folder per model inside (checkpoint, ``history.csv``, resume state, ``done.json``).
    ``source`` is the data source actually used (``phantom`` or the real dataset's id), so a
    phantom run is never resumed or reused by a real one, nor one profile's by another.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(source))
    return runs_root() / notebook / f"{profile}-{safe}-seed{int(seed)}"


def seed_runs(runs: str | os.PathLike) -> dict[int, Path]:
    """The folders beside a :func:`runs_dir` ``runs`` that differ from it only in their seed
    (``runs`` included, if it exists): ``{seed: folder}``, seeds ascending."""
    runs = Path(runs)
    prefix, sep, _ = runs.name.rpartition("-seed")
    if not sep:
        raise ValueError(f"{runs}: not a runs folder (<profile>-<source>-seed<seed>)")
    found = {}
    for folder in runs.parent.glob(f"{prefix}-seed*"):
        tail = folder.name[len(prefix) + len(sep):]
        if folder.is_dir() and tail.isdigit():
            found[int(tail)] = folder
    return dict(sorted(found.items()))


def downloads_dir() -> Path:
    """Partial and complete downloaded archives: ``data/downloads``."""
    return data_dir() / "downloads"


def reports_root() -> Path:
    """``$MEDREPRO_REPORTS``, else ``<state>/reports`` with ``$MEDREPRO_STATE``, else
    ``<root>/reports``."""
    env = os.environ.get("MEDREPRO_REPORTS")
    if env:
        return Path(env).expanduser().resolve()
    state = state_root()
    return state / "reports" if state else project_root() / "reports"


def reports_dir(profile: str, *, root: str | os.PathLike | None = None) -> Path:
    """``reports/<profile>/``: executed notebooks, ``figures/``, ``tables/``, ``metrics/``.

    ``root`` replaces :func:`reports_root` (a notebook's ``reports`` parameter, a test's tmp dir).
    """
    return (Path(root) if root else reports_root()) / profile


def figures_dir(profile: str, *, root: str | os.PathLike | None = None) -> Path:
    """``reports/<profile>/figures``: ``<id>.png`` + ``<id>.json``."""
    return reports_dir(profile, root=root) / "figures"


def tables_dir(profile: str, *, root: str | os.PathLike | None = None) -> Path:
    """``reports/<profile>/tables``: ``<id>.csv``, ``<id>.md`` + ``<id>.json``."""
    return reports_dir(profile, root=root) / "tables"


def metrics_dir(profile: str, *, root: str | os.PathLike | None = None) -> Path:
    """``reports/<profile>/metrics``: ``<notebook>.json`` headline numbers for ``06_compare``."""
    return reports_dir(profile, root=root) / "metrics"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def find_notebooks(only: list[str] | None = None) -> list[Path]:
    """The stored notebooks in number order, optionally only those whose number is in ``only``."""
    nbs = sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.zfill(2) if o.isdigit() else o for o in only}
        nbs = [p for p in nbs if p.name[:2] in wanted or p.stem in wanted]
        if not nbs:
            raise SystemExit(f"--only {' '.join(only)}: no notebook matches in "
                             f"{notebooks_dir()}")
    return nbs


def shared_data_dir() -> Path | None:
    """The real sample data beside the checkout (``../shared/data``), or None when absent.

    A user's fresh clone has no such folder; code and tests must cope with ``None``.
    """
    env = os.environ.get("MEDREPRO_SHARED")
    candidate = Path(env).expanduser() if env else project_root().parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None
