"""Failure analysis of a classifier's test predictions (the CLAIM checklist asks for it).

:func:`cases` lays out every test item (true and predicted class, probabilities, confidence);
:func:`gallery_cases` picks those a reader should see first: the wrong ones, the most confident
first, then the correct ones the model was least sure of.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

WRONG = "wrong"
UNSURE = "correct, low confidence"
# Cases a gallery shows where the study's profile row does not size it (B, C, D).
N_WRONG, N_UNSURE = 8, 4


def as_probabilities(prob: np.ndarray) -> np.ndarray:
    """``(N, K)`` class probabilities from ``(N, K)`` or a binary model's ``(N,)`` / ``(N, 1)``
    probability of class 1 (then ``K = 2``: ``[1 - p, p]``)."""
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        return np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"expected probabilities of shape (N, K) or (N,), got {p.shape}")
    return p


def cases(y_true, prob, *, labels: Sequence[str], names: Sequence[str] | None = None,
          threshold: float | None = None) -> pd.DataFrame:
    """One row per test item (index: its position): ``name``, ``true`` / ``pred`` (class
    indices) and ``true_label`` / ``pred_label``, ``confidence`` (probability of the predicted
    class), ``p_true`` (of the true class), ``correct``; one column ``p_<label>`` per class.
    ``threshold``: a binary model's decision threshold on class 1 (default: argmax)."""
    p = as_probabilities(prob)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) != len(p) or p.shape[1] != len(labels):
        raise ValueError(f"cases: {len(y)} labels, probabilities of shape {p.shape}, "
                         f"{len(labels)} class names")
    if y.size and (y.min() < 0 or y.max() >= len(labels)):
        raise ValueError(f"cases: true class {int(y.max())} outside 0..{len(labels) - 1}")
    if threshold is not None and p.shape[1] == 2:
        pred = (p[:, 1] >= threshold).astype(np.int64)
    else:
        pred = p.argmax(axis=1)
    rows = np.arange(len(y))
    frame = pd.DataFrame({
        "name": list(names) if names is not None else [str(i) for i in rows],
        "true": y, "pred": pred,
        "true_label": [labels[i] for i in y], "pred_label": [labels[i] for i in pred],
        "confidence": p[rows, pred], "p_true": p[rows, y], "correct": y == pred})
    for k, label in enumerate(labels):
        frame[f"p_{label}"] = p[:, k]
    return frame


def gallery_cases(table: pd.DataFrame, *, n_wrong: int, n_unsure: int) -> pd.DataFrame:
    """The rows of :func:`cases` to show: up to ``n_wrong`` wrong items, most confident first,
    then up to ``n_unsure`` correct items, least confident first; column ``kind``
    (:data:`WRONG` / :data:`UNSURE`). Ties keep the test order."""
    wrong = table[~table["correct"]].sort_values("confidence", ascending=False, kind="stable")
    unsure = table[table["correct"]].sort_values("confidence", ascending=True, kind="stable")
    return pd.concat([wrong.head(n_wrong).assign(kind=WRONG),
                      unsure.head(n_unsure).assign(kind=UNSURE)])


def counts_line(table: pd.DataFrame) -> str:
    """``"12 of 150 test items wrong (8 with confidence >= 0.9)"``."""
    wrong = ~table["correct"]
    sure = int((wrong & (table["confidence"] >= 0.9)).sum())
    return (f"{int(wrong.sum())} of {len(table)} test items wrong ({sure} with confidence "
            ">= 0.9)")
