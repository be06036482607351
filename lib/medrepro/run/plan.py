"""The plan of a run, before any work: data found, bytes to write and where, time, what is done.

    ./run_all.sh --plan [--profile P] [--data D] [--only NN ...] [--cache-dir DIR]
    python -m medrepro.run.plan ...            (the same)

Per notebook it states the datasets and their sizes (found, to download, or phantoms to
generate), the bytes every cache, phantom and checkpoint folder will take and where, the free
space there, the projected wall time on the detected device (from the measured rates in
``benchmarks/rates.json``, which the benchmarks write: ``bench_cache.py`` the cache build and
read rates, ``bench_train.py`` study B's training rates), and what will be skipped as already
done. :func:`check` refuses, before anything is written, a run whose writes do not fit the free
space (saying how much is missing and the options) and a paper-profile run without a GPU unless
confirmed (``--yes`` / ``MEDREPRO_YES=1``). ``runner.py`` prints the plan and checks it at the
start of every run.

Planning writes, downloads and generates nothing: phantoms and caches are looked at, never
made. (:func:`record_rates`, for the benchmarks, is the one writer: ``benchmarks/rates.json``.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medrepro.core import device as devices
from medrepro.core import paths, profiles
from medrepro.core.fileio import write_json
from medrepro.core.planning import DatasetFound, PlanContext, RowPlan, Write
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.data import datasets, registry, rsna

RATES_FILE = "rates.json"  # in benchmarks/
YES_ENV = "MEDREPRO_YES"
GiB = 2**30
FREE_MARGIN_BYTES = 1 * GiB  # keep this much free: logs, executed notebooks, temporary files
# Bytes per file where nothing is on disk to measure (estimates, labelled as such):
FILE_BYTES_ESTIMATE = {"rsna": 525_000,  # a 512x512 int16 DICOM slice with its header
                       "mri": 28_600,  # mean file of the real Sartaj set (93.2 MB / 3,264)
                       "mosmed": 9_000_000}  # a gzipped 512x512xD int16 NIfTI volume
NOTEBOOK_DATASETS = {
    "01_download": registry.DATASET_IDS,
    "02_preprocess_rsna": ("rsna_ich",),
    "03_lstm_cnn_mri": registry.MRI_DATASETS,
    "04_lightweight_ct": ("rsna_ich",),
    "05_3dcnn_mosmed": ("mosmed",),
    "06_compare": (),
}
# Where things survive: (folder, persistent?, what it is) per platform.
PLATFORM_FOLDERS = {
    "kaggle": (("/kaggle/input", "read-only", "attached datasets and competitions"),
               ("/kaggle/working", "persistent", ("20 GB, kept as the notebook's output when a "
                "version is saved; put the checkout (data/runs, reports/) here")),
               ("/kaggle/tmp", "scratch", ("the session's local disk, lost when it ends: put "
                "rebuildable caches here (--cache-dir /kaggle/tmp/medrepro-cache)"))),
    "colab": (("/content", "scratch", "the runtime's disk, lost when the runtime is recycled"),
              ("/content/drive/MyDrive", "persistent", ("Google Drive once mounted (its quota); "
               "keep checkpoints and reports here, caches on /content"))),
}


class PlanError(RuntimeError):
    """A run that must not start (the message says why and what to do instead)."""


# ---------------------------------------------------------------------------- rates

def machine_key(device: dict) -> str:
    """The key of ``device`` in ``rates.json``: ``"gpu:<name>"`` or ``"cpu:<n>"`` (n cores)."""
    return f"gpu:{device['name']}" if device["kind"] == "gpu" else f"cpu:{device['cpus']}"


def rates_path() -> Path:
    return paths.project_root() / "benchmarks" / RATES_FILE


def load_rates() -> dict:
    """``rates.json`` as ``{"machines": {key: {section: {...}}}}`` (empty when absent)."""
    try:
        return json.loads(rates_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"machines": {}}


def record_rates(section: str, values: dict, *, device: dict | None = None) -> Path:
    """Merge measured ``values`` into ``rates.json`` under this machine and ``section``
    (atomic), with the date, commit and machine description. Returns the file."""
    from medrepro.reporting import report

    device = device or devices.machine()
    rates = load_rates()
    entry = rates.setdefault("machines", {}).setdefault(machine_key(device), {})
    entry["description"] = device["description"]
    entry[section] = {**values, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "commit": report.git_commit()}
    rates["note"] = ("measured by benchmarks/bench_cache.py (section cache) and bench_train.py "
                     "(section train) on the machine named by each key; read by medrepro.run.plan")
    path = rates_path()
    return write_json(path, rates, indent=2, sort_keys=True)


def rates_for(device: dict, rates: dict | None = None) -> tuple[dict, str]:
    """The measured rates for ``device`` and where they come from.

    The machine's own entry, else (a CPU) the CPU entry with the most cores, scaled to this
    machine's cores, else ``{}``. A GPU without its own entry gets ``{}``: CPU rates say
    nothing about it."""
    rates = load_rates() if rates is None else rates
    machines = rates.get("machines", {})
    key = machine_key(device)
    if key in machines:
        return machines[key], f"measured on this machine ({key})"
    if device["kind"] == "cpu":
        cpu_keys = sorted((k for k in machines if k.startswith("cpu:")),
                          key=lambda k: int(k.split(":")[1]))
        if cpu_keys:
            k = cpu_keys[-1]
            return machines[k], f"measured on {k} ({machines[k].get('description', '')})"
    return {}, f"no measured rates for {key} (run ./run_all.sh --bench on it)"


# ---------------------------------------------------------------------------- the plan

@dataclass
class NotebookPlan:
    name: str
    datasets: list[DatasetFound] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    seconds: float | None = None
    time_note: str = ""
    done: list[str] = field(default_factory=list)


@dataclass
class DiskCheck:
    mount: Path
    paths: list[Path]
    needed: int
    free: int

    @property
    def missing(self) -> int:
        return max(0, self.needed + FREE_MARGIN_BYTES - self.free) if self.needed else 0


@dataclass
class Plan:
    profile: str
    data: str
    device: dict
    rates_note: str
    notebooks: list[NotebookPlan]
    disks: list[DiskCheck]
    platform: str | None
    warnings: list[str] = field(default_factory=list)
    seed_runs: list = field(default_factory=list)  # schedule.SeedRun, when several seeds run

    @property
    def total_seconds(self) -> float | None:
        """The projected time of every notebook run: a notebook's time once per seed it runs
        for (an upper bound where a seed runs only some of its studies)."""
        secs = {nb.name: nb.seconds for nb in self.notebooks}
        runs = [r.notebook for r in self.seed_runs] or list(secs)
        if any(secs.get(n) is None for n in runs):
            return None
        return sum(secs[n] for n in runs)

    @property
    def problems(self) -> list[str]:
        return [_missing_text(d) for d in self.disks if d.missing]


def make_plan(*, profile: str, data: str = registry.PHANTOM, only: Sequence[str] | None = None,
              seed: int = DEFAULT_SEED, device: dict | None = None,
              rates: dict | None = None, cache_format: str = rsna.DEFAULT_FORMAT,
              seed_runs: Sequence | None = None) -> Plan:
    """The plan of ``./run_all.sh --profile profile --data data --only ...`` (writes nothing).

    ``seed_runs``: the run's schedule (:func:`medrepro.run.runner.seed_runs`) when it runs
    several seeds or some studies only; the plan then lists each execution and its cost."""
    profiles.check_profile(profile)
    device = device or devices.machine()
    measured, rates_note = rates_for(device, rates)
    names = [p.stem for p in paths.find_notebooks(list(only) if only else None)]
    found = {d: survey_dataset(d, data=data, profile=profile, seed=seed)
             for d in {d for n in names for d in NOTEBOOK_DATASETS.get(n, ())}}
    ctx = PlanContext(profile, found, measured, device, cache_format)
    plans, planned = [], set()
    for name in names:
        nb = NotebookPlan(name, [found[d] for d in NOTEBOOK_DATASETS.get(name, ())])
        _plan_notebook(nb, ctx)
        nb.writes = [w for w in nb.writes if w.path not in planned]  # first writer counts
        planned.update(w.path for w in nb.writes)
        plans.append(nb)
    disks = _disk_checks([w for nb in plans for w in nb.writes if not w.done and w.checked])
    plan = Plan(profile, str(data), device, rates_note, plans, disks, _platform(),
                seed_runs=list(seed_runs or []))
    if profile == "paper" and device["kind"] != "gpu":
        plan.warnings.append("the paper profile on a machine without a GPU: projected "
                             + _projected_text(plan) + f" on this CPU; confirm with --yes or "
                             f"{YES_ENV}=1")
    return plan


def _projected_text(plan: Plan) -> str:
    """``"3.2 days"``, or ``"at least 3.2 days (not projected: 03, 05)"`` when some are unknown."""
    known = [nb.seconds for nb in plan.notebooks if nb.seconds is not None]
    unknown = [nb.name[:2] for nb in plan.notebooks if nb.seconds is None]
    if not unknown:
        return _fmt_time(sum(known))
    prefix = f"at least {_fmt_time(sum(known))}" if known else "an unmeasured time"
    return f"{prefix} (not projected: {', '.join(unknown)})"


def survey_dataset(dataset_id: str, *, data: str, profile: str,
                   seed: int = DEFAULT_SEED) -> DatasetFound:
    """What :func:`medrepro.data.datasets.resolve` would use for ``dataset_id``, found without
    writing: a real folder (files counted), a download, or the phantom (present or to make)."""
    sp = registry.spec(dataset_id)
    data = str(data or registry.PHANTOM)
    note = ""
    if data == datasets.KAGGLE:
        kaggle_input = Path(os.environ.get("MEDREPRO_KAGGLE_INPUT", "/kaggle/input"))
        root = registry.find_dataset_root(kaggle_input, sp) if kaggle_input.is_dir() else None
        if root is None:
            n = sp.official_total
            return DatasetFound(dataset_id, "download", None, n,
                                n * FILE_BYTES_ESTIMATE[sp.kind],
                                "kagglehub download (size estimated from the official count)")
        return _real(dataset_id, root, sp)
    if data != registry.PHANTOM:
        path = Path(data).expanduser()
        if not path.is_absolute() and not path.exists():
            path = paths.project_root() / path
        if path.is_file():
            return DatasetFound(dataset_id, "real", path, 0, path.stat().st_size,
                                "archive: extracted once into data/raw/archives")
        root = registry.find_dataset_root(path, sp) if path.is_dir() else None
        if root is not None and set(registry.splits_present(root, sp)) == set(sp.splits):
            return _real(dataset_id, root, sp)
        note = f"not complete in {data}: its phantom is used"
    root = datasets.phantom_root(dataset_id, profile=profile, seed=seed)
    n = _phantom_files(sp, profile)
    present = datasets.phantom_record(root) is not None
    size = _tree_bytes(root) if present else n * _phantom_file_bytes(sp, profile)
    return DatasetFound(dataset_id, registry.PHANTOM, root, n, size,
                        "; ".join(x for x in (note, "present" if present else "to generate")
                                  if x))


def _real(dataset_id: str, root: Path, sp) -> DatasetFound:
    n, size = 0, 0
    for split in sp.splits:
        folder = root / split
        for sub in ([folder / c for c in sp.classes] if sp.kind == "mri" else [folder]):
            files, sample_bytes, sampled = _scan(sub, sp.file_suffix)
            n += files
            size += round(sample_bytes / sampled * files) if sampled else 0
    return DatasetFound(dataset_id, "real", root, n, size)


def _scan(folder: Path, suffix: str, *, sample: int = 200) -> tuple[int, int, int]:
    """``(files, bytes of the first `sample`, how many sampled)``: one stat per sampled file,
    so 750k DICOMs cost a directory listing, not 750k stats."""
    n, size, k = 0, 0, 0
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.lower().endswith(suffix):
                    n += 1
                    if k < sample:
                        size += e.stat().st_size
                        k += 1
    except OSError:
        pass
    return n, size, k


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _phantom_files(sp: registry.DatasetSpec, profile: str) -> int:
    kw = datasets.phantom_arguments(sp, profile=profile)
    if sp.kind == "mri":
        return 4 * (kw["n_per_class"] + kw["n_test_per_class"])
    if sp.kind == "rsna":
        return kw["n_images"]
    return 2 * kw["n_per_class"]


def _phantom_file_bytes(sp: registry.DatasetSpec, profile: str) -> int:
    kw = datasets.phantom_arguments(sp, profile=profile)
    scale = (kw.get("size", 512) / 512) ** 2 if sp.kind != "rsna" else 1.0
    return int(FILE_BYTES_ESTIMATE[sp.kind] * scale)


def row_planners() -> dict[str, Callable[..., RowPlan]]:
    """Who plans each profile row's writes and time: the row's owner, ``plan(settings, ctx)``.
    (Imported here, on demand: the study modules pull in pandas and the model builders.)"""
    from medrepro.data.rsna import cache as rsna_cache
    from medrepro.reporting import compare
    from medrepro.studies import a, b, c, d, e

    return {"phantoms": datasets.plan, "rsna_cache": rsna_cache.plan, "A": a.plan, "B": b.plan,
            "C": c.plan, "D": d.plan, "E": e.plan, "compare": compare.plan}


def _plan_notebook(nb: NotebookPlan, ctx: PlanContext) -> None:
    """The notebook's datasets (phantoms to generate, downloads), then each of its profile rows'
    own plan (:func:`row_planners`); an unprojected time falls back to the last run's here."""
    for d in nb.datasets:
        if d.source == registry.PHANTOM:
            nb.writes.append(Write(f"{d.dataset_id} phantom ({d.files:,} files)",
                                   d.root, d.bytes, done="present" in d.note))
            if "present" in d.note:
                nb.done.append(f"{d.dataset_id} phantom already generated")
        elif d.source == "download":
            # kagglehub picks the folder and the real size is known only then: shown, not checked
            nb.writes.append(Write(f"{d.dataset_id} download (~{d.files:,} files, estimate, "
                                   "kagglehub's cache)", paths.downloads_dir(), d.bytes,
                                   checked=False))
    planners = row_planners()
    parts = [planners[row](profiles.settings(row, ctx.profile), ctx)
             for row in profiles.NOTEBOOK_ROWS.get(nb.name, ())]
    for part in parts:
        nb.writes += part.writes
        nb.done += part.done
    secs = [part.seconds for part in parts]
    nb.seconds = None if any(x is None for x in secs) else sum(secs)
    nb.time_note = "; ".join(part.note for part in parts if part.note)
    if nb.seconds is None:
        last = _last_wall(ctx.profile, nb.name)
        if last is not None:
            nb.seconds, nb.time_note = last, f"wall time of the last {ctx.profile} run here"


def _last_wall(profile: str, name: str) -> float | None:
    try:
        summary = json.loads((paths.reports_dir(profile) / "run_summary.json").read_text())
        return float(summary["wall_seconds"][name])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _disk_checks(writes: Iterable[Write]) -> list[DiskCheck]:
    """Writes grouped by file system (the device of each path's nearest existing parent)."""
    groups: dict[int, DiskCheck] = {}
    for w in writes:
        parent = _existing_parent(w.path)
        try:
            dev = os.stat(parent).st_dev
            free = shutil.disk_usage(parent).free
        except OSError:
            continue
        g = groups.setdefault(dev, DiskCheck(parent, [], 0, free))
        g.needed += w.bytes
        if w.path not in g.paths:
            g.paths.append(w.path)
        if len(str(parent)) < len(str(g.mount)):
            g.mount = parent
    return list(groups.values())


def _existing_parent(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _platform() -> str | None:
    """``"kaggle"``, ``"colab"`` or None (:func:`medrepro.core.device.detect_platform`)."""
    found = devices.detect_platform()
    return None if found == devices.LOCAL else found


def _missing_text(d: DiskCheck) -> str:
    return (f"the writes need {_fmt_bytes(d.needed)} (+{_fmt_bytes(FREE_MARGIN_BYTES)} margin) "
            f"on the disk of {d.mount}, which has {_fmt_bytes(d.free)} free: "
            f"{_fmt_bytes(d.missing)} missing")


# ---------------------------------------------------------------------------- text and checks

def format_plan(plan: Plan) -> str:
    """The plan as the text ``./run_all.sh`` prints."""
    head = f"medrepro plan: profile {plan.profile}, data {plan.data}, device: "
    lines = [head + plan.device["description"], f"  rates: {plan.rates_note}"]
    for nb in plan.notebooks:
        t = _fmt_time(nb.seconds) if nb.seconds is not None else "not projected"
        lines.append(f"  {nb.name}: {t}" + (f" ({nb.time_note})" if nb.time_note else ""))
        for d in nb.datasets:
            where = f" in {d.root}" if d.root else ""
            lines.append(f"    data {d.dataset_id}: {d.source}{where}, {d.files:,} files, "
                         f"{_fmt_bytes(d.bytes)}" + (f" ({d.note})" if d.note else ""))
        for w in nb.writes:
            state = "present" if w.done else "to write"
            lines.append(f"    writes {w.what}: {_fmt_bytes(w.bytes)} {state} -> {w.path}")
        for item in nb.done:
            lines.append(f"    skipped as done: {item}")
    lines += _seed_lines(plan)
    if plan.total_seconds is not None:
        lines.append(f"  total projected: {_fmt_time(plan.total_seconds)}")
    for d in plan.disks:
        ok = "MISSING " + _fmt_bytes(d.missing) if d.missing else "fits"
        lines.append(f"  disk {d.mount}: needs {_fmt_bytes(d.needed)}, free "
                     f"{_fmt_bytes(d.free)}: {ok}")
    lines.append(f"  where things live: data {paths.data_dir()}; caches {paths.cache_root()} "
                 f"(--cache-dir / MEDREPRO_CACHE_DIR); reports {paths.reports_root()}")
    for name, folders in PLATFORM_FOLDERS.items():
        mark = " (this machine)" if plan.platform == name else ""
        lines.append(f"  {name}{mark}: " + "; ".join(f"{f} {kind}: {what}"
                                                      for f, kind, what in folders))
    for w in plan.warnings:
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def _seed_lines(plan: Plan) -> list[str]:
    """The executions per seed and what each costs (a notebook's projected time per run)."""
    if not plan.seed_runs:
        return []
    secs = {nb.name: nb.seconds for nb in plan.notebooks}
    from medrepro.run import schedule

    seeds = schedule.seeds_of(plan.seed_runs)
    lines = [f"  seeds {' '.join(map(str, seeds))} (primary {seeds[0]}): "
             f"{len(plan.seed_runs)} notebook runs"]
    for r in plan.seed_runs:
        cost = secs.get(r.notebook)
        bound = "" if r.studies is None else ", at most"
        lines.append(f"    {r.label}: " + ("not projected" if cost is None else
                                            f"{_fmt_time(cost)}{bound}"))
    return lines


def options_text(plan: Plan) -> str:
    """What a user can do about writes that do not fit."""
    opts = ["--cache-dir DIR (or MEDREPRO_CACHE_DIR): put the caches on a disk with room"
            + (" (on Kaggle /kaggle/tmp, scratch)" if plan.platform == "kaggle" else
               " (on Colab /content, scratch)" if plan.platform == "colab" else ""),
            "MEDREPRO_DATA=DIR: put data/ (phantoms, downloads, checkpoints) elsewhere",
            "the compact RSNA cache is the default (~29 KiB/image, 5x smaller than raw)",
            "--only NN ...: run fewer notebooks"]
    if any(d.source == registry.PHANTOM and d.dataset_id == "rsna_ich" and "to generate" in d.note
           for nb in plan.notebooks for d in nb.datasets) and plan.profile == "paper":
        opts.insert(0, "--data kaggle or --data PATH with the real RSNA set: the paper-profile "
                       "RSNA phantom has the real set's 720,733 files (~370 GB)")
    return "options: " + "; ".join(opts)


def check(plan: Plan, *, yes: bool | None = None) -> None:
    """Raise :class:`PlanError` when the run must not start: writes that do not fit, or the
    paper profile without a GPU unconfirmed (``yes``; None: ``$MEDREPRO_YES``)."""
    if plan.problems:
        raise PlanError("not starting: " + "; ".join(plan.problems) + "\n" + options_text(plan))
    if yes is None:
        yes = os.environ.get(YES_ENV, "").strip().lower() in ("1", "true", "yes")
    if plan.profile == "paper" and plan.device["kind"] != "gpu" and not yes:
        raise PlanError("not starting: " + plan.warnings[0])


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_all.sh --plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=profiles.DEFAULT_PROFILE,
                        choices=profiles.PROFILE_NAMES)
    parser.add_argument("--data", default=registry.PHANTOM)
    parser.add_argument("--only", nargs="+", metavar="NN")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cache-dir", help="where caches go (sets MEDREPRO_CACHE_DIR)")
    parser.add_argument("--yes", action="store_true")
    args = parser.parse_args(argv)
    if args.cache_dir:
        os.environ["MEDREPRO_CACHE_DIR"] = str(Path(args.cache_dir).expanduser().resolve())
    plan = make_plan(profile=args.profile, data=args.data, only=args.only, seed=args.seed)
    print(format_plan(plan))
    try:
        check(plan, yes=args.yes or None)
    except PlanError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print("the run would start")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
