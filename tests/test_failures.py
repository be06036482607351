"""Tests of the failure analysis: the case table and the gallery's order."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import failures

LABELS = ("a", "b", "c")


def _prob():
    return np.array([[0.90, 0.05, 0.05],   # true a, right, sure
                     [0.10, 0.85, 0.05],   # true a, wrong (b), sure
                     [0.40, 0.35, 0.25],   # true a, right, unsure
                     [0.20, 0.20, 0.60],   # true b, wrong (c)
                     [0.30, 0.45, 0.25],   # true b, right, unsure
                     [0.05, 0.05, 0.90]])  # true c, right


def test_cases_lay_out_every_item():
    t = failures.cases([0, 0, 0, 1, 1, 2], _prob(), labels=LABELS, names=list("uvwxyz"))
    assert t["pred"].tolist() == [0, 1, 0, 2, 1, 2]
    assert t["correct"].tolist() == [True, False, True, False, True, True]
    assert t.loc[1, "confidence"] == pytest.approx(0.85) and t.loc[1, "p_true"] == pytest.approx(0.10)
    assert t.loc[3, "pred_label"] == "c" and t.loc[3, "name"] == "x"
    assert list(t.columns[-3:]) == ["p_a", "p_b", "p_c"]
    assert failures.counts_line(t) == "2 of 6 test items wrong (0 with confidence >= 0.9)"


def test_gallery_shows_the_most_confident_wrong_then_the_least_confident_right():
    t = failures.cases([0, 0, 0, 1, 1, 2], _prob(), labels=LABELS)
    g = failures.gallery_cases(t, n_wrong=5, n_unsure=2)
    assert g.index.tolist() == [1, 3, 2, 4]
    assert g["kind"].tolist() == [failures.WRONG] * 2 + [failures.UNSURE] * 2
    assert failures.gallery_cases(t, n_wrong=1, n_unsure=0).index.tolist() == [1]


def test_a_binary_models_probability_of_class_one():
    t = failures.cases([1, 0, 1], np.array([0.9, 0.7, 0.3]), labels=("normal", "abnormal"))
    assert t["pred"].tolist() == [1, 1, 0]
    assert t["confidence"].tolist() == pytest.approx([0.9, 0.7, 0.7])
    th = failures.cases([1, 0, 1], np.array([[0.9], [0.7], [0.3]]), labels=("n", "a"),
                        threshold=0.8)
    assert th["pred"].tolist() == [1, 0, 0]


def test_cases_reject_mismatched_inputs():
    with pytest.raises(ValueError, match="3 labels, probabilities of shape"):
        failures.cases([0, 1, 2], _prob(), labels=LABELS)
    with pytest.raises(ValueError, match="true class 5 outside 0..2"):
        failures.cases([0, 0, 0, 1, 1, 5], _prob(), labels=LABELS)
    with pytest.raises(ValueError, match=r"shape \(N, K\)"):
        failures.as_probabilities(np.zeros((2, 2, 2)))
