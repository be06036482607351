"""Brain-tumour MRI phantoms in the two Kaggle layouts (Masoud: grayscale JPEGs; Sartaj: RGB).

Anatomy: slices of the MNI152 2009a 1 mm T1/GM/WM templates that nilearn ships offline
(skull-stripped), cut axially, coronally or sagittally, rendered with one of four contrasts (T1,
T1+contrast, T2, FLAIR) from the tissue maps, with CSF, skull (cortical tables and marrow) and
scalp added around the brain, the sella (bony cup, gland, sphenoid sinus) on slices through it,
a random pose (rotation, scale, shift, mirror), a smooth bias field, Rician noise, gamma and JPEG
compression. Image sizes scatter around ``size`` like the real sets: most exactly ``size`` x
``size``, the rest one of the real odd sizes scaled by ``size / 512``.

Acquisition mix per class, biased the way the real sets are (their tumour images come mostly
from the figshare set - T1+contrast, 512 x 512, pituitary cases sagittal/coronal - and their
"no tumour" images from other sources - mostly axial, any contrast, odd sizes): see
``PLANE_P``, ``CONTRAST_P``, ``SQUARE_FRACTION``. The mixes overlap; no single cue gives the
class away.

Lesions by class (sizes uniform in the ranges, overlapping between classes):

- glioma: intra-axial (centred in white matter), irregular border, radius 25-45 mm;
  ring-enhancing with a necrotic core, heterogeneous solid, or low-grade homogeneous; vasogenic
  oedema around it.
- meningioma: extra-axial, dural-based on the brain surface, radius 24-36 mm, well circumscribed,
  homogeneous, strongly enhancing on T1+C, sometimes a dural tail.
- pituitary: at the sella (midline, below the hypothalamus), 28-40 mm across, widening the sella,
  with a suprasellar ("snowman") extension when large.
- notumor: none. Every class shows the normal gland and the sphenoid sinus when the slice passes
  through the sella, and 10 % of the other classes' slices are cut there, so location alone does
  not give the class away.

Every lesion stands out from the tissue around it in all four contrasts (hypointense on T1,
enhancing on T1+C, bright on T2 and FLAIR) and every one is large (radius >= 24 mm; an
adenoma >= 28 mm across: larger than most real ones, so that the demo's models, which see the
images at 64 x 64 px, where a 15 mm radius is ~4 px, learn them in their few epochs; see
Difficulty). On the real sets some tumours are nearly invisible on some sequences; smaller,
iso-intense lesions left the demo's models at chance.

Difficulty (chance = 0.25): with a few hundred images learnt from scratch, the pose, plane and
contrast mix is the hard part; expect demo-profile models to land well below the papers' numbers
on phantoms: the phantom shows the pipeline works, it is not an easy benchmark. Accuracy rises
with the training-set size; glioma/meningioma and meningioma/notumor are the usual confusions.
The measured difficulty of each version: ``docs/decisions.md#x3``. :func:`measure_difficulty`
measures it again (logistic regression and a small CNN)::

    .venv/bin/python -m medrepro.data.phantoms.brain_mri 100   # 100 images per class

Planted duplicates (the leakage audit must find them; listed in the marker file
``.phantom.json`` under ``planted_duplicates``): ``max(2, n_train_total // 100)`` byte-identical
copies inside Training (same class, another name) and ``max(2, n_test_total // 50)`` Testing
files that are byte copies of Training files of the same class - 2 + 2 at the smoke size, 2 + 2
at demo (240 train / 60 test), 57 + 26 at the paper size. Duplicates replace generated files,
so every class folder holds exactly the requested number of files. No duplicate spans two
classes (the real sets have none).

Lesion masks (the drawn lesion and the brain, posed like each image; empty lesion for
``notumor``; a planted duplicate gets its source's) go to ``.masks/lesion_masks.npz``, outside
the class folders (:mod:`medrepro.data.phantoms._masks`), for scoring explanation maps.

File names follow the real sets: Masoud ``Tr-gl_0010.jpg`` (0-based; the first ten of each
class are ``Tr-glTr_0000.jpg``..``Tr-glTr_0009.jpg``, as in the official Testing split), Sartaj
``gg (1).jpg``, ``m (2).jpg``/``m1(2).jpg``/``m2 (1).jpg``/``m3 (1).jpg``, ``1.jpg``..,
``image (4).jpg``, ``image(1).jpg``, ``p (1).jpg``; Testing ``image.jpg``, ``image(1).jpg``...
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from medrepro.data.phantoms import _shapes
from medrepro.data.phantoms._common import PhantomError, build_atomically, map_ordered, rng_for
from medrepro.data.phantoms._masks import MaskCollector

LAYOUTS = ("masoud", "sartaj")
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")  # the phantom's class keys
MASOUD_DIRS = {"glioma": "glioma", "meningioma": "meningioma", "notumor": "notumor",
               "pituitary": "pituitary"}
MASOUD_PREFIX = {"glioma": "gl", "meningioma": "me", "notumor": "no", "pituitary": "pi"}
SARTAJ_DIRS = {"glioma": "glioma_tumor", "meningioma": "meningioma_tumor",
               "notumor": "no_tumor", "pituitary": "pituitary_tumor"}
SPLITS = {"train": "Training", "test": "Testing"}

TEMPLATE_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"  # in nilearn/datasets/data
CANVAS_MM = 256  # the 1 mm working grid each slice is rendered on before posing
SELLA_VOXEL = (98.0, 132.0, 44.0)  # (i, j, k) of the sella turcica in the MNI152 1 mm grid
NEAR_SELLA_MM = 6.0  # a slice closer than this to the sella shows the gland
PLANES = ("axial", "coronal", "sagittal")
# Acquisition mix per class (axial, coronal, sagittal) and (t1, t1c, t2, flair), biased like the
# real sets: their tumour images come mostly from the figshare set (T1+contrast, 512 x 512;
# pituitary cases sagittal/coronal) and their "no tumour" images from other sources (mostly
# axial, any contrast, odd sizes). The mixes overlap, so no single cue gives the class away.
PLANE_P = {"glioma": (0.50, 0.25, 0.25), "meningioma": (0.35, 0.35, 0.30),
           "notumor": (0.60, 0.20, 0.20), "pituitary": (0.15, 0.45, 0.40)}
CONTRAST_P = {"glioma": (0.05, 0.70, 0.10, 0.15), "meningioma": (0.05, 0.80, 0.10, 0.05),
              "notumor": (0.30, 0.10, 0.45, 0.15), "pituitary": (0.15, 0.80, 0.05, 0.00)}
GLIOMA_MM = (25.0, 45.0)  # glioma radius range (uniform), each axis then scaled by 0.7-1.3
MENINGIOMA_MM = (24.0, 36.0)  # meningioma radius range (uniform)
# Slice index range per plane in the MNI152 1 mm grid, for slices not cut through the sella.
SLICE_RANGE = {"axial": (30, 150), "coronal": (40, 200), "sagittal": (25, 172)}
P_NEAR_SELLA_OTHER = 0.1  # share of non-pituitary images cut through the sella region
MIN_BRAIN_MM2 = 4000  # a slice must cut at least this much brain
ADENOMA_MM = (28.0, 40.0)  # adenoma diameter range (uniform); the gland is ~10 x 7 mm
# Where the sphenoid sinus lies from the sella on each plane's canvas (rows down, cols): in
# front of it on axial slices, under it on coronal ones, in front of and under it sagittally.
SINUS_SHIFT_MM = {"axial": (-13.0, 0.0), "coronal": (14.0, 0.0), "sagittal": (10.0, 9.0)}

# Share of images exactly size x size per class (real Masoud: 60 % overall, tumours mostly
# 512); the rest take one of the real sets' odd sizes below, scaled by size / 512.
SQUARE_FRACTION = {"glioma": 0.85, "meningioma": 0.8, "notumor": 0.3, "pituitary": 0.85}
ODD_SIZES = ((225, 225), (236, 236), (227, 222), (201, 251), (232, 217), (630, 630),
             (300, 168), (442, 442), (428, 417), (256, 256), (359, 449), (642, 361),
             (350, 350), (554, 554), (455, 500), (380, 530))

# Tissue intensities per contrast, before per-image jitter (arbitrary units, ~[0, 1]).
CONTRASTS = {
    "t1": {"csf": .12, "gm": .45, "wm": .70, "fat": .95, "marrow": .75, "bone": .04, "skin": .40, "oedema": .36,
               "solid": .25, "necrosis": .08, "rim": .30, "menin": .22, "adenoma": .22, "gland": .50, "sinus": .02},
    "t1c": {"csf": .12, "gm": .45, "wm": .70, "fat": .95, "marrow": .75, "bone": .04, "skin": .42, "oedema": .36,
                "solid": .60, "necrosis": .10, "rim": .98, "menin": .95, "adenoma": .90, "gland": .80, "sinus": .02},
    "t2": {"csf": .95, "gm": .55, "wm": .40, "fat": .70, "marrow": .55, "bone": .03, "skin": .30, "oedema": .85,
               "solid": .75, "necrosis": .95, "rim": .80, "menin": .88, "adenoma": .88, "gland": .50, "sinus": .02},
    "flair": {"csf": .10, "gm": .60, "wm": .45, "fat": .75, "marrow": .55, "bone": .03, "skin": .32, "oedema": .90,
                  "solid": .80, "necrosis": .30, "rim": .85, "menin": .90, "adenoma": .90, "gland": .55,
                  "sinus": .02},
}
CONTRAST_NAMES = tuple(CONTRASTS)
CONTRAST_JITTER = 0.04  # std of the per-image, per-tissue intensity jitter



@dataclass(frozen=True)
class _Template:
    t1: np.ndarray  # (197, 233, 189) float32 [0, 1], axes (x: R->L?, y: P->A, z: I->S)
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray  # bool, filled brain mask


_TEMPLATE: _Template | None = None  # set in worker processes by _use_template


def load_template() -> _Template:
    """The MNI152 templates (:func:`_load_template`), or the ones handed to this worker."""
    return _TEMPLATE if _TEMPLATE is not None else _load_template()


@functools.lru_cache(maxsize=1)
def _load_template() -> _Template:
    """The MNI152 (2009a, 1 mm) T1, GM and WM templates that nilearn ships, loaded once per process.

    Read straight from nilearn's bundled files with nibabel and scaled to [0, 1], which gives
    exactly what ``nilearn.datasets.load_mni152_template`` / ``_gm_`` / ``_wm_template
    (resolution=1)`` return without importing ``nilearn.datasets`` (several seconds); those
    functions are the fallback when the files are not where nilearn keeps them.
    """
    arrays = _read_bundled_templates()
    if arrays is None:
        from nilearn import datasets

        arrays = [np.asarray(load(resolution=1).dataobj, dtype=np.float32) for load in (
            datasets.load_mni152_template, datasets.load_mni152_gm_template,
            datasets.load_mni152_wm_template)]
    t1, gm, wm = arrays
    brain = ndimage.binary_closing(t1 > 0.08, iterations=2)
    brain = ndimage.binary_fill_holes(brain)
    return _Template(t1=t1, gm=gm, wm=wm, brain=brain)


def _read_bundled_templates() -> list[np.ndarray] | None:
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    out = []
    for kind in ("t1", "gm", "wm"):
        path = folder / TEMPLATE_FILE.format(kind)
        if not path.is_file():
            return None
        data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        out.append(data / max(float(data.max()), 1e-6))
    return out


# --------------------------------------------------------------------------------------------
# public entry point


def make_mri(root: str | os.PathLike, *, layout: str = "masoud", n_per_class: int, seed: int,
             n_test_per_class: int | None = None, size: int = 512) -> Path:
    """Write a brain-tumour MRI phantom in a Kaggle layout under ``root``; return ``root``.

    ``layout``: ``"masoud"`` (``Training|Testing/{glioma,meningioma,notumor,pituitary}/``,
    8-bit grayscale JPEGs) or ``"sartaj"`` (``.../{glioma_tumor,...}/``, RGB JPEGs).
    ``n_per_class`` Training images per class, ``n_test_per_class`` Testing images per class
    (default ``max(1, n_per_class // 4)``). ``size``: the usual image side in pixels.
    Deterministic by ``seed``; a complete folder made with the same arguments is left as is.
    """
    if layout not in LAYOUTS:
        raise PhantomError(f"{root}: unknown MRI layout {layout!r}; expected one of {LAYOUTS}")
    if n_test_per_class is None:
        n_test_per_class = max(1, n_per_class // 4)
    if n_per_class < 1 or n_test_per_class < 1 or size < 32:
        raise PhantomError(f"{root}: need n_per_class >= 1, n_test_per_class >= 1, size >= 32 "
                           f"(got {n_per_class}, {n_test_per_class}, {size})")
    params = {"generator": "mri", "layout": layout, "n_per_class": int(n_per_class),
                  "n_test_per_class": int(n_test_per_class), "seed": int(seed), "size": int(size)}
    counts = {"train": int(n_per_class), "test": int(n_test_per_class)}
    return build_atomically(root, params,
                            lambda tmp: _write_mri(tmp, layout=layout, counts=counts,
                                                   seed=int(seed), size=int(size)))


def _write_mri(tmp: Path, *, layout: str, counts: dict[str, int], seed: int,
               size: int) -> dict[str, Any]:
    dups = plan_duplicates(counts, seed=seed, layout=layout)
    copies = {d["copy"]: d["original"] for d in dups}
    names = {(split, cls): file_names(layout, split, cls, counts[split])
             for split in SPLITS for cls in CLASSES}
    masks = MaskCollector()
    todo = []  # every generated (not copied) file, in a fixed order
    for split, split_dir in SPLITS.items():
        for cls in CLASSES:
            folder = tmp / split_dir / _class_dir(layout, cls)
            folder.mkdir(parents=True, exist_ok=True)
            todo += [(folder / name, (seed, layout, split, cls, idx, size))
                     for idx, name in enumerate(names[(split, cls)])
                     if (split, cls, idx) not in copies]
    # worker processes get the loaded template instead of reading it again (~8 s each)
    rendered = map_ordered(_render_file, [task for _, task in todo],
                           initializer=_use_template, initargs=(load_template(),))
    for (path, _), (jpeg, lesion, brain) in zip(todo, rendered):
        path.write_bytes(jpeg)
        masks.add(path.relative_to(tmp).as_posix(), lesion=lesion, region=brain)
    for (split, cls, idx), (o_split, o_cls, o_idx) in copies.items():  # originals all exist now
        src = tmp / SPLITS[o_split] / _class_dir(layout, o_cls) / names[(o_split, o_cls)][o_idx]
        dst = tmp / SPLITS[split] / _class_dir(layout, cls) / names[(split, cls)][idx]
        dst.write_bytes(src.read_bytes())
        masks.copy(dst.relative_to(tmp).as_posix(), src.relative_to(tmp).as_posix())
    masks.save(tmp)  # .masks/lesion_masks.npz: outside every class folder
    planted = [{"original": "/".join((SPLITS[d["original"][0]],
                                      _class_dir(layout, d["original"][1]),
                                      names[d["original"][:2]][d["original"][2]])),
                "copy": "/".join((SPLITS[d["copy"][0]], _class_dir(layout, d["copy"][1]),
                                  names[d["copy"][:2]][d["copy"][2]]))} for d in dups]
    return {"planted_duplicates": planted,
            "n_within_train_duplicates": sum(d["copy"][0] == "train" for d in dups),
            "n_cross_split_duplicates": sum(d["copy"][0] == "test" for d in dups)}


def _use_template(template: _Template) -> None:
    """Worker-process initializer of :func:`_write_mri`: ``template`` as the loaded one."""
    global _TEMPLATE
    _TEMPLATE = template


def _render_file(task: tuple) -> tuple[bytes, np.ndarray, np.ndarray]:
    """One generated file of :func:`_write_mri`: ``(jpeg, lesion mask, brain mask)``; its
    generator is seeded by the file's own key, so any process gives the same bytes."""
    seed, layout, split, cls, idx, size = task
    rng = rng_for(seed, "mri", layout, split, cls, idx)
    jpeg, drawn = render_jpeg(rng, cls, layout=layout, size=size, return_masks=True)
    return jpeg, drawn["lesion"], drawn["brain"]


def _class_dir(layout: str, cls: str) -> str:
    return (MASOUD_DIRS if layout == "masoud" else SARTAJ_DIRS)[cls]


# --------------------------------------------------------------------------------------------
# names and duplicates


def file_names(layout: str, split: str, cls: str, n: int) -> list[str]:
    """The ``n`` file names of one class folder, in generation order, as the real sets name them."""
    if layout == "masoud":
        prefix = f"{'Tr' if split == 'train' else 'Te'}-{MASOUD_PREFIX[cls]}"
        return [f"{prefix}Tr_{i:04d}.jpg" if i < 10 else f"{prefix}_{i:04d}.jpg" for i in range(n)]
    if split == "test":
        return ["image.jpg"] + [f"image({i}).jpg" for i in range(1, n)]
    groups = {  # (pattern, share of the real folder, first number)
        "glioma": [("gg ({}).jpg", 1.0, 1)],
        "pituitary": [("p ({}).jpg", 1.0, 1)],
        "meningioma": [("m ({}).jpg", 200, 2), ("m1({}).jpg", 199, 2), ("m2 ({}).jpg", 177, 1),
                       ("m3 ({}).jpg", 246, 1)],
        "notumor": [("{}.jpg", 8, 1), ("image.jpg", 1, 0), ("image ({}).jpg", 61, 4),
                    ("image({}).jpg", 325, 1)],
    }[cls]
    shares = np.array([g[1] for g in groups], dtype=float)
    sizes = _allocate(n, shares)
    names: list[str] = []
    for (pattern, _, first), k in zip(groups, sizes):
        if "{}" not in pattern:
            k = min(k, 1)
            names += [pattern] * k
        else:
            names += [pattern.format(first + i) for i in range(k)]
    while len(names) < n:  # when a fixed single name had to give its place back
        names.append(f"image({len(names) + 1000}).jpg")
    return names


def _allocate(n: int, shares: np.ndarray) -> list[int]:
    """Split ``n`` into integer parts proportional to ``shares`` (largest remainder)."""
    raw = n * shares / shares.sum()
    parts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - parts), kind="stable")[: n - parts.sum()]:
        parts[i] += 1
    return parts.tolist()


def plan_duplicates(counts: dict[str, int], *, seed: int, layout: str) -> list[dict[str, tuple]]:
    """Which files are byte copies of which: a list of ``{"original": key, "copy": key}``.

    Keys are ``(split, class, index)``. Within Training: ``max(2, n_train_total // 100)``
    copies; Testing copies of Training files: ``max(2, n_test_total // 50)``. Same class always.
    Originals are never copies themselves.
    """
    rng = rng_for(seed, "mri-duplicates", layout)
    n_within = max(2, counts["train"] * len(CLASSES) // 100)
    n_cross = max(2, counts["test"] * len(CLASSES) // 50)
    used: set[tuple] = set()
    plan = []
    for kind, n in (("train", n_within), ("test", n_cross)):
        for _ in range(n):
            cls = CLASSES[int(rng.integers(len(CLASSES)))]
            if kind == "train" and counts["train"] < 2:
                break
            for _attempt in range(50):
                orig = ("train", cls, int(rng.integers(counts["train"])))
                copy = (kind, cls, int(rng.integers(counts[kind])))
                if orig != copy and copy not in used and orig not in used and \
                        not any(p["copy"] == orig for p in plan):
                    used.update({copy})
                    plan.append({"original": orig, "copy": copy})
                    break
    return plan


# --------------------------------------------------------------------------------------------
# rendering


def render_jpeg(rng: np.random.Generator, cls: str, *, layout: str, size: int,
                return_masks: bool = False):
    """One phantom MRI as JPEG bytes (mode L for Masoud, RGB for Sartaj).

    With ``return_masks`` also the masks of :func:`render_image` (same bytes either way)."""
    shape = pick_shape(rng, cls, size=size)
    image, masks = render_image(rng, cls, shape=shape, return_masks=True)  # (H, W) uint8
    pil = Image.fromarray(image, mode="L")
    if layout == "sartaj":
        pil = pil.convert("RGB")
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(rng.integers(82, 96)))
    return (buf.getvalue(), masks) if return_masks else buf.getvalue()


def pick_shape(rng: np.random.Generator, cls: str, *, size: int) -> tuple[int, int]:
    """(H, W) of one image of class ``cls``: ``size`` x ``size`` or a real odd size scaled."""
    if rng.random() < SQUARE_FRACTION[cls]:
        return (size, size)
    w, h = ODD_SIZES[int(rng.integers(len(ODD_SIZES)))]
    scale = size / 512
    return (max(32, round(h * scale)), max(32, round(w * scale)))


def render_image(rng: np.random.Generator, cls: str, *, shape: tuple[int, int],
                 return_masks: bool = False):
    """One phantom brain MRI of class ``cls``: uint8 array of ``shape`` (H, W).

    With ``return_masks`` also ``{"lesion": bool (H, W), "brain": bool (H, W)}`` posed like the
    image (the lesion mask is empty for ``notumor``). The image is the same either way.
    """
    if cls not in CLASSES:
        raise PhantomError(f"unknown MRI class {cls!r}; expected one of {CLASSES}")
    tpl = load_template()
    plane = PLANES[int(rng.choice(len(PLANES), p=PLANE_P[cls]))]
    near_sella = cls == "pituitary" or rng.random() < P_NEAR_SELLA_OTHER
    for _attempt in range(20):  # skip slices that graze the brain (no usable image)
        index = _pick_slice(rng, plane, near_sella=near_sella)
        maps = _slice_maps(tpl, plane, index)
        if maps["brain"].sum() >= MIN_BRAIN_MM2:
            break
    contrast = CONTRAST_NAMES[int(rng.choice(len(CONTRAST_NAMES), p=CONTRAST_P[cls]))]
    tone = {k: float(v + rng.normal(0, CONTRAST_JITTER)) for k, v in CONTRASTS[contrast].items()}
    canvas, head = _render_head(rng, maps, tone)
    lesion = np.zeros(canvas.shape, dtype=np.float32)
    sella_rc, sella_off = _sella_in_slice(plane, index)
    if abs(sella_off) < NEAR_SELLA_MM:
        canvas, lesion = _add_sella(rng, canvas, sella_rc, tone, off=sella_off, plane=plane,
                                    adenoma=(cls == "pituitary"))
    if cls == "glioma":
        canvas, lesion = _add_glioma(rng, canvas, maps, tone)
    elif cls == "meningioma":
        canvas, lesion = _add_meningioma(rng, canvas, maps, tone)
    canvas = ndimage.gaussian_filter(canvas, 0.6)
    matrix, offset = _pose_transform(rng, head, shape)
    image = _finish(rng, _apply_pose(canvas, matrix, offset, shape, order=1))
    if not return_masks:
        return image
    masks = {"lesion": _apply_pose(lesion, matrix, offset, shape, order=1) > 0.5,
             "brain": _apply_pose(maps["brain"].astype(np.float32), matrix, offset, shape,
                                  order=1) > 0.5}
    return image, masks


def _pick_slice(rng: np.random.Generator, plane: str, *, near_sella: bool) -> int:
    axis = PLANES.index(plane)
    axis_index = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    if near_sella:
        return round(SELLA_VOXEL[axis_index] + rng.uniform(-4, 4))
    lo, hi = SLICE_RANGE[PLANES[axis]]
    return int(rng.integers(lo, hi))


def _slice_maps(tpl: _Template, plane: str, index: int) -> dict[str, np.ndarray]:
    """2-D tissue maps of one slice, on the CANVAS_MM x CANVAS_MM grid, superior/anterior up."""
    take = {"axial": lambda v: v[:, :, index], "coronal": lambda v: v[:, index, :],
            "sagittal": lambda v: v[index, :, :]}[plane]
    out = {}
    for name in ("t1", "gm", "wm", "brain"):
        sl = take(getattr(tpl, name)).T[::-1, :]  # rows: superior (or anterior) first
        out[name] = _pad_to_canvas(sl.astype(np.float32))
    out["brain"] = out["brain"] > 0.5
    return out


def _pad_to_canvas(sl: np.ndarray) -> np.ndarray:
    canvas = np.zeros((CANVAS_MM, CANVAS_MM), dtype=np.float32)
    r0, c0 = (CANVAS_MM - sl.shape[0]) // 2, (CANVAS_MM - sl.shape[1]) // 2
    canvas[r0:r0 + sl.shape[0], c0:c0 + sl.shape[1]] = sl
    return canvas


def _canvas_offsets(plane: str) -> tuple[int, int]:
    dims = {"axial": (233, 197), "coronal": (189, 197), "sagittal": (189, 233)}[plane]
    return (CANVAS_MM - dims[0]) // 2, (CANVAS_MM - dims[1]) // 2


def _sella_in_slice(plane: str, index: int) -> tuple[tuple[float, float], float]:
    """The sella's (row, col) on the canvas of this slice and its distance (mm) from the slice."""
    i, j, k = SELLA_VOXEL
    r0, c0 = _canvas_offsets(plane)
    if plane == "axial":
        return (r0 + 232 - j, c0 + i), index - k
    if plane == "coronal":
        return (r0 + 188 - k, c0 + i), index - j
    return (r0 + 188 - k, c0 + j), index - i


def _render_head(rng: np.random.Generator, maps: dict[str, np.ndarray],
                 tone: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Brain from the tissue maps plus CSF, skull and scalp layers; returns (image, head mask)."""
    brain = maps["brain"]
    gm, wm = maps["gm"], maps["wm"]
    csf = np.clip(brain.astype(np.float32) - gm - wm, 0, 1)
    image = gm * tone["gm"] + wm * tone["wm"] + csf * tone["csf"]
    dist = _shapes.distance_outside(brain) if brain.any() else np.full(brain.shape, 1e3, np.float32)
    # layer outer edges (mm from the brain surface), jittered per image
    edges = np.cumsum([rng.uniform(1.0, 3.0), rng.uniform(1.0, 2.0), rng.uniform(1.5, 4.0),
                       rng.uniform(1.0, 2.0), rng.uniform(3.0, 7.0), rng.uniform(0.8, 1.5)])
    layers = [tone["csf"], tone["bone"], tone["marrow"], tone["bone"], tone["fat"], tone["skin"]]
    outside = np.zeros_like(image)
    inner = 0.0
    for edge, value in zip(edges, layers):
        outside = np.where((dist > inner) & (dist <= edge), value, outside)
        inner = edge
    image = np.where(brain, image, outside).astype(np.float32)
    head = dist <= edges[-1]
    return image, head


def _add_sella(rng: np.random.Generator, canvas: np.ndarray, rc: tuple[float, float],
               tone: dict[str, float], *, off: float, plane: str,
               adenoma: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sphenoid sinus (air) under/in front of the sella, the pituitary gland, and an adenoma if
    asked; returns (canvas, adenoma mask)."""
    shape = canvas.shape
    fade = max(0.0, 1.0 - (off / NEAR_SELLA_MM) ** 2)
    shift = SINUS_SHIFT_MM[plane]
    sinus = _shapes.soft_mask(_shapes.ellipse_radius(shape, (rc[0] + shift[0], rc[1] + shift[1]),
                                                     (7 * fade + 2, 9 * fade + 2)))
    canvas = canvas * (1 - sinus) + tone["sinus"] * sinus
    radius = float(rng.uniform(*ADENOMA_MM)) / 2
    cup = 6.0 + (max(0.0, radius - 4.0) if adenoma else 0.0)  # an adenoma widens the sella
    cup_r = _shapes.ellipse_radius(shape, rc, (cup * 0.8 * fade + 1, cup * fade + 1))
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    floor = (cup_r > 1.0) & (cup_r < 1.35) & (rows > rc[0] - 1) if plane != "axial" else \
        (cup_r > 1.0) & (cup_r < 1.35)
    canvas = np.where(floor, tone["bone"], canvas)
    gland = _shapes.soft_mask(_shapes.ellipse_radius(shape, rc, (3.5 * fade + 0.5,
                                                                 5.0 * fade + 0.5)))
    canvas = canvas * (1 - gland) + tone["gland"] * gland
    if adenoma:
        center = (rc[0] - radius * 0.3, rc[1] + rng.uniform(-1.5, 1.5))
        r = _shapes.irregular_radius(rng, shape, center, (radius * rng.uniform(0.8, 1.1), radius),
                                     irregularity=0.08)
        if radius > 5:  # suprasellar extension through the diaphragma: "snowman"
            top = _shapes.ellipse_radius(shape, (center[0] - radius * 1.1, center[1]),
                                         (radius * 0.75, radius * 0.65))
            r = np.minimum(r, top)
        mask = _shapes.soft_mask(r) * (0.4 + 0.6 * fade)
        texture = tone["adenoma"] + 0.06 * _shapes.smooth_noise(rng, shape, scale=3)
        canvas = canvas * (1 - mask) + texture * mask
        return canvas.astype(np.float32), mask
    return canvas.astype(np.float32), np.zeros(shape, dtype=np.float32)


def _add_glioma(rng: np.random.Generator, canvas: np.ndarray, maps: dict[str, np.ndarray],
                tone: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """An intra-axial irregular tumour with oedema, centred in white matter; (canvas, mask)."""
    shape = canvas.shape
    center = _pick_pixel(rng, (maps["wm"] > 0.5) & maps["brain"], fallback=maps["brain"])
    if center is None:
        return canvas, np.zeros(shape, dtype=np.float32)
    radius = float(rng.uniform(*GLIOMA_MM))
    radii = (radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3))
    angle = rng.uniform(0, np.pi)
    r = _shapes.irregular_radius(rng, shape, center, radii, angle=angle,
                                 irregularity=rng.uniform(0.12, 0.35))
    brain_soft = ndimage.gaussian_filter(maps["brain"].astype(np.float32), 1.0)
    tumour = _shapes.soft_mask(r) * brain_soft
    oedema_r = _shapes.irregular_radius(rng, shape, center,
                                        tuple(x * rng.uniform(1.3, 2.2) for x in radii),
                                        angle=angle, irregularity=0.35)
    oedema = _shapes.soft_mask(oedema_r, edge=0.25) * np.clip(maps["wm"] + 0.3 * maps["gm"], 0, 1)
    oedema *= rng.uniform(0.7, 1.0)
    canvas = canvas * (1 - oedema) + tone["oedema"] * oedema
    kind = rng.choice(["ring", "heterogeneous", "low_grade"], p=[0.45, 0.35, 0.2])
    texture = 0.08 * _shapes.smooth_noise(rng, shape, scale=3)
    if kind == "ring":
        core = rng.uniform(0.45, 0.75)
        necrosis = _shapes.soft_mask(r / core, edge=0.15)
        inner = tone["rim"] * (1 - necrosis) + tone["necrosis"] * necrosis + texture
    elif kind == "heterogeneous":
        patches = np.clip(_shapes.smooth_noise(rng, shape, scale=max(2.0, radius / 3)), 0, 1)
        inner = tone["solid"] * (1 - patches) + tone["necrosis"] * patches + 1.5 * texture
    else:
        inner = 0.5 * (tone["solid"] + tone["oedema"]) + 0.5 * texture
    return (canvas * (1 - tumour) + inner * tumour).astype(np.float32), tumour


def _add_meningioma(rng: np.random.Generator, canvas: np.ndarray, maps: dict[str, np.ndarray],
                    tone: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """An extra-axial, dural-based, homogeneous enhancing mass on the brain surface;
    returns (canvas, mass mask)."""
    shape = canvas.shape
    brain = maps["brain"]
    if not brain.any():
        return canvas, np.zeros(shape, dtype=np.float32)
    surface = brain & ~ndimage.binary_erosion(brain, iterations=2)
    point = _pick_pixel(rng, surface, fallback=brain)
    rows, cols = np.nonzero(brain)
    centroid = np.array([rows.mean(), cols.mean()])
    normal = np.asarray(point, dtype=float) - centroid
    normal /= np.linalg.norm(normal) + 1e-6
    radius = float(rng.uniform(*MENINGIOMA_MM))
    center = tuple(np.asarray(point) - normal * radius * rng.uniform(0.2, 0.6))
    r = _shapes.irregular_radius(rng, shape, center, (radius, radius * rng.uniform(0.8, 1.25)),
                                 angle=rng.uniform(0, np.pi), irregularity=0.05)
    dist = _shapes.distance_outside(brain)
    inside_dura = ndimage.gaussian_filter((dist < 2.0).astype(np.float32), 0.8)
    mass = _shapes.soft_mask(r, edge=0.05) * inside_dura
    texture = 0.03 * _shapes.smooth_noise(rng, shape, scale=4)
    canvas = canvas * (1 - mass) + (tone["menin"] + texture) * mass
    if rng.random() < 0.5:  # dural tail: thin enhancing strip along the surface
        tangent = np.array([-normal[1], normal[0]])
        tail_r = _shapes.ellipse_radius(shape, tuple(np.asarray(point, float)), (radius * 1.8, 1.2),
                                        angle=float(np.arctan2(tangent[1], tangent[0])))
        tail = _shapes.soft_mask(tail_r) * (dist < 2.5) * (1 - mass) * 0.7
        canvas = canvas * (1 - tail) + tone["menin"] * tail
    return canvas.astype(np.float32), mass


def _pick_pixel(rng: np.random.Generator, mask: np.ndarray,
                fallback: np.ndarray | None = None) -> tuple[int, int] | None:
    flat = np.flatnonzero(mask)
    if flat.size == 0 and fallback is not None:
        flat = np.flatnonzero(fallback)
    if flat.size == 0:
        return None
    idx = int(flat[int(rng.integers(flat.size))])
    return divmod(idx, mask.shape[1])


def _pose_transform(rng: np.random.Generator, head: np.ndarray,
                    shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A random pose (rotation, scale, shift, mirror) mapping output (row, col) to the canvas."""
    rows, cols = np.nonzero(head)
    if rows.size == 0:
        rows, cols = np.array([CANVAS_MM // 2]), np.array([CANVAS_MM // 2])
    center = np.array([(rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2])
    extent = max(rows.max() - rows.min(), cols.max() - cols.min(), 60)
    scale = rng.uniform(0.78, 0.97) * min(shape) / extent  # output px per mm
    angle = np.deg2rad(rng.normal(0, 7))
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    mirror = np.diag([1.0, -1.0 if rng.random() < 0.5 else 1.0])
    matrix = rot @ mirror / scale
    out_center = np.array(shape, dtype=float) / 2 + rng.normal(0, 0.03, 2) * np.array(shape)
    return matrix, center - matrix @ out_center


def _apply_pose(canvas: np.ndarray, matrix: np.ndarray, offset: np.ndarray,
                shape: tuple[int, int], *, order: int) -> np.ndarray:
    return ndimage.affine_transform(canvas, matrix, offset=offset, output_shape=shape,
                                    order=order, mode="constant", cval=0.0)


def _finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Bias field, Rician noise, gamma and 8-bit scaling."""
    shape = image.shape
    bias = np.exp(rng.uniform(0.05, 0.3) * _shapes.smooth_noise(rng, shape,
                                                                 scale=max(shape) / 2))
    image = image * bias
    sigma = rng.uniform(0.008, 0.04)
    n1 = rng.normal(0, sigma, shape).astype(np.float32)
    n2 = rng.normal(0, sigma, shape).astype(np.float32)
    image = np.sqrt((image + n1) ** 2 + n2 ** 2)
    top = np.quantile(image, 0.998) + 1e-6
    image = np.clip(image / top, 0, 1) ** rng.uniform(0.8, 1.25)
    return np.round(image * rng.uniform(235, 255)).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# difficulty


def measure_difficulty(*, n_per_class: int = 100, seed: int = 0, size: int = 256,
                       cnn: bool = True) -> dict[str, float]:
    """How separable the phantom classes are (chance 0.25); returns accuracies.

    Renders ``n_per_class`` images per class at ``size`` (Masoud look: grayscale, odd sizes),
    resized to 64 x 64. ``logreg_pixels``: 5-fold CV accuracy of a logistic regression on the
    standardised 32 x 32 pixels. ``cnn``: held-out accuracy (25 % stratified test split) of a
    small CNN (4 conv-BN-pool blocks, ~100k parameters, Adam, 40 epochs, flip/rotation
    augmentation)
    trained on 64 x 64 images - a stand-in for the notebooks' models.
    """
    from PIL import Image as _Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from medrepro.data.phantoms._common import single_threaded_blas

    images, labels = [], []
    with single_threaded_blas():
        for c, cls in enumerate(CLASSES):
            for k in range(n_per_class):
                rng = rng_for(seed, "difficulty", cls, k)
                image = render_image(rng, cls, shape=pick_shape(rng, cls, size=size))
                images.append(np.asarray(_Image.fromarray(image).resize((64, 64),
                                                                        _Image.BILINEAR)))
                labels.append(c)
    x = np.stack(images).astype(np.float32) / 255.0  # (N, 64, 64)
    y = np.asarray(labels)
    small = x.reshape(len(x), 32, 2, 32, 2).mean(axis=(2, 4)).reshape(len(x), -1)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    out: dict[str, float] = {"n_images": len(y),
                             "logreg_pixels": float(cross_val_score(model, small, y,
                                                                    cv=folds).mean())}
    if cnn:
        x_tr, x_te, y_tr, y_te = train_test_split(x[..., None], y, test_size=0.25, stratify=y,
                                                  random_state=seed)
        out["cnn"] = _small_cnn_accuracy(x_tr, y_tr, x_te, y_te, seed=seed)
    return out


def _small_cnn_accuracy(x_tr, y_tr, x_te, y_te, *, seed: int, epochs: int = 40) -> float:
    import keras

    from medrepro.core.seeds import seed_everything

    seed_everything(seed)
    layers = keras.layers

    def block(filters: int) -> list:
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D()]

    model = keras.Sequential(
        [keras.Input(x_tr.shape[1:]), layers.RandomFlip("horizontal"),
         layers.RandomRotation(0.05)] + block(16) + block(32) + block(64) + block(128)
        + [layers.GlobalAveragePooling2D(), layers.Dropout(0.3),
           layers.Dense(4, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0)
    return float(model.evaluate(x_te, y_te, verbose=0)[1])


if __name__ == "__main__":  # python -m medrepro.data.phantoms.brain_mri [N_PER_CLASS]: difficulty numbers
    import sys

    print(measure_difficulty(n_per_class=int(sys.argv[1]) if len(sys.argv) > 1 else 100))
