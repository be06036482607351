"""What every notebook does first: resolve its parameters, seed, and start the report run.

A notebook's ``parameters`` cell holds ``profile = None``, ``data = None``, ``seed = 42``,
``reports = None``; papermill (``run_all.sh``) overrides them. ``None`` falls back to the
environment (``MEDREPRO_PROFILE``, ``MEDREPRO_DATA_SOURCE``), so the test suite can run the stored
notebooks under nbval in the smoke profile, then to the defaults (``demo``, ``phantom``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medrepro.core import device, paths, profiles
from medrepro.core.seeds import DEFAULT_SEED, seed_everything
from medrepro.data.registry import PHANTOM
from medrepro.reporting import report
from medrepro.run import resume


def resolve_parameters(profile: str | None, data: str | None) -> tuple[str, str]:
    """A notebook's ``profile`` and ``data`` parameters, else the environment
    (``MEDREPRO_PROFILE``, ``MEDREPRO_DATA_SOURCE``), else the defaults (``demo``, ``phantom``)."""
    profile = profile or os.environ.get("MEDREPRO_PROFILE") or profiles.DEFAULT_PROFILE
    data = data or os.environ.get("MEDREPRO_DATA_SOURCE") or PHANTOM
    return profiles.check_profile(profile), str(data)


@dataclass(frozen=True)
class NotebookRun:
    """A notebook's resolved parameters."""

    notebook: str
    profile: str
    data: str  # "phantom", "kaggle", or a folder/archive path
    seed: int
    settings: Mapping[str, Any] = field(repr=False)
    reports_dir: Path = field(repr=False)
    replicas: int = 1  # MirroredStrategy replicas; settings' batch sizes are global (× replicas)

    @property
    def phantom(self) -> bool:
        return self.data == PHANTOM


def setup(notebook: str, *, profile: str | None = None, data: str | None = None,
          seed: int = DEFAULT_SEED, reports: str | None = None, quiet: bool = False) -> NotebookRun:
    """Resolve parameters, use every GPU, seed everything, start the report run; print a banner.

    A notebook that trains no model (:func:`medrepro.core.profiles.trains_models`) skips the GPU
    strategy and seeds TensorFlow only if something imported it already. One that trains first
    copies the training runs an earlier session left in an attached output
    (:func:`medrepro.run.resume.seed_from_earlier`), so finished models are reused and the one in
    progress continues.

    With several GPUs (:func:`medrepro.core.device.activate_strategy`) every model of the notebook is
    built and trained under ``MirroredStrategy`` and the batch sizes in ``run.settings`` are the
    global batch (per-replica × replicas).
    """
    profile, data = resolve_parameters(profile, data)
    # A notebook that trains nothing neither imports TensorFlow (~5 s) nor sets a strategy.
    trains = notebook in profiles.PROFILES and profiles.trains_models(notebook)
    # an earlier session's training runs (Kaggle: its output attached as an input) come first
    seeded = resume.seed_from_earlier(notebook, profile=profile, seed=int(seed)) if trains else []
    replicas = device.activate_strategy() if trains else 1
    changed = ([f"a changed batch: the global batch is the per-replica batch x {replicas} "
                "replicas"] if replicas > 1 else [])
    run_info = report.start_run(notebook, profile=profile, seed=seed, reports_root=reports,
                                deviations=changed)
    seed_everything(seed, frameworks=trains)
    run = NotebookRun(notebook=notebook, profile=profile, data=data, seed=int(seed),
                      settings=profiles.settings(notebook, profile, replicas=replicas),
                      reports_dir=paths.reports_dir(profile, root=run_info.reports_root),
                      replicas=replicas)
    if not quiet:
        print(f"{notebook}: profile={profile} data={data} seed={seed}")
        print(f"device: {device.describe()}")
        if replicas > 1:
            print(f"MirroredStrategy over {replicas} replicas: batch sizes below are global "
                  f"(per-replica batch × {replicas})")
        print(f"artifacts -> {run.reports_dir}")
        resume.print_seeded(seeded)
        if profile != "paper":
            print(f"Profile '{profile}' uses reduced sizes (below); its numbers are not the "
                  "papers' protocol.")
        for key, value in run.settings.items():
            print(f"  {key}: {profiles._fmt(value)}")
    return run


def print_notes(notes: Iterable[str]) -> None:
    """One ``note: ...`` line per note (of a resolved dataset or a split)."""
    for note in notes:
        print("note:", note)


def print_unavailable(unavailable: Mapping[str, str]) -> None:
    """One ``UNAVAILABLE <dataset>: <reason>`` line per dataset that could not be resolved."""
    for dataset_id, reason in unavailable.items():
        print(f"UNAVAILABLE {dataset_id}: {reason}")
