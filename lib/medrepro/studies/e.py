"""Study E: the Akbank bootcamp project — a CNN with Grad-CAM, Eigen-CAM and Integrated Gradients.

:func:`medrepro.models.mri.xai_cnn` (Conv-BatchNorm-ReLU-MaxPool-Dropout blocks, Dense head)
on the pooled 80/20 split of the Masoud set, Adam 1e-3, categorical cross-entropy, early
stopping and ReduceLROnPlateau (:func:`train_cnn`); one test image per class explained with
Grad-CAM and Eigen-CAM on the last block's activation and Integrated Gradients from a black
image (:func:`explanation_maps`).
Artifacts (notebook 03): ``E.fig1`` (:func:`fig1`), ``E.fig2`` (:func:`fig2`), ``E.table1``
(:func:`table1`), ``E.leakage`` (:func:`leakage`), ``E.fig3``-``E.fig5`` (:func:`maps_figure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medrepro import evaluate, explain, mri, paths, plots, seeds
from medrepro.models import mri as mm
from medrepro.studies import _mri
from medrepro.studies._mri import ImageSplit, duplicate_groups, leakage_notes  # noqa: F401

LEARNING_RATE = 1e-3
CAM_LAYER = "relu4"  # the last block's activation
MAPS = {"E.fig3": "Grad-CAM", "E.fig4": "Eigen-CAM", "E.fig5": "Integrated Gradients"}
DUPLICATE_FREE_METRICS = {"test accuracy": "accuracy", "test macro-F1": "macro_f1"}
PAPER_RESULT = "paper: 0.9308 / 0.9445 / 0.1544, n = 1405"  # val acc / test acc / test loss


@dataclass(frozen=True)
class Result:
    """The trained CNN, its ``history``, test loss/accuracy and predictions ``pred`` ``(N,)``."""

    data: ImageSplit
    model: Any
    history: pd.DataFrame
    test_loss: float
    test_accuracy: float
    pred: np.ndarray


def load(run) -> ImageSplit:
    """The Masoud set (or the real Sartaj set), pooled 80/20 split, 10% for validation."""
    return _mri.load_masoud(run, split="paper")


def train_cnn(run, data: ImageSplit):
    """Build and train :func:`xai_cnn` at ``e_image_size``; ``(model, history, test pipeline)``."""
    import keras

    from medrepro import train

    s = run.settings
    size = s["e_image_size"]
    fit_ds, val_ds, test_ds = _mri.image_datasets(data, image_size=size, batch_size=s["e_batch"],
                                                  augment=mri.E_AUGMENT, seed=run.seed)
    seeds.seed_everything(run.seed)
    model = mm.xai_cnn((size, size, 3))
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    run_dir = paths.runs_dir(run.notebook, profile=run.profile, source=data.source,
                             seed=run.seed) / "E_cnn"
    history = train.fit_once(model, fit_ds, val_ds, epochs=s["e_epochs"], run_dir=run_dir,
                             patience=s["e_patience"], reduce_lr_patience=s["e_reduce_lr"],
                             seed=run.seed, verbose=0)
    return model, history, test_ds


def evaluate_cnn(data: ImageSplit, model, history: pd.DataFrame, test_ds) -> Result:
    """Test loss, accuracy and predictions of the trained CNN."""
    from medrepro import train

    loss, acc = train.evaluate(model, test_ds)
    return Result(data, model, history, loss, acc, train.predict_classes(model, test_ds))


def fig1(history: pd.DataFrame):
    return _mri.curves_figure(history, title="E")


def fig2(res: Result):
    return _mri.confusion_figure(res.data.y_test, res.pred,
                                 title=f"E: test set, {res.data.ds.label}")


def table1(res: Result, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per-class report with 95% bootstrap CIs beside the project's classification report."""
    return _mri.classification_report(res.data.y_test, res.pred, dataset_id="brain_tumor_masoud",
                                      artifact="E.table1", n_boot=n_boot, seed=seed)


def table1_notes(res: Result, ci: dict) -> str:
    """``ci``: ``evaluate.summary_row`` of the CNN on the test set."""
    return (f"{res.data.note}. Ours: best val accuracy {res.history['val_accuracy'].max():.4f}, "
            f"test accuracy {res.test_accuracy:.4f} (95% CI {ci['accuracy_lo']:.3f}-"
            f"{ci['accuracy_hi']:.3f}), test loss {res.test_loss:.4f}, n = {len(res.data.test)}; "
            f"{PAPER_RESULT}. *_lo/*_hi: per-class 95% bootstrap CIs.")


def record_table1(res: Result, ci: dict) -> None:
    _mri.record_ci("E", "test accuracy", ci, "accuracy", source=res.data.source,
                   artifact="E.table1", notes=res.data.note)
    _mri.record_ci("E", "test macro-F1", ci, "macro_f1", source=res.data.source,
                   artifact="E.table1", notes=res.data.note)


def leakage(res: Result, groups, *, n_boot: int, seed: int) -> pd.DataFrame:
    """The CNN on the whole and on the duplicate-free test set."""
    return _mri.leakage_table(res.data.train, res.data.test, {"CNN": res.pred}, groups,
                              split=_mri.PAPER_SPLIT, n_boot=n_boot, seed=seed)


def record_leakage(res: Result, table: pd.DataFrame) -> None:
    _mri.record_duplicate_free("E", table, DUPLICATE_FREE_METRICS, source=res.data.source,
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
    images = mri.load_images(pick, image_size=image_size)
    pred = res.pred[test.index.get_indexer(pick.index)]
    titles = [f"{_mri.LABELS[t]} / pred {_mri.LABELS[p]}" for t, p in zip(pick["label"], pred)]
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
