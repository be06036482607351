"""Vectorised 2-D shape and texture primitives shared by the phantom generators.

All functions work on pixel grids (row, column) with float32 outputs; sizes and radii are in
pixels unless a name says otherwise. Nothing loops over pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates, each float32 of ``shape`` (broadcast-friendly (H,1), (1,W))."""
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    return rows, cols


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], *,
                 scale: float | tuple[float, ...]) -> np.ndarray:
    """Band-limited noise of ``shape`` (float32, mean 0, std 1) with features ~``scale`` px.

    Gaussian bumps on a coarse lattice (one node per ``scale`` pixels along each axis, ``scale``
    may differ per axis), summed separably with small matrix products: the cost hardly grows with
    the image size, unlike filtering or spline zooming a full-size array.
    """
    scales = tuple(scale) if isinstance(scale, tuple) else (float(scale),) * len(shape)
    bases = [_rbf_basis(n, max(float(s), 1.0)) for n, s in zip(shape, scales)]
    field = rng.standard_normal(tuple(b.shape[1] for b in bases)).astype(np.float32)
    for axis, basis in enumerate(bases):  # contract the lattice axis into the pixel axis
        field = np.moveaxis(np.tensordot(basis, field, axes=([1], [axis])), 0, axis)
    field -= field.mean()
    return (field / (field.std() + 1e-6)).astype(np.float32)


def _rbf_basis(n: int, scale: float) -> np.ndarray:
    """(n, m) Gaussian interpolation weights from m lattice nodes ``scale`` px apart to n pixels."""
    m = int(np.ceil(n / scale)) + 4
    nodes = (np.arange(m, dtype=np.float32) - 2) * scale
    x = np.arange(n, dtype=np.float32)[:, None]
    return np.exp(-0.5 * ((x - nodes[None, :]) / (0.7 * scale)) ** 2).astype(np.float32)


def ellipse_radius(shape: tuple[int, int], center: tuple[float, float],
                   radii: tuple[float, float], angle: float = 0.0) -> np.ndarray:
    """Normalised elliptical radius (float32, 1.0 on the ellipse border) over a ``shape`` grid.

    ``center`` = (row, col), ``radii`` = (along rows, along cols) before rotation, ``angle`` in
    radians (counter-clockwise).
    """
    rows, cols = grid(shape)
    dr, dc = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dr + sin * dc) / max(radii[0], 1e-3)
    v = (-sin * dr + cos * dc) / max(radii[1], 1e-3)
    return np.sqrt(u * u + v * v).astype(np.float32)


def irregular_radius(rng: np.random.Generator, shape: tuple[int, int],
                     center: tuple[float, float], radii: tuple[float, float], *,
                     angle: float = 0.0, irregularity: float = 0.0) -> np.ndarray:
    """Like :func:`ellipse_radius` with a lumpy border: ``irregularity`` 0 (smooth) .. ~0.5."""
    radius = ellipse_radius(shape, center, radii, angle)
    if irregularity > 0:
        scale = max(2.0, 0.6 * min(radii))
        radius = radius * (1.0 + irregularity * smooth_noise(rng, shape, scale=scale))
    return radius


def soft_mask(radius: np.ndarray, *, edge: float = 0.08) -> np.ndarray:
    """Partial-volume mask in [0, 1] from a normalised radius (1 inside, 0 outside)."""
    return np.clip((1.0 - radius) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def distance_outside(mask: np.ndarray, *, spacing: float = 1.0) -> np.ndarray:
    """Euclidean distance (float32, in units of ``spacing``) from each pixel outside ``mask`` to it."""
    return (ndimage.distance_transform_edt(~mask) * spacing).astype(np.float32)


