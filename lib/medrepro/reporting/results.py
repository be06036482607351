"""The reported-vs-reproduced table: the papers' headline numbers beside the recorded ones.

:func:`compare_table` joins ``manifest.HEADLINES`` with the metrics the notebooks recorded
(``report.record_metric``); :mod:`medrepro.reporting.compare` (``06_compare``, the README) and
:mod:`medrepro.reporting.report_page` (the HTML report) both show it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from medrepro.analysis import consistency
from medrepro.core import manifest

# A metric recorded on the duplicate-free test set is named "<headline metric> + this suffix";
# compare_table puts it in the leakage columns of its headline's row.
DUPLICATE_FREE = " [duplicate-free test]"

def compare_table(metrics: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per headline number: reported vs reproduced, 95% CI, source, profile, seed.

    Headlines the run did not reproduce appear with an empty ``reproduced``; recorded metrics
    that the papers did not report appear with an empty ``reported``. Two further groups of
    columns:

    - ``paper_consistency``: what the paper's own other numbers say about its number
      (:mod:`medrepro.analysis.consistency`; contradictions first), empty where nothing can be checked;
    - leakage (MRI studies): ``test_with_train_duplicate`` (test images with an exact or near
      duplicate among the training images) and ``duplicate_free`` with its CI (the same metric
      without them), from the metric recorded as ``<metric>`` + :data:`DUPLICATE_FREE`.
    """
    recorded = {(m["study"], m["metric"]): m for m in metrics}
    dup_free = {(s, name[:-len(DUPLICATE_FREE)]): recorded.pop((s, name))
                for s, name in list(recorded) if name.endswith(DUPLICATE_FREE)}
    notes = consistency.headline_notes()
    rows = []
    for head in manifest.HEADLINES:
        key = (head["study"], head["metric"])
        rows.append(_row(*key, head["reported"], head["artifact"], recorded.pop(key, None),
                         dup_free.pop(key, None), notes.get(key, "")))
    for (study, metric), m in recorded.items():
        rows.append(_row(study, metric, None, m["artifact"], m, dup_free.pop((study, metric),
                                                                              None), ""))
    for (study, metric), m in dup_free.items():  # a duplicate-free metric without its base
        rows.append(_row(study, metric + DUPLICATE_FREE, None, m["artifact"], m, None, ""))
    df = pd.DataFrame(rows)
    return df.sort_values(["study"], kind="stable").reset_index(drop=True)


def _row(study: str, metric: str, reported: float | None, artifact: str,
         m: dict[str, Any] | None, free: dict[str, Any] | None,
         paper_consistency: str) -> dict[str, Any]:
    value = None if m is None else m["value"]
    lo = None if m is None else m.get("ci_low")
    hi = None if m is None else m.get("ci_high")
    inside = None
    if reported is not None and lo is not None and hi is not None:
        inside = bool(lo <= reported <= hi)
    return {"study": study, "metric": metric, "reported": reported, "reproduced": value,
            "ci_low": lo, "ci_high": hi,
            "difference": None if value is None or reported is None else value - reported,
            "reported_in_ci": inside,
            "paper_consistency": paper_consistency,
            "test_with_train_duplicate": None if free is None else free.get("dropped"),
            "duplicate_free": None if free is None else free["value"],
            "duplicate_free_ci_low": None if free is None else free.get("ci_low"),
            "duplicate_free_ci_high": None if free is None else free.get("ci_high"),
            "data_source": None if m is None else m["data_source"],
            "profile": None if m is None else m["profile"],
            "seed": None if m is None else m["seed"], "n": None if m is None else m.get("n"),
            "artifact": artifact, "notes": "" if m is None else m.get("notes", "")}
