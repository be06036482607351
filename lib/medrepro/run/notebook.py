"""What every notebook does first: resolve its parameters, seed, and start the report run.

A notebook's ``parameters`` cell holds ``profile = None``, ``data = None``, ``seed = 42``,
``reports = None``; papermill (``run_all.sh``) overrides them. ``None`` falls back to the
environment (``MEDREPRO_PROFILE``, ``MEDREPRO_DATA_SOURCE``), so the test suite can run the stored
notebooks under nbval in the smoke profile, then to the defaults (``demo``, ``phantom``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

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
    """A notebook's resolved parameters, its typed settings and how its batches meet the
    replicas.

    ``settings``: the notebook's profile rows (:data:`medrepro.core.profiles.NOTEBOOK_ROWS`), row
    name -> frozen settings (``run.settings["A"].epochs``); batch sizes global.
    """

    notebook: str
    profile: str
    data: str  # "phantom", "kaggle", or a folder/archive path
    seed: int
    settings: Mapping[str, profiles.Settings] = field(repr=False)
    reports_dir: Path = field(repr=False)
    batching: profiles.Batching = field(default=profiles.Batching(1), repr=False)

    @property
    def phantom(self) -> bool:
        return self.data == PHANTOM

    @property
    def replicas(self) -> int:
        """The replicas the notebook's models train on (``MirroredStrategy``; 1: one device)."""
        return self.batching.replicas

    def resolve(self, dataset_id: str):
        """The dataset ``dataset_id`` for this run's data source, profile and seed
        (:func:`medrepro.data.datasets.resolve`)."""
        from medrepro.data import datasets

        return datasets.resolve(dataset_id, data=self.data, profile=self.profile, seed=self.seed)

    def resolve_mri(self, dataset_id: str):
        """An MRI dataset, or the other real MRI set standing in where a real source lacks it:
        ``(ResolvedDataset, note)`` (:func:`medrepro.data.brain_mri.resolve_for_study`)."""
        from medrepro.data import brain_mri

        return brain_mri.resolve_for_study(dataset_id, data=self.data, profile=self.profile,
                                           seed=self.seed)

    def runs_dir(self, source: str) -> Path:
        """The folder of this notebook run's training runs on data ``source``
        (:func:`medrepro.core.paths.runs_dir`)."""
        return paths.runs_dir(self.notebook, profile=self.profile, source=source, seed=self.seed)


def setup(notebook: str, *, profile: str | None = None, data: str | None = None,
          seed: int = DEFAULT_SEED, reports: str | None = None, quiet: bool = False) -> NotebookRun:
    """Resolve parameters, use every GPU, seed everything, start the report run; print a banner.

    A notebook that trains no model (:func:`medrepro.core.profiles.trains_models`) skips the GPU
    strategy and seeds TensorFlow only if something imported it already. One that trains first
    copies the training runs an earlier session left in an attached output
    (:func:`medrepro.run.resume.seed_from_earlier`), so finished models are reused and the one in
    progress continues.

    With several GPUs (:func:`medrepro.core.device.activate_strategy`) every model of the notebook
    is built and trained under ``MirroredStrategy``; the profile's batch sizes are the global
    batch, split over the replicas, unless a batch does not divide (then one replica, and the
    banner says why) or the per-replica option is on
    (:func:`medrepro.core.profiles.choose_batching`). Every artifact's sidecar records the
    global and per-replica batches.
    """
    profile, data = resolve_parameters(profile, data)
    rows = profiles.notebook_settings(notebook, profile)
    trains = profiles.trains_models(notebook)
    # A notebook that trains nothing neither imports TensorFlow (~5 s) nor sets a strategy.
    # an earlier session's training runs (Kaggle: its output attached as an input) come first
    seeded = resume.seed_from_earlier(notebook, profile=profile, seed=int(seed)) if trains else []
    batching = profiles.choose_batching(rows.values(),
                                        device.available_replicas() if trains else 1,
                                        per_replica_option=profiles.batch_per_replica_option())
    if batching.replicas > 1:
        batching = dataclasses.replace(batching, replicas=device.activate_strategy())
    rows = profiles.notebook_settings(notebook, profile, replicas=batching.replicas,
                                      batch_per_replica=batching.per_replica_option)
    record = batching.record(rows) if trains else None
    # The paper's batch is kept (global, split over the replicas) unless the per-replica option
    # multiplies it: only then is the batch a departure from the papers' conditions.
    changed = ([f"a changed batch: the global batch is the profile's batch x {batching.replicas} "
                "replicas (MEDREPRO_BATCH_PER_REPLICA)"]
               if batching.per_replica_option and batching.replicas > 1 else [])
    run_info = report.start_run(notebook, profile=profile, seed=seed, reports_root=reports,
                                deviations=changed, batch=record)
    seed_everything(seed, frameworks=trains)
    run = NotebookRun(notebook=notebook, profile=profile, data=data, seed=int(seed),
                      settings=MappingProxyType(rows),
                      reports_dir=paths.reports_dir(profile, root=run_info.reports_root),
                      batching=batching)
    if not quiet:
        print_banner(run)
        resume.print_seeded(seeded)
    return run


def print_banner(run: NotebookRun) -> None:
    """What :func:`setup` prints: parameters, device, replicas and every setting, batch sizes
    global and per replica."""
    print(f"{run.notebook}: profile={run.profile} data={run.data} seed={run.seed}")
    print(f"device: {device.describe()}")
    b = run.batching
    if b.replicas > 1:
        print(f"MirroredStrategy over {b.replicas} replicas: "
              + ("the per-replica option is on (global batch = profile batch × replicas, not "
                 "the papers' protocol)" if b.per_replica_option
                 else "each global batch below is split over them"))
    if b.reason:
        print(f"one replica of {b.available}: {b.reason}")
    print(f"artifacts -> {run.reports_dir}")
    if run.profile != "paper":
        print(f"Profile '{run.profile}' uses reduced sizes (below); its numbers are not the "
              "papers' protocol.")
    for name, row in run.settings.items():
        for f in dataclasses.fields(row):
            value = getattr(row, f.name)
            text = b.describe(value) if f.name in row.BATCHES else profiles.fmt(value)
            print(f"  {name}.{f.name}: {text}")


def print_notes(notes: Iterable[str]) -> None:
    """One ``note: ...`` line per note (of a resolved dataset or a split)."""
    for note in notes:
        print("note:", note)


def print_unavailable(unavailable: Mapping[str, str]) -> None:
    """One ``UNAVAILABLE <dataset>: <reason>`` line per dataset that could not be resolved."""
    for dataset_id, reason in unavailable.items():
        print(f"UNAVAILABLE {dataset_id}: {reason}")
