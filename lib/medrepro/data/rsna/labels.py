"""RSNA labels: ``stage_2_train.csv`` read into one row per image, the paper's six classes, the splits.

``stage_2_train.csv`` (rows ``ID_<image>_<subtype>,Label``) becomes one row per image with six
binary labels (:func:`read_labels`); images with exactly one subtype or none are kept as six
classes in the paper's order ``manifest.RSNA_CLASSES`` (:func:`select_single_type`), split 50/25/25
per class (:func:`split_stratified`) or by patient (:func:`split_by_patient`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medrepro.core import manifest
from medrepro.data.registry import RSNA_LABELS_CSV

DATASET_ID = "rsna_ich"
LABELS_CSV = RSNA_LABELS_CSV  # the name benchmarks/ use
IMAGES_DIR = "stage_2_train"
SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
CLASSES = manifest.RSNA_CLASSES  # S1 none, S2 epidural, ..., S6 subdural
N_CLASSES = len(CLASSES)
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.5, 0.25, 0.25)
MIN_PER_CLASS_TO_SPLIT = 4  # fewer images of a class: all of them go to train
NO_LABEL = "no label"  # the skip of a DICOM whose ID has no row in the label file
NO_IMAGE = "no image"  # the skip of a labelled ID whose DICOM is not in the images folder


class RsnaDataError(ValueError):
    """The RSNA data cannot give the paper's split (the message names dataset, class, counts)."""


def read_labels(csv_path: str | os.PathLike):
    """``stage_2_train.csv`` as one row per image: ``image_id`` + the five subtypes + ``any``.

    Duplicate rows (the published file has some) are dropped, the first one kept; a subtype
    missing for an image counts as 0. Returns a ``pandas.DataFrame`` sorted by ``image_id``,
    labels as int8. The 4.5 million rows are streamed into one small bit mask per image, which
    needs a tenth of the memory of a pandas pivot.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: RSNA label file not found")
    columns = (*SUBTYPES, "any")
    bit = {name: 1 << i for i, name in enumerate(columns)}
    seen: dict[str, int] = {}  # image id -> subtypes with a row
    positive: dict[str, int] = {}  # image id -> subtypes labelled 1
    with open(csv_path, encoding="utf-8", newline="") as fh:
        header = fh.readline().strip().split(",")
        if header[:2] != ["ID", "Label"]:
            raise ValueError(f"{csv_path}: expected columns ID,Label, got {header}")
        for n, line in enumerate(fh, start=2):
            key, _, value = line.rstrip("\r\n").partition(",")
            image_id, _, subtype = key.rpartition("_")
            b = bit.get(subtype)
            if b is None or value.strip() not in ("0", "1"):
                if not line.strip():
                    continue
                raise ValueError(f"{csv_path}:{n}: expected ID_<image>_<subtype>,<0|1>, got "
                                 f"{line.strip()!r}")
            s = seen.get(image_id, 0)
            if s & b:
                continue  # a duplicate row
            seen[image_id] = s | b
            if value.strip() == "1":
                positive[image_id] = positive.get(image_id, 0) | b
    ids = np.array(sorted(seen), dtype=object)
    mask = np.array([positive.get(i, 0) for i in ids], dtype=np.int64)
    df = pd.DataFrame({"image_id": ids})
    for name in columns:
        df[name] = ((mask & bit[name]) > 0).astype("int8")
    return df


def select_single_type(labels):
    """Images with exactly one subtype, or none, as the six classes of the paper.

    Returns ``image_id``, ``label`` (int 0..5 in ``CLASSES`` order) and ``label_name``.
    """
    subtypes = labels[list(SUBTYPES)].to_numpy()
    n_pos = subtypes.sum(axis=1)
    keep = n_pos <= 1
    label = np.where(n_pos[keep] == 0, 0, subtypes[keep].argmax(axis=1) + 1)
    out = labels.loc[keep, ["image_id"]].reset_index(drop=True)
    out["label"] = label.astype(np.int64)
    out["label_name"] = np.asarray(CLASSES, dtype=object)[label]
    return out


def split_stratified(labels: Sequence[int], *, seed: int,
                     fractions: Sequence[float] = SPLIT_FRACTIONS) -> tuple[np.ndarray, list[str]]:
    """A seeded per-class split: ``(split names array, notes)``.

    Within each class (in the order given) a seeded permutation; ``floor(n × f)`` images go to
    val and to test, the rest to train (the paper's 50/25/25 counts for five of its six
    classes). A class with fewer than ``MIN_PER_CLASS_TO_SPLIT`` images goes wholly to train,
    so that every present class is trained on; the notes say which.
    """
    labels = np.asarray(labels)
    _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), SPLITS[0], dtype=object)
    notes = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < MIN_PER_CLASS_TO_SPLIT:
            notes.append(f"class {class_name(c)}: {len(idx)} image(s) < "
                         f"{MIN_PER_CLASS_TO_SPLIT}, all in train")
            continue
        idx = rng.permutation(idx)
        n_val = int(len(idx) * fractions[1])
        n_test = int(len(idx) * fractions[2])
        out[idx[:n_val]] = SPLITS[1]
        out[idx[n_val:n_val + n_test]] = SPLITS[2]
    return out, notes


def split_by_patient(labels: Sequence[int], patient_ids: Sequence[str], *, seed: int,
                     fractions: Sequence[float] = SPLIT_FRACTIONS) -> tuple[np.ndarray, list[str]]:
    """A seeded split that keeps each patient in one split, stratified by class where it can.

    ``StratifiedGroupKFold`` with 4 folds: one fold to val, one to test, two to train (the 50/25/25
    of the paper, by patients). Images without a PatientID count as patients of their own. With
    fewer than 4 patients, shuffled patients are dealt out in turn (train first); notes say so.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    groups = np.asarray(patient_ids, dtype=object)
    _check_fractions(fractions)
    notes = []
    missing = np.array([not isinstance(g, str) or not g for g in groups], dtype=bool)
    if missing.any():
        groups = groups.copy()
        groups[missing] = [f"unknown-{i}" for i in np.flatnonzero(missing)]
        notes.append(f"{int(missing.sum())} image(s) without PatientID: each its own patient")
    n_folds = round(1 / min(fractions))
    uniq = np.unique(groups)
    out = np.full(len(labels), SPLITS[0], dtype=object)
    if len(uniq) < n_folds:
        order = np.random.default_rng(seed).permutation(uniq)
        for i, g in enumerate(order):
            out[groups == g] = SPLITS[i % len(SPLITS)]
        notes.append(f"only {len(uniq)} patient(s): dealt out in turn, not stratified")
        return out, notes
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    with warnings.catch_warnings():  # "least populated class has only N members": handled below
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test_idx) in enumerate(folds.split(np.zeros(len(labels)), labels, groups)):
            fold_of[test_idx] = k
    out[fold_of == 0] = SPLITS[1]
    out[fold_of == 1] = SPLITS[2]
    for c in np.unique(labels):
        if (out[labels == c] == SPLITS[0]).any():
            continue
        # Move the smallest patient with this class into train, so every class is trained on.
        with_c = np.unique(groups[labels == c])
        sizes = [(int((groups == g).sum()), g) for g in with_c]
        _, g = min(sizes)
        out[groups == g] = SPLITS[0]
        notes.append(f"class {class_name(c)}: no patient in train; moved patient {g} "
                     f"({min(sizes)[0]} image(s)) from val/test to train")
    return out, notes


def check_usable(selected: Sequence[int], usable: Sequence[int], *,
                 examples: Sequence[str] = ()) -> None:
    """Raise :class:`RsnaDataError` when the skips leave a class of the selection without a usable
    image, or leave no class with ``MIN_PER_CLASS_TO_SPLIT`` images (validation and test empty).

    ``selected``: the class (0..5) of every selected image, skipped or not; ``usable``: the class
    of every image that was read. ``examples``: skipped files to name in the message.
    """
    have = np.bincount(np.asarray(usable, dtype=np.int64), minlength=N_CLASSES)
    want = np.bincount(np.asarray(selected, dtype=np.int64), minlength=N_CLASSES)
    short = [f"class {class_name(c)} has 0 usable of {want[c]} selected image(s)"
             for c in range(N_CLASSES) if want[c] and not have[c]]
    if want.any() and have.max() < MIN_PER_CLASS_TO_SPLIT:
        short.append(f"no class has the {MIN_PER_CLASS_TO_SPLIT} usable images a validation and "
                     f"a test image need (most: {have.max()})")
    if short:
        named = f" (e.g. {', '.join(examples[:3])})" if len(examples) else ""
        raise RsnaDataError(f"{DATASET_ID}: the skipped files leave too few images to split: "
                            + "; ".join(short) + f"; {int(want.sum() - have.sum())} of"
                            f" {int(want.sum())} selected image(s) skipped{named}. Replace "
                            "them (B.skips and the run summary name them)")


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")


def class_name(c: int) -> str:
    return f"S{int(c) + 1} {CLASSES[int(c)]}"
