"""Study E: the Akbank bootcamp project — a CNN with Grad-CAM, Eigen-CAM and Integrated Gradients.

:func:`medrepro.models.brain_mri.xai_cnn` (Conv-BatchNorm-ReLU-MaxPool blocks, Flatten-Dense-Dropout head)
on the pooled 80/20 split of the Masoud set, Adam 1e-3, categorical cross-entropy (label
smoothing 0.1), early stopping (after a 10-epoch warm-up) and ReduceLROnPlateau on the validation loss (:func:`train_cnn`); one test image per class explained with
Grad-CAM and Eigen-CAM on the last block's activation and Integrated Gradients from a black
image (:func:`explanation_maps`).
Artifacts (notebook 03): ``E.fig1`` (:func:`fig1`), ``E.fig2`` (:func:`fig2`), ``E.table1``
(:func:`table1`), ``E.leakage`` (:func:`leakage`), ``E.fig3``-``E.fig5`` (:func:`maps_figure`);
beyond the paper ``E.xai_score`` (:func:`score_explanations`), ``E.xai_eval`` /
``E.fig_xai_eval`` (:func:`evaluate_explanations`), ``E.fig_failures`` (:func:`failures_figure`)
and the test-set explorer (:func:`explorer_source`); ``E.performance`` (:func:`performance`) sets
the source's validation and test accuracy and test loss beside ours, with the plain
cross-entropy (the paper's loss) apart from the smoothed one the CNN is trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.analysis import evaluate, explain, sanity
from medrepro.data import brain_mri
from medrepro.core import manifest, seeds
from medrepro.core.planning import PlanContext, RowPlan
from medrepro.core.profiles import ESettings
from medrepro.reporting import plots
from medrepro.models import brain_mri as mm
from medrepro.studies import mri_common
from medrepro.studies.mri_common import ImageSplit, duplicate_groups, leakage_notes  # noqa: F401

DATASET = mri_common.MASOUD  # run.resolve_mri may stand the real Sartaj set in

# The recipe (every profile; the paper states Adam, categorical cross-entropy, EarlyStopping and
# ReduceLROnPlateau, not their settings), chosen on the validation split of the real Sartaj set
# (docs/decisions.md#e4): Adam's default rate; the plateau cut halves the rate after 3 epochs
# without a better validation loss, down to MIN_LR (a harsher cut starved the noisy early
# epochs); early stopping waits 8 epochs and restores the best weights; label smoothing 0.1
# keeps the softmax from saturating on the training images. The source names no smoothing:
# E.performance reports the plain cross-entropy beside the paper's test loss
# (docs/decisions.md#e8).
LEARNING_RATE = 1e-3
REDUCE_LR_FACTOR = 0.5
MIN_LR = 1e-5
LABEL_SMOOTHING = 0.1
MONITOR = "val_loss"
# Early stopping watches the validation loss only after the first 10 epochs: the early losses
# swing, and counted from epoch 1 patience stopped a run on its epoch-2 model
# (docs/decisions.md#e4).
STOP_FROM_EPOCH = 10
CAM_LAYER = "relu4"  # the last block's activation
MAPS = {"E.fig3": "Grad-CAM", "E.fig4": "Eigen-CAM", "E.fig5": "Integrated Gradients"}
DUPLICATE_FREE_METRICS = {"test accuracy": "accuracy", "test macro-F1": "macro_f1"}
PAPER_RESULT = "paper: 0.9308 / 0.9445 / 0.1544, n = 1405"  # val acc / test acc / test loss
# E.performance's loss columns: the paper's test loss is Keras' categorical cross-entropy
# (E:24, E:45), which our smoothed training objective is not.
CE_COLUMN = "test_loss_cross_entropy"
SMOOTHED_COLUMN = f"test_loss_smoothed_{LABEL_SMOOTHING}"


@dataclass(frozen=True)
class Result:
    """The trained CNN, its ``history``, test loss/accuracy and predictions ``pred`` ``(N,)``.

    ``test_loss``: the training objective (cross-entropy with label smoothing
    :data:`LABEL_SMOOTHING`) on the test set; ``test_cross_entropy``: the plain categorical
    cross-entropy (mean negative log-probability of the true class, nats) of the same
    predictions, the loss the paper reports; ``proba``: the test probabilities ``(N, 4)``
    behind ``pred``."""

    data: ImageSplit
    model: Any
    history: pd.DataFrame
    test_loss: float
    test_accuracy: float
    pred: np.ndarray
    test_cross_entropy: float
    proba: np.ndarray


def load(settings: ESettings, ds, *, seed: int, note: str = "") -> ImageSplit:
    """``ds`` (the Masoud set, or the real Sartaj set standing in: ``note`` says so), pooled
    80/20 split, 10% for validation."""
    return mri_common.load_split(ds, max_images=settings.max_images, split="paper", seed=seed,
                                 note=note)


def train_cnn(settings: ESettings, data: ImageSplit, runs: Path, *, seed: int):
    """Build and train :func:`xai_cnn` at ``settings.image_size`` in ``runs/E_cnn``;
    ``(model, history, test pipeline)``."""
    import keras

    from medrepro.training import train

    size = settings.image_size
    fit_ds, val_ds, test_ds = mri_common.image_datasets(data, image_size=size,
                                                        batch_size=settings.batch,
                                                        augment=brain_mri.E_AUGMENT, seed=seed)
    seeds.seed_everything(seed)
    model = mm.xai_cnn((size, size, 3))
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING),
                  metrics=["accuracy"])
    recipe = train.FitConfig(epochs=settings.epochs, monitor=MONITOR, patience=settings.patience,
                             stop_from_epoch=STOP_FROM_EPOCH,
                             reduce_lr_patience=settings.reduce_lr,
                             reduce_lr_factor=REDUCE_LR_FACTOR, min_lr=MIN_LR, seed=seed)
    history = train.fit_once(model, fit_ds, val_ds, recipe, run_dir=Path(runs) / "E_cnn",
                             identity=mri_common.run_identity(data, image_size=size,
                                                              augment=brain_mri.E_AUGMENT),
                             verbose=0)
    return model, history, test_ds


def evaluate_cnn(data: ImageSplit, model, history: pd.DataFrame, test_ds) -> Result:
    """Test losses (the smoothed objective and the plain cross-entropy), accuracy and
    predictions of the trained CNN."""
    from medrepro.analysis import calibration as cal
    from medrepro.training import train

    loss, acc = train.evaluate(model, test_ds)
    proba = train.predict_proba(model, test_ds)  # (N, 4)
    return Result(data, model, history, loss, acc, proba.argmax(axis=1).astype(np.int64),
                  cal.nll(data.y_test, proba), proba)


def performance(res: Result) -> pd.DataFrame:
    """E.performance: the source's headline numbers (E:43-45) beside ours, one row each
    (``source``): best validation accuracy, test accuracy, the test loss as plain categorical
    cross-entropy (:data:`CE_COLUMN`, the paper's loss) and as our training objective with
    label smoothing (:data:`SMOOTHED_COLUMN`; the paper trained without, so its cell is empty),
    ``n_test``."""
    ours = {"source": "ours", "best_val_accuracy": float(res.history["val_accuracy"].max()),
            "test_accuracy": res.test_accuracy, CE_COLUMN: res.test_cross_entropy,
            SMOOTHED_COLUMN: res.test_loss, "n_test": len(res.data.test)}
    return pd.DataFrame([ours, *manifest.get("E.performance").reported])


def performance_notes(res: Result) -> str:
    return (f"{res.data.note}. {CE_COLUMN}: mean -log p(true class) of the test predictions, "
            "the categorical cross-entropy the source trained and reported with (E:24, E:45); "
            f"{SMOOTHED_COLUMN}: the same predictions under our training objective, "
            f"cross-entropy with label smoothing {LABEL_SMOOTHING}, which the source does not "
            "name (docs/decisions.md#e8); smoothing alone keeps it well above the plain loss "
            "of a confident model.")


def calibration(res: Result, *, image_size: int, batch_size: int, n_boot: int, seed: int):
    """E.calibration: the CNN's ECE, Brier and NLL on the test set before and after temperature
    scaling fitted on the validation split (:func:`medrepro.analysis.calibration.calibrate`)."""
    from medrepro.analysis import calibration as cal

    val, test = mri_common.probabilities(res.model, res.data, image_size=image_size,
                                         batch_size=batch_size)
    return cal.calibrate(res.data.val["label"].to_numpy(), val, res.data.y_test, test,
                         model="CNN", n_boot=n_boot, seed=seed,
                         test_note=mri_common.test_set_note(res.data, split="paper"))


def reliability_figure(cal) -> Any:
    """E.fig_reliability: the test set's reliability diagram before and after scaling."""
    return plots.plot_reliability(cal.frames, title="E: reliability on the test set")


def fig1(history: pd.DataFrame):
    return mri_common.curves_figure(history, title="E")


def fig2(res: Result):
    return mri_common.confusion_figure(res.data.y_test, res.pred,
                                 title=f"E: test set, {res.data.ds.label}")


def table1(res: Result, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per-class report with 95% bootstrap CIs beside the project's classification report."""
    return mri_common.classification_report(res.data.y_test, res.pred, dataset_id="brain_tumor_masoud",
                                      artifact="E.table1", n_boot=n_boot, seed=seed)


def table1_notes(res: Result, ci: dict) -> str:
    """``ci``: ``evaluate.summary_row`` of the CNN on the test set."""
    return (f"{res.data.note}. Ours: best val accuracy {res.history['val_accuracy'].max():.4f}, "
            f"test accuracy {res.test_accuracy:.4f} (95% CI {ci['accuracy_lo']:.3f}-"
            f"{ci['accuracy_hi']:.3f}), test loss {res.test_cross_entropy:.4f} (plain cross-entropy; "
            f"{res.test_loss:.4f} with our label smoothing), n = {len(res.data.test)}; "
            f"{PAPER_RESULT}. *_lo/*_hi: per-class 95% bootstrap CIs.")


def record_table1(res: Result, ci: dict) -> None:
    mri_common.record_ci("E", "test accuracy", ci, "accuracy", source=res.data.source,
                   artifact="E.table1", notes=res.data.note)
    mri_common.record_ci("E", "test macro-F1", ci, "macro_f1", source=res.data.source,
                   artifact="E.table1", notes=res.data.note)


def leakage(res: Result, groups, *, n_boot: int, seed: int) -> pd.DataFrame:
    """The CNN on the whole and on the duplicate-free test set."""
    return mri_common.leakage_table(res.data.train, res.data.test, {"CNN": res.pred}, groups,
                              split=mri_common.PAPER_SPLIT, n_boot=n_boot, seed=seed)


def record_leakage(res: Result, table: pd.DataFrame) -> None:
    mri_common.record_duplicate_free("E", table, DUPLICATE_FREE_METRICS, source=res.data.source,
                               artifact="E.leakage", notes=res.data.note)


@dataclass(frozen=True)
class Explanations:
    """One test image per class: ``images`` ``(K, H, W, 3)`` in [0, 1], their ``titles``
    (true / predicted) and ``maps``: artifact id -> ``(K, H, W)`` heat maps."""

    images: np.ndarray
    titles: list[str]
    maps: dict[str, np.ndarray]


def explanation_maps(res: Result, *, image_size: int, ig_steps: int) -> Explanations:
    """Grad-CAM, Eigen-CAM (on ``CAM_LAYER``) and Integrated Gradients of one test image per
    class; every map has the images' spatial shape and is finite."""
    test = res.data.test
    pick = test.groupby("label", sort=True).head(1)
    images = brain_mri.load_images(pick, image_size=image_size)
    pred = res.pred[test.index.get_indexer(pick.index)]
    titles = [f"{mri_common.LABELS[t]} / pred {mri_common.LABELS[p]}" for t, p in zip(pick["label"], pred)]
    maps = {"E.fig3": explain.gradcam(res.model, images, layer=CAM_LAYER),
            "E.fig4": explain.eigencam(res.model, images, layer=CAM_LAYER),
            "E.fig5": np.stack([explain.attribution_map(a) for a in
                                explain.integrated_gradients(res.model, images, steps=ig_steps)])}
    bad = [k for k, m in maps.items() if m.shape != images.shape[:3] or not np.isfinite(m).all()]
    if bad:
        raise evaluate.EvaluationError(f"explanation maps {bad}: expected finite maps of shape "
                                       f"{images.shape[:3]}")
    return Explanations(images, titles, maps)


def maps_figure(expl: Explanations, artifact: str):
    """The images with one method's heat maps overlaid (``E.fig3``-``E.fig5``)."""
    return plots.plot_maps(expl.images, expl.maps[artifact], titles=expl.titles,
                           suptitle=f"E: {MAPS[artifact]} (true / predicted)")


# ---------------------------------------------------------------------------- explanations scored
# E.xai_score / E.fig_xai_score: the pointing game (medrepro.analysis.xai_score) of the three maps on the
# correctly classified tumour test images of a phantom, whose lesion masks are known.
XAI_METHODS = ("Grad-CAM", "Eigen-CAM", "Integrated Gradients")
TUMOUR_LABELS = tuple(i for i, name in enumerate(brain_mri.CLASS_NAMES) if name != "no tumour")
N_SCORE_SHOWN = 6  # images in E.fig_xai_score (Grad-CAM's hits and misses, half each if can be)
SCORED = "scored"


@dataclass(frozen=True)
class XaiScore:
    """The pointing game of E's maps. ``status``: :data:`SCORED` or why not (real data has no
    masks); ``images`` ``(N, S, S, 3)``, ``masks`` / ``regions`` ``(N, S, S)`` bool (lesion,
    brain) at the model's input size, ``titles``, ``maps`` and ``games`` per method;
    ``n_candidates``: correctly classified tumour test images, ``n_empty``: those whose lesion
    vanished at the input size (left out)."""

    label: str
    status: str
    n_candidates: int = 0
    n_empty: int = 0
    images: np.ndarray | None = None
    masks: np.ndarray | None = None
    regions: np.ndarray | None = None
    titles: tuple[str, ...] = ()
    maps: dict | None = None
    games: dict | None = None
    n_boot: int = 1000
    seed: int = 0


def score_explanations(res: Result, *, image_size: int, ig_steps: int, n_boot: int,
                       seed: int) -> XaiScore:
    """Grad-CAM, Eigen-CAM (on ``CAM_LAYER``) and Integrated Gradients of every correctly
    classified tumour test image, scored against its phantom lesion mask (resized like the image:
    bilinear with anti-aliasing, a pixel is lesion when at least half of it was). Integrated
    Gradients' map is |attribution| summed over channels, unclipped, so its maximum is one pixel.
    Returns a "not scored" :class:`XaiScore` for data without masks (real data)."""
    import os

    from medrepro.data import phantoms
    from medrepro.analysis import xai_score

    ds = res.data.ds
    if not phantoms.has_lesion_masks(ds.root):
        return XaiScore(ds.label, f"not scored: {ds.label} has no lesion masks")
    test = res.data.test
    picked = test[np.isin(test["label"], TUMOUR_LABELS) & (res.pred == test["label"].to_numpy())]
    store = phantoms.lesion_masks(ds.root)
    drawn = [store[phantoms.mask_key(ds.root, p)] for p in picked["path"]]
    lesion = _masks_at([d["lesion"] for d in drawn], image_size)
    keep = lesion.any(axis=(1, 2))
    n_candidates, n_empty = len(picked), int((~keep).sum())
    if not keep.any():
        return XaiScore(ds.label, "no correctly classified tumour test image to score",
                        n_candidates, n_empty)
    picked, lesion = picked[keep], lesion[keep]
    regions = _masks_at([d["region"] for d, k in zip(drawn, keep) if k], image_size)
    images = brain_mri.load_images(picked, image_size=image_size)
    maps = xai_maps(res.model, images, ig_steps=ig_steps)
    games = {m: xai_score.pointing_game(maps[m], lesion, regions=regions) for m in maps}
    titles = tuple(f"{mri_common.LABELS[t]} · {os.path.basename(p).rsplit('.', 1)[0]}"
                   for t, p in zip(picked["label"], picked["path"]))
    return XaiScore(ds.label, SCORED, n_candidates, n_empty, images, lesion, regions, titles,
                    maps, games, n_boot, seed)


def xai_maps(model, images: np.ndarray, *, ig_steps: int) -> dict[str, np.ndarray]:
    """The maps E.xai_score scores, method -> ``(N, S, S)`` float32 in [0, 1], of ``images``
    ``(N, S, S, 3)``: Grad-CAM and Eigen-CAM on ``CAM_LAYER`` (the predicted class) and
    Integrated Gradients' unclipped |attribution| summed over channels (``ig_steps``)."""
    return {"Grad-CAM": explain.gradcam(model, images, layer=CAM_LAYER),
            "Eigen-CAM": explain.eigencam(model, images, layer=CAM_LAYER),
            "Integrated Gradients": np.stack([explain.attribution_map(a, percentile=100.0) for a in
                                              explain.integrated_gradients(model, images,
                                                                           steps=ig_steps)])}


def _masks_at(masks, size: int) -> np.ndarray:
    """bool ``(N, size, size)``: masks ``(N, H, W)`` resized like :func:`medrepro.data.brain_mri.decode_files`
    resizes images (bilinear, anti-aliased), then thresholded at one half."""
    import tensorflow as tf

    if len(masks) == 0:
        return np.zeros((0, size, size), dtype=bool)
    # one call per mask: the images' sizes differ (odd sizes beside the square ones)
    return np.stack([tf.image.resize(np.asarray(m, dtype=np.float32)[..., None], (size, size),
                                     antialias=True).numpy()[..., 0] >= 0.5 for m in masks])


def xai_score_table(score: XaiScore):
    """E.xai_score: per method the hit rate with its 95% Wilson interval beside the chance rate of
    a random point in the image (``chance_image``) and in the brain (``chance_brain``)."""
    from medrepro.analysis import xai_score

    rows = []
    for method in XAI_METHODS:
        row = {"method": method, "status": score.status, "data": score.label,
               "n_correct_tumour": score.n_candidates, "n_empty_mask": score.n_empty,
               "dilation_px": xai_score.DILATION_PX}
        if score.games is not None:
            row.update(xai_score.summary(score.games[method]))
            row["chance_brain"] = row.pop("chance_region")
        rows.append(row)
    first = ["method", "status", "n_scored", "hits", "hit_rate", "hit_rate_lo", "hit_rate_hi",
             "chance_image", "chance_brain"]
    table = pd.DataFrame(rows)
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def xai_score_notes(score: XaiScore) -> str:
    from medrepro.analysis import xai_score

    if score.status != SCORED:
        return f"{score.status}."
    return (f"Pointing game on the correctly classified tumour test images ({score.label}): a hit "
            f"when the map's maximum lies in the lesion mask dilated by {xai_score.DILATION_PX} "
            "px at the model's input size; hit_rate_lo/hi: 95% Wilson interval; chance_image / "
            "chance_brain: the rate of a random point in the image / in the brain (mean share of "
            f"it inside the dilated mask); {score.n_empty} image(s) whose lesion vanished at the "
            "input size left out.")


def xai_score_figure(score: XaiScore):
    """E.fig_xai_score: up to :data:`N_SCORE_SHOWN` scored images (Grad-CAM's hits and misses)
    with each method's map, the lesion outline, the tolerance and the maximum."""
    from medrepro.analysis import xai_score

    if score.status != SCORED:
        return plots.plot_message(f"E: explanations {score.status}", title="E: pointing game")
    hits = score.games["Grad-CAM"].hits
    half = N_SCORE_SHOWN // 2
    order = np.r_[np.flatnonzero(hits)[:half], np.flatnonzero(~hits)[:half]]
    rest = [i for i in range(len(hits)) if i not in set(order)]
    order = np.r_[order, rest[:N_SCORE_SHOWN - len(order)]].astype(int)
    return plots.plot_pointing_game(
        score.images[order], {m: score.maps[m][order] for m in XAI_METHODS}, score.masks[order],
        {m: [score.games[m].peaks[i] for i in order] for m in XAI_METHODS},
        {m: score.games[m].hits[order] for m in XAI_METHODS},
        titles=[score.titles[i] for i in order], radius=xai_score.DILATION_PX,
        suptitle=f"E: pointing game, correctly classified tumour test images ({score.label}); "
                 "white: lesion, cyan: tolerance, x: map maximum")


# ---------------------------------------------------------------------------- explanations evaluated
# E.xai_eval / E.fig_xai_eval: the maps of E.xai_score against baselines, by strata, under the
# sanity checks and by their deletion/insertion curves (medrepro.analysis.xai_eval,
# docs/decisions.md#x13, #x14, #x15); E.fig_failures and the test-set explorer
# (medrepro.reporting.explorer).
SHUFFLED_RUN = "E_shuffled_labels"  # the shuffled-label model's run folder
MAPS_FILE = f"E_cnn/{sanity.MAPS_FILE}"  # this seed's maps, for repeatability across seeds


def train_shuffled(settings: ESettings, data: ImageSplit, runs: Path, *, seed: int):
    """The sanity check's model trained on shuffled labels (docs/decisions.md#x14):
    :func:`xai_cnn` with E's optimiser, loss and plateau cut, the fit images' labels permuted
    (seeded), no augmentation, ``settings.shuffled_epochs`` epochs (None: ``settings.epochs``)
    without early stopping, the last epoch's weights, in ``runs/E_shuffled_labels``."""
    import keras

    from medrepro.training import train

    size = settings.image_size
    fit = data.fit.assign(label=np.random.default_rng(seed).permutation(
        data.fit["label"].to_numpy()))
    frame = {"image_size": size, "batch_size": settings.batch}
    fit_ds = brain_mri.image_dataset(fit, shuffle=True, seed=seed, **frame)
    val_ds = brain_mri.image_dataset(data.val, **frame)
    seeds.seed_everything(seed)
    model = mm.xai_cnn((size, size, 3))
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING),
                  metrics=["accuracy"])
    recipe = train.FitConfig(epochs=settings.shuffled_epochs or settings.epochs, monitor=MONITOR,
                             restore_best_weights=False, reduce_lr_patience=settings.reduce_lr,
                             reduce_lr_factor=REDUCE_LR_FACTOR, min_lr=MIN_LR, checkpoint=None,
                             seed=seed)
    identity = {**mri_common.run_identity(data, image_size=size), "labels": "shuffled",
                "shuffle_seed": seed}
    train.fit_once(model, fit_ds, val_ds, recipe, run_dir=Path(runs) / SHUFFLED_RUN,
                   identity=identity, verbose=0)
    return model


def evaluate_explanations(res: Result, score: XaiScore, *, settings: ESettings, runs: Path,
                          shuffled_model, seed: int):
    """:func:`medrepro.analysis.xai_eval.evaluate` of the three maps
    (:class:`medrepro.analysis.xai_eval.XaiEvaluation`): on ``score``'s images with their
    lesion masks when it is :data:`SCORED`; else (real data, or no correctly classified tumour)
    on a seeded subset of the test images without a pointing game. Sizes from ``settings``
    (``xai_sanity``, ``xai_faith``, ``xai_steps``); the class score followed is the predicted
    class's; lesion size: the share of the brain; repeatability across the seeds whose maps
    ``runs`` (this run's folder) has beside it."""
    import os

    from medrepro.analysis import faithfulness, xai_eval

    if score.status == SCORED:
        images, maps, masks, regions, keys = (score.images, score.maps, score.masks,
                                              score.regions, score.titles)
        size = masks.sum(axis=(1, 2)) / np.maximum(regions.sum(axis=(1, 2)), 1)
    else:
        test = res.data.test
        pick = xai_eval.subset(len(test), max(settings.xai_sanity, settings.xai_faith), seed=seed)
        images = brain_mri.load_images(test.iloc[pick], image_size=settings.image_size)
        maps = xai_maps(res.model, images, ig_steps=settings.ig_steps)
        masks = regions = None
        size = np.zeros(len(images))
        keys = [os.path.basename(p) for p in test["path"].iloc[pick]]
    prob = faithfulness.scorer(res.model)(images)  # (N, K)
    by_seed = sanity.maps_across_seeds(runs, MAPS_FILE, keys, maps)
    return xai_eval.evaluate(
        res.model, images, maps,
        maps_of=lambda model, x: xai_maps(model, x, ig_steps=settings.ig_steps),
        masks=masks, regions=regions, confidence=prob.max(axis=1), lesion_size=size,
        class_index=prob.argmax(axis=1), shuffled_model=shuffled_model, maps_by_seed=by_seed,
        n_sanity=settings.xai_sanity, n_faith=settings.xai_faith, steps=settings.xai_steps,
        seed=seed, n_boot=settings.n_boot)


def xai_eval_notes(ev, score: XaiScore, note: str) -> str:
    """E.xai_eval's notes: what was scored, the sizes and rules (:func:`medrepro.analysis.xai_eval.notes`),
    why there is no pointing game where there is none, and the data ``note``."""
    from medrepro.analysis import xai_eval

    why = "" if score.status == SCORED else f" ({score.status}: a seeded subset of the test images)"
    text = xai_eval.notes(ev, what="E: Grad-CAM, Eigen-CAM and Integrated Gradients of the CNN"
                          f" on the correctly classified tumour test images{why}")
    return f"{text} {note}."


def xai_eval_figure(ev, label: str):
    """E.fig_xai_eval (:func:`medrepro.reporting.xai_plots.plot_xai_evaluation`)."""
    from medrepro.reporting import xai_plots

    return xai_plots.plot_xai_evaluation(ev, title=f"E: the explanation maps evaluated ({label})")


def failure_cases(res: Result) -> pd.DataFrame:
    """Every test image's true and predicted class and probabilities
    (:func:`medrepro.studies.mri_common.test_cases` of the probabilities :func:`evaluate_cnn`
    predicted)."""
    return mri_common.test_cases(res.data, res.proba)


def failures_figure(res: Result, cases: pd.DataFrame, *, settings: ESettings):
    """E.fig_failures: the ``settings.gallery_wrong`` most confident wrong test images, then the
    ``settings.gallery_unsure`` least confident right ones, each with its three maps and
    probabilities (:func:`medrepro.reporting.explorer.gallery` of :func:`explorer_source`)."""
    from medrepro.reporting import explorer

    return explorer.gallery(explorer_source(res, cases, settings=settings),
                            n_wrong=settings.gallery_wrong, n_unsure=settings.gallery_unsure,
                            title=f"E: the CNN, test set, {res.data.ds.label}")


def explorer_source(res: Result, cases: pd.DataFrame, *, settings: ESettings):
    """What the explorer browses (:func:`medrepro.studies.mri_common.test_source`): the test
    images at the model's input size, their three maps made on demand."""
    return mri_common.test_source(
        res.data, cases, image_size=settings.image_size,
        maps=lambda images: xai_maps(res.model, images, ig_steps=settings.ig_steps),
        title=f"E: the CNN on the test set ({res.data.ds.label})")


def plan(settings: ESettings, ctx: PlanContext) -> RowPlan:
    """Study E's part of notebook 03's plan: small checkpoints, no time projection yet."""
    return RowPlan(note="no measured training rate for study E yet")
