"""The claim ledger: every headline number of the papers with its verdict, from the recorded runs.

:func:`ledger_table` applies the rules of :mod:`medrepro.analysis.verdicts` (the one place they
are written) to the metrics the notebooks recorded (``report.record_metric``, one record per
seed): per claim the verdict, the reasons, the band over seeds and CIs, the seeds' mean, SD and
range, what the band alone says where the run is not comparable, and the notes (the paper's
contradictions, the dataset's published version). :func:`verdict_counts` counts the verdicts per
study; :func:`ledger_markdown` is the block the README and ``06_compare`` show, the report page
renders the same frame (:mod:`medrepro.reporting.report_page`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from medrepro.analysis import verdicts
from medrepro.core import manifest
from medrepro.reporting.results import DUPLICATE_FREE, by_claim

LEDGER_NOTES = ("verdict: by the rules of medrepro.analysis.verdicts (docs/verdicts.md), fixed "
                "before any run. band_lo/band_hi: the lowest CI end and the highest CI end over "
                "the seeds; seed_mean/seed_sd/seed_min/seed_max: the seeds' values; "
                "band_verdict: what the band alone says where the run is not comparable; "
                "tolerance: the absolute difference that counts as a different result.")
COLUMNS = ("study", "metric", "reported", "verdict", "reasons", "band_lo", "band_hi",
           "seed_mean", "seed_sd", "seed_min", "seed_max", "n_seeds", "seeds", "band_verdict",
           "tolerance", "data", "profile", "notes")


def conditions_of(study: str, records: list[dict[str, Any]]) -> verdicts.Conditions:
    """The :class:`~medrepro.analysis.verdicts.Conditions` of a claim's records (one per seed):
    their data source, the paper's dataset (``manifest.STUDIES``), profile, the departures
    recorded, the dataset versions matched and the commits."""
    first = records[0]
    source = first["data_source"]
    versions = []
    for r in records:
        for ident in (r.get("datasets") or {}).values():
            if ident.get("source") == source and ident.get("version"):
                versions.append(ident["version"])
    return verdicts.Conditions(
        data_source=source, paper_dataset=manifest.STUDIES[study]["dataset"],
        phantom=bool(first.get("phantom")), profile=first["profile"],
        deviations=tuple(d for r in records for d in r.get("deviations") or ())
        + (("a fast dev run (2 epochs of 2 steps on a few items)",)
           if any(r.get("fast_dev_run") for r in records) else ()),
        versions=tuple(versions),
        commits=tuple(str(r.get("git_commit", "")).removesuffix("+dirty") for r in records))


def judge_claim(study: str, metric: str, reported: float | None,
                records: list[dict[str, Any]]) -> verdicts.Verdict:
    """The verdict of one claim from its recorded metrics (any number of seeds)."""
    results = [verdicts.SeedResult(int(r.get("seed", 0)), float(r["value"]), r.get("ci_low"),
                                   r.get("ci_high")) for r in records]
    conditions = conditions_of(study, records) if records else None
    return verdicts.judge(study, metric, reported, results, conditions)


def ledger_table(metrics: list[dict[str, Any]], *,
                 claims: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per claim (``claims``, default ``manifest.HEADLINES``) with its verdict
    (:data:`COLUMNS`), in the manifest's order."""
    recorded = {k: v for k, v in by_claim(metrics).items() if not k[1].endswith(DUPLICATE_FREE)}
    rows = []
    for head in claims if claims is not None else manifest.HEADLINES:
        records = recorded.get((head["study"], head["metric"]), [])
        v = judge_claim(head["study"], head["metric"], head["reported"], records)
        b = v.band
        rows.append({"study": head["study"], "metric": head["metric"],
                     "reported": head["reported"], "verdict": v.verdict,
                     "reasons": "; ".join(v.reasons),
                     "band_lo": None if b is None else b.lo,
                     "band_hi": None if b is None else b.hi,
                     "seed_mean": None if b is None else b.mean,
                     "seed_sd": None if b is None or pd.isna(b.sd) else b.sd,
                     "seed_min": None if b is None else b.min,
                     "seed_max": None if b is None else b.max,
                     "n_seeds": 0 if b is None else len(b.seeds),
                     "seeds": "" if b is None else " ".join(map(str, b.seeds)),
                     "band_verdict": v.band_verdict if v.verdict == verdicts.NOT_COMPARABLE
                     else "", "tolerance": v.rule.tolerance,
                     "data": records[0]["data_source"] if records else None,
                     "profile": records[0]["profile"] if records else None,
                     "notes": "; ".join(v.notes)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def verdict_counts(ledger: pd.DataFrame) -> pd.DataFrame:
    """Claims per study (rows) and verdict (columns, in :data:`verdicts.VERDICTS` order), with
    a ``total`` column."""
    counts = pd.crosstab(ledger["study"], ledger["verdict"]).reindex(
        columns=list(verdicts.VERDICTS), fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.columns.name = None
    return counts


def ledger_markdown(ledger: pd.DataFrame) -> str:
    """The verdict counts per study, then one row per claim, as Markdown."""
    counts = verdict_counts(ledger)
    lines = ["| study | " + " | ".join(counts.columns) + " |",
             "|---|" + "---|" * len(counts.columns)]
    lines += [f"| {study} | " + " | ".join(str(int(x)) for x in row) + " |"
              for study, row in counts.iterrows()]
    lines += ["", "| study | claim | reported | verdict | band (seeds) | seed mean ± SD "
              "[range] | why | notes |", "|---|---|---|---|---|---|---|---|"]
    for r in ledger.itertuples():
        lines.append(f"| {r.study} | {r.metric} | {_num(r.reported)} | **{r.verdict}** | "
                     f"{_band(r)} | {_spread(r)} | {_why(r)} | {r.notes or ''} |")
    return "\n".join(lines)


def _num(x) -> str:
    return "—" if x is None or pd.isna(x) else f"{x:.4g}"


def _band(r) -> str:
    if r.n_seeds == 0:
        return "—"
    seeds = f"{r.n_seeds} seed{'s' if r.n_seeds > 1 else ''}: {r.seeds}"
    return f"{r.band_lo:.3f}–{r.band_hi:.3f} ({seeds})"


def _spread(r) -> str:
    if r.n_seeds == 0:
        return "—"
    sd = "" if r.seed_sd is None or pd.isna(r.seed_sd) else f" ± {r.seed_sd:.3f}"
    return f"{r.seed_mean:.3f}{sd} [{r.seed_min:.3f}–{r.seed_max:.3f}]"


def _why(r) -> str:
    text = r.reasons
    if r.band_verdict:
        text += f"; the band alone: {r.band_verdict}"
    return text
