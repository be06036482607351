"""Study C: the Kaggle notebook "Beyin Tümörü Tespiti" — a Sequential CNN trained with MSE.

Five training trials (optimizer, learning rate, epochs as in its Table 1) of
:func:`medrepro.models.brain_mri.seq_cnn` on the official split of the Masoud set, softmax outputs
against one-hot labels with MSE, augmentation on the fly, early stopping on validation loss
(:func:`train_trials`). The final model is the source's last trial, trial 5 (SGD, MSE), whose
curves are "the last graph I got" (:func:`final_trial`).
Artifacts (notebook 03): ``C.table1`` (:func:`table1`), ``C.fig1``-``C.fig3`` (:func:`curves`),
``C.fig4`` (:func:`fig4`), ``C.table2`` (:func:`table2`), ``C.leakage`` (:func:`leakage`),
``C.fig5`` (:func:`fig5`); beyond the source ``C.fig_failures`` (:func:`failure_source`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.analysis import evaluate
from medrepro.core import manifest, profiles, seeds
from medrepro.core.planning import PlanContext, RowPlan
from medrepro.core.profiles import CSettings
from medrepro.data import brain_mri
from medrepro.models import brain_mri as mm
from medrepro.reporting import plots
from medrepro.studies import mri_common
from medrepro.studies.mri_common import ImageSplit, duplicate_groups, leakage_notes  # noqa: F401

DATASET = mri_common.MASOUD  # run.resolve_mri may stand the real Sartaj set in

# The source's final model is its last trial: its third graph is "the last graph I got" (C:32),
# after graphs of trials 1 and 3, and that trial is SGD with MSE as C:9 says
# (docs/decisions.md#c1).
FINAL_OPTIMIZER = "SGD"
# The trials' optimizer options the source does not give (it names optimizer, rate, epochs).
# SGD with momentum 0.9: plain SGD on the MSE of a softmax moves the weights too little to leave
# chance in the demo's epochs (docs/decisions.md#c7).
OPTIMIZER_OPTIONS = {"SGD": {"momentum": 0.9}}
# How an image is fitted into the model's square input (``brain_mri.decode_files``): stretched,
# chosen on validation splits over the head cropped and padded to a square ("head", kept as a
# variant); the source does not say (docs/decisions.md#c4).
FRAMING = "stretch"


@dataclass(frozen=True)
class Result:
    """The five trials: ``rows`` (one per trial, our columns of ``C.table1``), each trial's
    ``history`` and test predictions ``pred`` ``(N,)`` (test order), the ``final`` trial."""

    data: ImageSplit
    rows: pd.DataFrame
    history: dict[int, pd.DataFrame]
    pred: dict[int, np.ndarray]
    final: int
    proba: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (val, test)

    @property
    def final_pred(self) -> np.ndarray:
        return self.pred[self.final]


def load(settings: CSettings, ds, *, seed: int, note: str = "") -> ImageSplit:
    """``ds`` (the Masoud set, or the real Sartaj set standing in: ``note`` says so), official
    split, 10% of Training for validation."""
    return mri_common.load_split(ds, max_images=settings.max_images, split="official", seed=seed,
                                 note=note)


def image_shape(settings: CSettings) -> tuple[int, int, int]:
    return (settings.image_size, settings.image_size, 3)


def image_datasets(settings: CSettings, data: ImageSplit, *, seed: int) -> tuple:
    """``(fit, val, test)`` pipelines at ``settings.image_size`` (:data:`FRAMING`), global batch
    ``settings.batch``; fit augmented with ``brain_mri.C_AUGMENT``."""
    return mri_common.image_datasets(data, image_size=settings.image_size,
                                     batch_size=settings.batch, augment=brain_mri.C_AUGMENT,
                                     seed=seed, framing=FRAMING)


def train_trials(settings: CSettings, data: ImageSplit, pipelines: tuple, runs: Path, *,
                 seed: int) -> Result:
    """Train :func:`seq_cnn` once per trial of ``C.table1`` (epochs capped at
    ``settings.epochs``), each from the same seed, in ``runs/C_trial<n>``, and evaluate it on
    the test set."""
    from medrepro.training import train

    fit_ds, val_ds, test_ds = pipelines
    rows, history, pred, proba = [], {}, {}, {}
    identity = mri_common.run_identity(data, image_size=settings.image_size, framing=FRAMING,
                                       augment=brain_mri.C_AUGMENT)
    for t, epochs, same in trial_plan(settings.epochs):
        if same is not None:
            history[t.trial], pred[t.trial] = history[same], pred[same]
            proba[t.trial] = proba[same]
            rows.append({**next(r for r in rows if r["trial"] == same), "trial": t.trial,
                         "same_run_as": same})
            print(f"trial {t.trial}: {t.optimizer} lr={t.lr} epochs={epochs}: the settings of "
                  f"trial {same} in this profile; its run is reused, not trained again")
            continue
        seeds.seed_everything(seed)
        model = mm.seq_cnn(image_shape(settings))
        model.compile(optimizer=train.make_optimizer(t.optimizer, t.lr,
                                                     **OPTIMIZER_OPTIONS.get(t.optimizer, {})),
                      loss="mse",
                      metrics=["accuracy"])
        recipe = train.FitConfig(epochs=epochs, patience=settings.patience, seed=seed)
        history[t.trial] = train.fit_once(model, fit_ds, val_ds, recipe,
                                          run_dir=Path(runs) / f"C_trial{t.trial}",
                                          identity=identity, verbose=0)
        test_mse, test_acc = train.evaluate(model, test_ds)
        proba[t.trial] = (train.predict_proba(model, val_ds), train.predict_proba(model, test_ds))
        pred[t.trial] = proba[t.trial][1].argmax(axis=1).astype(np.int64)
        rows.append(_trial_row(t.trial, history[t.trial], data.test["label"], pred[t.trial],
                               test_acc=test_acc, test_mse=test_mse))
        print(f"trial {t.trial}: {t.optimizer} lr={t.lr} epochs={epochs}: test accuracy "
              f"{test_acc:.3f}")
    rows = pd.DataFrame(rows)
    return Result(data, rows, history, pred, final_trial(rows), proba)


def calibration(res: Result, *, n_boot: int, seed: int):
    """C.calibration: the final model's ECE, Brier and NLL on the test set before and after
    temperature scaling fitted on the validation split; on the real Sartaj set the official
    Testing folder is a shifted test set, and the table says so."""
    from medrepro.analysis import calibration as cal

    val, test = res.proba[res.final]
    return cal.calibrate(res.data.val["label"].to_numpy(), val, res.data.y_test, test,
                         model=f"final (trial {res.final})", n_boot=n_boot, seed=seed,
                         test_note=mri_common.test_set_note(res.data, split="official"))


def reliability_figure(cal) -> Any:
    """C.fig_reliability: the test set's reliability diagram before and after scaling."""
    return plots.plot_reliability(cal.frames, title="C: reliability on the test set (final "
                                                     "model)")


def trial_plan(c_epochs: int | None) -> list[tuple]:
    """``(trial, epochs, same_as)`` per trial of ``C.table1``: its epochs capped at ``c_epochs``
    and the earlier trial with the same optimizer, rate and capped epochs (``None`` if none),
    whose run it shows instead of training the same model again (in the demo trials 1 and 2,
    Adamax for 25 and 50 epochs, both stop at the cap)."""
    plan, first = [], {}
    for t in manifest.reported_frame("C.table1").itertuples():
        epochs = t.epochs if c_epochs is None else min(t.epochs, c_epochs)
        plan.append((t, epochs, first.get((t.optimizer, t.lr, epochs))))
        first.setdefault((t.optimizer, t.lr, epochs), t.trial)
    return plan


def _trial_row(trial: int, history: pd.DataFrame, y_true, y_pred, *, test_acc: float,
               test_mse: float) -> dict:
    recall = evaluate.per_class_table(y_true, y_pred, labels=mri_common.LABELS)["recall"]
    return {"trial": trial, "epochs_run": len(history),
            "same_run_as": None,
            "best_val_accuracy": history["val_accuracy"].max(), "test_accuracy": test_acc,
            "test_loss_mse": test_mse, **{f"test_acc_{k}": v for k, v in recall.items()}}


def final_trial(rows: pd.DataFrame) -> int:
    """The source's last trial (the last row of its trials table, ``C.table1``), whatever the
    validation accuracies: ``rows`` must hold it. Raises ``ValueError`` if it does not, or if
    that trial's optimizer is not :data:`FINAL_OPTIMIZER` (the source's C:9)."""
    last = manifest.reported_frame("C.table1").iloc[-1]
    if last["optimizer"] != FINAL_OPTIMIZER:
        raise ValueError(f"C.table1's last trial {last['trial']} uses {last['optimizer']}: "
                         f"expected {FINAL_OPTIMIZER}, the final model's optimizer (C:9)")
    if int(last["trial"]) not in set(rows["trial"]):
        raise ValueError(f"the trials run ({', '.join(map(str, rows['trial']))}) lack the "
                         f"source's last trial {last['trial']}, the final model")
    print(f"final model: trial {last['trial']} (the source's last trial, {last['optimizer']} "
          f"lr={last['lr']})")
    return int(last["trial"])


def table1(res: Result) -> pd.DataFrame:
    """The source's trials (``C.table1``) with our results and the ``final`` flag."""
    table = manifest.reported_frame("C.table1").merge(res.rows, on="trial")
    table["final"] = table["trial"] == res.final
    return table


def table1_notes(res: Result, settings: CSettings, *, profile: str) -> str:
    return (f"{res.data.note}. optimizer/epochs/lr/loss: the notebook's trials (it reported no "
            f"results); the rest is ours, profile {profile} (epochs capped at {settings.epochs}; "
            f"batch {profiles.batch_in_use(settings.batch)}). test_acc_<class> = recall. "
            f"Final model = trial "
            f"{res.final}: the source's last trial, its last graph (C:32), not the trial with "
            "the best validation or test accuracy."
            + (" same_run_as: a trial whose optimizer, rate and capped epochs equal an earlier "
               "trial's shows that trial's run (trained once)."
               if "same_run_as" in res.rows and res.rows["same_run_as"].notna().any() else ""))


def curves(res: Result, trial: int):
    """Accuracy and MSE loss curves of one trial (``C.fig1``-``C.fig3``)."""
    return mri_common.curves_figure(res.history[trial], title=f"C trial {trial}", loss_name="loss (MSE)")


def fig4(res: Result):
    return mri_common.confusion_figure(res.data.y_test, res.final_pred,
                                 title=f"C: final model (trial {res.final}), {res.data.ds.label}")


def table2(res: Result, *, n_boot: int, seed: int) -> pd.DataFrame:
    """The final model per class: one-vs-rest accuracy, precision, recall, F1, bootstrap CIs."""
    y, pred = res.data.y_test, res.final_pred
    ci = evaluate.per_class_ci_table(y, pred, labels=mri_common.LABELS, n_boot=n_boot, seed=seed)
    return evaluate.per_class_table(y, pred, labels=mri_common.LABELS).join(
        ci.drop(columns=["precision", "recall", "f1", "support"])).reset_index()


def table2_notes(res: Result, ci: dict) -> str:
    """``ci``: ``evaluate.summary_row`` of the final model."""
    return (f"{res.data.note}. Trial {res.final}. accuracy = one-vs-rest (TP+TN)/N; recall = "
            "share of the class found; *_lo/*_hi: 95% bootstrap CIs. Overall accuracy "
            f"{ci['accuracy']:.3f} (95% CI {ci['accuracy_lo']:.3f}-{ci['accuracy_hi']:.3f}).")


def record_final(res: Result, ci: dict) -> None:
    mri_common.record_ci("C", "test accuracy (final trial)", ci, "accuracy", source=res.data.source,
                   artifact="C.table1", notes=res.data.note)


def leakage(res: Result, groups, *, n_boot: int, seed: int) -> pd.DataFrame:
    """The final model on the whole and on the duplicate-free test set."""
    return mri_common.leakage_table(res.data.train, res.data.test,
                              {f"final (trial {res.final})": res.final_pred}, groups,
                              split="official", n_boot=n_boot, seed=seed)


def record_leakage(res: Result, table: pd.DataFrame) -> None:
    mri_common.record_duplicate_free("C", table, {"test accuracy (final trial)": "accuracy"},
                               source=res.data.source, artifact="C.leakage", notes=res.data.note)


def fig5(res: Result, *, image_size: int, seed: int):
    return mri_common.predictions_figure(res.data.test, res.final_pred, image_size=image_size,
                                   seed=seed, framing=FRAMING,
                                   title=f"C: final model (trial {res.final}), true / predicted")


def failure_source(res: Result, *, image_size: int):
    """The final model's test set for C.fig_failures (:func:`medrepro.reporting.explorer.gallery`):
    each image with its probabilities, no maps (the source explains nothing)."""
    cases = mri_common.test_cases(res.data, res.proba[res.final][1])
    return mri_common.test_source(res.data, cases, image_size=image_size, framing=FRAMING,
                                  title=f"C: final model (trial {res.final}), test set, "
                                        f"{res.data.ds.label}")


def plan(settings: CSettings, ctx: PlanContext) -> RowPlan:
    """Study C's part of notebook 03's plan: small checkpoints, no time projection yet."""
    return RowPlan(note="no measured training rate for study C yet")
