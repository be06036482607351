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
import math
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
from medrepro.core.planning import (CHECKPOINT_BYTES_PER_PARAM, DatasetFound, PlanContext,
                                    RowPlan, Write)
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.data import datasets, download, registry, rsna
from medrepro.models.brain_mri import LSTM_HEAD_PARAMS, RESNET50_NOTOP_PARAMS

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
    "kaggle": (("/kaggle/input", "read-only",
                "attached datasets, competitions and earlier outputs"),
               ("/kaggle/working", "persistent", ("at most 20 GB of it kept as the notebook's "
                "output when a version is saved; the checkout (data/runs, reports/) lives here")),
               ("/kaggle/temp", "scratch", ("the session's disk, not saved (the folder Kaggle's "
                "notebook template names; created when needed): rebuildable caches go here by "
                "default"))),
    "colab": (("/content", "scratch", "the runtime's disk, lost when the runtime is recycled"),
              ("/content/drive/MyDrive", "persistent", ("Google Drive once mounted (its quota); "
               "--state-dir there keeps training runs and reports, caches stay on /content"))),
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
    source_problem: str = ""  # a --data folder or archive that cannot be read
    seed_runs: list = field(default_factory=list)  # schedule.SeedRun, when several seeds run
    limit_problems: list[str] = field(default_factory=list)  # the platform's limits exceeded
    limit_lines: list[str] = field(default_factory=list)  # sessions, quota, RAM: for the reader

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
        return ([self.source_problem] if self.source_problem else []) + [
            _missing_text(d) for d in self.disks if d.missing] + self.limit_problems


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
                seed_runs=list(seed_runs or []), source_problem=_source_problem(data))
    apply_platform_limits(plan)
    if profile == "paper" and device["kind"] != "gpu":
        plan.warnings.append("the paper profile on a machine without a GPU: projected "
                             + _projected_text(plan) + f" on this CPU; confirm with --yes or "
                             f"{YES_ENV}=1")
    return plan


def _source_problem(data: str) -> str:
    """Why a ``--data`` folder or archive cannot be read ("" when it can, or is no path)."""
    if str(data) in (registry.PHANTOM, datasets.KAGGLE):
        return ""
    try:
        datasets.check_source(datasets.source_path(data), str(data))
    except registry.DatasetError as exc:
        return str(exc)
    return ""


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
        root = download.find_kaggle_input(sp)
        if root is None:
            n = sp.official_total
            return DatasetFound(dataset_id, "download", None, n,
                                n * FILE_BYTES_ESTIMATE[sp.kind],
                                "kagglehub download (size estimated from the official count)")
        return _real(dataset_id, root, sp)
    if data != registry.PHANTOM:
        path = datasets.source_path(data)
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
            files, sample_bytes, sampled = _scan(sub, sp.suffixes)
            n += files
            size += round(sample_bytes / sampled * files) if sampled else 0
    return DatasetFound(dataset_id, "real", root, n, size)


def _scan(folder: Path, suffix: str | tuple[str, ...], *, sample: int = 200) -> tuple[int, int, int]:
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
            nb.writes += download_writes(d)
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


def download_writes(d: DatasetFound) -> list[Write]:
    """What acquiring ``d`` (source ``"download"``) writes, each on the disk it lands on: the
    archive and its extraction (both there at once: kagglehub and :func:`medrepro.data.download.
    download_url_dataset` delete the archive only after extracting). Sizes are the estimate in
    ``d.bytes`` (compressed DICOM and NIfTI shrink little, so the archive is counted at the same
    size). Inside Kaggle kagglehub mounts what it attaches: nothing on disk."""
    sp = registry.spec(d.dataset_id)
    est = f"~{d.files:,} files, estimate"
    if sp.urls:
        return [Write(f"{d.dataset_id} release archives ({est})", paths.downloads_dir(), d.bytes),
                Write(f"{d.dataset_id} extracted", paths.raw_dir(d.dataset_id), d.bytes)]
    if _platform() == "kaggle" and not _truthy(os.environ.get("DISABLE_KAGGLE_CACHE")):
        return [Write(f"{d.dataset_id} attached by kagglehub (mounted by Kaggle, no disk)",
                      download.kaggle_input_dir(), 0, checked=False)]
    folder = kagglehub_cache() / (f"competitions/{sp.kaggle_competition}" if sp.kaggle_competition
                                  else f"datasets/{sp.kaggle_dataset}")
    return [Write(f"{d.dataset_id} kagglehub download, archive ({est})", folder / "archive",
                  d.bytes),
            Write(f"{d.dataset_id} kagglehub download, extracted", folder, d.bytes)]


def kagglehub_cache() -> Path:
    """Where kagglehub downloads to: ``$KAGGLEHUB_CACHE``, else ``~/.cache/kagglehub``."""
    return Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "yes")


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


# ---------------------------------------------------------------------------- platform limits
KAGGLE_OUTPUT_CAP_BYTES = 20 * 10**9  # of /kaggle/working saved as output, whatever df shows
SESSION_HOURS = {"kaggle": 12.0, "colab": 12.0}  # a Kaggle session; a Colab runtime at most
KAGGLE_GPU_HOURS_PER_WEEK = 30.0  # Kaggle's weekly GPU quota (it floats around this)
SESSION_SETUP_S = 15 * 60  # per session: clone, install, plan, finding the data
COLAB_FREE_RAM_GB = 12.7
COLAB_IDLE_MINUTES = 90  # the free tier disconnects a runtime nobody interacts with


def apply_platform_limits(plan: Plan) -> None:
    """Add the limits of the platform the run is on to ``plan``: Kaggle's 20 GB output cap
    (a problem: the run is refused before writing), the sessions and weeks of quota a long run
    needs, Colab's RAM, idle timeout and Drive."""
    if plan.platform == "kaggle":
        plan.limit_problems += kaggle_output_problems(plan)
    plan.limit_lines += session_lines(plan)
    if plan.platform == "colab":
        plan.limit_lines += colab_lines(plan)


def kaggle_output_problems(plan: Plan) -> list[str]:
    """Why the run would leave more in ``/kaggle/working`` than Kaggle saves (empty: it fits).
    Counts what is there now and every write planned under it."""
    working = paths.kaggle_working()
    writes = [w for nb in plan.notebooks for w in nb.writes
              if not w.done and w.checked and _is_under(w.path, working)]
    now = _tree_bytes(working) if working.is_dir() else 0
    new = sum(w.bytes for w in writes)
    if now + new <= KAGGLE_OUTPUT_CAP_BYTES:
        return []
    big = ", ".join(f"{w.what} {_fmt_bytes(w.bytes)}"
                    for w in sorted(writes, key=lambda w: -w.bytes)[:3])
    return [(f"{working} would hold {_fmt_bytes(now + new)} ({_fmt_bytes(now)} there now + "
             f"{_fmt_bytes(new)} to write: {big}), over the "
             f"{_fmt_bytes(KAGGLE_OUTPUT_CAP_BYTES)} Kaggle saves as the notebook's output: keep "
             f"caches on scratch (the default, {paths.kaggle_scratch()}/medrepro-cache, unless "
             "--cache-dir / MEDREPRO_CACHE_DIR points into it) or run fewer notebooks per "
             "version (--only)")]


def _is_under(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
    except (OSError, ValueError):
        return False


def sessions_needed(seconds: float, *, session_hours: float, per_session_s: float = 0.0) -> int:
    """Sessions of ``session_hours`` for ``seconds`` of work that resumes across sessions, each
    losing ``SESSION_SETUP_S`` and, after the first, ``per_session_s`` (a cache rebuilt on
    scratch)."""
    first = session_hours * 3600 - SESSION_SETUP_S
    later = first - per_session_s
    if seconds <= first:
        return 1
    if later <= 0:
        raise PlanError(f"a session of {session_hours:g} h cannot hold the {per_session_s:.0f} s "
                        "each session needs before it continues")
    return 1 + math.ceil((seconds - first) / later)


def session_lines(plan: Plan) -> list[str]:
    """The sessions per study a run needs on a platform with session limits (Kaggle, Colab; the
    paper profile anywhere, as on Kaggle), from the projected times, and on Kaggle the weeks of
    GPU quota. Notebooks without a projected time are named as such."""
    platform = plan.platform if plan.platform in SESSION_HOURS else (
        "kaggle" if plan.profile == "paper" else None)
    if platform is None:
        return []
    hours = SESSION_HOURS[platform]
    known = {nb.name: nb.seconds for nb in plan.notebooks if nb.seconds is not None}
    unknown = [nb.name[:2] for nb in plan.notebooks if nb.seconds is None]
    rebuild = known.get("02_preprocess_rsna", 0.0) if _cache_is_scratch() else 0.0
    parts, total = [], 0.0
    for name, secs in known.items():
        extra = rebuild if name == "04_lightweight_ct" else 0.0
        n = sessions_needed(secs, session_hours=hours, per_session_s=extra)
        total += secs + (n - 1) * extra + n * SESSION_SETUP_S
        parts.append(f"{name[:2]} {n}" + (f" (each later one first rebuilds the RSNA cache on "
                                          f"scratch, {_fmt_time(extra)})" if extra and n > 1
                                          else ""))
    if plan.profile != "paper" and all(p.endswith(" 1") for p in parts):
        return []  # every notebook fits one session: nothing to say
    where = f"on {platform.capitalize()}" if plan.platform == platform else "if run on Kaggle"
    lines = [f"sessions of {hours:g} h {where} (training resumes in the next; see --resume-from): "
             + (", ".join(parts) or "none projected")
             + (f"; not projected: {', '.join(unknown)}" if unknown else "")]
    if platform == "kaggle" and plan.device["kind"] == "gpu" and known:
        weeks = math.ceil(total / 3600 / KAGGLE_GPU_HOURS_PER_WEEK)
        lines.append(f"GPU quota: {_fmt_time(total)} of GPU sessions"
                     + (" (at least: some notebooks are not projected)" if unknown else "")
                     + f" at ~{KAGGLE_GPU_HOURS_PER_WEEK:g} GPU-hours a week: {weeks} week(s)")
    return lines


def _cache_is_scratch() -> bool:
    """Whether the caches are on a disk that does not outlive the session."""
    root = paths.cache_root()
    return _is_under(root, paths.kaggle_scratch()) or _is_under(root, Path("/content")) and \
        not _is_under(root, Path("/content/drive"))


def colab_lines(plan: Plan) -> list[str]:
    """Colab's RAM, idle timeout and, with ``--state-dir`` on Drive, the Drive's free space."""
    ram = _total_ram_bytes()
    lines = [(f"RAM: {_fmt_bytes(ram) if ram else 'unknown'} (Colab's free tier has "
              f"{COLAB_FREE_RAM_GB:g} GB); study A's paper LSTM head holds "
              f"{_fmt_bytes((LSTM_HEAD_PARAMS + RESNET50_NOTOP_PARAMS) * CHECKPOINT_BYTES_PER_PARAM)} with its optimizer "
              "(estimate: parameters x 12 B)"),
             (f"Colab disconnects a runtime left without interaction (about {COLAB_IDLE_MINUTES} "
             f"min on the free tier) and ends any after at most {SESSION_HOURS['colab']:g} h: "
             "keep the tab open, and keep the state on Drive (--state-dir) so the next runtime "
             "continues")]
    state = paths.state_root()
    if state is not None and _is_under(state, Path("/content/drive")):
        try:
            free = shutil.disk_usage(_existing_parent(state)).free
            lines.append(f"state on Google Drive ({state}): {_fmt_bytes(free)} free of its quota")
        except OSError:
            lines.append(f"state on Google Drive ({state}): its free space is unknown")
    return lines


def _total_ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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
    lines += [f"  {line}" for line in plan.limit_lines]
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
            + (f" (on Kaggle {paths.kaggle_scratch()}, scratch)" if plan.platform == "kaggle" else
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
