"""Run every benchmark of the project and write ``reports/benchmarks.json`` and ``.md``.

    ./run_all.sh --bench            # or: python benchmarks/run_benchmarks.py [--quick]

Each ``benchmarks/bench_*.py`` runs in its own process (fresh TensorFlow, its own threads) with
``--out <json>``; their results are gathered with the demo run's wall time per notebook (from
``reports/demo/run_summary.json``, written by ``./run_all.sh``). Every figure is a measurement of
this run on this machine; ratios are against references measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from medrepro.core import paths
from medrepro.core.fileio import atomic_path
from medrepro.reporting import report, status


def run_one(script: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), "--out", str(out), *extra],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0 or not out.is_file():
            sys.stderr.write(proc.stderr[-4000:])
            return {"error": f"exit status {proc.returncode}", "stderr_tail": proc.stderr[-2000:],
                    "wall_seconds": seconds}
        result = json.loads(out.read_text())
        result.setdefault("wall_seconds", seconds)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="run only these bench_* names (e.g. dicom)")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    args = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    results = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                           "python": platform.python_version()},
               "git_commit": report.git_commit(), "date_utc": time.strftime(
                   "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "versions": report.package_versions(), "benchmarks": {}}
    for script in scripts:
        print(f"== {script.name}", flush=True)
        quick = args.quick and "--quick" in script.read_text()
        results["benchmarks"][script.stem] = run_one(script, ["--quick"] if quick else [])
    summary = paths.reports_dir("demo") / "run_summary.json"
    if summary.is_file():
        results["benchmarks"]["demo_run_wall_time"] = json.loads(summary.read_text())
    else:
        results["benchmarks"]["demo_run_wall_time"] = {
            "note": "no demo run recorded: run ./run_all.sh first"}
    out_json = paths.reports_root() / "benchmarks.json"
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=2, default=str) + "\n")
    with atomic_path(out_json.with_suffix(".md")) as tmp:
        Path(tmp).write_text(status.benchmarks_markdown(results))
    print(f"wrote {out_json} and {out_json.with_suffix('.md')}")
    return 1 if any("error" in r for r in results["benchmarks"].values()
                    if isinstance(r, dict)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
