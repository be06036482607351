"""Evaluation: classification reports, confusion matrices, curves, bootstrap CIs, McNemar.

Conventions: ``y_true`` and ``y_pred`` are 1-D integer class indices ``0..K-1`` (``int``, shape
``(N,)``); ``labels`` are the class names in index order. Metrics follow scikit-learn's
definitions (zero division gives 0). Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

METRICS = ("accuracy", "macro_f1", "weighted_f1")
REPORT_COLUMNS = ("precision", "recall", "f1", "support")
_BOOT_CHUNK_ELEMENTS = 4_000_000  # resampled indices held in memory at once (~32 MB of int64)
PROPORTION_METHODS = ("wilson", "exact")


class EvaluationError(ValueError):
    """Inputs to an evaluation function that cannot be evaluated (shapes, classes, sizes)."""


# ---------------------------------------------------------------------------- tables
def classification_table(y_true, y_pred, *, labels: Sequence[str]) -> pd.DataFrame:
    """The papers' classification report as a frame.

    Rows: one per class (in ``labels`` order), then ``accuracy``, ``macro avg``,
    ``weighted avg``; index named ``class``. Columns ``precision``, ``recall``, ``f1`` (floats in
    [0, 1]) and ``support`` (int). The ``accuracy`` row holds the accuracy in ``f1`` and ``N`` in
    ``support``, with precision/recall NaN, as scikit-learn's text report does.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    k = len(labels)
    _check_range(y_true, y_pred, k)
    cm = confusion(y_true, y_pred, n_classes=k)
    precision, recall, f1, support = _prf(cm)
    n = support.sum()
    rows = {name: [precision[i], recall[i], f1[i], int(support[i])]
            for i, name in enumerate(labels)}
    weights = support / n if n else np.zeros(k)
    rows["accuracy"] = [np.nan, np.nan, np.trace(cm) / n if n else 0.0, int(n)]
    rows["macro avg"] = [precision.mean(), recall.mean(), f1.mean(), int(n)]
    rows["weighted avg"] = [weights @ precision, weights @ recall, weights @ f1, int(n)]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(REPORT_COLUMNS))
    frame["support"] = frame["support"].astype(int)
    frame.index.name = "class"
    return frame


def classification_table_ci(y_true, y_pred, *, labels: Sequence[str], n_boot: int = 1000,
                            seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`classification_table` with the per-class bootstrap CIs of
    :func:`per_class_ci_table` beside each value (``precision_lo``, ``precision_hi``, ...);
    the ``accuracy`` / average rows have NaN there."""
    table = classification_table(y_true, y_pred, labels=labels)
    ci = per_class_ci_table(y_true, y_pred, labels=labels, n_boot=n_boot, seed=seed,
                            alpha=alpha)
    out = table.join(ci[[f"{m}_{b}" for m in ("precision", "recall", "f1") for b in ("lo", "hi")]])
    order = [c for m in ("precision", "recall", "f1") for c in (m, f"{m}_lo", f"{m}_hi")]
    return out[[*order, "support"]]


def per_class_table(y_true, y_pred, *, labels: Sequence[str]) -> pd.DataFrame:
    """Per-class one-vs-rest accuracy, precision, recall, F1 and support (index ``class``).

    One-vs-rest accuracy of class k is (TP + TN) / N; recall is the share of class k found
    (what some notebooks call "class accuracy").
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    k = len(labels)
    _check_range(y_true, y_pred, k)
    cm = confusion(y_true, y_pred, n_classes=k)
    precision, recall, f1, support = _prf(cm)
    n = cm.sum()
    tp = np.diag(cm)
    tn = n - cm.sum(axis=0) - cm.sum(axis=1) + tp
    accuracy = (tp + tn) / n if n else np.zeros(k)
    frame = pd.DataFrame({"accuracy": accuracy, "precision": precision, "recall": recall,
                          "f1": f1, "support": support.astype(int)}, index=list(labels))
    frame.index.name = "class"
    return frame


def confusion(y_true, y_pred, *, n_classes: int, normalize: bool | str = False) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class, shape ``(K, K)``.

    ``normalize=False``: counts (int64). ``True`` or ``"true"``: each row divided by its sum
    (recall on the diagonal); ``"pred"``: columns; ``"all"``: the total. Empty rows stay 0.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    _check_range(y_true, y_pred, n_classes)
    cm = np.bincount(y_true * n_classes + y_pred,
                     minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    if normalize is False or normalize is None:
        return cm.astype(np.int64)
    mode = "true" if normalize is True else normalize
    if mode == "true":
        denom = cm.sum(axis=1, keepdims=True)
    elif mode == "pred":
        denom = cm.sum(axis=0, keepdims=True)
    elif mode == "all":
        denom = np.array(cm.sum())
    else:
        raise EvaluationError(f"normalize={normalize!r}: expected False, True, 'true', 'pred' "
                              "or 'all'")
    return np.divide(cm, denom, out=np.zeros(cm.shape, dtype=float), where=denom > 0)


def beside_reported(ours: pd.DataFrame, reported: pd.DataFrame | None, *,
                    key: str = "class", rename: dict[str, str] | None = None,
                    prefix: str = "paper_") -> pd.DataFrame:
    """Our table with the paper's values in ``paper_<column>`` columns beside it.

    ``ours`` has ``key`` as its index or as a column (e.g. :func:`classification_table`);
    ``rename`` maps our keys to the paper's (e.g. ``{"no tumour": "no_tumor"}``). Rows are
    matched by key; rows only the paper has come last. ``reported`` None returns ``ours``
    with ``key`` as a column.
    """
    frame = ours.reset_index() if key not in ours.columns else ours.copy()
    if rename:
        frame[key] = frame[key].map(lambda k: rename.get(k, k))
    if reported is None:
        return frame
    theirs = reported.rename(columns={c: f"{prefix}{c}" for c in reported.columns if c != key})
    merged = frame.merge(theirs, on=key, how="outer", sort=False)
    order = {k: i for i, k in enumerate(frame[key])}
    merged["_order"] = merged[key].map(lambda k: order.get(k, len(order)))
    return merged.sort_values("_order", kind="stable").drop(columns="_order").reset_index(
        drop=True)


def summary_row(y_true, y_pred, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Accuracy and macro-F1 with 95% bootstrap CIs, and N, as one flat dict (a table row)."""
    acc = bootstrap_ci(y_true, y_pred, metric="accuracy", n_boot=n_boot, seed=seed)
    f1 = bootstrap_ci(y_true, y_pred, metric="macro_f1", n_boot=n_boot, seed=seed)
    return {"n_test": len(np.asarray(y_true)), "accuracy": acc["point"],
            "accuracy_lo": acc["lo"], "accuracy_hi": acc["hi"], "macro_f1": f1["point"],
            "macro_f1_lo": f1["lo"], "macro_f1_hi": f1["hi"]}


# ---------------------------------------------------------------------------- uncertainty
def bootstrap_ci(y_true, y_pred, *, metric: str | Callable = "accuracy", n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Percentile bootstrap confidence interval of a metric over test items.

    Resamples the N (true, predicted) pairs with replacement ``n_boot`` times (seeded) and
    returns ``{"point": metric on all items, "lo": alpha/2 quantile, "hi": 1 - alpha/2
    quantile}``. ``metric`` is ``"accuracy"``, ``"macro_f1"``, ``"weighted_f1"`` (vectorised:
    all resamples at once, in chunks) or a callable ``f(y_true, y_pred) -> float`` (looped).
    The class set of the F1 metrics is fixed to the classes seen in the full sample, as
    scikit-learn's ``f1_score`` uses for the point estimate.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    n = y_true.size
    if n == 0:
        raise EvaluationError("bootstrap_ci: no test items")
    if not 0 < alpha < 1:
        raise EvaluationError(f"bootstrap_ci: alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise EvaluationError(f"bootstrap_ci: n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    if callable(metric):
        point = float(metric(y_true, y_pred))
        stats = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, size=n)
            stats[b] = metric(y_true[idx], y_pred[idx])
    elif metric in METRICS:
        classes = np.union1d(y_true, y_pred)
        # Re-index classes to 0..K-1 so the vectorised confusion matrices stay small.
        t = np.searchsorted(classes, y_true)
        p = np.searchsorted(classes, y_pred)
        point = float(_metric_from_cms(_cms(t, p, np.arange(n)[None, :], classes.size),
                                       metric)[0])
        stats = np.empty(n_boot)
        chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
        for start in range(0, n_boot, chunk):
            size = min(chunk, n_boot - start)
            idx = rng.integers(0, n, size=(size, n))
            stats[start:start + size] = _metric_from_cms(_cms(t, p, idx, classes.size), metric)
    else:
        raise EvaluationError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)} "
                              "or a callable(y_true, y_pred)")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"point": point, "lo": float(lo), "hi": float(hi)}


def paired_accuracy_difference(y_true, pred_a, pred_b, *, n_boot: int = 1000, seed: int = 0,
                               alpha: float = 0.05) -> dict[str, float]:
    """Accuracy of model A minus that of model B on the same items, with a paired bootstrap CI.

    The N test items are resampled with replacement ``n_boot`` times (seeded), the *same*
    resample for both models, so the CI accounts for their correlation (unlike two separate
    CIs). Returns :func:`mean_ci`'s ``{"point", "lo", "hi", "n"}`` (differences in [-1, 1]);
    to be read beside :func:`mcnemar` on the same pair.
    """
    y_true, pred_a = check_pair(y_true, pred_a)
    _, pred_b = check_pair(y_true, pred_b)
    _check_boot(y_true.size, n_boot, alpha, "paired_accuracy_difference")
    diff = (pred_a == y_true).astype(np.float64) - (pred_b == y_true).astype(np.float64)
    return mean_ci(diff, n_boot=n_boot, seed=seed, alpha=alpha)


def mean_ci(values, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """The mean of per-item ``values`` (1-D, float) with a percentile bootstrap CI over the
    items: ``{"point", "lo", "hi"}``. NaN values are left out (``n`` counts the others); with
    none left every field is NaN. A paired difference is the mean of per-item differences."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise EvaluationError(f"mean_ci: expected 1-D values, got shape {v.shape}")
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return {"point": np.nan, "lo": np.nan, "hi": np.nan, "n": 0}
    _check_boot(n, n_boot, alpha, "mean_ci")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        stats[start:start + size] = v[rng.integers(0, n, size=(size, n))].mean(axis=1)
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"point": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": n}


def per_class_ci_table(y_true, y_pred, *, labels: Sequence[str], n_boot: int = 1000,
                       seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Per-class precision, recall and F1 with percentile bootstrap CIs (index ``class``).

    Columns ``precision``, ``precision_lo``, ``precision_hi``, the same for ``recall`` and
    ``f1`` (floats in [0, 1]), and ``support``. One resample of the N items (seeded) serves
    every class and metric; a class absent from a resample scores 0 there, as scikit-learn's
    zero-division rule does.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    k = len(labels)
    _check_range(y_true, y_pred, k)
    n = _check_boot(y_true.size, n_boot, alpha, "per_class_ci_table")
    point = _prf(confusion(y_true, y_pred, n_classes=k))
    rng = np.random.default_rng(seed)
    stats = np.empty((3, n_boot, k))
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        precision, recall, f1, _ = _prf(_cms(y_true, y_pred, idx, k))
        stats[:, start:start + size] = precision, recall, f1
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2], axis=1)  # (3, K) each
    columns: dict[str, np.ndarray] = {}
    for m, name in enumerate(("precision", "recall", "f1")):
        columns[name], columns[f"{name}_lo"], columns[f"{name}_hi"] = point[m], lo[m], hi[m]
    frame = pd.DataFrame(columns, index=list(labels))
    frame["support"] = point[3].astype(int)
    frame.index.name = "class"
    return frame


def binary_ci(y_true, y_pred, *, positive: int = 1, n_boot: int = 1000, seed: int = 0,
              alpha: float = 0.05, proportions: str = "bootstrap") -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the ``positive`` class of a 0/1 problem with
    CIs: ``{"accuracy", "accuracy_lo", "accuracy_hi", "precision", ...}`` (in [0, 1]).

    ``proportions``: ``"bootstrap"`` (percentile bootstrap for all four) or ``"wilson"``
    (Wilson's interval for accuracy, precision and recall, which are proportions k / n, for
    small sets where a bootstrap collapses; F1 keeps its bootstrap CI).
    """
    row = per_class_ci_table(y_true, y_pred, labels=("0", "1"), n_boot=n_boot, seed=seed,
                             alpha=alpha).iloc[positive]
    acc = bootstrap_ci(y_true, y_pred, metric="accuracy", n_boot=n_boot, seed=seed, alpha=alpha)
    out = {"accuracy": acc["point"], "accuracy_lo": acc["lo"], "accuracy_hi": acc["hi"]}
    out.update({k: float(v) for k, v in row.items() if k != "support"})
    if proportions == "wilson":
        out.update(_wilson_binary(*check_pair(y_true, y_pred), positive=positive, alpha=alpha))
    elif proportions != "bootstrap":
        raise EvaluationError(f"binary_ci: proportions={proportions!r}; expected 'bootstrap' or "
                              "'wilson'")
    return out


def _wilson_binary(y_true: np.ndarray, y_pred: np.ndarray, *, positive: int,
                   alpha: float) -> dict[str, float]:
    tp = int(np.sum((y_pred == positive) & (y_true == positive)))
    counts = {"accuracy": (int(np.sum(y_true == y_pred)), y_true.size),
              "precision": (tp, int(np.sum(y_pred == positive))),
              "recall": (tp, int(np.sum(y_true == positive)))}
    out = {}
    for name, (k, n) in counts.items():
        lo, hi = proportion_ci(k, n, alpha=alpha) if n else (float("nan"), float("nan"))
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out


def mcnemar(y_true, pred_a, pred_b) -> dict[str, float | int | str]:
    """McNemar's test of two classifiers on the same test items.

    ``n01``: items model A got wrong and B right; ``n10``: A right and B wrong (Dietterich's
    notation). With ``n01 + n10 < 25`` the exact two-sided binomial test is used (``statistic``
    = min(n01, n10)); otherwise the chi-square test with continuity correction
    ``(|n01 - n10| - 1)^2 / (n01 + n10)``, 1 degree of freedom. No discordant items: p = 1.
    Returns ``n01, n10, statistic, p_value, method`` and ``better`` ("A", "B" or "tie": the
    model with fewer errors on the discordant items).
    """
    from scipy import stats

    y_true, pred_a = check_pair(y_true, pred_a)
    _, pred_b = check_pair(y_true, pred_b)
    right_a, right_b = pred_a == y_true, pred_b == y_true
    n01 = int(np.sum(~right_a & right_b))
    n10 = int(np.sum(right_a & ~right_b))
    discordant = n01 + n10
    if discordant == 0:
        statistic, p_value, method = 0.0, 1.0, "exact binomial"
    elif discordant < 25:
        statistic = float(min(n01, n10))
        p_value = float(stats.binomtest(min(n01, n10), discordant, 0.5).pvalue)
        method = "exact binomial"
    else:
        statistic = (abs(n01 - n10) - 1) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, df=1))
        method = "chi-square, continuity corrected"
    better = "tie" if n01 == n10 else ("A" if n10 > n01 else "B")
    return {"n01": n01, "n10": n10, "statistic": float(statistic), "p_value": min(1.0, p_value),
            "method": method, "better": better}


def proportion_ci(k: int, n: int, *, method: str = "wilson",
                  alpha: float = 0.05) -> tuple[float, float]:
    """``(lo, hi)``: the ``1 - alpha`` interval of a proportion ``k / n``.

    ``method``: ``"wilson"`` (score interval) or ``"exact"`` (Clopper-Pearson), as
    ``scipy.stats.binomtest(k, n).proportion_ci`` computes them.
    """
    from scipy import stats

    if method not in PROPORTION_METHODS:
        raise EvaluationError(f"proportion_ci: method {method!r}; expected one of "
                              f"{', '.join(PROPORTION_METHODS)}")
    if n < 1 or not 0 <= k <= n:
        raise EvaluationError(f"proportion_ci: need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < alpha < 1:
        raise EvaluationError(f"proportion_ci: alpha must be in (0, 1), got {alpha}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - alpha,
                                                       method=method)
    return float(ci.low), float(ci.high)


# ---------------------------------------------------------------------------- helpers
def _check_boot(n: int, n_boot: int, alpha: float, name: str) -> int:
    if n == 0:
        raise EvaluationError(f"{name}: no test items")
    if not 0 < alpha < 1:
        raise EvaluationError(f"{name}: alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise EvaluationError(f"{name}: n_boot must be >= 1, got {n_boot}")
    return n


def check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise EvaluationError(f"expected two 1-D label arrays of equal length, got shapes "
                              f"{a.shape} and {b.shape}")
    for name, arr in (("y_true", a), ("y_pred", b)):
        if (arr.size and not np.issubdtype(arr.dtype, np.integer)
                and not np.all(np.equal(np.mod(arr, 1), 0))):
            raise EvaluationError(f"{name} must hold integer class indices, got dtype "
                                  f"{arr.dtype}")
    return a.astype(np.int64), b.astype(np.int64)


def _check_range(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> None:
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            raise EvaluationError(f"{name} holds class index {int(arr.max())} or "
                                  f"{int(arr.min())}, outside 0..{k - 1} ({k} classes)")


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a ``(..., K, K)`` count matrix."""
    cm = cm.astype(float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    predicted = cm.sum(axis=-2)
    support = cm.sum(axis=-1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def _cms(t: np.ndarray, p: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Confusion matrices of resamples ``idx`` (B, N) -> (B, K, K), one bincount for all."""
    b = idx.shape[0]
    codes = (np.arange(b)[:, None] * (k * k) + t[idx] * k + p[idx]).ravel()
    return np.bincount(codes, minlength=b * k * k).reshape(b, k, k)


def _metric_from_cms(cms: np.ndarray, metric: str) -> np.ndarray:
    n = cms.sum(axis=(1, 2)).astype(float)
    if metric == "accuracy":
        return np.trace(cms, axis1=1, axis2=2) / n
    _, _, f1, support = _prf(cms)
    if metric == "macro_f1":
        return f1.mean(axis=1)
    return (f1 * support).sum(axis=1) / n  # weighted_f1
