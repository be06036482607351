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
