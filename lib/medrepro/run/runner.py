"""Run the notebooks headlessly with papermill (what ``./run_all.sh`` calls).

    python -m medrepro.run.runner --profile demo --data phantom [--only 03] [--seed 42]
        [--seeds 42 1 2] [--studies E] [--cache-dir DIR] [--state-dir DIR] [--resume-from DIR]
        [--yes] [--plan] [--fast-dev-run]

Executes ``notebooks/NN_*.ipynb`` in number order, writes each executed copy as ``.ipynb`` and
``.html`` to ``reports/<profile>/``, streams each notebook's output (epoch lines with ETA,
progress bars) while it runs, prints each notebook's wall time, and on a failure names the
notebook and the failing cell. A failed notebook does not stop the others (a dataset that
cannot be acquired fails only the notebooks that need it); the exit status is 1 if any failed.
A summary (wall time and status per notebook, the input files each skipped, device, commit,
date) is written to ``reports/<profile>/run_summary.json``; the report page is
``reports/<profile>/index.html``. A full disk stops the run with the folder and the bytes it
needs (the next run continues); a second run of the same profile at once stops at the start
(exit status 3), as it would write the same reports.
``--seeds`` and ``--studies`` (:mod:`medrepro.run.schedule`): the study notebooks once per seed
(the first seed's executed copies as ``NN_x.ipynb``, the others' as ``NN_x.seed<N>.ipynb``), and
only the sections of the studies asked for; ``seed_runs`` in the summary lists every execution.

First it prints the plan (``medrepro.run.plan``: data, bytes and where, free space, projected time,
what is done) and refuses, before writing anything, a run that does not fit the disks or a
paper-profile run without a GPU that is not confirmed (``--yes`` / ``MEDREPRO_YES=1``); exit
status 2. ``--plan`` prints the plan only (exit status 1 when the run would be refused).

``--state-dir DIR`` keeps the training runs and reports in ``DIR`` (``MEDREPRO_STATE``: a mounted
Google Drive folder on Colab outlives the runtime); ``--resume-from DIR`` names an earlier
session's output to continue from (``MEDREPRO_RESUME_FROM``; on Kaggle the attached inputs are
searched without it, :mod:`medrepro.run.resume`).

``--fast-dev-run`` (:mod:`medrepro.core.devrun`): the profile's code at its sizes on a few
hundred items, every fit two epochs of two steps, one seed (unless ``--seeds``), its reports
under ``reports/fast-dev-run/<profile>/`` and its data under ``data/fast-dev-run/`` (caches and
training runs rebuilt each time), every record stamped ``"fast_dev_run": true``. The first
training with a saved state is SIGKILLed once mid-epoch, as a session's end would kill it; the
runner runs that notebook again, which resumes it. The summary records each notebook's peak
resident memory (``peak_rss_mib``) and the kill and resume; the exit status is 1 unless the
killed training resumed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from medrepro.core import devrun, locks, paths, profiles
from medrepro.core.paths import find_notebooks
from medrepro.run import schedule
from medrepro.data.registry import PHANTOM
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.core.fileio import DiskFullError, atomic_path, is_disk_full, write_json


def run_notebook(nb: Path, out_dir: Path, *, profile: str, data: str, seed: int,
                 stream: bool = False, studies: Sequence[str] | None = None,
                 out_name: str | None = None, memory: dict | None = None) -> float:
    """Execute one notebook; write ``out_dir/<name>.ipynb`` and ``.html``; return seconds.

    ``stream``: copy the kernel's stdout/stderr to ours while it runs (``./run_all.sh``).
    ``studies``: run only these studies' sections (:func:`medrepro.run.schedule.select_studies`);
    ``out_name``: the executed copy's file name (default ``nb.name``). ``memory``: a dict that
    receives ``peak_rss_mib``, the peak resident memory of the notebook's kernel and its worker
    processes (:class:`PeakMemory`), even when it fails.
    """
    import papermill as pm

    from medrepro.core.progress import HEADLESS_ENV

    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / (out_name or nb.name)
    source = nb
    if studies:
        source = schedule.select_studies(nb, studies, out_dir / ".selected" / out_nb.name)
    os.environ[HEADLESS_ENV] = "1"  # the kernel inherits it: text progress bars, not widgets
    start = time.perf_counter()
    monitor = PeakMemory()
    try:
        pm.execute_notebook(str(source), str(out_nb), parameters={
            "profile": profile, "data": data, "seed": seed,
            "reports": str(paths.reports_root())},
            cwd=str(nb.parent), kernel_name="python3", language="python", progress_bar=False,
            log_output=False, stdout_file=sys.stdout if stream else None,
            stderr_file=sys.stderr if stream else None, request_save_on_cell_execute=True)
    finally:
        if memory is not None:
            memory["peak_rss_mib"] = monitor.stop()
        if out_nb.exists():
            _to_html(out_nb)
    return time.perf_counter() - start


class PeakMemory:
    """Samples, in a thread, the resident memory of this process's descendants (the notebook's
    kernel and its workers): :meth:`stop` returns the peak in MiB, the larger of the sampled
    sum over the process tree and a process's own high-water mark (Linux ``VmHWM``, exact
    between samples); None where psutil cannot see processes."""

    def __init__(self, interval: float = 0.25):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(interval,), daemon=True)
        self._thread.start()

    def _watch(self, interval: float) -> None:
        try:
            import psutil  # ipykernel's dependency
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.wait(interval):
            try:
                tree = me.children(recursive=True)
                total = sum(child.memory_info().rss for child in tree)
                hwm = max((_high_water_mark(child.pid) for child in tree), default=0)
            except psutil.Error:  # a worker that just exited
                continue
            self.peak = max(self.peak, total, hwm)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=5)
        return round(self.peak / 2**20, 1) if self.peak else None


def _high_water_mark(pid: int) -> int:
    """Peak resident bytes of process ``pid`` (``VmHWM`` of ``/proc/<pid>/status``; 0 if none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _to_html(nb_path: Path) -> None:
    try:
        import nbformat
        from nbconvert import HTMLExporter
        from traitlets.config import Config

        # A static page has no kernel behind its widgets: show an output's other form instead
        # (the explorer's fallback, reporting.explorer), even where the widget state was saved.
        priority = [m for m in HTMLExporter().default_config.NbConvertBase.display_data_priority
                    if m != WIDGET_VIEW]
        config = Config({"NbConvertBase": {"display_data_priority": priority}})
        body, _ = HTMLExporter(config=config).from_notebook_node(
            nbformat.read(nb_path, as_version=4))
        with atomic_path(nb_path.with_suffix(".html")) as tmp:
            Path(tmp).write_text(body, encoding="utf-8")
    except Exception as exc:  # the .ipynb is the record; a failed HTML export must not hide it
        print(f"warning: could not write HTML for {nb_path.name}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_all.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=profiles.DEFAULT_PROFILE,
                        choices=profiles.PROFILE_NAMES)
    parser.add_argument("--data", default=PHANTOM,
                        help="phantom (default), kaggle, or a folder/archive of datasets")
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="the primary seed (default 42)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="N",
                        help="run the study notebooks once per seed, the first the primary "
                             "(default: --seed; the paper profile: 42 1 2 for C, D, E)")
    parser.add_argument("--studies", nargs="+", metavar="X",
                        help="run only these studies' sections (e.g. --studies E)")
    parser.add_argument("--cache-dir", help="where rebuildable caches go (MEDREPRO_CACHE_DIR)")
    parser.add_argument("--state-dir", help="where training runs and reports live "
                        "(MEDREPRO_STATE), e.g. a mounted Drive folder")
    parser.add_argument("--resume-from", help="an earlier session's output to continue from "
                        "(MEDREPRO_RESUME_FROM)")
    parser.add_argument("--yes", action="store_true",
                        help="confirm a paper-profile run without a GPU (or MEDREPRO_YES=1)")
    parser.add_argument("--plan", action="store_true", help="print the plan and stop")
    parser.add_argument("--fast-dev-run", action="store_true",
                        help="the profile's code at its sizes on a few hundred items, every fit "
                             "2 epochs of 2 steps, one training killed and continued")
    args = parser.parse_args(argv)
    for option, var in ((args.cache_dir, "MEDREPRO_CACHE_DIR"), (args.state_dir, "MEDREPRO_STATE"),
                        (args.resume_from, "MEDREPRO_RESUME_FROM")):
        if option:  # the notebooks' kernels inherit it
            os.environ[var] = str(Path(option).expanduser().resolve())
    if args.fast_dev_run:
        enter_fast_dev_run(args.profile, fresh=not args.plan)
    notebooks = {nb.stem: nb for nb in find_notebooks(args.only)}
    try:  # a dev run checks the code once: one seed unless asked for more
        runs = seed_runs(list(notebooks), profile=args.profile, seed=args.seed,
                         seeds=args.seeds or ([args.seed] if args.fast_dev_run else None),
                         studies=args.studies)
    except ValueError as exc:
        print(f"run_all.sh: {exc}", file=sys.stderr)
        return 2
    refused = _print_plan(args, runs)
    if args.plan or refused:
        return (1 if args.plan else 2) if refused else 0

    out_dir = paths.reports_dir(args.profile)
    try:  # one run per reports folder: a second ./run_all.sh of this profile stops here
        with locks.hold(out_dir, what=f"the {args.profile} reports of ./run_all.sh", wait=0):
            return _run(args, notebooks, runs, out_dir)
    except locks.LockedError as exc:
        print(f"medrepro: not started: {exc}", file=sys.stderr)
        return 3


def _run(args, notebooks: dict[str, Path], runs: list, out_dir: Path) -> int:
    """Run the scheduled ``runs``; write the summary and the report page. A full disk stops
    the run (the later notebooks would fail the same way), naming the folder."""
    seeds = schedule.seeds_of(runs)
    print(f"medrepro: {len(runs)} notebook run(s), profile={args.profile}, data={args.data}, "
          f"seeds={' '.join(map(str, seeds))}")
    timings: dict[str, float] = {}
    status_by_nb: dict[str, str] = {}
    peak_rss: dict[str, float | None] = {}
    failed: list[str] = []
    done: list[dict] = []
    for r in runs:
        nb = notebooks[r.notebook]
        print(f"--> {r.label} ...", flush=True)
        start = time.perf_counter()
        memory: dict = {}
        execute = dict(profile=args.profile, data=args.data, seed=r.seed, stream=True,
                       studies=r.studies, out_name=r.output_name, memory=memory)
        try:
            state = _run_continuing(nb, out_dir, execute)
        except Exception as exc:  # name the notebook and cell, then run the others
            state = f"failed: {_first_line(exc)}"
            failed.append(r.label)
            print(_describe_failure(nb, exc, out_dir), file=sys.stderr, flush=True)
            full = _disk_full(exc)
        else:
            full = False
        seconds = time.perf_counter() - start
        done.append({"notebook": r.notebook, "seed": r.seed, "studies": r.studies,
                     "primary": r.primary, "seconds": round(seconds, 1), "status": state,
                     "peak_rss_mib": memory.get("peak_rss_mib")})
        if r.primary:
            timings[r.notebook], status_by_nb[r.notebook] = seconds, state
            peak_rss[r.notebook] = memory.get("peak_rss_mib")
        if state.startswith("passed"):
            print(f"    {r.label}: {seconds:.1f} s, peak memory "
                  f"{memory.get('peak_rss_mib') or '?'} MiB", flush=True)
        if full:
            print(f"medrepro: STOPPED: the disk is full (above); the runs after {r.label} were "
                  "not started. Free space and run again: finished work is reused, "
                  "interrupted training resumes.", file=sys.stderr, flush=True)
            break

    skips = skip_summary(args.profile, list(dict.fromkeys(d["notebook"] for d in done)))
    summary = {"profile": args.profile, "data": args.data, "seed": seeds[0],
               "seeds": seeds, "studies": args.studies,
               "wall_seconds": timings, "peak_rss_mib": peak_rss, "status": status_by_nb,
               "seed_runs": done, "total_seconds": sum(d["seconds"] for d in done),
               "failed": ", ".join(failed) or None, "cpu_count": os.cpu_count(),
               "skipped_inputs": skips, **devrun.stamp(), **_run_context()}
    if args.fast_dev_run:
        summary["kill_and_resume"] = record = devrun.read_marker()
        if record.get("killed_run") and not record.get("resumed_run"):
            failed.append("the killed training did not resume")
            summary["failed"] = ", ".join(failed)
    try:
        write_json(out_dir / "run_summary.json", summary, indent=2)
    except DiskFullError as exc:
        print(f"medrepro: the run summary was not written: {exc}", file=sys.stderr)
        return 1
    _write_report_page(args.profile)
    print(f"total {summary['total_seconds']:.1f} s; "
          + (f"FAILED: {', '.join(failed)}; " if failed else "")
          + f"inputs skipped: {skips['total']}; report: {out_dir / 'index.html'}")
    return 1 if failed else 0


def skip_summary(profile: str, notebooks: list[str]) -> dict:
    """The input files ``notebooks`` skipped (``report.record_skips``): ``total``, each
    dataset's skipped files counted once (``report.skips_by_dataset``), and one entry per
    notebook and dataset with the files checked, skipped, per problem, and the first files
    named."""
    from medrepro.reporting import report

    records = report.read_skips(profile=profile, notebooks=notebooks)
    by_dataset = report.skips_by_dataset(records)
    return {"total": sum(by_dataset.values()), "by_dataset": by_dataset,
            "by_notebook": {nb: [{k: r[k] for k in ("dataset", "source", "files_checked",
                                                    "skipped", "by_problem", "files")}
                                 for r in records if r["notebook"] == nb]
                            for nb in notebooks if any(r["notebook"] == nb for r in records)}}


def _disk_full(exc: Exception) -> bool:
    """A notebook failed for a full disk (its cell raised DiskFullError, or papermill could not
    write the executed copy)."""
    return getattr(exc, "ename", "") == "DiskFullError" or is_disk_full(exc)


def seed_runs(notebooks: list[str], *, profile: str, seed: int, seeds: Sequence[int] | None,
              studies: Sequence[str] | None) -> list[schedule.SeedRun]:
    """The schedule of a run (:func:`medrepro.run.schedule.make_schedule`): ``seeds`` for every
    study asked for, else the profile's default seeds (:func:`~medrepro.run.schedule.default_seeds`)."""
    if seeds:
        return schedule.make_schedule(notebooks, seeds=seeds, studies=studies)
    default, several = schedule.default_seeds(profile, seed)
    return schedule.make_schedule(notebooks, seeds=default, studies=studies,
                                  several_seed_studies=several or None)


def _run_continuing(nb: Path, out_dir: Path, execute: dict) -> str:
    """Run ``nb`` (:func:`run_notebook` with ``execute``); when the fast dev run killed one of
    its trainings, run it again, which resumes that training. Returns the status."""
    try:
        run_notebook(nb, out_dir, **execute)
        return "passed"
    except Exception:
        if not _killed_by_dev_run(nb):
            raise
    print(f"    {nb.stem}: killed mid-training (SIGKILL, as a session's end would); running it "
          "again, which resumes the training", flush=True)
    first = execute["memory"].get("peak_rss_mib")
    run_notebook(nb, out_dir, **execute)
    memory = execute["memory"]
    memory["peak_rss_mib"] = max(filter(None, (first, memory["peak_rss_mib"])), default=None)
    return "passed (killed once mid-training, then resumed)"


def enter_fast_dev_run(profile: str, *, fresh: bool = True) -> Path:
    """Point this process (and the kernels it starts) at a fast dev run: :data:`devrun.ENV`,
    the reports under ``<reports>/fast-dev-run``, the data under ``<data>/fast-dev-run`` (the
    caches under ``<cache dir>/fast-dev-run`` when one is set), the kill marker; with ``fresh``
    the dev run's reports, caches, training runs and marker of an earlier dev run are removed
    (its phantoms are kept). Returns the reports folder."""
    os.environ[devrun.ENV] = "1"
    # a dev run never writes into a --state-dir's real training runs and reports
    os.environ.pop("MEDREPRO_STATE", None)
    if os.environ.get("MEDREPRO_CACHE_DIR"):
        os.environ["MEDREPRO_CACHE_DIR"] = str(paths.cache_root() / devrun.FOLDER)
    for var, root in (("MEDREPRO_REPORTS", paths.reports_root()),
                      ("MEDREPRO_DATA", paths.data_dir())):
        if root.name != devrun.FOLDER:
            os.environ[var] = str(root / devrun.FOLDER)
    out = paths.reports_dir(profile)
    os.environ[devrun.KILL_ENV] = str(out / "fast_dev_run_kill.json")
    if fresh:
        for stale in (out, paths.cache_root(), paths.runs_root()):
            shutil.rmtree(stale, ignore_errors=True)
    return out


def _killed_by_dev_run(nb: Path) -> bool:
    """Whether ``nb`` just failed because the dev run killed one of its trainings (the kill
    marker names a run that has not resumed yet)."""
    record = devrun.read_marker()
    return bool(record.get("killed_run")) and not record.get("resumed_run") and (
        f"{os.sep}{nb.stem}{os.sep}" in record["killed_run"])


def _write_report_page(profile: str) -> None:
    """Rebuild the report page with every notebook's wall time (06 wrote it before its own)."""
    from medrepro.reporting import report_page

    try:
        report_page.write_page(profile=profile)
    except DiskFullError as exc:
        print(f"medrepro: the report page was not written: {exc}", file=sys.stderr)
    except Exception as exc:  # the notebooks' outputs are the record; the page must not hide them
        print(f"warning: could not write the report page: {type(exc).__name__}: {exc}",
              file=sys.stderr)


def _run_context() -> dict:
    """Commit, date and device of this run, for the summary and the report page."""
    import datetime as dt

    from medrepro.core import device
    from medrepro.reporting import report

    return {"git_commit": report.git_commit(),
            "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device.describe(), "platform": device.detect_platform()}


def _first_line(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip().splitlines()
    return f"{ename}: {evalue[0] if evalue else ''}"[:300]


def _print_plan(args, runs: list[schedule.SeedRun]) -> str:
    """Print the plan of this run; return why it must not start ("" when it may)."""
    from medrepro.run import plan

    the_plan = plan.make_plan(profile=args.profile, data=args.data, only=args.only,
                              seed=schedule.seeds_of(runs)[0], seed_runs=runs)
    print(plan.format_plan(the_plan), flush=True)
    if args.fast_dev_run:
        print(f"fast dev run: a few hundred items per dataset, every fit {devrun.EPOCHS} epochs of "
              f"{devrun.STEPS} steps, one training killed and resumed; reports -> "
              f"{paths.reports_dir(args.profile)} (the disk above is the dev run's; its fits stop after {devrun.STEPS} steps, so it "
              f"takes far less than the projected time)",
              flush=True)
    try:  # a dev run is meant for any machine: no GPU confirmation
        plan.check(the_plan, yes=(args.yes or args.fast_dev_run) or None)
    except plan.PlanError as exc:
        print(str(exc), file=sys.stderr)
        return str(exc)
    return ""


def _describe_failure(nb: Path, exc: Exception, out_dir: Path) -> str:
    cell = getattr(exc, "exec_count", None)
    index = getattr(exc, "cell_index", None)
    where = (f"cell {index}" if index is not None else "a cell") + (
        f" (execution count {cell})" if cell is not None else "")
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return (f"FAILED: notebook {nb.name}, {where}: {ename}: {evalue}\n"
            f"        executed copy with the traceback: {out_dir / nb.name} (.html beside it)")


if __name__ == "__main__":
    raise SystemExit(main())
