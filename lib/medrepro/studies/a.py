"""Study A: "Classification of Brain Tumor from MR Images with LSTM-CNN Hybrid Model".

ResNet50 (no top, 224×224) features of every image, computed once and cached
(:func:`resnet50_features`), centred and scaled on the training images (:func:`scale_features`),
feed the LSTM head of Table 1 (:func:`medrepro.models.brain_mri.lstm_cnn_head`) and, for McNemar's
test, a "standard CNN" head on the same features (:func:`train_head`, :func:`predict_head`).
Artifacts (notebook 03): ``A.table1`` (:func:`table1`), ``A.fig9`` (:func:`fig9`), ``A.fig11``-
``A.fig14``, ``A.table2`` (:func:`table2`), ``A.table3`` (:func:`table3`), ``A.mcnemar``
(:func:`mcnemar_table`) and ``A.splits`` (:func:`splits_table`: the paper split, the official
split and their duplicate-free test sets).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medrepro.analysis import evaluate
from medrepro.core import locks, manifest, paths, seeds
from medrepro.core.planning import CHECKPOINT_BYTES_PER_PARAM, PlanContext, RowPlan, Write
from medrepro.core.profiles import ASettings
from medrepro.reporting import plots
from medrepro.core.fileio import atomic_path
from medrepro.models import brain_mri as mm
from medrepro.studies import mri_common
from medrepro.studies.mri_common import OFFICIAL_SPLIT, PAPER_SPLIT, ImageSplit, duplicate_groups  # noqa: F401

DATASET = "brain_tumor_sartaj"
NOTEBOOK = "03_lstm_cnn_mri"
PLANNED_PARAMS = mm.LSTM_HEAD_PARAMS + mm.RESNET50_NOTOP_PARAMS  # head + the features' CNN
FEATURE_DTYPE = np.float16  # 3264 images × 100,352 features = 655 MB instead of 1.3 GB
FEATURE_BATCH = 16  # images per ResNet50 batch
LSTM, STANDARD = "LSTM-CNN", "standard CNN"  # model names in the tables
FIG14_IMAGE_SIZE = 128
TABLE1_NOTES = ("Architecture only (no training involved); input = ResNet50 features as a "
                "length-1 sequence (1, 100352); "
                f"LSTM activation {mm.LSTM_ACTIVATION} (the paper's choice).")
TABLE3_NOTES = ("Rows 1-9 are the paper's Table 3 as printed (other datasets, not re-run); the "
                "last row is ours, its dataset cell says which data, how many images and which "
                "split were actually used.")
DUPLICATE_FREE_METRICS = {"test accuracy (LSTM-CNN, paper split)": "accuracy",
                          "test macro-F1 (LSTM-CNN, paper split)": "macro_f1"}


# ---------------------------------------------------------------------------- data and features
@dataclass(frozen=True)
class FeatureSet:
    """ResNet50 features of a list of images.

    ``x``: ``(N, 1, F)`` float16, F = 100,352 at 224 (the head's input layout); ``weights``: ``"imagenet"`` or
    ``"random"`` (what was actually used); ``path``: the cache file; ``cached``: loaded from it.
    """

    x: np.ndarray
    weights: str
    path: Path
    cached: bool


@dataclass(frozen=True)
class Inputs:
    """A split's scaled features ``x_*`` ``(N, 1, F)`` float32 and labels ``y_*`` ``(N,)``."""

    x_fit: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_fit: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray


def load(settings: ASettings, ds, *, seed: int, split: str = "paper") -> ImageSplit:
    """Study A's images (``ds``: the resolved Sartaj set, at most ``settings.max_images``) and
    their ``split``."""
    images = mri_common.list_subsample(ds, settings.max_images, seed=seed)
    return mri_common.split_images(ds, images, split=split, seed=seed)


def resplit(data: ImageSplit, *, split: str, seed: int) -> ImageSplit:
    """The same images under another split (``"official"``: Training/Testing)."""
    return mri_common.split_images(data.ds, data.images, split=split, seed=seed)


def describe(data: ImageSplit) -> str:
    return (f"{data.ds.label}: {len(data.images)} images -> {len(data.fit)} fit + "
            f"{len(data.val)} validation + {len(data.test)} test")


def split_counts(data: ImageSplit) -> pd.DataFrame:
    """Images per class in the fit / validation / test parts (``brain_mri.counts``)."""
    from medrepro.data import brain_mri

    return brain_mri.counts(pd.concat([data.fit.assign(split="train"), data.val.assign(split="val"),
                                 data.test.assign(split="test")]))


def features(data: ImageSplit, *, seed: int) -> FeatureSet:
    """ResNet50 (ImageNet weights if available) features of every image of ``data``, cached
    under ``data/processed/<dataset>/features/<source>``."""
    cache_dir = paths.processed_dir(data.ds.dataset_id) / "features" / data.source
    return resnet50_features(data.images["path"], cache_dir=cache_dir, weights="imagenet",
                             batch_size=FEATURE_BATCH, seed=seed)


def weights_note(feats: FeatureSet) -> str:
    """The note every A artifact trained on the features carries: which ResNet50 weights."""
    if feats.weights == "imagenet":
        return "features: ResNet50 with ImageNet weights"
    return ("features: RANDOMLY INITIALISED ResNet50 (ImageNet weights unavailable offline) - "
            "not comparable to the paper")


def describe_features(feats: FeatureSet) -> str:
    return f"{feats.x.shape} {'cached' if feats.cached else 'computed'} -> {feats.path.name}"


def inputs(feats: FeatureSet, data: ImageSplit) -> Inputs:
    """``data``'s features scaled on its fit part (:func:`scale_features`), with the labels."""
    x = scale_features(feats.x[data.fit.index], feats.x[data.val.index], feats.x[data.test.index])
    return Inputs(*x, *(f["label"].to_numpy() for f in (data.fit, data.val, data.test)))


def scale_features(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre features on the training mean (per feature) and divide by one scalar, the
    training features' overall standard deviation; float32 out.

    ResNet50 features share a large common component (random-init ones especially: cosine
    similarity ~0.94 between images), which would push every LSTM gate the same way. Centring
    removes it; one global scale keeps the features' geometry. Statistics come from ``train``
    only. Returns ``[train, *others]`` transformed.
    """
    train = np.asarray(train, dtype=np.float32)
    mean = train.mean(axis=0, keepdims=True)
    std = float((train - mean).std()) or 1.0
    return [(np.asarray(a, dtype=np.float32) - mean) / std for a in (train, *others)]


def resnet50_features(files: Sequence[str | os.PathLike], *, cache_dir: str | os.PathLike,
                      root: str | os.PathLike | None = None, weights: str | None = "imagenet",
                      fallback: bool = True, batch_size: int = 32, seed: int = 0,
                      image_size: int = mm.RESNET_INPUT) -> FeatureSet:
    """ResNet50 features of image files, computed once and cached in ``cache_dir``.

    Images are decoded (JPEG/PNG, grayscale → RGB), resized to ``image_size`` (bilinear) and
    passed through ResNet50's ``preprocess_input``. The cache file is keyed by the files' paths
    (relative to ``root`` when given), their sizes, the image size and the weights actually
    used; a sidecar JSON records them. Returns a :class:`FeatureSet` with ``x`` of shape
    ``(N, 1, F)`` float16 (F = 100,352 at 224), in ``files`` order.
    """
    files = [Path(f) for f in files]
    cache_dir = Path(cache_dir)
    used = mm.wanted_weights(weights)
    if weights == "imagenet" and not mm.imagenet_weights_available():
        used = "random"  # resnet50_backbone below warns (or raises, without fallback)
    path = _cache_path(cache_dir, files, root=root, image_size=image_size, weights=used)
    with locks.hold(path, what="ResNet50 features"):  # a second process waits, then reads them
        cached = _read_features(path, n_images=len(files))
        if cached is not None:
            if used != mm.wanted_weights(weights):
                warnings.warn(f"ResNet50 ImageNet weights unavailable: using the cached features "
                              f"of a RANDOMLY INITIALISED ResNet50 ({path.name}); accuracies are "
                              "NOT comparable to the paper's.", RuntimeWarning, stacklevel=2)
            return FeatureSet(cached, used, path, True)
        return _compute_features(files, cache_dir=cache_dir, root=root, weights=weights,
                                 fallback=fallback, batch_size=batch_size, seed=seed,
                                 image_size=image_size)


def _read_features(path: Path, *, n_images: int) -> np.ndarray | None:
    """The cached features at ``path`` when they and their sidecar read back whole and match
    (``n_images`` rows, the sidecar's shape and dtype); None when absent. A damaged cache is
    logged and computed again, never trusted."""
    from medrepro.core.fileio import CorruptFileError, read_json

    if not path.is_file():
        return None
    try:
        meta = read_json(path.with_suffix(".json"))
        x = np.load(path)
        want = (n_images, 1, meta["n_features"])
        if x.shape != want or str(x.dtype) != meta["dtype"]:
            raise ValueError(f"holds {x.shape} {x.dtype}, its sidecar says {want} {meta['dtype']}")
        return x
    except (OSError, ValueError, KeyError, EOFError, CorruptFileError) as exc:
        warnings.warn(f"{path}: damaged feature cache ({exc}); computing the features again",
                      RuntimeWarning, stacklevel=3)
        return None


def _compute_features(files: Sequence[Path], *, cache_dir: Path, root, weights: str | None,
                      fallback: bool, batch_size: int, seed: int,
                      image_size: int) -> FeatureSet:
    model, used = mm.resnet50_backbone(weights=weights, fallback=fallback, image_size=image_size,
                                       seed=seed)
    path = _cache_path(cache_dir, files, root=root, image_size=image_size, weights=used)
    x = _extract(model, files, image_size=image_size, batch_size=batch_size)
    with atomic_path(path, suffix=".npy", needed=x.nbytes) as tmp:
        np.save(tmp, x)
    meta = {"n_images": len(files), "weights": used, "image_size": image_size,
            "n_features": int(x.shape[-1]), "dtype": str(x.dtype), "file": path.name}
    with atomic_path(path.with_suffix(".json"), suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")
    return FeatureSet(x, used, path, False)


def _cache_path(cache_dir: Path, files: Sequence[Path], *, root, image_size: int,
                weights: str) -> Path:
    key = _feature_key(files, root=root, image_size=image_size, weights=weights)
    return cache_dir / f"resnet50_{weights}_{image_size}_{key}.npy"


def _feature_key(files: Sequence[Path], *, root, image_size: int, weights: str) -> str:
    h = hashlib.sha1(f"{image_size}|{weights}".encode())
    for f in files:
        rel = f.relative_to(root) if root is not None and f.is_relative_to(root) else f
        size = f.stat().st_size if f.is_file() else -1
        h.update(f"{rel.as_posix()}|{size}\n".encode())
    return h.hexdigest()[:16]


def _extract(model, files: Sequence[Path], *, image_size: int, batch_size: int) -> np.ndarray:
    import keras
    import tensorflow as tf

    from medrepro.data import brain_mri
    from medrepro.core import progress

    ds = brain_mri.decode_files(files, image_size=image_size, scale="raw")
    ds = ds.map(keras.applications.resnet50.preprocess_input).batch(batch_size).prefetch(2)
    n_features = int(np.prod(model.output_shape[1:]))  # 100,352 at 224
    out = np.empty((len(files), 1, n_features), dtype=FEATURE_DTYPE)
    start = 0
    batches = -(-len(files) // batch_size)
    for batch in progress.bar(ds, total=batches, desc="ResNet50 features", unit="batch"):
        feats = model(batch, training=False)
        n = int(feats.shape[0])
        out[start:start + n] = tf.reshape(feats, (n, 1, n_features)).numpy().astype(FEATURE_DTYPE)
        start += n
    if start != len(files):
        raise RuntimeError(f"feature extraction produced {start} rows for {len(files)} files")
    return out


# ---------------------------------------------------------------------------- heads
def train_head(kind: str, x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray,
               y_val: np.ndarray, *, epochs: int, batch_size: int, learning_rate: float,
               run_dir, checkpoint: str | None = "memory", backup: bool = False,
               seed: int = 0, verbose: int = 2, model=None):
    """Build, compile (Adam, categorical cross-entropy) and train a study-A head on features.

    ``kind``: ``"lstm"`` (:func:`~medrepro.models.brain_mri.lstm_cnn_head`, ReLU as the paper),
    ``"lstm_tanh"`` (the same with tanh) or ``"standard"``
    (:func:`~medrepro.models.brain_mri.standard_cnn_head`).
    ``x_*``: ``(N, 1, F)`` features; ``y_*``: int class indices ``(N,)``. Study A names no
    optimizer; Adam is our choice. ``model``: an already built head of that kind to train
    (building the LSTM head takes seconds). Returns ``(model, history)``; the model holds the
    weights of the epoch with the lowest validation loss.
    """
    import keras

    from medrepro.data import pipeline
    from medrepro.training import train

    builders = {**{k: functools.partial(mm.lstm_cnn_head, activation=act)
                   for k, act in mm.LSTM_VARIANTS.items()}, "standard": mm.standard_cnn_head}
    if kind not in builders:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(builders)}")
    seeds.seed_everything(seed)
    if model is None:
        model = builders[kind](n_features=int(x_fit.shape[-1]))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    k = model.output_shape[-1]
    fit_ds = pipeline.from_arrays(x_fit, keras.utils.to_categorical(y_fit, k),
                               batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = pipeline.from_arrays(x_val, keras.utils.to_categorical(y_val, k),
                               batch_size=batch_size)
    # With backup (the paper profile) a finished head is reused and an interrupted one resumes
    # (train.fit_once); without, every run trains afresh (no 0.8 GB weight file per head).
    recipe = train.FitConfig(epochs=epochs, checkpoint=checkpoint, backup=backup)
    if not backup:
        return model, train.fit(model, fit_ds, val_ds, recipe, run_dir=run_dir, verbose=verbose)
    identity = {"kind": kind, "n_fit": len(x_fit), "n_val": len(x_val),
                "features": int(x_fit.shape[-1]), "learning_rate": learning_rate,
                "batch_size": batch_size, "seed": seed}
    return model, train.fit_once(model, fit_ds, val_ds, recipe, run_dir=run_dir,
                                 identity=identity, verbose=verbose)


def predict_head(model, x: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Predicted class indices ``(N,)`` of a head for features ``x`` ``(N, 1, F)``."""
    from medrepro.data import pipeline
    from medrepro.training import train

    return train.predict_classes(model, pipeline.from_arrays(x, batch_size=batch_size, cache=False))


def calibration(model, x: Inputs, *, n_boot: int, seed: int):
    """A.calibration: the LSTM-CNN's ECE, Brier and NLL on the paper split's test images before
    and after temperature scaling fitted on its validation images."""
    from medrepro.analysis import calibration as cal
    from medrepro.data import pipeline
    from medrepro.training import train

    val, test = (train.predict_proba(model, pipeline.from_arrays(a, batch_size=64, cache=False))
                 for a in (x.x_val, x.x_test))
    return cal.calibrate(x.y_val, val, x.y_test, test, model="LSTM-CNN (paper split)",
                         n_boot=n_boot, seed=seed)


def reliability_figure(cal):
    """A.fig_reliability: the test images' reliability diagram before and after scaling."""
    return plots.plot_reliability(cal.frames, title="A: reliability on the test images "
                                                     "(LSTM-CNN)")


def fit(settings: ASettings, x: Inputs, runs: Path, *, kind: str, seed: int,
        split: str = "paper", model=None, verbose: int = 0):
    """Train head ``kind`` (``"lstm"`` or ``"standard"``) on ``x`` with ``settings``; run
    folder ``runs/A_<kind>_<split>`` (``runs``: the notebook run's training folder). The LSTM
    head checkpoints and backs up as the profile says (``checkpoint``, ``backup``); the small
    standard head always trains afresh. Returns ``(model, history)``."""
    keep = ({"checkpoint": settings.checkpoint, "backup": settings.backup} if kind == "lstm"
            else {})
    return train_head(kind, x.x_fit, x.y_fit, x.x_val, x.y_val, epochs=settings.epochs,
                      batch_size=settings.batch, learning_rate=settings.lr,
                      run_dir=Path(runs) / f"A_{kind}_{split}", seed=seed, verbose=verbose,
                      model=model, **keep)


def train_official(settings: ASettings, x: Inputs, runs: Path, *,
                   seed: int) -> dict[str, np.ndarray]:
    """Test predictions on the official split (``x``: its inputs): the LSTM head (if
    ``settings.official_lstm``; keras' session is cleared first, so drop other LSTM heads
    before) and the standard head. Returns model name -> ``(N,)`` predictions."""
    import keras

    preds = {}
    if settings.official_lstm:
        keras.backend.clear_session()
        lstm, _ = fit(settings, x, runs, seed=seed, kind="lstm", split="official")
        preds[LSTM] = predict_head(lstm, x.x_test)
        del lstm
    std, _ = fit(settings, x, runs, seed=seed, kind="standard", split="official")
    preds[STANDARD] = predict_head(std, x.x_test)
    return preds


# ---------------------------------------------------------------------------- tables and figures
def table1(model) -> pd.DataFrame:
    """Our LSTM head's summary beside study A's Table 1 (``paper_*`` columns), row by row."""
    from medrepro.models.summary import summary_frame

    ours = summary_frame(model)
    paper = manifest.reported_frame("A.table1")
    n = max(len(ours), len(paper))
    ours = ours.reindex(range(n))
    paper = paper.reindex(range(n)).add_prefix("paper_")
    out = pd.concat([ours, paper], axis=1)
    out["params_match"] = out["params"] == out["paper_params"]
    return out


def fig9(model, feats: FeatureSet):
    """The model diagram: ResNet50 features + the LSTM head of Table 1."""
    return plots.plot_diagram(
        model, title="A: LSTM-CNN = ResNet50 features + the LSTM head of Table 1",
        preamble=[("MRI image", "224×224×3 RGB"),
                  ("ResNet50, no top", f"{feats.weights} weights, not trained · out (7, 7, 2048)"),
                  ("reshape", "(1, 100352): a length-1 sequence")])


def fig11(data: ImageSplit, pred: np.ndarray):
    return mri_common.confusion_figure(data.y_test, pred, title=f"A: LSTM-CNN, paper split ({data.ds.label})",
                                 normalised_title="normalised by true class (recall on the diagonal)")


def fig14(data: ImageSplit, pred: np.ndarray, *, seed: int):
    return mri_common.predictions_figure(data.test, pred, image_size=FIG14_IMAGE_SIZE, seed=seed,
                                   title="A: LSTM-CNN, random test images (true / predicted)")


def table2(y_true, y_pred, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per-class report with 95% bootstrap CIs beside the paper's Table 2."""
    return mri_common.classification_report(y_true, y_pred, dataset_id=DATASET, artifact="A.table2",
                                      n_boot=n_boot, seed=seed)


def table2_notes(ci: dict, note: str) -> str:
    """``ci``: ``evaluate.summary_row`` of the LSTM head on the paper split's test set."""
    return (f"{note}. Accuracy {ci['accuracy']:.3f} (95% bootstrap CI {ci['accuracy_lo']:.3f}-"
            f"{ci['accuracy_hi']:.3f}), macro-F1 {ci['macro_f1']:.3f} ({ci['macro_f1_lo']:.3f}-"
            f"{ci['macro_f1_hi']:.3f}), n = {ci['n_test']} (paper: 653). *_lo/*_hi: per-class "
            "95% bootstrap CIs. Columns paper_*: the paper's Table 2.")


WEIGHTS_UNAVAILABLE = "ImageNet weights unavailable: randomly initialised ResNet50 features"


def record_table2(ci: dict, *, source: str, note: str) -> None:
    """Record the headline accuracy and macro-F1 of the paper split for 06_compare; features
    of a randomly initialised ResNet50 (:func:`weights_note`) are recorded as a departure from
    the paper (the ledger's "not comparable")."""
    away = (WEIGHTS_UNAVAILABLE,) if "RANDOMLY INITIALISED" in note else ()
    for metric, col in (("test accuracy (LSTM-CNN, paper split)", "accuracy"),
                        ("test macro-F1 (LSTM-CNN, paper split)", "macro_f1")):
        mri_common.record_ci("A", metric, ci, col, source=source, artifact="A.table2",
                             notes=note, deviations=away)


def table3(data: ImageSplit, feats: FeatureSet, ci: dict, note: str, *,
           profile: str) -> pd.DataFrame:
    """The paper's Table 3 (literature) with our row appended; column ``source`` says which."""
    ours = {"study": f"This reproduction ({profile} profile)",
            "method": (f"ResNet50 ({feats.weights} weights) features + LSTM head "
                       f"(Table 1, {mm.LSTM_ACTIVATION})"),
            "dataset": (f"{data.ds.label}: {len(data.images)} images used, pooled 80/20 split, "
                        f"{len(data.test)} test images"),
            "accuracy": round(100 * ci["accuracy"], 2)}
    table = pd.concat([manifest.reported_frame("A.table3"), pd.DataFrame([ours])],
                      ignore_index=True)
    table["source"] = (["paper (static)"] * (len(table) - 1)
                       + [f"reproduced: {data.source}, {note}"])
    return table


def mcnemar_table(y_true, pred_lstm, pred_std, *, n_boot: int, seed: int) -> pd.DataFrame:
    """McNemar's test, LSTM-CNN (A) vs standard CNN (B) on the paper split, with the paired
    bootstrap 95% CI of the accuracy difference A − B."""
    table = pd.DataFrame([{"split": "paper", "model_a": LSTM, "model_b": STANDARD,
                           "n_test": len(y_true), "accuracy_a": np.mean(pred_lstm == y_true),
                           "accuracy_b": np.mean(pred_std == y_true),
                           **evaluate.mcnemar(y_true, pred_lstm, pred_std)}])
    diff = evaluate.paired_accuracy_difference(y_true, pred_lstm, pred_std, n_boot=n_boot,
                                               seed=seed)
    table[["acc_diff", "acc_diff_lo", "acc_diff_hi"]] = diff["point"], diff["lo"], diff["hi"]
    return table


def mcnemar_notes(note: str) -> str:
    return ("n01 = LSTM-CNN wrong & standard right; n10 = the reverse; acc_diff = accuracy A - B "
            f"with its paired bootstrap 95% CI. {note}.")


def splits_table(paper: ImageSplit, paper_preds: dict[str, np.ndarray], official: ImageSplit,
                 official_preds: dict[str, np.ndarray], groups, *, n_boot: int,
                 seed: int) -> pd.DataFrame:
    """Every model on both splits, on the whole and on the duplicate-free test set."""

    rows = []
    for split, data, preds in [(PAPER_SPLIT, paper, paper_preds),
                               (OFFICIAL_SPLIT, official, official_preds)]:
        rows += mri_common.leakage_rows(data.train, data.test, preds, groups, split=split,
                                 n_boot=n_boot, seed=seed)
    return pd.DataFrame(rows)


def splits_notes(note: str, groups_how: str) -> str:
    return (f"{note}. Duplicates: {groups_how}; 'dropped' = test images with a duplicate in "
            "that split's training images. 95% bootstrap CIs.")


def record_duplicate_free(table: pd.DataFrame, *, source: str, note: str) -> None:
    """Record the LSTM head's duplicate-free accuracy and macro-F1 on the paper split."""
    from medrepro.reporting import results

    free = table[table["split"].str.startswith("paper") & (table["model"] == LSTM)
                 & (table["test set"] == "duplicate-free")].iloc[0]
    for metric, col in DUPLICATE_FREE_METRICS.items():
        mri_common.record_ci("A", metric + results.DUPLICATE_FREE, free, col, source=source,
                       artifact="A.splits", n=int(free["n_test"]),
                       extra={"dropped": int(free["dropped"])},
                       notes=f"{int(free['dropped'])} test images with a training duplicate "
                             f"dropped; {note}")


# ---------------------------------------------------------------------------- the plan
def plan(settings: ASettings, ctx: PlanContext) -> RowPlan:
    """Study A's part of notebook 03's plan: the LSTM head's checkpoints where the profile keeps
    them on disk (``settings.backup``: the paper profile), no time projection yet."""
    out = RowPlan(note="no measured training rate for study A yet")
    if settings.backup:
        out.writes.append(Write("study A checkpoints (LSTM head + ResNet50)",
                                paths.runs_root() / NOTEBOOK / ctx.profile,
                                PLANNED_PARAMS * CHECKPOINT_BYTES_PER_PARAM))
    return out
