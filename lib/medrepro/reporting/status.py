"""The generated status pages: ``docs/status.md`` (and ``docs/benchmarks.md``) from run records.

    python -m medrepro.reporting.status [REPORTS_ROOT ...] [--out docs/status.md]
                                        [--benchmarks JSON ...] [--benchmarks-out docs/benchmarks.md]

A run record is what ``./run_all.sh`` leaves in ``<reports root>/<profile>/``:
``run_summary.json`` (profile, data source, seed, commit, date, device, wall time and status
per notebook) and the headline numbers the notebooks recorded under ``metrics/``
(``report.record_metric``). Every run found under the given roots (default: this checkout's
``reports/``) goes on one page, newest first; a root may also be one profile's folder.
Benchmark records (``reports/benchmarks.json``, written by ``./run_all.sh --bench``) are taken
from ``--benchmarks`` or found beside the runs. Nothing on these pages is typed by hand:
regenerate them, and put the reasons for the kit's choices in ``docs/decisions.md``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medrepro.core import paths
from medrepro.core.fileio import atomic_path
from medrepro.reporting import report, results

SUMMARY_NAME = "run_summary.json"
BENCHMARKS_NAME = "benchmarks.json"
# The fields of run_summary.json the page reads (medrepro.run.runner writes them).
REQUIRED_KEYS = ("profile", "data", "seed", "wall_seconds", "status", "total_seconds",
                 "git_commit", "date_utc")
COMMAND = "python -m medrepro.reporting.status"


class StatusRecordError(ValueError):
    """A run or benchmark record that cannot be read: names the file and what was wrong."""


@dataclass(frozen=True)
class RunRecord:
    """One run: its ``run_summary.json`` (``summary``) and the ``metrics`` recorded beside it."""

    folder: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def date(self) -> str:
        return str(self.summary["date_utc"])


# ---------------------------------------------------------------------------- reading records
def read_json(path: str | os.PathLike, *, what: str) -> Any:
    """The JSON object in ``path``; :class:`StatusRecordError` naming the file if it is not one."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StatusRecordError(f"{path}: not a readable {what} ({exc})") from exc


def read_run(path: str | os.PathLike) -> RunRecord:
    """The run recorded in ``path``: a profile folder (``<reports root>/<profile>``, its
    ``run_summary.json`` and ``metrics/``) or a run summary file kept on its own (no metrics).

    Raises :class:`StatusRecordError` naming the summary when it is not JSON or lacks one of
    :data:`REQUIRED_KEYS`.
    """
    path = Path(path)
    summary_path = path if path.is_file() else path / SUMMARY_NAME
    summary = read_json(summary_path, what="run summary")
    missing = [k for k in REQUIRED_KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise StatusRecordError(f"{summary_path}: run summary without {', '.join(missing)}")
    folder = summary_path.parent
    metrics = (report.read_metrics(profile=folder.name, reports_root=folder.parent)
               if summary_path.name == SUMMARY_NAME else [])
    return RunRecord(folder=summary_path if path.is_file() else folder, summary=summary,
                     metrics=metrics)


def find_runs(roots: Iterable[str | os.PathLike]) -> list[RunRecord]:
    """Every run under ``roots`` (reports roots, profile folders or run summary files), newest
    first.

    Raises :class:`StatusRecordError` for a root that holds no ``run_summary.json``.
    """
    runs = []
    for root in map(Path, roots):
        folders = ([root] if root.is_file() or (root / SUMMARY_NAME).is_file()
                   else sorted(p.parent for p in root.glob(f"*/{SUMMARY_NAME}")))
        if not folders:
            raise StatusRecordError(f"{root}: no {SUMMARY_NAME} here or in a profile folder "
                                    "below it (./run_all.sh writes one)")
        runs += [read_run(f) for f in folders]
    return sorted(runs, key=lambda r: r.date, reverse=True)


def find_benchmarks(runs: Sequence[RunRecord]) -> list[Path]:
    """The ``benchmarks.json`` beside the runs (in their reports roots), once each."""
    found = {(r.folder.parent / BENCHMARKS_NAME).resolve() for r in runs}
    return sorted(p for p in found if p.is_file())


# ---------------------------------------------------------------------------- formatting
def format_seconds(seconds: float) -> str:
    """``42.3 s``, ``7 min 24 s``, ``1 h 2 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _short(commit: str) -> str:
    head, plus, dirty = str(commit).partition("+")
    return head[:10] + plus + dirty


def _clip(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters (a status cell of the run table)."""
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _passed(summary: dict[str, Any]) -> str:
    status = summary["status"]
    ok = sum(1 for s in status.values() if s.startswith("passed"))  # "passed (killed once ...)"
    return f"{ok} of {len(status)} passed"


def runs_table(runs: Sequence[RunRecord]) -> list[str]:
    """The overview: one row per run, newest first."""
    lines = ["| run (UTC) | profile | data | seed | commit | device | notebooks | wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r.summary
        lines.append(f"| [{r.date}](#{anchor(r)}) | {_profile(s)} | {s['data']} | {s['seed']} "
                     f"| `{_short(s['git_commit'])}` | {s.get('device', '—')} | {_passed(s)} "
                     f"| {format_seconds(s['total_seconds'])} |")
    return lines


def _profile(summary: dict[str, Any]) -> str:
    """The profile, marked when a fast dev run made the record (its numbers mean nothing)."""
    return summary["profile"] + (" fast dev run" if summary.get("fast_dev_run") else "")


def anchor(run: RunRecord) -> str:
    """The section anchor of a run (as GitHub renders its heading)."""
    s = run.summary
    text = f"{_profile(s)} {s['data']} seed {s['seed']} {run.date}".lower()
    return "".join(c if c.isalnum() or c in "-_" else "-" if c == " " else "" for c in text)


def run_section(run: RunRecord) -> list[str]:
    """A run's section: its context, each notebook's status and wall time, its headline numbers."""
    s = run.summary
    lines = [f"### {_profile(s)} {s['data']} seed {s['seed']} {run.date}", "",
             (f"- commit `{s['git_commit']}`; device {s.get('device', 'not recorded')}; "
             f"platform {s.get('platform', 'not recorded')}; "
             f"{s.get('cpu_count', '?')} CPUs"),
             f"- records: `{run.folder}`", *_schedule_lines(s), "",
             "| notebook | status | wall time | peak memory (RSS) |", "|---|---|---|---|"]
    rss = s.get("peak_rss_mib") or {}
    for nb, seconds in s["wall_seconds"].items():
        peak = f"{rss[nb] / 1024:.1f} GiB" if nb in rss else "—"
        lines.append(f"| {nb} | {_clip(s['status'].get(nb, 'not recorded'))} | "
                     f"{format_seconds(seconds)} | {peak} |")
    lines.append(f"| **all** | {_passed(s)} | **{format_seconds(s['total_seconds'])}** | "
                 f"{f'{max(rss.values()) / 1024:.1f} GiB' if rss else '—'} |")
    lines += ["", *metrics_lines(run.metrics)]
    return lines


def _schedule_lines(summary: dict[str, Any]) -> list[str]:
    """The studies and seeds a run was asked for, and each seed's execution (runner's
    ``seed_runs``), when the summary records them."""
    lines = []
    if summary.get("studies"):
        lines.append(f"- studies: {', '.join(summary['studies'])}")
    runs = summary.get("seed_runs") or []
    if len(runs) > 1:
        lines.append("- seeds: " + "; ".join(
            f"{r['notebook']} seed {r['seed']}{' (primary)' if r.get('primary') else ''} "
            f"{_clip(r.get('status', '?'), 40)} in {format_seconds(r.get('seconds', 0.0))}"
            for r in runs))
    return lines


def metrics_lines(metrics: list[dict[str, Any]]) -> list[str]:
    """The headline numbers of a run beside the papers', phantom ones labelled as such."""
    if not metrics:
        return ["No headline number was found beside this record."]
    lines = ["Headline numbers, recorded by these runs:", "", *results.recorded_runs(metrics)]
    if any(m.get("phantom") for m in metrics):
        lines += ["", f"**{report.PHANTOM_LABEL}.**"]
    return lines + ["", *results.headline_markdown(results.compare_table(metrics))]


def benchmarks_summary(path: Path, results: dict[str, Any]) -> list[str]:
    """One line per benchmark record for the status page; the details go to benchmarks.md."""
    machine = results.get("machine", {})
    names = ", ".join(results.get("benchmarks", {})) or "none"
    return [(f"- `{path}`: {results.get('date_utc', 'undated')}, commit "
            f"`{_short(results.get('git_commit', 'unknown'))}`, {machine.get('platform', '?')}, "
            f"{machine.get('cpu_count', '?')} CPUs; benchmarks: {names}")]


def status_markdown(runs: Sequence[RunRecord], *,
                    benchmarks: Sequence[tuple[Path, dict[str, Any]]] = (),
                    command: str = COMMAND) -> str:
    """The status page: an overview of ``runs`` (newest first), a section per run, benchmarks."""
    lines = ["# Status and run log", "",
             (f"Generated by `{command}` from the runs' own records ({SUMMARY_NAME}, the "
             f"metrics under `metrics/`, {BENCHMARKS_NAME}); regenerate it, do not edit it. "
             "Newest run first."), "",
             ("Numbers from phantom data only show that the pipeline runs: they are not "
             "comparable to the papers. Real-data numbers follow the papers' protocol only "
             "where the profile is `paper`. Why the kit does what it does, and the measurements "
             "behind each choice: [decisions.md](decisions.md)."), "",
             "## Runs", ""]
    lines += runs_table(runs) if runs else ["No run recorded."]
    for run in runs:
        lines += ["", *run_section(run)]
    lines += ["", "## Benchmarks", ""]
    if benchmarks:
        lines += [line for path, res in benchmarks for line in benchmarks_summary(path, res)]
        lines += ["", ("Every figure, as ratios against references measured in the same run: "
                      "[benchmarks.md](benchmarks.md).")]
    else:
        lines.append(f"No benchmark record ({BENCHMARKS_NAME}) was given; "
                     "`./run_all.sh --bench` writes one.")
    return "\n".join(lines) + "\n"


def benchmarks_markdown(results: dict[str, Any]) -> str:
    """One benchmark record (``reports/benchmarks.json``) as a Markdown page."""
    machine = results.get("machine", {})
    lines = ["# medrepro benchmarks", "",
             (f"Machine: {machine.get('platform', '?')}, {machine.get('cpu_count', '?')} CPUs; "
             f"commit `{results.get('git_commit', 'unknown')}`; "
             f"{results.get('date_utc', 'undated')}."), ""]
    for name, res in results.get("benchmarks", {}).items():
        lines += [f"## {name}", "", *_render(res), ""]
    return "\n".join(lines) + "\n"


def _render(obj: Any) -> list[str]:
    import pandas as pd

    out: list[str] = []
    if isinstance(obj, dict):
        scalars = {k: v for k, v in obj.items() if not isinstance(v, (dict, list))}
        if scalars:
            out += [f"- **{k}**: {_fmt(v)}" for k, v in scalars.items()] + [""]
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                out += [f"**{k}**", "", *_render(v)]
    elif isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        out += [pd.DataFrame(obj).to_markdown(index=False, floatfmt=".4g"), ""]
    else:
        out += [f"{obj}", ""]
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------- writing
def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def write_pages(roots: Sequence[str | os.PathLike], *, out: str | os.PathLike,
                benchmarks: Sequence[str | os.PathLike] | None = None,
                benchmarks_out: str | os.PathLike | None = None,
                command: str = COMMAND) -> list[Path]:
    """Write the status page for the runs under ``roots`` to ``out`` and, when a benchmark
    record is given or found beside the runs, the newest one to ``benchmarks_out``; return the
    paths written."""
    runs = find_runs(roots)
    bench_paths = [Path(p) for p in benchmarks] if benchmarks else find_benchmarks(runs)
    bench = sorted(((p, read_json(p, what="benchmark record")) for p in bench_paths),
                   key=lambda pr: str(pr[1].get("date_utc", "")), reverse=True)
    written = [write_text(out, status_markdown(runs, benchmarks=bench, command=command))]
    if bench and benchmarks_out:
        written.append(write_text(benchmarks_out, benchmarks_markdown(bench[0][1])))
    return written


def main(argv: list[str] | None = None) -> int:
    docs = paths.project_root() / "docs"
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", help="reports roots or profile folders "
                                                 "(default: this checkout's reports/)")
    parser.add_argument("--out", default=str(docs / "status.md"))
    parser.add_argument("--benchmarks", nargs="+", metavar="JSON",
                        help="benchmark records (default: benchmarks.json beside the runs)")
    parser.add_argument("--benchmarks-out", default=str(docs / "benchmarks.md"))
    args = parser.parse_args(argv)
    roots = args.roots or [str(paths.reports_root())]
    command = " ".join([COMMAND, *roots] + (["--benchmarks", *args.benchmarks]
                                             if args.benchmarks else []))
    try:
        written = write_pages(roots, out=args.out, benchmarks=args.benchmarks,
                              benchmarks_out=args.benchmarks_out, command=command)
    except StatusRecordError as exc:
        parser.exit(2, f"{COMMAND}: {exc}\n")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
