"""Scoring explanation maps against known lesions: the pointing game (Zhang et al. 2018).

A map "hits" when its maximum falls inside the lesion mask dilated by :data:`DILATION_PX`
pixels (voxels for 3-D maps), at the model's input resolution: a map's peak a pixel off the
lesion border still counts, which keeps the score from depending on how the mask was resized.
The hit rate comes with a percentile bootstrap 95% CI (:func:`medrepro.analysis.evaluate.bootstrap_ci`
over the scored items) and beside the chance rate of a random point: the mean share of the
image (``chance_image``) or of the organ (``chance_region``: brain, lungs) that lies inside the
dilated mask, over the same items. A map with no signal (all zero) points nowhere: a miss.

Works on 2-D ``(H, W)`` and 3-D ``(H, W, D)`` maps alike; masks must already have the map's
shape (resize them the way the model's input was resized).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DILATION_PX = 3  # hit tolerance around the lesion, pixels (voxels) at the model's input size
PEAK_TOLERANCE = 1e-6  # values within this (relative) of the maximum tie with it


@dataclass(frozen=True)
class PointingGame:
    """Per scored item: ``hits`` (N,) bool, ``peaks`` (the maximum's index tuple, None for an
    all-zero map), ``chance_image`` (N,) and ``chance_region`` (N,) (NaN without regions)."""

    hits: np.ndarray
    peaks: list[tuple[int, ...] | None]
    chance_image: np.ndarray
    chance_region: np.ndarray

    @property
    def n_empty_maps(self) -> int:
        return sum(p is None for p in self.peaks)

    def take(self, index) -> PointingGame:
        """The items ``index`` (int array or bool mask) of this game."""
        idx = np.arange(len(self.hits))[index]
        return PointingGame(self.hits[idx], [self.peaks[i] for i in idx], self.chance_image[idx],
                            self.chance_region[idx])


def dilate(mask: np.ndarray, *, radius: float = DILATION_PX) -> np.ndarray:
    """``mask`` (bool, any rank) grown by ``radius`` pixels (Euclidean distance); same shape."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or radius <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(~mask) <= radius


def peak(heatmap: np.ndarray) -> tuple[int, ...] | None:
    """Index of the map's maximum; None when the map has no positive finite value.

    Ties (a plateau, e.g. from upsampling a coarse map) are broken by taking, among the tied
    pixels, the one nearest to their centroid: a point inside the plateau, not its first corner.
    """
    m = np.nan_to_num(np.asarray(heatmap, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = m.max() if m.size else 0.0
    if top <= 0:
        return None
    tied = np.argwhere(m >= top * (1 - PEAK_TOLERANCE))  # (K, ndim)
    if len(tied) == 1:
        return tuple(int(i) for i in tied[0])
    nearest = np.argmin(((tied - tied.mean(axis=0)) ** 2).sum(axis=1))
    return tuple(int(i) for i in tied[nearest])


def pointing_game(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                  regions: Sequence[np.ndarray] | None = None,
                  radius: float = DILATION_PX) -> PointingGame:
    """Score each map against its lesion mask (same shape, non-empty); see the module docstring.

    ``regions``: organ masks (brain, lungs) of the same shapes, for ``chance_region``.
    """
    if len(maps) != len(masks) or (regions is not None and len(regions) != len(maps)):
        raise ValueError(f"pointing_game: {len(maps)} maps, {len(masks)} masks"
                         + (f", {len(regions)} regions" if regions is not None else ""))
    hits, peaks, chance, chance_region = [], [], [], []
    for i, (hm, mask) in enumerate(zip(maps, masks)):
        hm, mask = np.asarray(hm), np.asarray(mask, dtype=bool)
        if hm.shape != mask.shape:
            raise ValueError(f"pointing_game: item {i}: map of shape {hm.shape}, mask of shape "
                             f"{mask.shape}; resize the mask to the map first")
        if not mask.any():
            raise ValueError(f"pointing_game: item {i}: empty lesion mask (nothing to hit); "
                             "leave such items out and count them")
        grown = dilate(mask, radius=radius)
        where = peak(hm)
        peaks.append(where)
        hits.append(where is not None and bool(grown[where]))
        chance.append(float(grown.mean()))
        if regions is not None:
            region = np.asarray(regions[i], dtype=bool)
            chance_region.append(float((grown & region).sum() / max(int(region.sum()), 1)))
        else:
            chance_region.append(np.nan)
    return PointingGame(np.asarray(hits, dtype=bool), peaks, np.asarray(chance, dtype=float),
                        np.asarray(chance_region, dtype=float))


def summary(game: PointingGame) -> dict[str, float]:
    """One table row: ``n_scored``, ``hits``, ``hit_rate`` with its 95% Wilson interval
    (``hit_rate_lo``, ``hit_rate_hi``: :func:`medrepro.analysis.stats.proportion_ci`; a game
    over a handful of images, where a bootstrap's interval collapses to zero width when every
    image is a hit), ``chance_image``, ``chance_region`` (means) and ``n_empty_maps``; rates
    NaN when nothing was scored."""
    from medrepro.analysis import stats

    n = len(game.hits)
    row = {"n_scored": n, "hits": int(game.hits.sum()), "hit_rate": np.nan, "hit_rate_lo": np.nan,
           "hit_rate_hi": np.nan, "chance_image": np.nan, "chance_region": np.nan,
           "n_empty_maps": game.n_empty_maps}
    if n == 0:
        return row
    lo, hi = stats.proportion_ci(row["hits"], n, method="wilson")
    row.update(hit_rate=row["hits"] / n, hit_rate_lo=lo, hit_rate_hi=hi,
               chance_image=float(game.chance_image.mean()),
               chance_region=float(np.nanmean(game.chance_region))
               if np.isfinite(game.chance_region).any() else np.nan)
    return row


# ---------------------------------------------------------------------------- baselines
# Maps that know nothing of the model (XAI-TRIS and similar benchmarks find explanation methods
# often no better than these): the input's strongest edge, its brightest point, a random point.
SOBEL = "Sobel edge maximum"
BRIGHTEST = "brightest point"
RANDOM = "random point"
BASELINES = (SOBEL, BRIGHTEST, RANDOM)


def baseline_maps(images: np.ndarray, *, channel_axis: int | None = -1,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """The :data:`BASELINES` of ``images`` ``(N, *spatial[, C])``: each ``(N, *spatial)``
    float32 in [0, 1], to be scored with the very code that scores the methods' maps.

    Sobel: the gradient magnitude (``scipy.ndimage`` Sobel along every spatial axis) of the
    channel sum; brightest: the channel sum; random: uniform noise (seeded), whose maximum is a
    random point. ``channel_axis``: the images' channel axis, ``None`` for single-channel
    volumes ``(N, H, W, D)``.
    """
    from scipy import ndimage

    x = np.asarray(images, dtype=np.float32)
    if channel_axis is not None:
        x = x.sum(axis=channel_axis)
    if x.ndim < 3:
        raise ValueError(f"baseline_maps: expected (N, *spatial[, C]) images, got shape "
                         f"{np.asarray(images).shape}")
    rng = np.random.default_rng(seed)
    sobel = np.stack([ndimage.generic_gradient_magnitude(v, ndimage.sobel) for v in x])
    return {SOBEL: _unit(sobel), BRIGHTEST: _unit(x),
            RANDOM: rng.random(x.shape, dtype=np.float32)}


def score_maps(maps: dict[str, np.ndarray], masks: Sequence[np.ndarray], *,
               regions: Sequence[np.ndarray] | None = None,
               radius: float = DILATION_PX) -> dict[str, PointingGame]:
    """The pointing game of every map set in ``maps`` (methods and baselines alike, one code
    path): name -> :class:`PointingGame` over the same items."""
    return {name: pointing_game(m, masks, regions=regions, radius=radius)
            for name, m in maps.items()}


def stratified(games: dict[str, PointingGame], values: np.ndarray, *, by: str,
               labels: Sequence[str] = ("low", "middle", "high")) -> list[dict]:
    """Hit rates per stratum of ``values`` ``(N,)`` (one per scored item: lesion size, the
    model's confidence): strata at the items' tertiles (``len(labels)`` quantile bins, the top
    one closed), one :func:`summary` row per map set and stratum with ``stratum`` (``by``),
    ``bin``, and the bin's value range ``bin_lo`` / ``bin_hi``."""
    v = np.asarray(values, dtype=np.float64)
    k = len(labels)
    edges = np.quantile(v, np.linspace(0, 1, k + 1)) if v.size else np.zeros(k + 1)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, k - 1)
    rows = []
    for name, game in games.items():
        if len(game.hits) != v.size:
            raise ValueError(f"stratified: {v.size} values for {len(game.hits)} items of {name!r}")
        for b, label in enumerate(labels):
            rows.append({"method": name, "stratum": by, "bin": label,
                         "bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]),
                         **summary(game.take(which == b))})
    return rows


def _unit(maps: np.ndarray) -> np.ndarray:
    """Each map ``maps[i]`` shifted to start at 0 and divided by its maximum (all-equal: 0)."""
    m = maps - maps.reshape(len(maps), -1).min(axis=1).reshape(-1, *[1] * (maps.ndim - 1))
    top = m.reshape(len(m), -1).max(axis=1).reshape(-1, *[1] * (m.ndim - 1))
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0).astype(np.float32)
