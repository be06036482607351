"""Run the notebooks headlessly with papermill (what ``./run_all.sh`` calls).

    python -m medrepro.run.runner --profile demo --data phantom [--only 03] [--seed 42]
        [--cache-dir DIR] [--yes] [--plan]

Executes ``notebooks/NN_*.ipynb`` in number order, writes each executed copy as ``.ipynb`` and
``.html`` to ``reports/<profile>/``, streams each notebook's output (epoch lines with ETA,
progress bars) while it runs, prints each notebook's wall time, and on a failure names the
notebook and the failing cell. A failed notebook does not stop the others (a dataset that
cannot be acquired fails only the notebooks that need it); the exit status is 1 if any failed.
A summary (wall time and status per notebook, device, commit, date) is written to
``reports/<profile>/run_summary.json``; the report page is ``reports/<profile>/index.html``.

First it prints the plan (``medrepro.run.plan``: data, bytes and where, free space, projected time,
what is done) and refuses, before writing anything, a run that does not fit the disks or a
paper-profile run without a GPU that is not confirmed (``--yes`` / ``MEDREPRO_YES=1``); exit
status 2. ``--plan`` prints the plan only (exit status 1 when the run would be refused).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from medrepro.core import paths, profiles
from medrepro.core.paths import find_notebooks
from medrepro.data.registry import PHANTOM
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.core.fileio import atomic_path, write_json


def run_notebook(nb: Path, out_dir: Path, *, profile: str, data: str, seed: int,
                 stream: bool = False) -> float:
    """Execute one notebook; write ``out_dir/<name>.ipynb`` and ``.html``; return seconds.

    ``stream``: copy the kernel's stdout/stderr to ours while it runs (``./run_all.sh``).
    """
    import papermill as pm

    from medrepro.core.progress import HEADLESS_ENV

    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / nb.name
    os.environ[HEADLESS_ENV] = "1"  # the kernel inherits it: text progress bars, not widgets
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters={
            "profile": profile, "data": data, "seed": seed,
            "reports": str(paths.reports_root())},
            cwd=str(nb.parent), kernel_name="python3", language="python", progress_bar=False,
            log_output=False, stdout_file=sys.stdout if stream else None,
            stderr_file=sys.stderr if stream else None, request_save_on_cell_execute=True)
    finally:
        if out_nb.exists():
            _to_html(out_nb)
    return time.perf_counter() - start


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
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cache-dir", help="where rebuildable caches go (MEDREPRO_CACHE_DIR)")
    parser.add_argument("--yes", action="store_true",
                        help="confirm a paper-profile run without a GPU (or MEDREPRO_YES=1)")
    parser.add_argument("--plan", action="store_true", help="print the plan and stop")
    args = parser.parse_args(argv)
    if args.cache_dir:  # the notebooks' kernels inherit it
        os.environ["MEDREPRO_CACHE_DIR"] = str(Path(args.cache_dir).expanduser().resolve())
    refused = _print_plan(args)
    if args.plan or refused:
        return (1 if args.plan else 2) if refused else 0

    out_dir = paths.reports_dir(args.profile)
    notebooks = find_notebooks(args.only)
    print(f"medrepro: {len(notebooks)} notebook(s), profile={args.profile}, data={args.data}, "
          f"seed={args.seed}")
    timings: dict[str, float] = {}
    status_by_nb: dict[str, str] = {}
    failed: list[str] = []
    for nb in notebooks:
        print(f"--> {nb.name} ...", flush=True)
        start = time.perf_counter()
        try:
            timings[nb.stem] = run_notebook(nb, out_dir, profile=args.profile, data=args.data,
                                            seed=args.seed, stream=True)
        except Exception as exc:  # name the notebook and cell, then run the others
            timings[nb.stem] = time.perf_counter() - start
            failed.append(nb.name)
            status_by_nb[nb.stem] = f"failed: {_first_line(exc)}"
            print(_describe_failure(nb, exc, out_dir), file=sys.stderr, flush=True)
            continue
        status_by_nb[nb.stem] = "passed"
        print(f"    {nb.stem}: {timings[nb.stem]:.1f} s", flush=True)

    summary = {"profile": args.profile, "data": args.data, "seed": args.seed,
               "wall_seconds": timings, "status": status_by_nb,
               "total_seconds": sum(timings.values()),
               "failed": ", ".join(failed) or None, "cpu_count": os.cpu_count(),
               **_run_context()}
    write_json(out_dir / "run_summary.json", summary, indent=2)
    _write_report_page(args.profile)
    print(f"total {summary['total_seconds']:.1f} s; "
          + (f"FAILED: {', '.join(failed)}; " if failed else "")
          + f"report: {out_dir / 'index.html'}")
    return 1 if failed else 0


def _write_report_page(profile: str) -> None:
    """Rebuild the report page with every notebook's wall time (06 wrote it before its own)."""
    from medrepro.reporting import report_page

    try:
        report_page.write_page(profile=profile)
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


def _print_plan(args) -> str:
    """Print the plan of this run; return why it must not start ("" when it may)."""
    from medrepro.run import plan

    the_plan = plan.make_plan(profile=args.profile, data=args.data, only=args.only,
                              seed=args.seed)
    print(plan.format_plan(the_plan), flush=True)
    try:
        plan.check(the_plan, yes=args.yes or None)
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
