"""medrepro.reporting.ledger: the verdict rules applied to recorded seeds, counts, Markdown."""

from __future__ import annotations

import pytest
from medrepro.analysis import verdicts
from medrepro.core import manifest
from medrepro.reporting import compare, ledger


def _m(study, metric, value, seed, *, ci=(None, None), source="brain_tumor_masoud",
       profile="paper", **extra):
    return {"study": study, "metric": metric, "value": value, "ci_low": ci[0],
            "ci_high": ci[1], "seed": seed, "data_source": source,
            "phantom": source == "phantom", "profile": profile, "artifact": "E.table1",
            "notebook": "03_lstm_cnn_mri", "notes": "", "git_commit": "abc",
            "date_utc": "2026-12-07T00:00:00+00:00", **extra}


def test_every_headline_gets_a_row_and_the_seeds_form_the_band():
    metrics = [_m("E", "test accuracy", v, s, ci=(v - 0.01, v + 0.01))
               for s, v in ((42, 0.94), (1, 0.945), (2, 0.95))]
    book = ledger.ledger_table(metrics)
    assert len(book) == len(manifest.HEADLINES)
    e = book.set_index(["study", "metric"]).loc[("E", "test accuracy")]
    assert e["verdict"] == verdicts.REPRODUCED and e["n_seeds"] == 3 and e["seeds"] == "1 2 42"
    assert (e["band_lo"], e["band_hi"]) == pytest.approx((0.93, 0.96))
    assert e["seed_mean"] == pytest.approx(0.945) and e["seed_sd"] == pytest.approx(0.005)
    counts = ledger.verdict_counts(book)
    assert list(counts.columns) == [*verdicts.VERDICTS, "total"]
    assert counts.loc["E", "reproduced"] == 1 and counts["total"].sum() == len(book)


def test_conditions_come_from_the_records():
    away = [_m("E", "test accuracy", 0.80, 42, ci=(0.78, 0.82), source="brain_tumor_sartaj",
               profile="demo", deviations=["a changed batch"],
               datasets={"brain_tumor_sartaj": {"source": "brain_tumor_sartaj",
                                                "version": "matches NO known published "
                                                           "version (...)"}})]
    row = ledger.ledger_table(away).set_index("metric").loc["test accuracy"]
    assert row["verdict"] == verdicts.NOT_COMPARABLE
    assert row["reasons"] == ("stand-in dataset: brain_tumor_sartaj instead of "
                              "brain_tumor_masoud; reduced profile 'demo'; a changed batch")
    assert row["band_verdict"] == verdicts.NOT_REPRODUCED
    assert "matches NO known published version" in row["notes"]


def test_duplicate_free_records_are_not_claims():
    metrics = [_m("E", "test accuracy [duplicate-free test]", 0.5, 42)]
    row = ledger.ledger_table(metrics).set_index("metric").loc["test accuracy"]
    assert row["verdict"] == verdicts.INCONCLUSIVE and row["reasons"].startswith("no run")


def test_the_readme_block_leads_with_the_ledger_of_real_runs():
    metrics = [_m("E", "test accuracy", 0.88, s, ci=(0.86, 0.90), source="brain_tumor_sartaj",
                  profile="demo") for s in (42, 1)]
    metrics.append(_m("A", "test accuracy (LSTM-CNN, paper split)", 0.5, 42, source="phantom"))
    md = compare.results_markdown(metrics)
    assert md.index("**Claim ledger**") < md.index("Each run:")
    assert "| E | 0 | 0 | 0 | 1 | 1 |" in md  # counts first, real runs only
    assert "| E | test accuracy | 0.9445 | **not comparable** |" in md
    assert "LSTM-CNN" not in md  # phantom records never reach the README
    assert "12 of the 13 headline claims have no real-data run yet" in md


def test_a_fast_dev_run_is_never_a_verdict_nor_in_the_readme():
    # the paper's own conditions, but two epochs of two steps: not comparable, and left out
    dev = [_m("E", "test accuracy", 0.9445, 42, ci=(0.93, 0.96), fast_dev_run=True)]
    row = ledger.ledger_table(dev).set_index("metric").loc["test accuracy"]
    assert row["verdict"] == verdicts.NOT_COMPARABLE
    assert "a fast dev run (2 epochs of 2 steps on a few items)" in row["reasons"]
    assert ledger.ledger_table([{**dev[0], "fast_dev_run": False}]).set_index(
        "metric").loc["test accuracy", "verdict"] == verdicts.REPRODUCED
    assert compare.results_markdown(dev) == "_No real-data run has been recorded yet._"
