"""Calibration of a classifier's probabilities: ECE, Brier, NLL, reliability, temperature scaling.

Conventions: ``y_true`` ``(N,)`` integer class indices; ``proba`` ``(N, K)`` float class
probabilities (rows summing to 1), or ``(N,)`` / ``(N, 1)`` the positive class's probability of a
single sigmoid unit (made ``(N, 2)``).

- **ECE** (expected calibration error, top label, Guo et al. 2017): the items are put in
  :data:`N_BINS` = 15 *equal-width* bins of their confidence (the largest probability; bin b
  holds confidences in ``((b-1)/15, b/15]``, the first also 0) and
  ``ECE = Σ_b |Σ_{i∈b} (confidence_i − correct_i)| / N``.
- **Brier score**: ``mean_i Σ_k (p_ik − [y_i = k])²`` (the multi-class form, in [0, 2]).
- **NLL**: ``mean_i −ln p_{i, y_i}``, probabilities clipped to [1e-12, 1].
- CIs: percentile bootstrap over items (seeded; the bins of the ECE fixed by each item's
  confidence).
- **Temperature scaling** (Guo et al. 2017): one ``T > 0`` that minimises the NLL of
  ``softmax(log p / T)`` on the *validation* split (:func:`fit_temperature`); the test split is
  scored before and after with that ``T`` (:func:`calibration_table`). ``softmax(log p / T)``
  equals ``softmax(z / T)`` for the logits ``z``, so the probabilities suffice. Accuracy is
  unchanged (``T`` keeps the order of a row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medrepro.analysis.evaluate import EvaluationError

N_BINS = 15
EPS = 1e-12
T_BOUNDS = (0.05, 20.0)  # the temperatures searched
_BOOT_CHUNK_ELEMENTS = 4_000_000
SCORES = ("ece", "brier", "nll")


def as_probabilities(proba, *, n: int | None = None) -> np.ndarray:
    """``proba`` as ``(N, K)`` float64 (a sigmoid's ``(N,)``/``(N, 1)`` becomes ``[1 − p, p]``);
    raises :class:`EvaluationError` for rows that are not probabilities."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p = p.reshape(-1)
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or (n is not None and p.shape[0] != n):
        raise EvaluationError(f"expected probabilities of shape ({n if n is not None else 'N'},"
                              f" K), got {np.asarray(proba).shape}")
    if p.size and (p.min() < -1e-6 or p.max() > 1 + 1e-6
                   or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3)):
        raise EvaluationError("probabilities must lie in [0, 1] and each row sum to 1 (got "
                              f"row sums {p.sum(axis=1).min():.3f}-{p.sum(axis=1).max():.3f})")
    return p


def _items(y_true, proba) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per item: bin index, confidence − correct, NLL, Brier; and the class indices."""
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = as_probabilities(proba, n=y.size)
    if y.size == 0:
        raise EvaluationError("calibration: no items")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise EvaluationError(f"y_true holds class {int(y.max())}, outside the {p.shape[1]} "
                              "probability columns")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.clip(np.ceil(conf * N_BINS).astype(int) - 1, 0, N_BINS - 1)
    nll = -np.log(np.clip(p[np.arange(y.size), y], EPS, 1.0))
    onehot = np.eye(p.shape[1])[y]
    brier = ((p - onehot) ** 2).sum(axis=1)
    return bins, conf - correct, nll, brier, y


def ece(y_true, proba) -> float:
    """Top-label expected calibration error over :data:`N_BINS` equal-width bins, in [0, 1]."""
    bins, gap, _, _, y = _items(y_true, proba)
    return float(np.abs(np.bincount(bins, weights=gap, minlength=N_BINS)).sum() / y.size)


def brier(y_true, proba) -> float:
    """Multi-class Brier score, in [0, 2]."""
    return float(_items(y_true, proba)[3].mean())


def nll(y_true, proba) -> float:
    """Mean negative log-likelihood of the true class (nats)."""
    return float(_items(y_true, proba)[2].mean())


def scores(y_true, proba, *, n_boot: int = 1000, seed: int = 0,
           alpha: float = 0.05) -> dict[str, float]:
    """ECE, Brier and NLL with percentile bootstrap CIs: ``{"n", "accuracy", "ece", "ece_lo",
    "ece_hi", "brier", ..., "nll", ...}``. One resample of the items serves all three."""
    if n_boot < 1 or not 0 < alpha < 1:
        raise EvaluationError(f"calibration.scores: n_boot >= 1 and alpha in (0, 1), got "
                              f"{n_boot}, {alpha}")
    bins, gap, item_nll, item_brier, y = _items(y_true, proba)
    n = y.size
    rng = np.random.default_rng(seed)
    boot = np.empty((3, n_boot))
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        codes = (np.arange(size)[:, None] * N_BINS + bins[idx]).ravel()
        sums = np.bincount(codes, weights=gap[idx].ravel(), minlength=size * N_BINS)
        boot[0, start:start + size] = np.abs(sums.reshape(size, N_BINS)).sum(axis=1) / n
        boot[1, start:start + size] = item_brier[idx].mean(axis=1)
        boot[2, start:start + size] = item_nll[idx].mean(axis=1)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=1)
    point = (np.abs(np.bincount(bins, weights=gap, minlength=N_BINS)).sum() / n,
             item_brier.mean(), item_nll.mean())
    # a right item's gap is its confidence − 1 <= 0, a wrong one's its confidence > 0
    out: dict[str, float] = {"n": int(n), "accuracy": float(np.mean(gap <= 0))}
    for k, name in enumerate(SCORES):
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = float(point[k]), float(lo[k]), \
            float(hi[k])
    return out


def reliability_table(y_true, proba) -> pd.DataFrame:
    """One row per equal-width bin: ``bin``, ``lo``, ``hi`` (confidence edges), ``count``,
    ``confidence`` (mean) and ``accuracy`` (NaN in an empty bin)."""
    bins, gap, _, _, y = _items(y_true, proba)
    p = as_probabilities(proba, n=y.size)
    conf = p.max(axis=1)
    correct = conf - gap
    count = np.bincount(bins, minlength=N_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=conf, minlength=N_BINS) / count
        acc = np.bincount(bins, weights=correct, minlength=N_BINS) / count
    edges = np.linspace(0, 1, N_BINS + 1)
    return pd.DataFrame({"bin": np.arange(N_BINS), "lo": edges[:-1], "hi": edges[1:],
                         "count": count, "confidence": mean_conf, "accuracy": acc})


# ---------------------------------------------------------------------------- temperature
def apply_temperature(proba, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``, ``(N, K)`` float64."""
    if not temperature > 0:
        raise EvaluationError(f"temperature must be > 0, got {temperature}")
    logits = np.log(np.clip(as_probabilities(proba), EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y_val, proba_val) -> float:
    """The ``T`` in :data:`T_BOUNDS` minimising the validation NLL of ``softmax(log p / T)``
    (bounded scalar search on ``log T``)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y_val).astype(np.int64).reshape(-1)
    p = as_probabilities(proba_val, n=y.size)
    if y.size == 0:
        raise EvaluationError("fit_temperature: no validation items")
    res = minimize_scalar(lambda log_t: nll(y, apply_temperature(p, float(np.exp(log_t)))),
                          bounds=tuple(np.log(T_BOUNDS)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration_table(y_val, proba_val, y_test, proba_test, *, n_boot: int = 1000,
                      seed: int = 0, model: str = "", test_note: str = "") -> pd.DataFrame:
    """Temperature scaling fitted on validation, scored on test, before and after.

    Two rows (``scaling`` "none" and "temperature"), columns ``model``, ``scaling``,
    ``temperature``, ``split`` ("test"), ``n``, ``accuracy``, ``ece`` / ``brier`` / ``nll``
    with ``_lo``/``_hi`` (95% bootstrap CIs), ``n_val``, ``bins`` (the ECE's binning) and
    ``test_set`` (``test_note``: e.g. that the test set is shifted from the training data).
    """
    t = fit_temperature(y_val, proba_val)
    rows = []
    for scaling, temp, p in (("none", 1.0, proba_test),
                             ("temperature", t, apply_temperature(proba_test, t))):
        rows.append({"model": model, "scaling": scaling, "temperature": temp, "split": "test",
                     **scores(y_test, p, n_boot=n_boot, seed=seed),
                     "n_val": int(np.asarray(y_val).size),
                     "bins": f"{N_BINS} equal-width (top label)", "test_set": test_note})
    return pd.DataFrame(rows)


def reliability_frames(y_val, proba_val, y_test, proba_test) -> dict[str, pd.DataFrame]:
    """``{"before": ..., "after": ...}``: :func:`reliability_table` of the test split without and
    with the validation-fitted temperature (for the reliability diagram)."""
    t = fit_temperature(y_val, proba_val)
    return {"before": reliability_table(y_test, proba_test),
            "after": reliability_table(y_test, apply_temperature(proba_test, t))}


NOTES = (f"ECE: top-label expected calibration error over {N_BINS} equal-width confidence bins; "
         "Brier: multi-class Brier score (0-2); NLL: mean negative log-likelihood (nats); "
         "*_lo/*_hi: 95% percentile bootstrap CIs over the test items. temperature: fitted on "
         "the validation split (n_val), scored on the test split; 'none' is the model as "
         "trained.")


@dataclass(frozen=True)
class Calibrated:
    """A classifier's calibration: ``table`` (:func:`calibration_table`), ``frames``
    (:func:`reliability_frames`) and the notes for the saved table."""

    table: pd.DataFrame
    frames: dict
    notes: str


def calibrate(y_val, proba_val, y_test, proba_test, *, model: str, n_boot: int = 1000,
              seed: int = 0, test_note: str = "") -> Calibrated:
    """:func:`calibration_table` and :func:`reliability_frames` of one model in one call."""
    table = calibration_table(y_val, proba_val, y_test, proba_test, n_boot=n_boot, seed=seed,
                              model=model, test_note=test_note)
    notes = NOTES + (f" Test set: {test_note}." if test_note else "")
    return Calibrated(table, reliability_frames(y_val, proba_val, y_test, proba_test), notes)
