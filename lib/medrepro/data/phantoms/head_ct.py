"""RSNA intracranial-haemorrhage phantoms: DICOM CT slices and ``stage_2_train.csv``.

Layout (as the Kaggle competition ships it)::

    root/stage_2_train.csv            ID,Label  six rows per image, ID_<img>_<subtype>
    root/stage_2_train/ID_<9 hex>.dcm 512 x 512 CT Image Storage, Explicit VR Little Endian

Subtype row order per image: epidural, intraparenchymal, intraventricular, subarachnoid,
subdural, any (as in the real label file). Rows are sorted by image ID.

Studies: one patient -> one study -> one series of 3-7 consecutive axial slices 5 mm apart
(``PatientID``, ``StudyInstanceUID``, ``SeriesInstanceUID``, ``ImagePositionPatient`` z rising).
Encodings per study, as in the real set:

- ``int16``: BitsStored 16, PixelRepresentation 1, RescaleIntercept -1024, padding -2000 outside
  the scan circle, single-valued WindowCenter/Width ("30"/"80");
- ``uint12``: BitsStored 12, PixelRepresentation 0, RescaleIntercept -1024, multi-valued
  WindowCenter/Width with leading zeros (``00040\\00040``);
- ``quirk``: like ``uint12`` but RescaleIntercept ``1``: the stored values are HU modulo 4096,
  so the known correction (add 1000, subtract 4096 where >= 4096, intercept -1000) gives HU
  back exactly. About 10 % of studies (at least one), ``uint12`` about 20 % (at least one).

Anatomy (HU): air -1000, scalp +20..+60 with a fat layer, skull tables +1300..+1800 around
diploe +500..+800, cortex +36..+42 with sulci (CSF +4..+10), white matter +24..+30, lateral and
third ventricles (CSF), basal ganglia, falx; noise sd 3-6 HU. The level of each slice (skull base
to vertex) sets the head's cross-section and which structures appear.

Haemorrhages (blood +45..+90 HU), each a 3-D object spanning some of a study's slices:
epidural: biconvex lens at the inner table; subdural: crescent along the convexity; subarachnoid:
blood in the sulci of a sector, the interhemispheric fissure, basal cisterns on low slices;
intraventricular: dependent layering or cast in the lateral ventricles; intraparenchymal: rounded
irregular clot (basal ganglia or lobar) with a low-density oedema rim (+12..+22 HU).

Class mix: about half the studies are negative; positive studies get, in a fixed cycle so that
every subtype appears even in a 96-image set, IPH+IVH, SDH+SAH, then EDH, IPH, IVH, SAH, SDH,
then random single or double types. Images of double studies where both objects show carry TWO
subtypes (dropped by the single-type selection). About a third of all images are positive.

One file per dataset is deliberately corrupt (``CORRUPT_NOTE``): a negative slice truncated to
half its length, like the real ``ID_6431af929.dcm``; its label rows stay in the CSV. Its ID is in
the marker file (``.phantom.json``: ``corrupt_ids``).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medrepro.data.phantoms import _shapes
from medrepro.data.phantoms._common import PhantomError, build_atomically, map_ordered, rng_for
from medrepro.data.registry import RSNA_LABELS_CSV

SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
LABEL_COLUMNS = SUBTYPES + ("any",)
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMAGE_DIR = "stage_2_train"
CORRUPT_NOTE = "truncated to half its length (like the real ID_6431af929.dcm)"

SLICE_MM = 5.0
RENDER_DOWNSAMPLE = 2  # anatomy drawn at half resolution, upsampled, then noise at full
SLICES_PER_STUDY = (3, 7)  # inclusive
P_POSITIVE_STUDY = 0.5
# Positive studies cycle through these first (every subtype and two doubles early on).
TYPE_CYCLE = (("intraparenchymal", "intraventricular"), ("subdural", "subarachnoid"),
              ("epidural",), ("intraparenchymal",), ("intraventricular",), ("subarachnoid",),
              ("subdural",))
DOUBLES = (("intraparenchymal", "intraventricular"), ("subdural", "subarachnoid"),
           ("epidural", "subdural"), ("intraparenchymal", "subarachnoid"))
P_DOUBLE_LATER = 0.2
ENCODING_SHARE = {"quirk": 0.1, "uint12": 0.2}  # the rest int16
VENTRICLE_LEVELS = (0.32, 0.72)  # slice levels (0 skull base .. 1 vertex) showing ventricles

MIN_VISIBLE_MM2 = 4.0  # a haemorrhage smaller than this on a slice is neither drawn nor labelled
BLOOD_MIN_HU = 35.0  # separates clot from the oedema rim in the returned blood masks
AIR_HU, PADDING_HU = -1000, -3024  # PADDING_HU is stored -2000 with intercept -1024
QUIRK_INTERCEPT = 1


@dataclass
class _Lesion:
    kind: str
    level: float  # centre level (0..1)
    half_height: float  # in level units
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class _Study:
    index: int
    patient_id: str
    study_uid: str
    series_uid: str
    encoding: str
    levels: list[float]
    lesions: list[_Lesion]
    head: dict[str, float]


def make_rsna(root: str | os.PathLike, *, n_images: int, seed: int, size: int = 512) -> Path:
    """Write an RSNA-format phantom of ``n_images`` DICOM slices under ``root``; return ``root``.

    ``size``: rows = columns of every slice (512 in the real set; smaller for quick tests, the
    pixel spacing grows to keep the field of view). Deterministic by ``seed``; a complete
    folder made with the same arguments is left as is.
    """
    if n_images < 2 or size < 32:
        raise PhantomError(f"{root}: need n_images >= 2 and size >= 32 (got {n_images}, {size})")
    params = {"generator": "rsna", "n_images": int(n_images), "seed": int(seed), "size": int(size)}
    return build_atomically(root, params, lambda tmp: _write_rsna(tmp, n_images=int(n_images),
                                                                  seed=int(seed),
                                                                  size=int(size)))


def _render_file(task: tuple) -> tuple[bytes, set]:
    """One slice of :func:`_write_rsna`: ``(DICOM bytes, haemorrhage subtypes present)``;
    seeded by its own study and slice, so any process gives the same bytes."""
    seed, study, s, level, image_id, size = task
    rng = rng_for(seed, "rsna-slice", study.index, s)
    hu, blood = render_slice(rng, study, level, size=size)
    data = encode_dicom(hu, study=study, slice_index=s, image_id=image_id, size=size, rng=rng)
    return data, set(blood)


def _write_rsna(tmp: Path, *, n_images: int, seed: int, size: int) -> dict[str, Any]:
    studies = plan_studies(n_images, seed=seed)
    ids = _unique_hex(rng_for(seed, "rsna-ids"), n_images, 9)
    image_dir = tmp / IMAGE_DIR
    image_dir.mkdir(parents=True)
    labels: dict[str, dict[str, int]] = {}
    corrupt_slot = _pick_corrupt(studies, seed)
    tasks, k = [], 0
    for study in studies:
        for s, level in enumerate(study.levels):
            tasks.append((seed, study, s, level, f"ID_{ids[k]}", size))
            k += 1
    for task, (data, present) in zip(tasks, map_ordered(_render_file, tasks)):
        _, study, s, _, image_id, _ = task
        if (study.index, s) == corrupt_slot:
            data = data[: len(data) // 2]
        (image_dir / f"{image_id}.dcm").write_bytes(data)
        row = {t: int(t in present) for t in SUBTYPES}
        row["any"] = int(bool(present))
        labels[image_id] = row
    lines = ["ID,Label"]
    for image_id in sorted(labels):
        lines += [f"{image_id}_{col},{labels[image_id][col]}" for col in LABEL_COLUMNS]
    (tmp / RSNA_LABELS_CSV).write_text("\n".join(lines) + "\n")
    corrupt_id = None
    k = 0
    for study in studies:
        for s in range(len(study.levels)):
            if (study.index, s) == corrupt_slot:
                corrupt_id = f"ID_{ids[k]}"
            k += 1
    counts = {t: sum(r[t] for r in labels.values()) for t in LABEL_COLUMNS}
    return {"n_images": n_images, "n_studies": len(studies), "corrupt_ids": [corrupt_id],
            "corrupt_note": CORRUPT_NOTE, "positives": counts,
            "n_multi_subtype": sum(sum(r[t] for t in SUBTYPES) > 1 for r in labels.values()),
            "encodings": {e: sum(len(st.levels) for st in studies if st.encoding == e)
                          for e in ("int16", "uint12", "quirk")}}


def _pick_corrupt(studies: list[_Study], seed: int) -> tuple[int, int]:
    """A negative slice of a negative int16 study (or the first slice) to truncate."""
    rng = rng_for(seed, "rsna-corrupt")
    negative = [st for st in studies if not st.lesions and st.encoding == "int16"] or studies
    study = negative[int(rng.integers(len(negative)))]
    return study.index, int(rng.integers(len(study.levels)))


def _unique_hex(rng: np.random.Generator, n: int, digits: int) -> list[str]:
    seen: set[str] = set()
    out = []
    while len(out) < n:
        value = f"{int(rng.integers(0, 16 ** digits)):0{digits}x}"
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


# --------------------------------------------------------------------------------------------
# planning


def plan_studies(n_images: int, *, seed: int) -> list[_Study]:
    """Split ``n_images`` into studies and decide encodings, slice levels and haemorrhages."""
    rng = rng_for(seed, "rsna-plan")
    lengths = []
    left = n_images
    while left > 0:
        n = int(rng.integers(SLICES_PER_STUDY[0], SLICES_PER_STUDY[1] + 1))
        n = min(n, left)
        lengths.append(n)
        left -= n
    n_studies = len(lengths)
    encodings = np.array(["int16"] * n_studies, dtype=object)
    order = rng.permutation(n_studies)
    n_quirk = max(1, round(ENCODING_SHARE["quirk"] * n_studies))
    n_u12 = max(1, round(ENCODING_SHARE["uint12"] * n_studies)) if n_studies > 1 else 0
    encodings[order[:n_quirk]] = "quirk"
    encodings[order[n_quirk:n_quirk + n_u12]] = "uint12"
    # positive studies: every other one, starting at a random phase, so early studies cover all
    positive = np.zeros(n_studies, dtype=bool)
    n_pos = max(min(n_studies, len(TYPE_CYCLE)) if n_studies >= 2 else 1,
                round(P_POSITIVE_STUDY * n_studies))
    n_pos = min(n_pos, n_studies)
    positive[np.sort(rng.permutation(n_studies)[:n_pos])] = True
    ids = rng_for(seed, "rsna-study-ids")
    patients = _unique_hex(ids, n_studies, 8)
    study_uids = _unique_hex(ids, n_studies, 10)
    series_uids = _unique_hex(ids, n_studies, 10)
    studies = []
    k_pos = 0
    for i, n in enumerate(lengths):
        srng = rng_for(seed, "rsna-study", i)
        types: tuple[str, ...] = ()
        if positive[i]:
            if k_pos < len(TYPE_CYCLE):
                types = TYPE_CYCLE[k_pos]
            elif srng.random() < P_DOUBLE_LATER:
                types = DOUBLES[int(srng.integers(len(DOUBLES)))]
            else:
                types = (SUBTYPES[int(srng.integers(len(SUBTYPES)))],)
            k_pos += 1
        step = SLICE_MM / 150.0  # level units per slice (head ~150 mm high)
        if "intraventricular" in types:
            lo, hi = VENTRICLE_LEVELS[0] + 0.02, VENTRICLE_LEVELS[1] - 0.02 - step * (n - 1)
        else:
            lo, hi = 0.18, 0.85 - step * (n - 1)
        start = srng.uniform(lo, max(lo, hi))
        levels = [start + step * s for s in range(n)]
        anchor = levels[int(srng.integers(n))]
        lesions = [_plan_lesion(srng, kind, anchor, step) for kind in types]
        head = {"a": srng.uniform(80, 92), "b": srng.uniform(63, 72), "angle": srng.normal(0, 0.06),
                    "skull": srng.uniform(5, 8), "scalp": srng.uniform(3, 7),
                    "shift_r": srng.normal(0, 4), "shift_c": srng.normal(0, 3),
                    "spacing": srng.uniform(0.42, 0.49), "ventricle": srng.uniform(0.7, 1.4),
                    "sulci_seed": int(srng.integers(2 ** 31)), "rest_gap": srng.uniform(3, 15),
                    "rest_hu": srng.uniform(-200, 250)}
        studies.append(_Study(index=i, patient_id=f"ID_{patients[i]}",
                              study_uid=f"ID_{study_uids[i]}", series_uid=f"ID_{series_uids[i]}",
                              encoding=str(encodings[i]), levels=levels, lesions=lesions,
                              head=head))
    return studies


def _plan_lesion(rng: np.random.Generator, kind: str, anchor: float, step: float) -> _Lesion:
    half = step * rng.uniform(0.8, 3.0)
    p: dict[str, float] = {"hu": rng.uniform(55, 88), "theta": rng.uniform(-np.pi, np.pi)}
    if kind == "epidural":
        p.update(length=rng.uniform(25, 45), thickness=rng.uniform(6, 16))
        p["theta"] = rng.choice([-1, 1]) * rng.uniform(0.25 * np.pi, 0.75 * np.pi)  # lateral
    elif kind == "subdural":
        p.update(length=rng.uniform(60, 120), thickness=rng.uniform(3, 12), hu=rng.uniform(45, 78))
        half = step * rng.uniform(1.5, 4.0)
    elif kind == "subarachnoid":
        p.update(span=rng.uniform(0.5, 1.6), hu=rng.uniform(45, 70),
                 fissure=float(rng.random() < 0.5))
    elif kind == "intraventricular":
        p.update(level_frac=rng.uniform(0.3, 0.8), cast=float(rng.random() < 0.3),
                 hu=rng.uniform(50, 80))
    elif kind == "intraparenchymal":
        deep = rng.random() < 0.6
        p.update(radius=rng.uniform(5, 20), rim=rng.uniform(2, 7), rim_hu=rng.uniform(12, 22),
                 deep=float(deep), side=float(rng.choice([-1, 1])),
                 pos_r=rng.uniform(-0.5, 0.5), pos_c=rng.uniform(0.25, 0.6),
                 hu=rng.uniform(60, 90))
    return _Lesion(kind=kind, level=anchor + rng.uniform(-0.4, 0.4) * step, half_height=half,
                   params=p)


# --------------------------------------------------------------------------------------------
# rendering


def render_slice(rng: np.random.Generator, study: _Study, level: float, *,
                 size: int = 512) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One axial head-CT slice and its haemorrhages.

    Returns the HU image (int16 (size, size), rows anterior -> posterior, columns patient right
    -> left; -3024 outside the scan circle) and ``{subtype: blood mask}`` (bool (size, size))
    for each subtype visible on the slice (an empty dict for a negative slice).
    """
    h = study.head
    work = size // RENDER_DOWNSAMPLE if size >= 256 else size  # drawn coarser, then upsampled
    spacing = h["spacing"] * 512 / work  # mm per pixel of the drawing grid
    shape = (work, work)
    f = float(np.sqrt(max(0.05, 1 - ((level - 0.45) / 0.62) ** 2)))  # cross-section scale
    a, b = h["a"] * f, h["b"] * f  # brain semi-axes, mm (AP, LR)
    center = (work / 2 + h["shift_r"] / spacing, work / 2 + h["shift_c"] / spacing)
    rows, cols = _shapes.grid(shape)
    cos, sin = np.cos(h["angle"]), np.sin(h["angle"])
    dr, dc = (rows - center[0]) * spacing, (cols - center[1]) * spacing  # mm
    u = (cos * dr + sin * dc) / a
    v = (-sin * dr + cos * dc) / b
    rr = np.sqrt(u * u + v * v) + 1e-6
    grad = np.sqrt((u / a) ** 2 + (v / b) ** 2) / rr
    sd = ((rr - 1) / grad).astype(np.float32)  # signed distance to the inner table, mm (<0 inside)
    phi = np.arctan2(v, u).astype(np.float32)  # 0 = anterior, +-pi/2 lateral
    lateral = (v * b).astype(np.float32)  # mm from the midline (signed)
    axial = (u * a).astype(np.float32)  # mm from the centre along AP (+ posterior)
    hu = np.full(shape, float(AIR_HU), dtype=np.float32)
    skull, scalp = h["skull"], h["scalp"]
    # head rest: a curved plastic shell under the back of the head
    rest = np.abs(sd - (skull + scalp + h["rest_gap"])) < 1.5
    hu = np.where(rest & (axial > 0.35 * a), h["rest_hu"], hu)
    hu = np.where(sd <= skull + scalp, rng.uniform(25, 55), hu)
    hu = np.where((sd > skull + 0.6 * scalp) & (sd <= skull + scalp - 1.0), rng.uniform(-100, -60),
                  hu)  # subcutaneous fat
    table = rng.uniform(1300, 1800)
    diploe = rng.uniform(500, 800)
    bone = np.where((sd > 1.8) & (sd < skull - 1.8), diploe, table)
    hu = np.where((sd > 0) & (sd <= skull), bone, hu)
    # brain: white matter, cortex ribbon, sulci
    srng = np.random.default_rng(h["sulci_seed"])
    sulcal = np.abs(_shapes.smooth_noise(srng, shape, scale=5.0 / spacing))
    wm, gm, csf = rng.uniform(24, 30), rng.uniform(36, 42), rng.uniform(4, 10)
    brain = sd <= 0
    cortex = brain & ((sd > -3.5) | ((sulcal < 0.45) & (sd > -22)))
    sulci = brain & ((sd > -0.8) | ((sulcal < 0.1) & (sd > -20)))
    hu = np.where(brain, wm, hu)
    hu = np.where(cortex, gm, hu)
    hu = np.where(sulci, csf, hu)
    fissure = brain & (np.abs(lateral) < 1.2) & (np.abs(axial) > 0.35 * a)
    hu = np.where(fissure, csf, hu)
    hu = np.where(brain & (np.abs(lateral) < 0.5) & (np.abs(axial) > 0.4 * a), 45.0, hu)  # falx
    vent = _ventricles(level, h, lateral, axial, a)
    if 0.25 < level < 0.5:  # basal ganglia / thalami
        bg = ((np.abs(lateral) - 16) / 7) ** 2 + ((axial + 2) / 14) ** 2 < 1
        hu = np.where(bg & brain & ~vent, gm - 2, hu)
    hu = np.where(vent, csf, hu)
    blood: dict[str, np.ndarray] = {}
    for lesion in study.lesions:
        z = (level - lesion.level) / lesion.half_height
        if abs(z) >= 1:
            continue
        taper = float(np.sqrt(1 - z * z))
        mask, value = _haemorrhage(rng, lesion, taper, sd=sd, phi=phi, lateral=lateral,
                                   axial=axial, vent=vent, sulci=sulci, brain=brain, a=a, b=b,
                                   spacing=spacing, level=level)
        if mask is not None and mask.sum() * spacing ** 2 > MIN_VISIBLE_MM2:
            hu = np.where(mask, value, hu)
            blood[lesion.kind] = blood.get(lesion.kind, False) | (mask & (value > BLOOD_MIN_HU))
    if work != size:
        hu = ndimage.zoom(hu, size / work, order=1, grid_mode=True, mode="nearest")
        blood = {k: ndimage.zoom(m, size / work, order=0, grid_mode=True, mode="nearest")
                 for k, m in blood.items()}
    hu = hu + rng.normal(0, rng.uniform(3, 6), hu.shape).astype(np.float32)
    # scan circle: outside it the scanner writes padding
    rows, cols = _shapes.grid((size, size))
    fov = ((rows - size / 2 + 0.5) ** 2 + (cols - size / 2 + 0.5) ** 2) > (size / 2) ** 2
    hu = np.where(fov, PADDING_HU, hu)
    return np.round(hu).astype(np.int16), blood


def _ventricles(level: float, h: dict[str, float], lateral: np.ndarray, axial: np.ndarray,
                a: float) -> np.ndarray:
    lo, hi = VENTRICLE_LEVELS
    if not lo < level < hi:
        return np.zeros(lateral.shape, dtype=bool)
    t = (level - lo) / (hi - lo)
    scale = h["ventricle"] * np.sin(np.pi * t) ** 0.5
    out = np.zeros(lateral.shape, dtype=bool)
    for side in (-1, 1):
        # lateral ventricle body: an elongated ellipse, frontal horns diverging
        ang = side * 0.25
        x = lateral - side * 9 * scale
        y = axial + 4
        p = (np.cos(ang) * y + np.sin(ang) * x) / (0.32 * a)
        q = (-np.sin(ang) * y + np.cos(ang) * x) / (3.0 * scale + 1.2)
        out |= p * p + q * q < 1
    if level < 0.5:  # third ventricle: a midline slit
        out |= (np.abs(lateral) < 1.5 * scale + 0.5) & (np.abs(axial - 2) < 12)
    return out


def _haemorrhage(rng: np.random.Generator, lesion: _Lesion, taper: float, *, sd, phi, lateral,
                 axial, vent, sulci, brain, a, b, spacing, level):
    """(mask, HU image) of one haemorrhage on this slice; mask None when nothing shows."""
    p = lesion.params
    radius_mm = 0.5 * (a + b)
    dphi = np.mod(phi - p["theta"] + np.pi, 2 * np.pi) - np.pi  # wrapped angle difference
    arc = np.abs(dphi) * radius_mm  # mm along the convexity
    depth = -sd  # mm inside the inner table
    shape = sd.shape
    texture = rng.normal(0, 2.5, shape).astype(np.float32)
    if lesion.kind == "epidural":
        half_len = p["length"] * (0.5 + 0.5 * taper)
        thick = p["thickness"] * taper * np.clip(1 - (arc / half_len) ** 2, 0, 1)
        mask = brain & (depth < thick)
        return mask, p["hu"] + texture
    if lesion.kind == "subdural":
        half_len = p["length"] * (0.6 + 0.4 * taper)
        thick = p["thickness"] * (0.4 + 0.6 * taper) * np.clip(np.cos(0.5 * np.pi * arc / half_len),
                                                               0, 1)
        mask = brain & (depth < thick) & (arc < half_len)
        return mask, p["hu"] + texture
    if lesion.kind == "subarachnoid":
        sector = np.abs(dphi) < p["span"] * (0.5 + 0.5 * taper)
        mask = sulci & sector & (depth < 22)
        if p["fissure"]:
            mask |= brain & (np.abs(lateral) < 1.6) & (np.abs(axial) > 0.3 * a)
        if level < 0.3:  # basal cisterns around the midbrain
            ring = np.sqrt((lateral / 14) ** 2 + ((axial - 3) / 12) ** 2)
            mask |= brain & (ring > 0.8) & (ring < 1.15)
        return mask, p["hu"] + texture
    if lesion.kind == "intraventricular":
        if not vent.any():
            return None, None
        if p["cast"]:
            mask = vent
        else:
            rows = np.nonzero(vent)[0]
            cut = rows.min() + (1 - p["level_frac"] * taper) * (rows.max() - rows.min())
            mask = vent & (np.arange(shape[0])[:, None] >= cut)  # dependent (posterior) part
        return mask, p["hu"] + texture
    if lesion.kind == "intraparenchymal":
        r = p["radius"] * (0.3 + 0.7 * taper)
        if p["deep"]:
            c_lat, c_ax = p["side"] * 25.0, 0.0
        else:
            c_lat, c_ax = p["side"] * p["pos_c"] * b, p["pos_r"] * a
        dist = np.sqrt((lateral - c_lat) ** 2 + (axial - c_ax) ** 2)
        lump = 1 + 0.15 * np.sin(3 * np.arctan2(axial - c_ax, lateral - c_lat) + p["theta"])
        clot = brain & ~vent & (dist < r * lump)
        rim = brain & ~vent & (dist < r * lump + p["rim"]) & ~clot
        value = np.where(clot, p["hu"] + texture, p["rim_hu"] + texture)
        return (clot | rim), value
    raise PhantomError(f"unknown haemorrhage subtype {lesion.kind!r}")


# --------------------------------------------------------------------------------------------
# DICOM encoding


def encode_dicom(hu: np.ndarray, *, study: _Study, slice_index: int, image_id: str, size: int,
                 rng: np.random.Generator) -> bytes:
    """The DICOM file bytes of one slice (HU int16 (size, size)) in the study's encoding."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    h = study.head
    spacing = h["spacing"] * 512 / size
    if study.encoding == "int16":
        raw = (hu.astype(np.int32) + 1024).astype(np.int16)  # padding -3024 HU -> -2000
        bits, rep, intercept = 16, 1, "-1024"
        center, width = "30", "80"
        meta_uid = f"1.2.840.4267.32.{int(rng.integers(10 ** 17, 10 ** 18))}{slice_index:02d}"
    elif study.encoding == "uint12":
        raw = np.clip(hu.astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
        bits, rep, intercept = 12, 0, "-1024"
        center, width = ["00040", "00040"], ["00080", "00080"]
        meta_uid = f"9999.{int(rng.integers(10 ** 17, 10 ** 18))}{slice_index:02d}"
    elif study.encoding == "quirk":
        # stored = HU mod 4096 (HU >= -1000): the known correction recovers HU exactly
        raw = np.mod(np.maximum(hu.astype(np.int32), AIR_HU), 4096).astype(np.uint16)
        bits, rep, intercept = 12, 0, str(QUIRK_INTERCEPT)
        center, width = ["00036", "00036"], ["00080", "00080"]
        meta_uid = f"9999.{int(rng.integers(10 ** 17, 10 ** 18))}{slice_index:02d}"
    else:
        raise PhantomError(f"unknown DICOM encoding {study.encoding!r}")
    fov_mm = spacing * size
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.40.0.13.1.1.1"
    meta.ImplementationVersionName = "dcm4che-1.4.35"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the real set's 'ID_...' UIDs are invalid
        meta.MediaStorageSOPInstanceUID = meta_uid
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = image_id
        ds.Modality = "CT"
        ds.PatientID = study.patient_id
        ds.StudyInstanceUID = study.study_uid
        ds.SeriesInstanceUID = study.series_uid
        ds.StudyID = ""
        z = 40.0 + 150.0 * study.levels[slice_index]
        ds.ImagePositionPatient = [f"{-fov_mm / 2:.6f}", f"{-fov_mm / 2 + h['shift_r']:.6f}",
                                   f"{z:.6f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = size
        ds.Columns = size
        ds.PixelSpacing = [f"{spacing:.6f}", f"{spacing:.6f}"]
        ds.BitsAllocated = 16
        ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = rep
        ds.WindowCenter = center
        ds.WindowWidth = width
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = "1"
        ds.PixelData = raw.astype("<i2" if rep else "<u2").tobytes()
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
