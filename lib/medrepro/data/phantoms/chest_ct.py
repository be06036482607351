"""MosMedData chest-CT phantoms: ``CT-0`` (normal) and ``CT-23`` (COVID-19 CT-2/CT-3) NIfTI volumes.

Layout (as the Keras 3D-classification example's ``CT-0.zip`` / ``CT-23.zip`` unpack)::

    root/CT-0/study_0001.nii.gz ...   study numbers from 1 (the real CT-0 range is 1-254)
    root/CT-23/study_0939.nii.gz ...  from 939 (the real CT-2 and CT-3 range is 939-1108)

Each volume: int16 HU, shape (size, size, N) with N 30-70, axes (i: patient right -> left,
j: posterior -> anterior, k: inferior -> superior) as in the real files (``nib.aff2axcodes`` gives
``('L', 'A', 'S')``); affine ``diag(-dx, dx, 8)`` plus an offset, qform and sform code 1
(scanner), units mm/s, ``descrip`` ``Time=HHMMSS.fff``, in-plane spacing 0.6-0.9 mm at 512
(scaled by ``512 / size``), slice spacing 8 mm - all as in the real MosMed masks.

Anatomy (HU): air -1000, patient table under the back, subcutaneous fat -100, muscle +45,
spine (vertebral body +250 in a +700 cortex, canal), ribs and sternum, mediastinum and heart
(+40), aorta, liver and spleen below the right/left hemidiaphragm, lungs (-870 with vessels)
whose cross-section grows from the diaphragm domes up and narrows to the apices, trachea splitting
into the main bronchi at the carina. Normal variation in CT-0: dependent (posterior) subpleural
density (-600..-300) of a few percent of the lung, occasional small nodules.

CT-23: ground-glass opacities (-700..-300 HU) and consolidation (-100..+50 HU) with a
peripheral, posterior and basal predominance, covering 20-60 % of the lung volume (uniform per
volume; MosMed grades CT-2 as 25-50 % and CT-3 as 50-75 % involvement, so its CT-23 spans
25-75 %). The classes do not overlap in extent: every CT-23 volume has at least four times
the dense lung of any CT-0 volume (whose normal dependent density covers 0.5-5 %, at the same
-600..-300 HU as ground glass and in the same posterior, subpleural places). Its measured
difficulty in notebook 05's demo: ``docs/decisions.md#x4``.

Lesion masks (the findings of each CT-23 volume, empty for CT-0, and the lungs; stored voxel
order) go to ``.masks/lesion_masks.npz``, outside the class folders
(:mod:`medrepro.data.phantoms._masks`), for scoring explanation maps.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medrepro.data.phantoms import _shapes
from medrepro.data.phantoms._common import PhantomError, build_atomically, map_ordered, rng_for
from medrepro.data.phantoms._masks import MaskCollector

CLASSES = ("CT-0", "CT-23")
FIRST_STUDY = {"CT-0": 1, "CT-23": 939}
N_SLICES = (30, 70)  # inclusive
SLICE_MM = 8.0
GZIP_LEVEL = 1
SPACING_AT_512 = (0.6, 0.9)  # in-plane mm per pixel
EXTENT_RANGE = (0.20, 0.60)  # CT-23 fraction of lung volume involved (uniform)
NORMAL_DEPENDENT = (0.005, 0.05)  # CT-0 dependent-density fraction of lung volume

AIR, FAT, MUSCLE, SOFT, LIVER = -1000.0, -100.0, 45.0, 40.0, 58.0
LUNG = -870.0
BONE_CORTEX, BONE_MARROW = 700.0, 250.0
TABLE = 150.0


def make_mosmed(root: str | os.PathLike, *, n_per_class: int, seed: int,
                size: int = 512) -> Path:
    """Write ``n_per_class`` CT-0 and CT-23 phantom volumes under ``root``; return ``root``.

    ``size``: in-plane matrix (512 in the real set). Deterministic by ``seed``; a complete folder
    made with the same arguments is left as is.
    """
    if n_per_class < 1 or size < 32:
        raise PhantomError(f"{root}: need n_per_class >= 1 and size >= 32 "
                           f"(got {n_per_class}, {size})")
    params = {"generator": "mosmed", "n_per_class": int(n_per_class), "seed": int(seed),
                  "size": int(size)}
    return build_atomically(root, params, lambda tmp: _write_mosmed(tmp, n=int(n_per_class),
                                                                    seed=int(seed),
                                                                    size=int(size)))


def _write_mosmed(tmp: Path, *, n: int, seed: int, size: int) -> dict[str, Any]:
    extents = {}
    masks = MaskCollector()
    for cls in CLASSES:
        (tmp / cls).mkdir(parents=True)
    tasks = [(seed, cls, idx, size) for cls in CLASSES for idx in range(n)]
    for (_, cls, idx, _), (data, fraction, lesion, lung) in zip(
            tasks, map_ordered(_render_file, tasks, min_items=PARALLEL_MIN_VOLUMES)):
        name = f"study_{FIRST_STUDY[cls] + idx:04d}.nii.gz"
        (tmp / cls / name).write_bytes(data)
        extents[f"{cls}/{name}"] = round(fraction, 4)
        masks.add(f"{cls}/{name}", lesion=lesion, region=lung)
    masks.save(tmp)  # .masks/lesion_masks.npz: outside CT-0/ and CT-23/
    return {"lesion_fraction": extents}


PARALLEL_MIN_VOLUMES = 16  # volumes; fewer are rendered in this process


def _render_file(task: tuple) -> tuple[bytes, float, np.ndarray, np.ndarray]:
    """One volume of :func:`_write_mosmed`: ``(NIfTI bytes, lesion fraction, lesion mask, lung
    mask)``; seeded by its own class and index, so any process gives the same bytes."""
    seed, cls, idx, size = task
    ct = render_volume(rng_for(seed, "mosmed", cls, idx), abnormal=(cls == "CT-23"), size=size)
    return (encode_nifti(ct.hu, ct.affine, ct.time_tag), ct.lesion_fraction, ct.lesion_mask(),
            ct.lung)


def encode_nifti(volume: np.ndarray, affine: np.ndarray, time_tag: str) -> bytes:
    """Gzipped NIfTI-1 bytes (int16, qform/sform scanner, mm/s), byte-identical for equal input."""
    import nibabel as nib

    img = nib.Nifti1Image(volume.astype(np.int16), affine)
    hdr = img.header
    hdr.set_data_dtype(np.int16)
    hdr.set_xyzt_units("mm", "sec")
    hdr["descrip"] = f"Time={time_tag}".encode()
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    # level 1: noisy int16 CT compresses to ~53 % at any level, and level 6 is 6x slower
    return gzip.compress(img.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0)


@dataclass
class ChestCT:
    """One rendered chest CT. Arrays are (size, size, N), axes (R->L, P->A, I->S)."""

    hu: np.ndarray  # int16 HU
    affine: np.ndarray  # (4, 4) voxel -> scanner mm
    time_tag: str  # "HHMMSS.fff" for the header's descrip
    lesion_fraction: float  # share of the lung volume with GGO/consolidation (or normal density)
    lung: np.ndarray  # bool: lung parenchyma
    ggo: np.ndarray  # bool: ground glass (CT-23) or dependent density (CT-0)
    consolidation: np.ndarray  # bool
    abnormal: bool = False  # CT-23: ggo and consolidation are findings, else normal density

    def lesion_mask(self) -> np.ndarray:
        """bool (size, size, N): the COVID-19 findings (GGO or consolidation) of a CT-23 volume;
        all False for CT-0 (its dependent density is normal anatomy, not a lesion)."""
        if not self.abnormal:
            return np.zeros(self.lung.shape, dtype=bool)
        return self.ggo | self.consolidation


def render_volume(rng: np.random.Generator, *, abnormal: bool, size: int = 512) -> ChestCT:
    """One chest CT volume (see the module docstring for the anatomy and the findings)."""
    n_slices = int(rng.integers(N_SLICES[0], N_SLICES[1] + 1))
    dx = rng.uniform(*SPACING_AT_512) * 512 / size
    shape = (size, size, n_slices)
    i = (np.arange(size, dtype=np.float32) - size / 2)[:, None, None] * dx  # mm, + = left
    j = (np.arange(size, dtype=np.float32) - size / 2)[None, :, None] * dx  # mm, + = anterior
    # level along the scan: 0 at the first slice, 1 at the last; lungs occupy a sub-range
    z = np.linspace(0, 1, n_slices, dtype=np.float32)[None, None, :]
    lung_lo, lung_hi = rng.uniform(0.1, 0.3), rng.uniform(0.85, 1.0)
    t = np.clip((z - lung_lo) / (lung_hi - lung_lo), 0, 1)  # 0 = diaphragm, 1 = apex

    body_a = rng.uniform(140, 175)  # half width (LR), mm
    body_b = rng.uniform(95, 125)  # half depth (AP), mm
    body_cj = rng.uniform(-10, 15)
    body = ((i / body_a) ** 2 + ((j - body_cj) / body_b) ** 2)
    hu = np.full(shape, AIR, dtype=np.float32)
    hu = np.where(body < 1, FAT, hu)
    inner = body < (1 - rng.uniform(0.10, 0.18)) ** 2
    hu = np.where(inner, MUSCLE, hu)
    # table under the back
    back = body_cj - body_b
    table = (np.abs(j - (back - rng.uniform(8, 20)) - 0.0008 * i ** 2) < 3) & (np.abs(i) < 220)
    hu = np.where(table, TABLE, hu)
    # lungs: two ellipsoid-like cross-sections, domed at the bottom, narrowing at the apex
    grow = np.sin(np.clip(t, 0, 1) * np.pi * 0.9 + 0.1) * (t > 0)
    lung_a = rng.uniform(0.30, 0.38) * body_a * grow
    lung_b = rng.uniform(0.60, 0.72) * body_b * grow
    sep = rng.uniform(0.12, 0.2) * body_a + lung_a
    lungs = np.zeros(shape, dtype=bool)
    lung_dist = np.full(shape, 9.0, dtype=np.float32)
    # lumpy outline (one 2-D field for the whole volume), deeper at the back, narrower in front
    lumps = 1 + 0.08 * _shapes.smooth_noise(rng, shape[:2], scale=30.0 / dx)[:, :, None]
    cy = body_cj - 0.12 * body_b
    dj = (j - cy) * np.where(j > cy, 1.25, 1.0)
    for side in (-1, 1):
        rad = (((i - side * sep) / np.maximum(lung_a, 1e-3)) ** 2
               + (dj / np.maximum(lung_b, 1e-3)) ** 2) * lumps
        lungs |= rad < 1
        lung_dist = np.minimum(lung_dist, rad)
    heart = (((i - 0.25 * lung_a) / (0.9 * lung_a + 1e-3)) ** 2
             + ((j - body_cj - 0.35 * body_b) / (0.45 * body_b)) ** 2 < 1) & (t < 0.6)
    lungs &= ~heart
    hu = np.where(inner & lungs, LUNG, hu)
    hu = np.where(heart & inner, SOFT, hu)
    # great vessels: descending aorta beside the spine, ascending aorta / pulmonary trunk
    sp_j = body_cj - body_b + rng.uniform(35, 45)  # vertebral body centre
    aorta = (((i - 22) ** 2 + (j - sp_j - 26) ** 2) < 12 ** 2) & (t > 0.05)
    aorta |= (((i + 5) ** 2 + (j - body_cj - 0.25 * body_b) ** 2) < 15 ** 2) & (t > 0.45) & \
        (t < 0.75)
    lungs &= ~aorta
    hu = np.where(aorta & inner, SOFT, hu)
    # below the diaphragm: liver on the right (i < 0), spleen/stomach on the left
    below = (t <= 0) & inner
    hu = np.where(below & (i < 0.3 * body_a), LIVER, hu)
    hu = np.where(below & (i >= 0.3 * body_a), SOFT, hu)
    # vessels in the lungs: thresholded band-limited noise, denser near the hilum
    vessel_noise = _shapes.smooth_noise(rng, shape, scale=(4.0 / dx, 4.0 / dx, 1.0))
    hilum = np.exp(-lung_dist * 1.5)
    vessels = inner & lungs & (np.abs(vessel_noise) < 0.06 + 0.1 * hilum)
    hu = np.where(vessels, -150 + 150 * hilum, hu)
    # airways: trachea above the carina, main bronchi below
    carina = rng.uniform(0.55, 0.7)
    trachea_j = body_cj + rng.uniform(0.05, 0.2) * body_b
    tr = ((i / 9) ** 2 + ((j - trachea_j) / 8) ** 2 < 1) & (t > carina)
    for side in (-1, 1):
        off = side * (carina - t) * 140
        tr |= (((i - off) / 6) ** 2 + ((j - trachea_j + 5) / 6) ** 2 < 1) & (t <= carina) & \
              (t > carina - 0.18)
    hu = np.where(tr & inner, AIR, hu)
    # spine: vertebral body, cortex, canal; ribs along the chest wall; sternum
    vb = (i / 17) ** 2 + ((j - sp_j) / 15) ** 2
    hu = np.where(vb < 1, BONE_CORTEX, hu)
    hu = np.where(vb < 0.7, BONE_MARROW, hu)
    canal = (i / 7) ** 2 + ((j - sp_j + 22) / 7) ** 2 < 1
    hu = np.where(canal, SOFT - 20, hu)
    lam = (i / 10) ** 2 + ((j - sp_j + 28) / 6) ** 2 < 1
    hu = np.where(lam & ~canal, BONE_CORTEX, hu)
    ang = np.arctan2(j - body_cj, i)
    band = (body > (1 - 0.22) ** 2) & (body < (1 - 0.14) ** 2)
    rib_phase = rng.uniform(0, 2 * np.pi)
    ribs = band & (np.cos(9 * ang + 40 * z + rib_phase) > 0.55) & (t > 0.05)
    hu = np.where(ribs, BONE_CORTEX - 200, hu)
    sternum = (np.abs(i) < 12) & (np.abs(j - (body_cj + body_b * 0.86)) < 6) & (t > 0.3)
    hu = np.where(sternum, BONE_MARROW + 100, hu)
    # findings
    lung_in = inner & lungs & ~vessels & ~tr
    if abnormal:
        extent = float(rng.uniform(*EXTENT_RANGE))
        hu, ggo, cons = _add_covid(rng, hu, lung_in, lung_dist, j, t, fraction=extent, dx=dx)
    else:
        frac = rng.uniform(*NORMAL_DEPENDENT)
        hu, ggo = _add_dependent(rng, hu, lung_in, lung_dist, j, fraction=frac, dx=dx)
        cons = np.zeros(shape, dtype=bool)
    hu = hu + rng.normal(0, rng.uniform(8, 20), shape).astype(np.float32)
    hu = np.clip(hu, -1024, 3071)
    affine = np.diag([-dx, dx, SLICE_MM, 1.0])
    affine[:3, 3] = [size / 2 * dx + rng.uniform(-30, 30), -size / 2 * dx + rng.uniform(-40, 10),
                     rng.choice([-1, 1]) * rng.uniform(300, 1600)]
    time_tag = f"{int(rng.integers(8, 20)):02d}{int(rng.integers(60)):02d}" \
               f"{int(rng.integers(60)):02d}.{int(rng.integers(1000)):03d}"
    fraction = float((ggo | cons).sum() / max(int(lung_in.sum()), 1))
    return ChestCT(hu=np.round(hu).astype(np.int16), affine=affine, time_tag=time_tag,
                   lesion_fraction=fraction, lung=lung_in, ggo=ggo & ~cons, consolidation=cons,
                   abnormal=abnormal)


def _add_covid(rng, hu, lung, lung_dist, j, t, *, fraction, dx):
    """GGO and consolidation over ``fraction`` of the lung, peripheral/posterior/basal first."""
    field = _shapes.smooth_noise(rng, hu.shape, scale=(25.0 / dx, 25.0 / dx, 2.0))
    bias = 1.2 * lung_dist + 0.4 * (-j / 100.0) + 0.5 * (1 - t)  # periphery, posterior, base
    score = field + bias
    vals = score[lung]
    if vals.size == 0:
        return hu, np.zeros(hu.shape, bool), np.zeros(hu.shape, bool)
    thr = np.quantile(vals, 1 - fraction)
    ggo = lung & (score > thr)
    core_thr = np.quantile(vals, 1 - fraction * rng.uniform(0.1, 0.4))
    cons = lung & (score > core_thr)
    ggo_hu = rng.uniform(-650, -400) + 80 * field
    hu = np.where(ggo, np.clip(ggo_hu, -700, -300), hu)
    hu = np.where(cons, rng.uniform(-80, 30), hu)
    return hu, ggo, cons


def _add_dependent(rng, hu, lung, lung_dist, j, *, fraction, dx):
    """Normal dependent (posterior, subpleural) density: a thin band of -600..-300 HU."""
    field = _shapes.smooth_noise(rng, hu.shape, scale=(15.0 / dx, 15.0 / dx, 2.0))
    score = 2.0 * lung_dist + 0.8 * (-j / 100.0) + 0.3 * field
    vals = score[lung]
    if vals.size == 0:
        return hu, np.zeros(hu.shape, bool)
    thr = np.quantile(vals, 1 - fraction)
    dep = lung & (score > thr)
    hu = np.where(dep, rng.uniform(-600, -300), hu)
    return hu, dep
