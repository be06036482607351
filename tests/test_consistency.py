"""The papers' internal-consistency checks, on the issue's worked examples."""

import pytest
from medrepro.analysis import consistency


def _check(text: str) -> consistency.Check:
    found = [c for c in consistency.checks() if c.check == text]
    assert len(found) == 1, f"{len(found)} checks named {text!r}"
    return found[0]


def test_b_densenet_table3_accuracy_contradicts_its_own_matrix():
    c = _check("densenet121 test accuracy (Table 3) vs its B.table7 matrix")
    assert c.published == 0.8816
    assert c.recomputed == pytest.approx(0.9131, abs=5e-5)
    assert not c.consistent
    # ... and the matrix's accuracy is what Table 5 prints as DenseNet121's weighted recall.
    r = _check("densenet121 weighted recall (Table 5) vs its B.table7 matrix")
    assert r.published == 0.9132 and r.recomputed == pytest.approx(c.recomputed)


def test_b_proposed_recall_0_9278_vs_0_9281_from_its_matrix():
    c = _check("proposed weighted recall (Table 5) vs its B.table6 matrix")
    assert c.published == 0.9278
    assert c.recomputed == pytest.approx(0.9281, abs=5e-5)
    assert not c.consistent
    ok = _check("proposed test accuracy (Table 3) vs its B.table6 matrix")
    assert ok.consistent and ok.recomputed == pytest.approx(0.9281, abs=5e-5)


def test_b_matrix_rows_match_table1_test_column():
    rows = [c for c in consistency.study_b() if c.check.endswith("test images (Table 1) vs the "
                                                                 "matrix row")]
    assert len(rows) == 24 and all(c.consistent for c in rows)


@pytest.mark.parametrize("epochs, table, matrix", [(5, 57.5, 62.5), (10, 65.0, 62.5),
                                                   (15, 70.0, 65.0)])
def test_d_table4_3_accuracy_vs_the_appendix_matrices(epochs, table, matrix):
    c = _check(f"{epochs} epochs: accuracy % (Table 4.3) vs the appendix matrix")
    assert (c.published, c.recomputed) == (table, pytest.approx(matrix))
    assert not c.consistent


def test_d_appendix_precision_recall_f1_follow_from_the_matrix():
    for metric, value in (("precision", 60.0), ("recall", 75.0), ("f1", 66.67)):
        c = _check(f"5 epochs: {metric} % (Table 4.3) vs the appendix matrix")
        assert c.consistent and c.recomputed == pytest.approx(value, abs=0.005)


def test_d_set_sizes_160_40_fit_and_140_does_not():
    assert _check("10 epochs: training accuracy possible on the printed 160 volumes").consistent
    assert _check("15 epochs: training accuracy possible on the printed 160 volumes").consistent
    assert not _check("10 epochs: training accuracy possible on 70/20/10's 140 volumes").consistent
    c = _check("25 epochs: validation accuracy possible on the printed 40 volumes")
    assert not c.consistent and c.recomputed == pytest.approx(0.70)  # 0.71 is not k/40


def test_d_best_accuracy_printed_three_ways():
    c = _check("25 epochs: validation accuracy, Table 4.2 vs the text's 65.5 % that introduces it")
    assert (c.published, c.recomputed) == (pytest.approx(71.0), 65.5) and not c.consistent
    assert not _check("25 epochs: validation accuracy, Table 4.3 vs Table 4.2").consistent


def test_d_lung_only_accuracies_are_checked_on_their_own_model_not_table4_3():
    # "%70 ve %71" belongs to the lung-only run of section 4.5.1, which no table reports.
    assert not [c for c in consistency.study_d() if "71%" in c.check and "Table 4.3" in c.check]
    assert _check("lung-only model: training accuracy 70% possible on the printed 160 volumes"
                  ).consistent
    c = _check("lung-only model: validation accuracy 71% possible on the printed 40 volumes")
    assert not c.consistent and c.recomputed == pytest.approx(70.0)  # 28/40; 29/40 is 72.5


def test_d_printed_set_sizes_contradict_the_prose():
    c = _check("training volumes: the code's printed 160 vs the prose's 140 (70 + 70, section "
               "3.3.4.2)")
    assert (c.published, c.recomputed, c.consistent) == (160, 140, False)


def test_b_split_shares_allow_for_the_rounded_percentages():
    # %50 is a whole percent: subarachnoid's 8213 of 16423 (50.009 %) and the no-haemorrhage
    # 322440 of 644874 are 50 % as printed, though neither is total / 2.
    shares = [c for c in consistency.study_b() if " share vs the text's %" in c.check]
    assert len(shares) == 18 and all(c.consistent for c in shares)
    sub = _check("subarachnoid: train share vs the text's %50")
    assert sub.recomputed == pytest.approx(100 * 8213 / 16423) and sub.published_tol == 0.5
    off = consistency.exact_check("B", "B.table1", "x", 50, 100 * 8300 / 16423, "share")
    assert not off.consistent  # 50.54 % would not print as %50


def test_a_98_1_percent_is_impossible_on_653_images_but_98_01_is_640():
    c = _check("abstract/Table 3 accuracy 98.1% possible on 653 images")
    assert not c.consistent and c.recomputed == pytest.approx(100 * 641 / 653)
    ok = _check("conclusion accuracy 98.01% possible on 653 images")
    assert ok.consistent and ok.recomputed == pytest.approx(100 * 640 / 653)
    assert _check("Table 2 accuracy 0.98 vs the abstract's 0.981").consistent  # rounding


def test_e_report_is_consistent_within_rounding():
    e = [c for c in consistency.study_e()]
    assert e and all(c.consistent for c in e)
    acc = _check("test accuracy 0.9445 possible on 1405 images")
    assert acc.recomputed == pytest.approx(1327 / 1405)


def test_rounding_intervals():
    assert consistency.half_unit(0.9281) == pytest.approx(5e-5)
    assert consistency.half_unit(0.9, 2) == pytest.approx(5e-3)
    c = consistency.rounded_check("X", "X.compare", "f1", 0.95, consistency._f1, [0.92, 0.98],
                                  "2PR / (P + R)", dec=2)
    assert c.recomputed_lo < c.recomputed < c.recomputed_hi and c.consistent
    bad = consistency.rounded_check("X", "X.compare", "f1", 0.90, consistency._f1, [0.92, 0.98],
                                    "2PR / (P + R)", dec=2)
    assert not bad.consistent


def test_headline_notes_put_contradictions_first():
    notes = consistency.headline_notes()
    dn = notes[("B", "test accuracy (DenseNet121)")]
    assert dn.startswith("CONTRADICTION") and "0.8816 vs 0.9131" in dn
    assert notes[("B", "test accuracy (MobileNet)")].startswith("consistent")
    assert any("57.50 vs 62.50" in line for line in consistency.contradictions())
