"""medrepro.analysis.stats: Wilson/exact intervals, cluster bootstrap, clustered McNemar, Holm."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import evaluate, stats
from medrepro.analysis.evaluate import EvaluationError


def test_wilson_does_not_collapse_where_the_bootstrap_does():
    y = np.ones(6, dtype=int)
    boot = evaluate.bootstrap_ci(y, y, n_boot=200, seed=0)
    assert boot["lo"] == boot["hi"] == 1.0  # 6 of 6: every resample scores 1
    lo, hi = stats.proportion_ci(6, 6)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.6097, abs=1e-4)  # Wilson 6/6
    lo_x, _ = stats.proportion_ci(6, 6, method="exact")
    assert lo_x == pytest.approx(0.025 ** (1 / 6), abs=1e-4)  # Clopper-Pearson: (alpha/2)^(1/n)
    # 28/40 (D's validation set): textbook Wilson interval 0.5457-0.8193
    assert stats.proportion_ci(28, 40) == pytest.approx((0.5457, 0.8193), abs=1e-4)
    acc = stats.accuracy_ci([0, 1, 1, 0], [0, 1, 0, 0])
    assert acc["point"] == 0.75 and acc["lo"] < 0.75 < acc["hi"]


def test_proportion_ci_rejects_bad_input():
    with pytest.raises(EvaluationError, match="need 0 <= k <= n"):
        stats.proportion_ci(5, 4)
    with pytest.raises(EvaluationError, match="method 'jeffreys'"):
        stats.proportion_ci(1, 4, method="jeffreys")


def _clustered(n_clusters=60, size=30, seed=0):
    """Whole patients right or wrong: every slice of a patient shares its outcome."""
    rng = np.random.default_rng(seed)
    right = np.repeat(rng.random(n_clusters) < 0.7, size)
    groups = np.repeat([f"ID_{i:04d}" for i in range(n_clusters)], size)
    y_true = np.zeros(right.size, dtype=int)
    y_pred = np.where(right, 0, 1)
    return y_true, y_pred, groups


def test_the_cluster_bootstrap_is_wider_when_slices_share_their_patient():
    y_true, y_pred, groups = _clustered()
    image = evaluate.bootstrap_ci(y_true, y_pred, n_boot=500, seed=1)
    patient = stats.cluster_bootstrap_ci(y_true, y_pred, groups, n_boot=500, seed=1)
    assert patient["point"] == pytest.approx(image["point"])
    assert patient["n_clusters"] == 60
    # 60 independent patients, not 1,800 independent images: about sqrt(30) x wider
    assert (patient["hi"] - patient["lo"]) > 3 * (image["hi"] - image["lo"])


def test_one_item_per_cluster_is_the_ordinary_bootstrap():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 3, 400), rng.integers(0, 3, 400)
    groups = np.arange(400)
    for metric in ("accuracy", "macro_f1"):
        a = stats.cluster_bootstrap_ci(y_true, y_pred, groups, metric=metric, n_boot=2000,
                                       seed=0)
        b = evaluate.bootstrap_ci(y_true, y_pred, metric=metric, n_boot=2000, seed=0)
        assert a["point"] == pytest.approx(b["point"])
        assert a["lo"] == pytest.approx(b["lo"], abs=0.015)
        assert a["hi"] == pytest.approx(b["hi"], abs=0.015)


def test_cluster_paired_difference_and_clustered_mcnemar():
    y_true, pred_a, groups = _clustered(seed=2)
    pred_b = np.zeros_like(pred_a)  # B is always right
    diff = stats.cluster_paired_difference(y_true, pred_a, pred_b, groups, n_boot=300, seed=0)
    assert diff["point"] == pytest.approx((pred_a == 0).mean() - 1.0)
    assert diff["lo"] < diff["point"] < diff["hi"] < 0
    plain = evaluate.mcnemar(y_true, pred_a, pred_b)
    clustered = stats.mcnemar_clustered(y_true, pred_a, pred_b, groups)
    assert (clustered["n01"], clustered["n10"]) == (plain["n01"], plain["n10"])
    assert clustered["better"] == "B" and clustered["n_clusters"] == 60
    assert clustered["p_value"] > plain["p_value"]  # 60 patients carry less evidence
    # one item per cluster: McNemar's statistic without continuity correction
    t, a, b = np.zeros(50, int), np.r_[np.ones(20, int), np.zeros(30, int)], np.zeros(50, int)
    b[:5], a[40:45] = 1, 1
    single = stats.mcnemar_clustered(t, a, b, np.arange(50))
    n01, n10 = single["n01"], single["n10"]
    assert single["statistic"] == pytest.approx((n10 - n01) ** 2 / (n10 + n01))


def test_groups_must_match_the_labels():
    with pytest.raises(EvaluationError, match=r"groups must have shape \(3,\)"):
        stats.cluster_bootstrap_ci([0, 1, 1], [0, 1, 0], ["a", "b"])


def test_holm_steps_down():
    adjusted = stats.holm([0.01, 0.04, 0.03, np.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01, max(2 x 0.03, ...)
    assert np.isnan(adjusted[3])
