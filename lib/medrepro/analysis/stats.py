"""Statistics that respect the data: small samples, patients with many slices, several tests.

- :func:`proportion_ci`: Wilson (or Clopper-Pearson "exact") interval of ``k`` successes in
  ``n`` (scipy's ``binomtest(...).proportion_ci``). For small samples (D's 40 validation volumes,
  a pointing game over 6 images) a percentile bootstrap collapses to zero width when every item
  agrees (6 hits of 6 gives [1, 1]); Wilson's interval does not ([0.61, 1]).
- :func:`cluster_bootstrap_ci` / :func:`cluster_paired_difference`: the percentile bootstrap
  that resamples *clusters* (RSNA patients, ~30 slices each) instead of images. Slices of one
  patient are not independent: resampling images understates the spread.
- :func:`mcnemar_clustered`: McNemar's test for clustered pairs (Durkalski, Palesch, Lipsitz
  and Rust 2003, *Analysis of clustered matched-pair data*, Stat Med 22:2417): with
  ``d_k`` = (A right, B wrong) - (A wrong, B right) in cluster k, ``X² = (Σ d_k)² / Σ d_k²``,
  chi-square with 1 degree of freedom; one item per cluster gives the ordinary McNemar statistic
  without continuity correction.
- :func:`holm`: Holm's step-down adjustment of several p-values (statsmodels'
  ``multipletests``), for B's three "the proposed model beats X" tests.

Conventions as in :mod:`medrepro.analysis.evaluate`: ``y_true``/``y_pred`` 1-D integer class
indices ``(N,)``; ``groups`` ``(N,)`` any hashable labels (PatientID strings).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medrepro.analysis.evaluate import (
    METRICS,
    EvaluationError,
    _metric_from_cms,
    check_pair,
    proportion_ci,
)

_BOOT_CHUNK_ELEMENTS = 4_000_000  # cluster weights held in memory at once (~32 MB)
__all__ = [
    "accuracy_ci",
    "cluster_bootstrap_ci",
    "cluster_paired_difference",
    "holm",
    "mcnemar_clustered",
    "proportion_ci",
]


def accuracy_ci(y_true, y_pred, *, method: str = "wilson",
                alpha: float = 0.05) -> dict[str, float]:
    """Accuracy with its Wilson (or exact) interval: ``{"point", "lo", "hi"}``; the interval
    for small test sets, where a bootstrap's would collapse."""
    y_true, y_pred = check_pair(y_true, y_pred)
    k, n = int(np.sum(y_true == y_pred)), int(y_true.size)
    lo, hi = proportion_ci(k, n, method=method, alpha=alpha)
    return {"point": k / n if n else float("nan"), "lo": lo, "hi": hi}


# ---------------------------------------------------------------------------- clusters
def _cluster_codes(groups, n: int, name: str) -> tuple[np.ndarray, int]:
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise EvaluationError(f"{name}: groups must have shape ({n},) like the labels, got "
                              f"{groups.shape}")
    _, codes = np.unique(groups, return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1 if n else 0


def _weights(rng: np.random.Generator, n_boot: int, g: int):
    """Yield ``(start, W)``: per resample how often each of ``g`` clusters was drawn, ``W``
    ``(b, g)``; chunks of at most :data:`_BOOT_CHUNK_ELEMENTS`."""
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // g)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, g, size=(size, g))
        rows = np.repeat(np.arange(size), g)
        yield start, np.bincount(rows * g + draws.ravel(), minlength=size * g).reshape(size, g)


def _check(n: int, n_boot: int, alpha: float, name: str) -> None:
    if n == 0:
        raise EvaluationError(f"{name}: no test items")
    if n_boot < 1:
        raise EvaluationError(f"{name}: n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise EvaluationError(f"{name}: alpha must be in (0, 1), got {alpha}")


def cluster_bootstrap_ci(y_true, y_pred, groups, *, metric: str = "accuracy",
                         n_boot: int = 1000, seed: int = 0,
                         alpha: float = 0.05) -> dict[str, float]:
    """Percentile bootstrap CI of ``metric`` resampling whole clusters (``groups``).

    Each resample draws as many clusters as there are, with replacement (seeded), and scores
    every item of the drawn clusters. ``metric``: ``"accuracy"``, ``"macro_f1"`` or
    ``"weighted_f1"`` (the class set fixed to the classes of the full sample). Returns
    ``{"point", "lo", "hi", "n_clusters"}``.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    n = y_true.size
    _check(n, n_boot, alpha, "cluster_bootstrap_ci")
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    codes, g = _cluster_codes(groups, n, "cluster_bootstrap_ci")
    classes = np.union1d(y_true, y_pred)
    k = classes.size
    t, p = np.searchsorted(classes, y_true), np.searchsorted(classes, y_pred)
    per_cluster = np.bincount(codes * k * k + t * k + p,
                              minlength=g * k * k).reshape(g, k * k).astype(float)  # (G, K*K)
    point = float(_metric_from_cms(per_cluster.sum(axis=0).reshape(1, k, k), metric)[0])
    stats = np.empty(n_boot)
    for start, w in _weights(np.random.default_rng(seed), n_boot, g):
        cms = (w @ per_cluster).reshape(-1, k, k)
        stats[start:start + len(w)] = _metric_from_cms(cms, metric)
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"point": point, "lo": float(lo), "hi": float(hi), "n_clusters": g}


def cluster_paired_difference(y_true, pred_a, pred_b, groups, *, n_boot: int = 1000,
                              seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Accuracy of A minus that of B with a cluster-bootstrap CI (the same drawn clusters for
    both models): ``{"point", "lo", "hi", "n_clusters"}``, differences in [-1, 1]."""
    y_true, pred_a = check_pair(y_true, pred_a)
    _, pred_b = check_pair(y_true, pred_b)
    n = y_true.size
    _check(n, n_boot, alpha, "cluster_paired_difference")
    codes, g = _cluster_codes(groups, n, "cluster_paired_difference")
    diff = (pred_a == y_true).astype(float) - (pred_b == y_true).astype(float)
    d = np.bincount(codes, weights=diff, minlength=g)
    size = np.bincount(codes, minlength=g).astype(float)
    stats = np.empty(n_boot)
    for start, w in _weights(np.random.default_rng(seed), n_boot, g):
        stats[start:start + len(w)] = (w @ d) / (w @ size)
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"point": float(diff.mean()), "lo": float(lo), "hi": float(hi), "n_clusters": g}


def mcnemar_clustered(y_true, pred_a, pred_b, groups) -> dict[str, float | int | str]:
    """Durkalski et al.'s clustered McNemar test of two classifiers on the same items.

    ``n01`` (A wrong, B right) and ``n10`` (A right, B wrong) as in
    :func:`medrepro.analysis.evaluate.mcnemar`; ``statistic`` ``(Σ d_k)² / Σ d_k²`` over the
    clusters, ``p_value`` from chi-square with 1 df (1 where no cluster has a discordant
    difference), ``n_clusters``, ``method`` and ``better`` ("A", "B" or "tie").
    """
    from scipy import stats

    y_true, pred_a = check_pair(y_true, pred_a)
    _, pred_b = check_pair(y_true, pred_b)
    codes, g = _cluster_codes(groups, y_true.size, "mcnemar_clustered")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    n10 = np.bincount(codes, weights=(right_a & ~right_b).astype(float), minlength=g)
    n01 = np.bincount(codes, weights=(~right_a & right_b).astype(float), minlength=g)
    d = n10 - n01
    denom = float(np.sum(d ** 2))
    statistic = float(d.sum() ** 2 / denom) if denom else 0.0
    p_value = float(stats.chi2.sf(statistic, df=1)) if denom else 1.0
    a, b = int(n01.sum()), int(n10.sum())
    better = "tie" if a == b else ("A" if b > a else "B")
    return {"n01": a, "n10": b, "statistic": statistic, "p_value": min(1.0, p_value),
            "n_clusters": g, "method": "clustered McNemar (Durkalski et al. 2003)",
            "better": better}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (step-down, family-wise error), in the input order; NaNs stay
    NaN and are left out of the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
