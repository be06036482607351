"""Faithfulness of explanation maps: deletion and insertion curves (Petsiuk et al. 2018, RISE).
The thresholds are ours: docs/decisions.md#x15.

A map ranks the input's pixels (voxels); if it is faithful, the model's class score should fall
fast when the top-ranked pixels are removed (**deletion**: set to black, the score's area under
the curve small) and rise fast when they are put back into a blurred copy of the image
(**insertion**: the area large). Each curve has ``steps + 1`` points, at 0, 1/steps, ..., all
of the pixels; its area is the trapezoid rule over that fraction (in [0, 1] for probabilities).
Every method is set beside the **random order** (a random map, scored by the same code), with
the paired difference of their areas per image and its bootstrap 95% CI.

The class score is the model's output (``target="probability"``) or the score before its output
softmax/sigmoid (``target="logit"``): :func:`scorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

BLUR_SIGMA = 5 / 224  # Gaussian blur of the insertion start, per unit of the image's side
# (Petsiuk et al.: sigma 5 px at 224 px)
KINDS = ("deletion", "insertion")
TARGETS = ("probability", "logit")
SCORE_BATCH = 64  # perturbed inputs per forward pass
# A method beats the random order only by at least this much area (on the probability scale):
# an untrained model's scores move by 1e-4, and a CI that excludes 0 there means nothing.
MIN_GAIN = 0.01


def scorer(model, *, target: str = "probability",
           batch: int = SCORE_BATCH) -> Callable[[np.ndarray], np.ndarray]:
    """``f(x) -> (B, K)`` float64 class scores of ``model`` for inputs ``x`` ``(B, *input)``,
    evaluated ``batch`` at a time: its outputs (``"probability"``) or the scores before its
    output softmax/sigmoid (``"logit"``, :func:`medrepro.analysis.explain.output_logits`)."""
    import contextlib

    from medrepro.analysis import explain

    if target not in TARGETS:
        raise ValueError(f"target={target!r}: expected one of {', '.join(TARGETS)}")

    def score(x: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(x), batch):
            ctx = explain.output_logits(model) if target == "logit" else contextlib.nullcontext()
            with ctx:
                out = model(np.asarray(x[start:start + batch], dtype=np.float32), training=False)
            out = out[0] if isinstance(out, (list, tuple)) else out
            outs.append(np.asarray(out, dtype=np.float64).reshape(len(out), -1))
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    return score


def pixel_order(heatmap: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Flat indices of the map's positions, highest value first; ties in random order (seeded),
    so a plateau of an upsampled map is not read corner first."""
    m = np.nan_to_num(np.asarray(heatmap, dtype=np.float64).ravel(), nan=0.0)
    tiebreak = np.random.default_rng(seed).random(m.size)
    return np.lexsort((tiebreak, -m))


def perturbed(image: np.ndarray, order: np.ndarray, *, steps: int) -> dict[str, np.ndarray]:
    """The inputs of one image's two curves: ``{"deletion", "insertion"}``, each
    ``(steps + 1, *image.shape)``; image ``(*spatial, C)`` (channels last), ``order`` the flat
    spatial indices of :func:`pixel_order`. Step ``k`` removes (deletion: to 0) or puts back
    (insertion: into the blurred image) the first ``round(k / steps * P)`` positions."""
    from scipy import ndimage

    spatial = image.shape[:-1]
    n_pos = int(np.prod(spatial))
    if order.size != n_pos:
        raise ValueError(f"perturbed: order of {order.size} positions for an image with "
                         f"{n_pos} ({image.shape})")
    sigma = [BLUR_SIGMA * min(spatial)] * len(spatial) + [0.0]
    blurred = ndimage.gaussian_filter(image.astype(np.float32), sigma=sigma)
    flat, flat_blur = image.reshape(n_pos, -1), blurred.reshape(n_pos, -1)
    counts = np.round(np.linspace(0, 1, steps + 1) * n_pos).astype(int)
    rank = np.empty(n_pos, dtype=np.int64)
    rank[order] = np.arange(n_pos)                         # position -> its place in the order
    top = rank[None, :] < counts[:, None]                  # (steps + 1, P): among the first k
    deletion = np.where(top[..., None], 0.0, flat[None])
    insertion = np.where(top[..., None], flat[None], flat_blur[None])
    return {"deletion": deletion.reshape(steps + 1, *image.shape).astype(np.float32),
            "insertion": insertion.reshape(steps + 1, *image.shape).astype(np.float32)}


def curves(score: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
           maps: np.ndarray, *, class_index: Sequence[int], steps: int = 16,
           seed: int = 0) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of ``maps`` ``(N, *spatial)`` on ``images``
    ``(N, *spatial, C)``: ``{"deletion": (N, steps + 1), "insertion": (N, steps + 1)}``, the
    score of class ``class_index[i]`` (``score``: :func:`scorer`) at each step."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    images, maps = np.asarray(images), np.asarray(maps)
    if len(images) != len(maps) or images.shape[1:-1] != maps.shape[1:]:
        raise ValueError(f"curves: images of shape {images.shape} (channels last) for maps of "
                         f"shape {maps.shape}")
    out = {kind: np.empty((len(images), steps + 1)) for kind in KINDS}
    for i, (image, heatmap) in enumerate(zip(images, maps)):
        batch = perturbed(image, pixel_order(heatmap, seed=seed + i), steps=steps)
        scores = score(np.concatenate([batch[k] for k in KINDS]))[:, int(class_index[i])]
        for j, kind in enumerate(KINDS):
            out[kind][i] = scores[j * (steps + 1):(j + 1) * (steps + 1)]
    return out


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under each curve ``(N, steps + 1)`` over the fraction 0..1 (trapezoid rule): ``(N,)``."""
    from scipy import integrate

    curve = np.asarray(curve, dtype=np.float64)
    return integrate.trapezoid(curve, dx=1.0 / (curve.shape[-1] - 1), axis=-1)


def faithfulness_rows(curves_by_method: Mapping[str, Mapping[str, np.ndarray]], *,
                      reference: str, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Per method and kind: the mean area with its 95% bootstrap CI (``auc``, ``auc_lo``,
    ``auc_hi``), the paired difference from ``reference`` (the random order) per image
    (``diff_vs_random`` and its CI) and ``beats_random``: the CI of that difference lies beyond
    :data:`MIN_GAIN` on the good side (deletion: below ``-MIN_GAIN``, insertion: above it)."""
    from medrepro.analysis import evaluate

    if reference not in curves_by_method:
        raise ValueError(f"faithfulness_rows: reference {reference!r} not among "
                         f"{sorted(curves_by_method)}")
    rows = []
    for method, c in curves_by_method.items():
        for kind in KINDS:
            area, ref = auc(c[kind]), auc(curves_by_method[reference][kind])
            mean = evaluate.mean_ci(area, n_boot=n_boot, seed=seed)
            diff = evaluate.mean_ci(area - ref, n_boot=n_boot, seed=seed)
            good = diff["hi"] < -MIN_GAIN if kind == "deletion" else diff["lo"] > MIN_GAIN
            rows.append({"check": "faithfulness", "condition": kind, "method": method,
                         "n": len(area), "auc": mean["point"], "auc_lo": mean["lo"],
                         "auc_hi": mean["hi"], "diff_vs_random": diff["point"],
                         "diff_vs_random_lo": diff["lo"], "diff_vs_random_hi": diff["hi"],
                         "beats_random": None if method == reference else bool(good)})
    return rows
