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
SEED_COLUMNS = ("n_seeds", "seed_mean", "seed_sd", "seed_min", "seed_max")

def compare_table(metrics: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per headline number and seed: reported vs reproduced, that run's 95% CI, source,
    profile, seed, and the claim's spread over its seeds.

    Headlines the run did not reproduce appear once with an empty ``reproduced``; recorded
    metrics that the papers did not report appear with an empty ``reported``. Further columns:

    - over seeds (the same on every row of a claim): ``n_seeds``, ``seed_mean``, ``seed_sd``
      (``ddof=1``; empty for one seed), ``seed_min``, ``seed_max``; the verdict built from them
      is the ledger's (:mod:`medrepro.reporting.ledger`);
    - ``paper_consistency``: what the paper's own other numbers say about its number
      (:mod:`medrepro.analysis.consistency`; contradictions first), empty where nothing can be checked;
    - leakage (MRI studies): ``test_with_train_duplicate`` (test images with an exact or near
      duplicate among the training images) and ``duplicate_free`` with its CI (the same metric
      without them), from the metric recorded as ``<metric>`` + :data:`DUPLICATE_FREE` with the
      same seed.
    """
    recorded = by_claim(metrics)
    dup_free = {(s, name[:-len(DUPLICATE_FREE)]): recorded.pop((s, name))
                for s, name in list(recorded) if name.endswith(DUPLICATE_FREE)}
    notes = consistency.headline_notes()
    rows = []
    for head in manifest.HEADLINES:
        key = (head["study"], head["metric"])
        rows += _rows(*key, head["reported"], head["artifact"], recorded.pop(key, []),
                      dup_free.pop(key, []), notes.get(key, ""))
    for (study, metric), ms in recorded.items():
        rows += _rows(study, metric, None, ms[0]["artifact"], ms, dup_free.pop((study, metric),
                                                                                []), "")
    for (study, metric), ms in dup_free.items():  # a duplicate-free metric without its base
        rows += _rows(study, metric + DUPLICATE_FREE, None, ms[0]["artifact"], ms, [], "")
    df = pd.DataFrame(rows)
    return df.sort_values(["study"], kind="stable").reset_index(drop=True)


def by_claim(metrics: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The recorded metrics grouped by ``(study, metric)``, each list sorted by seed."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in metrics:
        out.setdefault((m["study"], m["metric"]), []).append(m)
    return {k: sorted(v, key=lambda m: m.get("seed", 0)) for k, v in out.items()}


def _rows(study: str, metric: str, reported: float | None, artifact: str,
          ms: list[dict[str, Any]], free: list[dict[str, Any]],
          paper_consistency: str) -> list[dict[str, Any]]:
    if not ms:
        return [{**_row(study, metric, reported, artifact, None, None, paper_consistency),
                 **dict.fromkeys(SEED_COLUMNS)}]
    values = pd.Series([m["value"] for m in ms], dtype=float)
    spread = {"n_seeds": len(ms), "seed_mean": values.mean(),
              "seed_sd": values.std(ddof=1) if len(ms) > 1 else None,
              "seed_min": values.min(), "seed_max": values.max()}
    free_by_seed = {m.get("seed"): m for m in free}
    return [{**_row(study, metric, reported, artifact, m, free_by_seed.get(m.get("seed")),
                    paper_consistency), **spread} for m in ms]


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


def recorded_runs(metrics: list[dict[str, Any]]) -> list[str]:
    """One Markdown list item per run that recorded ``metrics``: profile, data source, seed,
    commit and UTC date, sorted."""
    runs = sorted({(m["profile"], m["data_source"], m["seed"], m["git_commit"][:12],
                    m["date_utc"][:10]) for m in metrics})
    return [f"- profile `{p}`, data `{s}`, seed {seed}, commit `{c}`, {d}"
            for p, s, seed, c, d in runs]


def headline_markdown(table: pd.DataFrame) -> list[str]:
    """The reproduced rows of a :func:`compare_table` frame as Markdown table lines (seed,
    reported, reproduced with its 95% CI, the duplicate-free value, data source, profile), then
    each study's notes as a list."""
    table = table[table["reproduced"].notna()]
    lines = [("| study | metric | seed | reported | reproduced (95% CI) | duplicate-free test "
              "| data | profile |"), "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        rep = "—" if pd.isna(r.reported) else f"{r.reported:.4g}"
        ci = "" if pd.isna(r.ci_low) else f" ({r.ci_low:.3f}–{r.ci_high:.3f})"
        free = ("—" if pd.isna(r.duplicate_free) else
                f"{r.duplicate_free:.3f} ({int(r.test_with_train_duplicate)} dropped)")
        lines.append(f"| {r.study} | {r.metric} | {int(r.seed)} | {rep} | {r.reproduced:.3f}{ci} | "
                     f"{free} | {r.data_source} | {r.profile} |")
    notes = sorted({(r.study, r.notes) for r in table.itertuples() if r.notes})
    return [*lines, "", *[f"- {study}: {note}" for study, note in notes]]
