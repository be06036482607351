import numpy as np
import pandas as pd
import pytest
from medrepro.analysis import evaluate
from sklearn import metrics as skm

LABELS = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture
def noisy_labels():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 4, size=300))
    return y_true, y_pred


def test_classification_table_hand_computed():
    # class 0: TP 2, FP 1, FN 0 -> P 2/3, R 1; class 1: TP 1, FP 0, FN 1 -> P 1, R 1/2
    y_true = [0, 0, 1, 1]
    y_pred = [0, 0, 0, 1]
    table = evaluate.classification_table(y_true, y_pred, labels=["a", "b"])
    assert list(table.index) == ["a", "b", "accuracy", "macro avg", "weighted avg"]
    assert list(table.columns) == ["precision", "recall", "f1", "support"]
    assert table.loc["a", "precision"] == pytest.approx(2 / 3)
    assert table.loc["a", "f1"] == pytest.approx(0.8)
    assert table.loc["b", "recall"] == pytest.approx(0.5)
    assert table.loc["b", "f1"] == pytest.approx(2 / 3)
    assert table.loc["accuracy", "f1"] == pytest.approx(0.75)
    assert np.isnan(table.loc["accuracy", "precision"])
    assert table.loc["macro avg", "f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert list(table["support"]) == [2, 2, 4, 4, 4]


def test_classification_table_matches_sklearn(noisy_labels):
    y_true, y_pred = noisy_labels
    ours = evaluate.classification_table(y_true, y_pred, labels=LABELS)
    ref = skm.classification_report(y_true, y_pred, target_names=LABELS, output_dict=True,
                                    zero_division=0)
    for name in [*LABELS, "macro avg", "weighted avg"]:
        assert ours.loc[name, "precision"] == pytest.approx(ref[name]["precision"])
        assert ours.loc[name, "recall"] == pytest.approx(ref[name]["recall"])
        assert ours.loc[name, "f1"] == pytest.approx(ref[name]["f1-score"])
        assert ours.loc[name, "support"] == ref[name]["support"]
    assert ours.loc["accuracy", "f1"] == pytest.approx(ref["accuracy"])


def test_absent_class_scores_zero_not_nan():
    table = evaluate.classification_table([0, 0, 1], [0, 0, 1], labels=["a", "b", "c"])
    assert table.loc["c", ["precision", "recall", "f1"]].tolist() == [0, 0, 0]
    assert table.loc["macro avg", "f1"] == pytest.approx(2 / 3)


def test_per_class_table_one_vs_rest_accuracy():
    # class a: TP 2, FP 1, FN 0, TN 1 -> accuracy 3/4
    table = evaluate.per_class_table([0, 0, 1, 1], [0, 0, 0, 1], labels=["a", "b"])
    assert table.loc["a", "accuracy"] == pytest.approx(0.75)
    assert table.loc["b", "recall"] == pytest.approx(0.5)


def test_confusion_counts_and_normalised(noisy_labels):
    y_true, y_pred = noisy_labels
    cm = evaluate.confusion(y_true, y_pred, n_classes=4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(4)))
    assert cm.dtype == np.int64
    norm = evaluate.confusion(y_true, y_pred, n_classes=4, normalize=True)
    np.testing.assert_allclose(norm, skm.confusion_matrix(y_true, y_pred, normalize="true"))
    np.testing.assert_allclose(norm.sum(axis=1), 1.0)
    empty_row = evaluate.confusion([0, 0], [0, 1], n_classes=3, normalize="true")
    assert np.all(empty_row[2] == 0) and not np.isnan(empty_row).any()


def test_bad_inputs_raise():
    with pytest.raises(evaluate.EvaluationError, match="equal length"):
        evaluate.confusion([0, 1], [0], n_classes=2)
    with pytest.raises(evaluate.EvaluationError, match="outside 0..1"):
        evaluate.confusion([0, 2], [0, 1], n_classes=2)
    with pytest.raises(evaluate.EvaluationError, match="unknown metric"):
        evaluate.bootstrap_ci([0, 1], [0, 1], metric="auc")


@pytest.mark.parametrize("metric, ref", [
    ("accuracy", skm.accuracy_score),
    ("macro_f1", lambda t, p: skm.f1_score(t, p, average="macro", zero_division=0)),
    ("weighted_f1", lambda t, p: skm.f1_score(t, p, average="weighted", zero_division=0)),
])
def test_bootstrap_ci_matches_looped_sklearn(noisy_labels, metric, ref):
    y_true, y_pred = noisy_labels
    ci = evaluate.bootstrap_ci(y_true, y_pred, metric=metric, n_boot=300, seed=5)
    assert ci["point"] == pytest.approx(ref(y_true, y_pred))
    assert ci["lo"] < ci["point"] < ci["hi"]
    # The same resamples through sklearn, in a loop, give the same interval.
    looped = evaluate.bootstrap_ci(y_true, y_pred, metric=ref, n_boot=300, seed=5)
    assert looped["lo"] == pytest.approx(ci["lo"])
    assert looped["hi"] == pytest.approx(ci["hi"])


def test_bootstrap_ci_seeded_and_width_shrinks_with_n(noisy_labels):
    y_true, y_pred = noisy_labels
    a = evaluate.bootstrap_ci(y_true, y_pred, n_boot=200, seed=1)
    b = evaluate.bootstrap_ci(y_true, y_pred, n_boot=200, seed=1)
    assert a == b
    big = evaluate.bootstrap_ci(np.tile(y_true, 16), np.tile(y_pred, 16), n_boot=200, seed=1)
    assert (big["hi"] - big["lo"]) < 0.5 * (a["hi"] - a["lo"])
    # Normal approximation: half-width ~ 1.96 * sqrt(p(1-p)/n)
    p = a["point"]
    assert (a["hi"] - a["lo"]) / 2 == pytest.approx(1.96 * np.sqrt(p * (1 - p) / 300), rel=0.25)


def test_mcnemar_exact_hand_computed():
    # A wrong & B right on 1 item, A right & B wrong on 6 items: n01 = 1, n10 = 6.
    y_true = np.zeros(20, dtype=int)
    a = y_true.copy()
    b = y_true.copy()
    a[0] = 1
    b[1:7] = 1
    b[10] = a[10] = 2  # both wrong: not discordant
    out = evaluate.mcnemar(y_true, a, b)
    assert (out["n01"], out["n10"]) == (1, 6)
    assert out["method"] == "exact binomial"
    # two-sided: 2 * P(X <= 1), X ~ Bin(7, 1/2) = 2 * 8 / 128
    assert out["p_value"] == pytest.approx(16 / 128)
    assert out["better"] == "A"


def test_mcnemar_chi_square_with_continuity_correction():
    y_true = np.zeros(100, dtype=int)
    a = y_true.copy()
    b = y_true.copy()
    a[:10] = 1      # n01 = 10
    b[10:40] = 1    # n10 = 30
    out = evaluate.mcnemar(y_true, a, b)
    assert out["method"].startswith("chi-square")
    assert out["statistic"] == pytest.approx((abs(10 - 30) - 1) ** 2 / 40)
    from scipy import stats
    assert out["p_value"] == pytest.approx(stats.chi2.sf(361 / 40, 1))
    assert evaluate.mcnemar(y_true, y_true, y_true)["p_value"] == 1.0


def test_beside_reported_aligns_rows_by_key():
    ours = evaluate.classification_table([0, 1, 1], [0, 1, 0], labels=["glioma", "no tumour"])
    reported = pd.DataFrame([{"class": "no_tumor", "f1": 0.97}, {"class": "glioma", "f1": 0.98},
                             {"class": "extra", "f1": 0.5}])
    table = evaluate.beside_reported(ours, reported, rename={"no tumour": "no_tumor"})
    assert list(table["class"][:3]) == ["glioma", "no_tumor", "accuracy"]
    assert table.loc[table["class"] == "no_tumor", "paper_f1"].item() == 0.97
    assert table["class"].iloc[-1] == "extra" and np.isnan(table["f1"].iloc[-1])


def test_summary_row_has_cis():
    row = evaluate.summary_row([0, 1, 1, 0] * 10, [0, 1, 0, 0] * 10, n_boot=100)
    assert row["n_test"] == 40 and row["accuracy"] == pytest.approx(0.75)
    assert row["accuracy_lo"] < 0.75 < row["accuracy_hi"]
    assert row["macro_f1_lo"] <= row["macro_f1"] <= row["macro_f1_hi"]


# ---- paired difference and per-class CIs
def test_paired_accuracy_difference_point_and_ci():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    a = np.where(rng.random(400) < 0.8, y, (y + 1) % 3)  # ~80% right
    b = np.where(rng.random(400) < 0.6, y, (y + 1) % 3)  # ~60% right
    d = evaluate.paired_accuracy_difference(y, a, b, n_boot=500, seed=1)
    assert d["point"] == pytest.approx(np.mean(a == y) - np.mean(b == y))
    assert d["lo"] < d["point"] < d["hi"] and d["lo"] > 0  # A clearly better
    # Same predictions: difference exactly 0 in every resample.
    same = evaluate.paired_accuracy_difference(y, a, a, n_boot=50, seed=1)
    assert (same["point"], same["lo"], same["hi"]) == (0.0, 0.0, 0.0)


def test_paired_difference_is_narrower_than_unpaired_for_correlated_models():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.random(300) < 0.75, y, 1 - y)
    b = a.copy()
    flip = rng.choice(300, 10, replace=False)  # B differs from A on 10 items only
    b[flip] = 1 - b[flip]
    d = evaluate.paired_accuracy_difference(y, a, b, n_boot=1000, seed=0)
    ca = evaluate.bootstrap_ci(y, a, n_boot=1000, seed=0)
    cb = evaluate.bootstrap_ci(y, b, n_boot=1000, seed=1)
    assert d["hi"] - d["lo"] < 0.5 * ((ca["hi"] - ca["lo"]) + (cb["hi"] - cb["lo"]))


def test_paired_difference_rejects_bad_input():
    with pytest.raises(evaluate.EvaluationError, match="no test items"):
        evaluate.paired_accuracy_difference([], [], [])
    with pytest.raises(evaluate.EvaluationError, match="equal length"):
        evaluate.paired_accuracy_difference([0, 1], [0, 1], [0])


def test_per_class_ci_table_points_match_sklearn_and_bracket(noisy_labels):
    y, p = noisy_labels
    labels = [f"c{i}" for i in range(int(max(y.max(), p.max())) + 1)]
    t = evaluate.per_class_ci_table(y, p, labels=labels, n_boot=300, seed=2)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, p, labels=range(len(labels)),
                                                             zero_division=0)
    np.testing.assert_allclose(t["precision"], prec)
    np.testing.assert_allclose(t["recall"], rec)
    np.testing.assert_allclose(t["f1"], f1)
    assert list(t["support"]) == list(sup)
    for m in ("precision", "recall", "f1"):
        assert (t[f"{m}_lo"] <= t[m] + 1e-12).all() and (t[m] <= t[f"{m}_hi"] + 1e-12).all()
        assert (t[f"{m}_hi"] - t[f"{m}_lo"] > 0).any()


def test_per_class_ci_matches_a_looped_bootstrap():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 120)
    p = np.where(rng.random(120) < 0.7, y, rng.integers(0, 3, 120))
    t = evaluate.per_class_ci_table(y, p, labels=["a", "b", "c"], n_boot=200, seed=9)
    # The same resamples drawn by hand (one (200, 120) draw, as the vectorised code does).
    idx = np.random.default_rng(9).integers(0, 120, size=(200, 120))
    recall_b = [skm.recall_score(y[i], p[i], labels=[1], average=None, zero_division=0)[0]
                for i in idx]
    lo, hi = np.quantile(recall_b, [0.025, 0.975])
    assert t.loc["b", "recall_lo"] == pytest.approx(lo)
    assert t.loc["b", "recall_hi"] == pytest.approx(hi)


def test_binary_ci_positive_class_hand_computed():
    # Study D's appendix, 5 epochs: [[10 10] [5 15]] -> precision 0.6, recall 0.75, acc 0.625.
    y = np.array([0] * 20 + [1] * 20)
    p = np.array([0] * 10 + [1] * 10 + [0] * 5 + [1] * 15)
    ci = evaluate.binary_ci(y, p, n_boot=300, seed=0)
    assert ci["accuracy"] == pytest.approx(0.625)
    assert ci["precision"] == pytest.approx(0.6)
    assert ci["recall"] == pytest.approx(0.75)
    assert ci["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    for m in ("accuracy", "precision", "recall", "f1"):
        assert ci[f"{m}_lo"] < ci[m] < ci[f"{m}_hi"]


def test_classification_table_ci_adds_bounds_to_class_rows_only(noisy_labels):
    y, p = noisy_labels
    t = evaluate.classification_table_ci(y, p, labels=LABELS, n_boot=100, seed=0)
    plain = evaluate.classification_table(y, p, labels=LABELS)
    pd.testing.assert_series_equal(t["f1"], plain["f1"])
    assert list(t.columns[:3]) == ["precision", "precision_lo", "precision_hi"]
    assert t.loc[LABELS, "recall_lo"].notna().all()
    assert t.loc[["accuracy", "macro avg"], "recall_lo"].isna().all()


def test_binary_ci_wilson_for_small_sets():
    y = np.array([1] * 20 + [0] * 20)
    pred = np.array([1] * 18 + [0] * 2 + [0] * 20)  # 38/40 right, precision 18/18, recall 18/20
    boot = evaluate.binary_ci(y, pred, n_boot=300, seed=0)
    wil = evaluate.binary_ci(y, pred, n_boot=300, seed=0, proportions="wilson")
    assert boot["precision_lo"] == boot["precision_hi"] == 1.0  # every resample: 1
    assert wil["precision_lo"] == pytest.approx(0.8241, abs=1e-4) and wil["precision_hi"] == 1.0
    assert (wil["accuracy_lo"], wil["accuracy_hi"]) == pytest.approx((0.8350, 0.9862), abs=1e-4)
    assert wil["f1_lo"] == boot["f1_lo"]  # F1 is not a proportion: its bootstrap CI stays
    with pytest.raises(evaluate.EvaluationError, match="proportions='exactish'"):
        evaluate.binary_ci(y, pred, proportions="exactish")


def test_mean_ci_leaves_nan_out_and_is_seeded():
    v = np.r_[np.linspace(0, 1, 50), np.nan]
    ci = evaluate.mean_ci(v, n_boot=500, seed=3)
    assert ci["n"] == 50 and ci["point"] == pytest.approx(0.5)
    assert ci["lo"] < 0.5 < ci["hi"] and ci == evaluate.mean_ci(v, n_boot=500, seed=3)
    assert np.isnan(evaluate.mean_ci([np.nan])["point"])
    assert evaluate.mean_ci(np.ones(4), n_boot=20) == {"point": 1.0, "lo": 1.0, "hi": 1.0, "n": 4}
    with pytest.raises(evaluate.EvaluationError, match="expected 1-D values"):
        evaluate.mean_ci(np.ones((2, 2)))
