"""Brain-tumour MRI folders: file listing, the three splits, and tf.data pipelines.

Layouts (``datasets.resolve(...).root``): Sartaj ``{Training,Testing}/{glioma_tumor,
meningioma_tumor,no_tumor,pituitary_tumor}/*.jpg``; Masoud ``{Training,Testing}/{glioma,
meningioma,notumor,pituitary}/*.jpg``. Classes are indexed in that (alphabetical) order,
0 glioma, 1 meningioma, 2 no tumour, 3 pituitary, for both datasets.

Splits (each a pair of frames ``(train, test)`` with columns ``path, split, class_name,
label``):

- :func:`paper_split`: Training and Testing pooled, then a seeded 80/20 split, as the supports
  of study A's Table 2 (653 = 20% of 3264) and study E's report (1405 ≈ 20% of 7023) show the
  authors did. E's supports (324/329/400/352) are what a split stratified by class gives; A's
  (198/192/79/184 for glioma/meningioma/no tumour/pituitary; stratified would be
  185/188/100/180) are not, so ``test_counts`` reproduces a paper's per-class counts.
- :func:`official_split`: the publishers' Training / Testing folders.
- :func:`duplicate_free_test`: a test frame without every image that has an exact or near
  duplicate (``medrepro.data.audit``) in the training frame; the number dropped is reported.

Pipelines (:func:`image_dataset`) decode JPEG (grayscale or RGB → 3 channels), resize, cache,
shuffle (seeded), batch and prefetch; the augmentation (:func:`augmenter`) rides along for
``train.fit`` to apply on the device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medrepro.data import images, registry
from medrepro.data.augment import Augment
from medrepro.core.seeds import DEFAULT_SEED

log = logging.getLogger(__name__)

SPLITS = ("Training", "Testing")
CLASS_DIRS = {
    "brain_tumor_sartaj": ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"),
    "brain_tumor_masoud": ("glioma", "meningioma", "notumor", "pituitary"),
}
CLASS_NAMES = ("glioma", "meningioma", "no tumour", "pituitary")  # display names, index order
TEST_FRACTION = 0.2
# Study E: rotation / shift / zoom / horizontal flip, the four the report names; the ranges are
# ours: stronger ones made validation accuracy swing between epochs (docs/decisions.md#e3).
E_AUGMENT = {"rotation": 0.03, "shift": 0.02, "zoom": 0.1, "flip": True}
# Study C: "augmentation" without details: horizontal flip, small rotation and zoom, chosen on
# validation splits over the variant with the image's contrast and gamma, kept as
# C_AUGMENT_INTENSITY (docs/decisions.md#c2).
C_AUGMENT = {"rotation": 0.03, "shift": 0.0, "zoom": 0.1, "flip": True}
C_AUGMENT_INTENSITY = {**C_AUGMENT, "contrast": 0.3, "gamma": 0.4}


class MriDataError(RuntimeError):
    """A dataset folder that does not have the expected MRI layout."""


# ---------------------------------------------------------------------------- listing
def list_images(root: str | os.PathLike, dataset_id: str, *,
                splits: Sequence[str] = SPLITS) -> pd.DataFrame:
    """Every usable image under ``root/<split>/<class>/``: :func:`scan_images`' ``images``."""
    return scan_images(root, dataset_id, splits=splits).images


def scan_images(root: str | os.PathLike, dataset_id: str, *,
                splits: Sequence[str] = SPLITS) -> images.ImageScan:
    """The images under ``root/<split>/<class>/`` checked by the one rule of
    :mod:`medrepro.data.images`: ``images`` (columns path, split, class_dir, class_name, label
    (int, index into :data:`CLASS_NAMES`); sorted by split, class and file name) and ``skipped``
    (the files not used, with problem and detail; logged).

    Raises :class:`MriDataError` naming the folder when no usable image is found, or a class
    folder cannot be listed.
    """
    if dataset_id not in CLASS_DIRS:
        raise MriDataError(f"{dataset_id!r} is not an MRI dataset; expected one of "
                           f"{', '.join(CLASS_DIRS)}")
    root = Path(root)
    try:
        found = images.scan(root, dataset_id, splits=splits)
    except OSError as exc:
        raise MriDataError(str(exc)) from None
    if found.images.empty:
        why = f" ({len(found.skipped)} file(s) skipped: see the log)" if len(found.skipped) else ""
        raise MriDataError(f"{root}: no images in {'/'.join(splits)}/<class>/ (expected "
                           f"the {dataset_id} layout: {', '.join(CLASS_DIRS[dataset_id])}){why}")
    names = [CLASS_NAMES[k] for k in found.images["label"]]
    frame = found.images.assign(class_name=names)[
        ["path", "split", "class_dir", "class_name", "label"]]
    return images.ImageScan(frame, found.skipped)


def subsample(frame: pd.DataFrame, max_images: int | None, *, seed: int = 0) -> pd.DataFrame:
    """At most ``max_images`` rows, stratified by split and class (proportional, seeded).

    ``None`` (or more than there are) returns ``frame`` unchanged. Where scikit-learn's
    stratified split cannot cut it (a stratum of one image, fewer rows kept or left than
    strata) the rows are drawn per stratum by the largest-remainder rule, seeded.
    """
    if max_images is None or len(frame) <= max_images:
        return frame
    from sklearn.model_selection import train_test_split

    strata = frame["split"].astype(str) + "/" + frame["label"].astype(str)
    n_strata = strata.nunique()
    if min(max_images, len(frame) - max_images) >= n_strata and strata.value_counts().min() > 1:
        keep, _ = train_test_split(frame, train_size=max_images, stratify=strata,
                                   random_state=seed)
        return keep.sort_index()
    sizes = strata.value_counts().sort_index()
    share = sizes * max_images / len(frame)
    take = np.floor(share).astype(int)
    for key in (share - take).sort_values(ascending=False, kind="stable").index[
            : max_images - int(take.sum())]:
        take[key] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(frame.index[strata == key], size=int(n), replace=False)
              for key, n in take.items() if n]
    return frame.loc[np.sort(np.concatenate(picked))]


# The images per class a split needs: with fewer, scikit-learn's stratified splits cannot give
# every class a training, validation and test image. ``pooled``: the paper split's pool (its
# 20 % test part needs one image per class); ``Training`` / ``Testing``: the official split's
# (the 10 % validation hold-out needs two per class in Training).
MIN_PER_CLASS = {"pooled": 4, "Training": 2, "Testing": 1}


def check_split_sizes(frame: pd.DataFrame, *, dataset_id: str | None, split: str,
                      skipped: Mapping[str, int] | None = None) -> None:
    """Raise :class:`MriDataError` when ``frame`` has too few images of a class for ``split``
    (``"paper"``: :data:`MIN_PER_CLASS` ``pooled`` per class; ``"official"``: its
    ``Training`` and ``Testing`` counts per class). The message names the dataset, each class
    short of images with its count, the count needed and the files skipped there (``skipped``:
    ``{"<split>/<class folder>": files}``, :func:`skip_counts`)."""
    parts = {"pooled": frame} if split == "paper" else {
        s: frame[frame["split"] == s] for s in SPLITS}
    folders = CLASS_DIRS.get(dataset_id, CLASS_NAMES)
    skipped = skipped or {}
    short = []
    for part, rows in parts.items():
        have = rows["label"].value_counts()
        for label, cls in enumerate(folders):
            n = int(have.get(label, 0))
            if n >= MIN_PER_CLASS[part]:
                continue
            bad = sum(k for where, k in skipped.items() if where.endswith(f"/{cls}")
                      and (part == "pooled" or where.startswith(f"{part}/")))
            where = cls if part == "pooled" else f"{part}/{cls}"
            short.append(f"class {CLASS_NAMES[label]!r} ({where}) has {n} usable image(s), "
                         f"needs {MIN_PER_CLASS[part]}"
                         + (f" ({bad} file(s) there skipped)" if bad else ""))
    if short:
        raise MriDataError(f"{dataset_id or 'the dataset'}: too few images for the {split} "
                           "split: " + "; ".join(short) + f" (of {len(frame)} images used). Add "
                           "images or replace the skipped ones (the log and the run summary "
                           "name them)")


def skip_counts(skipped: pd.DataFrame) -> dict[str, int]:
    """``{"<split>/<class folder>": files skipped}`` of :func:`scan_images`' ``skipped``."""
    if skipped.empty:
        return {}
    return {f"{s}/{c}": int(n) for (s, c), n in
            skipped.groupby(["split", "class_dir"]).size().items()}


def counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per class (rows, in index order) and split (columns), with totals."""
    table = pd.crosstab(frame["class_name"], frame["split"], margins=True, margins_name="total")
    order = [c for c in CLASS_NAMES if c in table.index] + ["total"]
    known = [s for s in (*SPLITS, "train", "val", "test") if s in table.columns]
    cols = known + [c for c in table.columns if c not in known and c != "total"] + ["total"]
    return table.loc[order, cols]


# ---------------------------------------------------------------------------- splits
def paper_split(frame: pd.DataFrame, *, test_fraction: float = TEST_FRACTION,
                seed: int = DEFAULT_SEED,
                test_counts: Mapping[int, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool every image and split it ``1 - test_fraction`` / ``test_fraction``: stratified by
    class, or, with ``test_counts`` (class index -> the paper's test support), with the
    paper's test count per class where the data allows (:func:`allocate_test`), the images
    of each class drawn at random (seeded).

    The returned frames carry the original folder in ``split`` and the new role in ``role``.
    """
    if test_counts is not None:
        wanted = allocate_test(frame["label"].value_counts().to_dict(), test_counts,
                               n_test=round(test_fraction * len(frame)))
        rng = np.random.default_rng(seed)
        picked = [rng.choice(frame.index[frame["label"] == k], size=n, replace=False)
                  for k, n in wanted.items() if n]
        is_test = frame.index.isin(np.concatenate(picked) if picked else [])
        return frame[~is_test].assign(role="train"), frame[is_test].assign(role="test")
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_fraction, stratify=frame["label"],
                                   random_state=seed)
    return (train.sort_index().assign(role="train"), test.sort_index().assign(role="test"))


def allocate_test(available: Mapping[int, int], paper_counts: Mapping[int, int], *,
                  n_test: int) -> dict[int, int]:
    """Test images per class for ``n_test`` in all: the paper's counts scaled to ``n_test``
    (largest remainders; exactly the paper's counts when ``n_test`` is their sum), each capped
    at the class's ``available`` images minus one (a class keeps a training image)."""
    total = sum(paper_counts.values())
    raw = {k: n_test * c / total for k, c in paper_counts.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[:n_test - sum(out.values())]:
        out[k] += 1
    return {k: max(0, min(n, available.get(k, 0) - 1)) for k, n in out.items()}


def official_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The publishers' split: ``Training`` rows, ``Testing`` rows."""
    train, test = frame[frame["split"] == "Training"], frame[frame["split"] == "Testing"]
    if train.empty or test.empty:
        raise MriDataError(f"official split needs Training and Testing images; found splits "
                           f"{sorted(frame['split'].unique())}")
    return train.assign(role="train"), test.assign(role="test")


def validation_split(train: pd.DataFrame, *, fraction: float = 0.1,
                     seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a stratified ``fraction`` of a training frame for validation (early stopping)."""
    from sklearn.model_selection import train_test_split

    n_val = max(round(fraction * len(train)), train["label"].nunique())
    fit, val = train_test_split(train, test_size=n_val, stratify=train["label"],
                                random_state=seed)
    return fit.sort_index(), val.sort_index().assign(role="val")


def find_groups(frame: pd.DataFrame, *, near: bool = True) -> list[list[Path]]:
    """Duplicate groups (exact, and near with ``near``) among the frame's files."""
    from medrepro.data import audit

    return audit.find_duplicates(frame["path"], near=near)


def duplicate_groups(frame: pd.DataFrame, *, dataset_id: str, root: str | os.PathLike,
                     source: str) -> tuple[list[list[Path]], str]:
    """Duplicate groups for ``frame``: the list notebook 01 saved for this source if there is
    one, else computed now (exact + near). Returns ``(groups, how)``."""
    from medrepro.data import audit

    try:
        return audit.load_duplicates(dataset_id, root=root, source=source), "notebook 01's list"
    except Exception as exc:  # noqa: BLE001 - missing, stale or other-source list: recompute
        log.info("duplicate list not usable (%s); computing it", exc)
    return find_groups(frame, near=True), "computed (exact + near)"


def duplicate_free_test(train: pd.DataFrame, test: pd.DataFrame,
                        groups: Sequence[Sequence[Path]]) -> tuple[pd.DataFrame, int]:
    """``test`` without every image that has an exact or near duplicate in ``train``.

    ``groups`` are duplicate groups (``medrepro.data.audit.find_duplicates`` or the list saved by
    notebook 01). Returns ``(filtered test frame, number of test images dropped)``.
    """
    from medrepro.data import audit

    keep = set(audit.duplicate_free(test["path"], groups, reference=train["path"]))
    mask = test["path"].map(lambda p: Path(p) in keep)
    dropped = int((~mask).sum())
    log.info("duplicate-free test: dropped %d of %d test images with a training duplicate",
             dropped, len(test))
    return test[mask], dropped


# ---------------------------------------------------------------------------- data source
def resolve_for_study(dataset_id: str, *, data: str, profile: str, seed: int = DEFAULT_SEED):
    """Resolve an MRI dataset; if a real source lacks it, use the other real MRI set instead.

    Studies C and E use the Masoud set; ``../shared/data`` holds only its Testing split, which
    ``datasets.resolve`` would replace by the phantom. With a real source, the complete real
    Sartaj set is the better stand-in (real images, same four classes). Returns
    ``(ResolvedDataset, note)``; ``note`` is "" when ``dataset_id`` itself was used.
    """
    from medrepro.data import datasets

    rd = datasets.resolve(dataset_id, data=data, profile=profile, seed=seed)
    if not rd.is_phantom or data == registry.PHANTOM:
        return rd, ""
    other = next(d for d in CLASS_DIRS if d != dataset_id)
    alt = datasets.resolve(other, data=data, profile=profile, seed=seed)
    if alt.is_phantom:
        return rd, (f"{dataset_id} is not complete in {data!r}: ran on its phantom "
                    f"({'; '.join(rd.notes)})")
    return alt, (f"{dataset_id} is not complete in {data!r} (no Training split): ran on the "
                 f"real {other} set instead (same four classes), not on the paper's dataset")


# ---------------------------------------------------------------------------- tf.data
FRAMINGS = ("stretch", "head")
# A pixel belongs to the head when its brightest channel exceeds this fraction of the image's
# maximum; where the background is brighter the box grows to the whole image, which is then
# only padded to a square (docs/decisions.md#c4).
HEAD_THRESHOLD = 0.1


def head_box(img):
    """``(y0, x0, y1, x1)`` int32 tensors: the bounding box of the pixels of ``img``
    ``(H, W, C)`` brighter than :data:`HEAD_THRESHOLD` of its maximum (the whole image when
    none is, e.g. a blank one). End indices are exclusive."""
    import tensorflow as tf

    gray = tf.reduce_max(img, axis=-1)
    mask = gray > HEAD_THRESHOLD * tf.reduce_max(gray)
    mask = tf.logical_or(mask, tf.logical_not(tf.reduce_any(mask)))  # none: every pixel
    rows = tf.cast(tf.where(tf.reduce_any(mask, axis=1))[:, 0], tf.int32)
    cols = tf.cast(tf.where(tf.reduce_any(mask, axis=0))[:, 0], tf.int32)
    y0, y1 = tf.reduce_min(rows), tf.reduce_max(rows) + 1
    x0, x1 = tf.reduce_min(cols), tf.reduce_max(cols) + 1
    return y0, x0, y1, x1


def decode_files(files: Sequence[str | os.PathLike], *, image_size: int, scale: str = "unit",
                 framing: str = "stretch"):
    """An unbatched ``tf.data.Dataset`` of images ``(image_size, image_size, 3)`` float32.

    Raises :class:`MriDataError` naming the files that :mod:`medrepro.data.images`' rule
    skips, before tf.data sees any. JPEG/PNG (GIF, BMP, WebP) decoded with 3 channels (grayscale is repeated), resized bilinearly (with
    anti-aliasing when shrinking). ``scale="unit"``: values in [0, 1]; ``"raw"``: 0-255.
    ``framing`` (:data:`FRAMINGS`): ``"stretch"`` resizes the whole image to the square (a
    non-square image is distorted); ``"head"`` crops to the head's bounding box
    (:func:`head_box`) and pads it to a square, centred, keeping its aspect ratio.
    """
    import tensorflow as tf

    if scale not in ("unit", "raw"):
        raise MriDataError(f"scale={scale!r}: expected 'unit' or 'raw'")
    if framing not in FRAMINGS:
        raise MriDataError(f"framing={framing!r}: expected one of {FRAMINGS}")
    size = (int(image_size), int(image_size))
    bad = images.unusable(files)
    if len(bad):  # tf.data would fail inside an epoch, naming no file
        raise MriDataError(f"{len(bad)} of {len(files)} files cannot be decoded: " + "; ".join(
            f"{p} ({problem}: {detail})" for p, problem, detail in bad.head(5).itertuples(
                index=False)) + ("; ..." if len(bad) > 5 else "") + " (list them with "
            "brain_mri.scan_images, which skips them)")

    def load(path):
        raw = tf.io.read_file(path)
        img = tf.cast(tf.io.decode_image(raw, channels=3, expand_animations=False), tf.float32)
        if framing == "head":
            y0, x0, y1, x1 = head_box(img)
            img = tf.image.resize_with_pad(img[y0:y1, x0:x1], *size, antialias=True)
        else:
            img = tf.image.resize(img, size, antialias=True)
        img = tf.clip_by_value(img, 0.0, 255.0)
        return img / 255.0 if scale == "unit" else img

    paths = tf.constant([str(f) for f in files])
    return tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=2)


def image_dataset(frame: pd.DataFrame, *, image_size: int, batch_size: int,
                  shuffle: bool = False, seed: int = 0, augment=None, one_hot: bool = True,
                  n_classes: int = len(CLASS_NAMES), scale: str = "unit", cache: bool = True,
                  framing: str = "stretch"):
    """Batches ``(images (B, S, S, 3) float32, labels)`` of a frame's files, in frame order.

    Labels are one-hot float32 ``(B, K)`` (``one_hot=True``) or int64 ``(B,)``. Decoding and
    resizing happen once (``cache``); ``augment`` (:func:`augmenter`) is applied by
    ``train.fit`` to every training batch, on the device; shuffling is seeded and reshuffled
    each epoch.
    """
    import tensorflow as tf

    from medrepro.data import pipeline

    decoded = decode_files(frame["path"], image_size=image_size, scale=scale, framing=framing)
    labels = np.asarray(frame["label"], dtype=np.int64)
    y = tf.data.Dataset.from_tensor_slices(
        np.eye(n_classes, dtype=np.float32)[labels] if one_hot else labels)
    ds = tf.data.Dataset.zip((decoded, y))
    return pipeline.finish(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, augment=augment,
                           cache=cache, n_items=len(frame))


def load_images(frame: pd.DataFrame, *, image_size: int, scale: str = "unit",
                framing: str = "stretch") -> np.ndarray:
    """The frame's images as one array ``(N, S, S, 3)`` float32 (for figures and explanations)."""
    ds = decode_files(frame["path"], image_size=image_size, scale=scale,
                      framing=framing).batch(64)
    arrays = [b.numpy() for b in ds]
    if not arrays:
        return np.zeros((0, image_size, image_size, 3), dtype=np.float32)
    return np.concatenate(arrays)


def augmenter(*, rotation: float = 0.0, shift: float = 0.0, zoom: float = 0.0,
              flip: bool = False, contrast: float = 0.0, gamma: float = 0.0,
              seed: int = 0) -> Augment | None:
    """The random augmentation of C and E (:data:`C_AUGMENT`, :data:`E_AUGMENT`) as an
    :class:`medrepro.data.augment.Augment`, which ``train.fit`` applies to every training
    batch on the device; None when every option is off.

    Geometry (zeros outside the image): ``rotation`` is a fraction of a full turn
    (0.05 = ±18°), ``shift`` and ``zoom`` fractions of the image size, ``flip`` left-right.
    Intensity (images in [0, 1]): ``contrast`` scales each image's deviations from its mean by
    a factor in ``1 ± contrast``, ``gamma`` raises it to a power ``γ`` with ``log γ`` in
    ``±gamma``: a gamma curve changes the contrast between tissues the way another scanner,
    sequence or windowing would. Seeded.
    """
    if not (rotation or shift or zoom or flip or contrast or gamma):
        return None
    return Augment(flip="horizontal" if flip else "", rotation=rotation, shift=shift, zoom=zoom,
                   contrast=(contrast, contrast), gamma=gamma, fill_mode="constant", seed=seed)
