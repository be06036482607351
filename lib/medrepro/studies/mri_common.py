"""What the three MRI studies of notebook 03 (A, C, E) share: their image splits, the
classification reports beside the paper's, the duplicate-free ("leakage") tables and metrics,
and the prediction figure.

A study module (:mod:`medrepro.studies.a`, ``c``, ``e``) calls these with its own names; the
notebook never calls this module directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.analysis import evaluate
from medrepro.core import manifest
from medrepro.data import brain_mri
from medrepro.reporting import plots, report, results

PAPER_SPLIT = "paper (pooled 80/20)"
OFFICIAL_SPLIT = "official (Training/Testing)"
LABELS = list(brain_mri.CLASS_NAMES)  # display names, class index order
N_SHOWN = 12  # images in a predictions figure


@dataclass(frozen=True)
class ImageSplit:
    """A study's images (``brain_mri.list_images`` rows) split into train/test and fit/validation.

    ``ds``: the resolved dataset (``.source``, ``.root``, ``.dataset_id``, ``.label``);
    ``images``: every image used, index 0..N-1 (the row of its features, for study A);
    ``train = fit + val``; ``note``: the data note every table of the study carries.
    """

    ds: Any
    images: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    fit: pd.DataFrame
    val: pd.DataFrame
    note: str = ""

    @property
    def source(self) -> str:
        return self.ds.source

    @property
    def y_test(self) -> np.ndarray:
        return self.test["label"].to_numpy()


def run_identity(data: ImageSplit, *, image_size: int, framing: str = "stretch",
                 augment: Mapping[str, Any] | None = None) -> dict:
    """What a training run of C or E is trained on, for ``train.fit_once``'s ``identity``:
    the input size, the framing (``brain_mri.decode_files``), the augmentation (``brain_mri.augmenter``'s
    options) and a digest of the fit and validation files (path, label, size, modification
    time), so a finished run on other images (a regenerated phantom, another dataset version),
    at another size, framing or augmentation is redone rather than reused."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for part in (data.fit, data.val):
        for path, label in zip(part["path"], part["label"]):
            st = Path(path).stat()
            h.update(f"{path}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"images": h.hexdigest(), "n_fit": len(data.fit), "n_val": len(data.val),
            "image_size": int(image_size), "framing": framing, "augment": dict(augment or {})}


def split_images(ds, images: pd.DataFrame, *, split: str, seed: int, note: str = "") -> ImageSplit:
    """``split="paper"``: the pooled, stratified 80/20 split; ``"official"``: Training/Testing.
    10% of the training part is held out for validation (stratified, seeded)."""
    brain_mri.check_split_sizes(images, dataset_id=getattr(ds, "dataset_id", None),
                                split=split, skipped=images.attrs.get("skipped"))
    if split == "paper":
        train, test = brain_mri.paper_split(images, seed=seed)
    elif split == "official":
        train, test = brain_mri.official_split(images)
    else:
        raise ValueError(f"split={split!r}: expected 'paper' or 'official'")
    fit, val = brain_mri.validation_split(train, seed=seed)
    return ImageSplit(ds, images, train, test, fit, val, note)


def list_subsample(ds, max_images: int | None, *, seed: int) -> pd.DataFrame:
    """At most ``max_images`` of ``ds``'s usable images (stratified, seeded), index 0..N-1.

    The files the one image rule skips (``brain_mri.scan_images``) are recorded for the run's
    summary (``report.record_skips``) and counted per class folder in ``attrs["skipped"]``."""
    found = brain_mri.scan_images(ds.root, ds.dataset_id)
    report.record_skips(ds.dataset_id, found.skipped, source=ds.source,
                        n_files=len(found.images) + len(found.skipped))
    images = brain_mri.subsample(found.images, max_images, seed=seed).reset_index(drop=True)
    images.attrs["skipped"] = brain_mri.skip_counts(found.skipped)
    return images


def duplicate_groups(data: ImageSplit) -> tuple[list, str]:
    """Exact + near duplicate groups of ``data``'s images and how they were found."""
    return brain_mri.duplicate_groups(data.images, dataset_id=data.ds.dataset_id, root=data.ds.root,
                                source=data.source)


MASOUD = "brain_tumor_masoud"  # studies C and E (brain_mri.resolve_for_study may stand in Sartaj)


def load_split(ds, *, max_images: int | None, split: str, seed: int,
               note: str = "") -> ImageSplit:
    """At most ``max_images`` of ``ds``'s images under ``split`` (:func:`split_images`);
    ``note``: why ``ds`` stands in for the study's own set ("": ``data: <label>``)."""
    images = list_subsample(ds, max_images, seed=seed)
    return split_images(ds, images, split=split, seed=seed, note=note or f"data: {ds.label}")


SHIFTED_TEST_NOTE = ("shifted test set: Sartaj's official Testing folder comes from other "
                     "sources than its Training folder")


def test_set_note(data: ImageSplit, *, split: str) -> str:
    """:data:`SHIFTED_TEST_NOTE` for the real Sartaj set's official split, else ""."""
    real_sartaj = data.ds.dataset_id == "brain_tumor_sartaj" and not data.ds.is_phantom
    return SHIFTED_TEST_NOTE if real_sartaj and split == "official" else ""


def probabilities(model, data: ImageSplit, *, image_size: int, batch_size: int,
                  framing: str = "stretch") -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities ``(N, K)`` on the validation and the test images."""
    from medrepro.training import train

    frame = {"image_size": image_size, "batch_size": batch_size, "framing": framing}
    return tuple(train.predict_proba(model, brain_mri.image_dataset(split, **frame))
                 for split in (data.val, data.test))


def test_cases(data: ImageSplit, prob: np.ndarray) -> pd.DataFrame:
    """Every test image's true and predicted class and probabilities ``prob`` ``(N, K)`` (test
    order) (:func:`medrepro.analysis.failures.cases`, names: file names)."""
    import os

    from medrepro.analysis import failures

    return failures.cases(data.y_test, prob, labels=LABELS,
                          names=[os.path.basename(p) for p in data.test["path"]])


def test_source(data: ImageSplit, cases: pd.DataFrame, *, image_size: int, title: str,
                framing: str = "stretch", maps=None):
    """The test set as the failure gallery and the explorer browse it
    (:class:`medrepro.reporting.explorer.Source`): ``cases`` (:func:`test_cases`), each image
    read at the model's input ``image_size`` with ``framing``; ``maps(images)``
    ``(1, S, S, 3)`` -> method -> ``(1, S, S)`` maps, or None (no maps)."""
    from medrepro.reporting import explorer

    test = data.test

    def image(pos: int) -> np.ndarray:  # (S, S, 3) float32 in [0, 1]
        return brain_mri.load_images(test.iloc[[pos]], image_size=image_size,
                                     framing=framing)[0]

    def maps_of(pos: int) -> dict[str, np.ndarray]:
        return {m: v[0] for m, v in maps(image(pos)[None]).items()}

    return explorer.Source(cases, LABELS, image, None if maps is None else maps_of, title=title)


def image_datasets(data: ImageSplit, *, image_size: int, batch_size: int, augment: dict,
                   seed: int, framing: str = "stretch") -> tuple:
    """``(fit, val, test)`` tf.data pipelines of ``data``; ``fit`` shuffled and augmented."""
    frame = {"image_size": image_size, "batch_size": batch_size, "framing": framing}
    fit = brain_mri.image_dataset(data.fit, shuffle=True, seed=seed,
                            augment=brain_mri.augmenter(**augment, seed=seed), **frame)
    val = brain_mri.image_dataset(data.val, **frame)
    test = brain_mri.image_dataset(data.test, **frame)
    return fit, val, test


def classification_report(y_true, y_pred, *, dataset_id: str, artifact: str, n_boot: int,
                          seed: int) -> pd.DataFrame:
    """Per-class precision/recall/F1 with bootstrap CIs beside the paper's ``artifact`` table."""
    ours = evaluate.classification_table_ci(y_true, y_pred, labels=brain_mri.CLASS_DIRS[dataset_id],
                                            n_boot=n_boot, seed=seed)
    return evaluate.beside_reported(ours, manifest.reported_frame(artifact))


def record_ci(study: str, metric: str, row: Mapping, col: str, *, source: str, artifact: str,
              notes: str, n: int | None = None, **extra: Any) -> None:
    """Record ``row[col]`` with its CI ``row[col_lo], row[col_hi]`` (a ``summary_row``)."""
    report.record_metric(study, metric, row[col], source=source, artifact=artifact,
                         ci=(row[f"{col}_lo"], row[f"{col}_hi"]),
                         n=row["n_test"] if n is None else n, notes=notes, **extra)


def leakage_rows(train: pd.DataFrame, test: pd.DataFrame, preds: dict[str, np.ndarray],
                 groups: Sequence[Sequence[Path]], *, split: str, n_boot: int,
                 seed: int) -> list[dict]:
    """Each model's accuracy and macro-F1 (95% bootstrap CIs) on the whole test set and on its
    duplicate-free part (:func:`medrepro.data.brain_mri.duplicate_free_test`): two rows per model, as in ``A.splits``.

    ``preds``: model name -> predicted class indices ``(len(test),)`` in ``test``'s row order.
    Row keys: ``split``, ``test set`` ("all" | "duplicate-free"), ``model``, ``dropped`` (test
    images with a training duplicate) and :func:`medrepro.analysis.evaluate.summary_row`'s. A
    duplicate-free set left empty gets NaN metrics.
    """
    clean, dropped = brain_mri.duplicate_free_test(train, test, groups)
    keep = test.index.get_indexer(clean.index)
    y = test["label"].to_numpy()
    rows = []
    for model_name, pred in preds.items():
        pred = np.asarray(pred)
        base = {"split": split, "model": model_name}
        rows.append({**base, "test set": "all", "dropped": 0,
                     **evaluate.summary_row(y, pred, n_boot=n_boot, seed=seed)})
        free = (evaluate.summary_row(y[keep], pred[keep], n_boot=n_boot, seed=seed) if keep.size
                else {"n_test": 0, **{k: np.nan for k in ("accuracy", "accuracy_lo",
                                                          "accuracy_hi", "macro_f1",
                                                          "macro_f1_lo", "macro_f1_hi")}})
        rows.append({**base, "test set": "duplicate-free", "dropped": dropped, **free})
    return rows


def leakage_table(train: pd.DataFrame, test: pd.DataFrame, preds: dict[str, np.ndarray],
                  groups: Sequence[Sequence[Path]], *, split: str, n_boot: int,
                  seed: int) -> pd.DataFrame:
    """:func:`leakage_rows` as a frame: every model on the whole and the duplicate-free test."""
    return pd.DataFrame(leakage_rows(train, test, preds, groups, split=split, n_boot=n_boot,
                                     seed=seed))


def leakage_notes(note: str, groups_how: str) -> str:
    """The notes of ``C.leakage`` and ``E.leakage``."""
    return (f"{note}. Duplicates: {groups_how}; 'dropped' = test images with a training "
            "duplicate. 95% bootstrap CIs.")


def record_duplicate_free(study: str, table: pd.DataFrame, metrics: Mapping[str, str], *,
                          source: str, artifact: str, notes: str) -> None:
    """Record ``metrics`` (name -> column) of the duplicate-free row of a one-model leakage
    table, with ``results.DUPLICATE_FREE`` appended to the name; nothing if that set is empty."""
    free = table[table["test set"] == "duplicate-free"].iloc[0]
    for metric, col in metrics.items():
        if free["n_test"]:
            record_ci(study, metric + results.DUPLICATE_FREE, free, col, source=source,
                      artifact=artifact, n=int(free["n_test"]),
                      extra={"dropped": int(free["dropped"])}, notes=notes)


def confusion_figure(y_true, y_pred, *, title: str,
                     normalised_title: str = "normalised by true class"):
    """Counts (left) and the matrix normalised by true class (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    plots.plot_confusion(evaluate.confusion(y_true, y_pred, n_classes=len(LABELS)),
                         labels=LABELS, ax=axes[0], title=title)
    plots.plot_confusion(evaluate.confusion(y_true, y_pred, n_classes=len(LABELS), normalize=True),
                         labels=LABELS, ax=axes[1], title=normalised_title)
    return fig


def curves_figure(history: pd.DataFrame, *, title: str, loss_name: str = "loss"):
    """Accuracy (left) and loss (right) per epoch, training and validation."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    plots.plot_history(history, metric="accuracy", ax=axes[0], title=f"{title}: accuracy")
    plots.plot_history(history, metric="loss", ax=axes[1], title=f"{title}: {loss_name}")
    return fig


def predictions_figure(test: pd.DataFrame, pred: np.ndarray, *, image_size: int, seed: int,
                       title: str, framing: str = "stretch"):
    """Up to 12 random test images (``test`` rows, ``pred`` in ``test`` order), true / predicted,
    framed as the model saw them."""
    show = test.sample(min(N_SHOWN, len(test)), random_state=seed)
    return plots.plot_predictions(brain_mri.load_images(show, image_size=image_size, framing=framing),
                                  show["label"],
                                  pred[test.index.get_indexer(show.index)], labels=LABELS,
                                  n=N_SHOWN, seed=seed, title=title)
