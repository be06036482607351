"""medrepro.analysis.calibration: ECE, Brier, NLL with CIs, reliability, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import calibration as cal
from medrepro.analysis.evaluate import EvaluationError
from sklearn.metrics import log_loss


def _calibrated(n=4000, k=4, seed=0, sharpen=1.0):
    """Labels drawn from the probabilities themselves (calibrated), then made over- (sharpen
    > 1) or under-confident by a power of the logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    q = np.exp(logits * sharpen)
    return y, p, q / q.sum(axis=1, keepdims=True)


def test_scores_by_hand():
    y = np.array([0, 1, 1])
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    # bins of 1/15: 0.9 -> bin 13, 0.6 -> bin 8, 0.7 -> bin 10; gaps -0.1, -0.4, 0.7
    assert cal.ece(y, p) == pytest.approx((0.1 + 0.4 + 0.7) / 3)
    assert cal.brier(y, p) == pytest.approx((0.02 + 0.32 + 0.98) / 3)
    assert cal.nll(y, p) == pytest.approx(log_loss(y, p))
    sigmoid = cal.as_probabilities(np.array([0.1, 0.6, 0.3]))
    assert cal.ece(y, sigmoid) == pytest.approx(cal.ece(y, p))


def test_a_calibrated_model_scores_near_zero_an_overconfident_one_does_not():
    y, p, over = _calibrated(sharpen=2.5)
    assert cal.ece(y, p) < 0.03
    assert cal.ece(y, over) > 0.08
    s = cal.scores(y, over, n_boot=300, seed=1)
    for name in cal.SCORES:
        assert s[f"{name}_lo"] <= s[name] <= s[f"{name}_hi"]
    assert s["n"] == len(y) and s["accuracy"] == pytest.approx(np.mean(over.argmax(1) == y))


def test_temperature_scaling_undoes_overconfidence_on_new_items():
    y, _, over = _calibrated(n=3000, seed=2, sharpen=2.5)
    t = cal.fit_temperature(y[:1500], over[:1500])
    assert t == pytest.approx(2.5, rel=0.15)  # the sharpening it has to undo
    table = cal.calibration_table(y[:1500], over[:1500], y[1500:], over[1500:], n_boot=200,
                                  model="m", test_note="shifted test set")
    before, after = table.set_index("scaling").loc[["none", "temperature"]].to_dict("records")
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"] / 2
    assert after["accuracy"] == before["accuracy"]  # the order of each row is kept
    assert set(table["test_set"]) == {"shifted test set"}
    assert table["bins"].iloc[0] == "15 equal-width (top label)"


def test_reliability_table_counts_every_item():
    y, p, _ = _calibrated(n=500, seed=3)
    rel = cal.reliability_table(y, p)
    assert len(rel) == cal.N_BINS and rel["count"].sum() == 500
    full = rel[rel["count"] > 0]
    assert ((full["confidence"] > full["lo"]) & (full["confidence"] <= full["hi"])).all()
    frames = cal.reliability_frames(y[:250], p[:250], y[250:], p[250:])
    assert set(frames) == {"before", "after"}


def test_bad_probabilities_are_named():
    with pytest.raises(EvaluationError, match="each row sum to 1"):
        cal.ece([0, 1], [[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(EvaluationError, match=r"expected probabilities of shape \(3, K\)"):
        cal.ece([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(EvaluationError, match="temperature must be > 0"):
        cal.apply_temperature([[0.5, 0.5]], 0.0)
