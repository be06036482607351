"""Compare the artifacts of two runs: are the results the same?

    .venv/bin/python .ci/compare_reports.py reports_before/smoke reports_after/smoke

A structural change (files moved, settings typed) must leave every table, metric and figure as
it was for the same seeds. This compares two report folders artifact by artifact:

- tables (``tables/*.csv``): cell by cell; columns that hold wall times or rates, and the cache
  key (a fingerprint of the code's settings, not a result), are listed apart;
- metrics (``metrics/*.json``) and figure sidecars (``figures/*.json``): every value except the
  provenance (commit, date, folders, versions, device); a record that only gains fields is
  listed apart;
- figures (``figures/*.png``): pixel by pixel.

Prints one line per artifact that differs and a summary; exits 1 when a result differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# Columns of a table that measure time or speed, or name a cache: they differ between any two runs.
TIMING = re.compile(r"(seconds|minutes|_s$|^s_|per_s|^wall|^cache$|^cpu)")
# Keys of a record that say where and when it was made, not what it found.
PROVENANCE = {"git_commit", "date_utc", "root", "roots", "versions", "device", "seconds",
              "wall_seconds", "path", "cache"}


def compare_tables(a: Path, b: Path) -> tuple[str, list[str]]:
    """("same" | "timing" | "differs", the differing columns) of two CSV tables."""
    if a.read_bytes() == b.read_bytes():
        return "same", []
    da, db = pd.read_csv(a), pd.read_csv(b)
    if list(da.columns) != list(db.columns) or da.shape != db.shape:
        return "differs", [f"shape {da.shape} vs {db.shape}, columns {list(da.columns)} vs "
                           f"{list(db.columns)}"]
    cols = [c for c in da.columns if not da[c].equals(db[c])]
    return ("timing" if all(TIMING.search(c) for c in cols) else "differs"), cols


def _strip(record):
    if isinstance(record, dict):
        return {k: _strip(v) for k, v in record.items() if k not in PROVENANCE}
    if isinstance(record, list):
        return [_strip(v) for v in record]
    return record


def compare_records(a: Path, b: Path) -> str:
    """"same" when two JSON records agree on everything but their provenance, "extended" when
    the second only adds top-level keys, else "differs"."""
    x, y = _strip(json.loads(a.read_text())), _strip(json.loads(b.read_text()))
    if x == y:
        return "same"
    if isinstance(x, dict) and isinstance(y, dict) and x == {k: y.get(k) for k in x}:
        return "extended"
    return "differs"


def _added(a: Path, b: Path) -> set[str]:
    return set(json.loads(b.read_text())) - set(json.loads(a.read_text()))


def compare_images(a: Path, b: Path) -> str:
    """"same", or how two PNG figures differ (size, or the changed pixels' bounding box)."""
    if a.read_bytes() == b.read_bytes():
        return "same"
    from matplotlib.image import imread

    x, y = imread(a), imread(b)
    if x.shape != y.shape:
        return f"size {x.shape[1]}x{x.shape[0]} vs {y.shape[1]}x{y.shape[0]} px"
    rows, cols = np.nonzero((x != y).any(axis=-1))
    if not len(rows):
        return "same"
    return (f"{len(rows)} pixels differ in rows {rows.min()}-{rows.max()}, "
            f"columns {cols.min()}-{cols.max()}")


def compare(before: Path, after: Path) -> dict[str, list[str]]:
    """Every artifact of two report folders, by verdict: same, timing-only, differs, missing."""
    out: dict[str, list[str]] = {"same": [], "timing": [], "extended": [], "differs": [],
                                 "missing": []}
    for sub, pattern in (("tables", "*.csv"), ("metrics", "*.json"), ("figures", "*.json"),
                         ("figures", "*.png")):
        names = sorted({p.name for p in (before / sub).glob(pattern)}
                       | {p.name for p in (after / sub).glob(pattern)})
        for name in names:
            a, b, label = before / sub / name, after / sub / name, f"{sub}/{name}"
            if not (a.is_file() and b.is_file()):
                out["missing"].append(f"{label}: only in {'before' if a.is_file() else 'after'}")
            elif name.endswith(".csv"):
                verdict, cols = compare_tables(a, b)
                out[verdict].append(label + (f": {', '.join(cols)}" if cols else ""))
            elif name.endswith(".json"):
                verdict = compare_records(a, b)
                out[verdict].append(label + (
                    f": adds {', '.join(sorted(_added(a, b)))}" if verdict == "extended" else ""))
            else:
                how = compare_images(a, b)
                out["same" if how == "same" else "differs"].append(
                    label + ("" if how == "same" else f": {how}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="a report folder, e.g. reports/smoke")
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    out = compare(args.before, args.after)
    for verdict in ("timing", "extended", "differs", "missing"):
        for line in out[verdict]:
            print(f"{verdict:8s} {line}")
    print(f"{len(out['same'])} identical, {len(out['timing'])} differ in wall times/rates/cache "
          f"keys only, {len(out['extended'])} add fields, {len(out['differs'])} differ, {len(out['missing'])} in one run only")
    return 1 if out["differs"] or out["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
