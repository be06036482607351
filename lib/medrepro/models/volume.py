"""Study D's 3-D CNN (thesis Fig 4.5), its compile settings and the training scenarios.

Fig 4.5, exact: Input (128, 128, 64, 1) → [Conv3D 16 k3 ReLU → MaxPool3D 2 → BN] →
[Conv3D 32 → MaxPool → BN → Dropout 0.1] → [Conv3D 64 → MaxPool → BN → Dropout 0.1] →
[Conv3D 64 → MaxPool → BN → Dropout 0.1] → GlobalAvgPool3D → Dense 512 ReLU → Dropout 0.2 →
Dense 1 sigmoid: 214,817 parameters (214,465 trainable, 352 non-trainable: the BN moving
statistics). The convolutions are 'valid', so every spatial axis must be >= 46 voxels
(:data:`MIN_SIDE`); the parameter count does not depend on the input size.

Optimiser: SGD, momentum 0.9, ``ExponentialDecay(lr0, decay_steps=100000, decay_rate=0.96,
staircase=True)``. The thesis prints ``lr0 = 0.1`` in its prose listing (§4.2.1) and ``0.001`` in
the appendix code that was actually run (its printed training logs follow it); we use **0.001**
(:data:`INITIAL_LR`) because it is the code that produced the reported numbers. ``initial_lr`` is
a parameter, so the text's 0.1 can be tried.
With 100,000 decay steps the schedule is constant over any run here (140 volumes / batch 4 = 35
steps per epoch).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PAPER_INPUT = (128, 128, 64, 1)  # (H, W, D, channels)
PAPER_PARAMS = {"total": 214_817, "trainable": 214_465, "non_trainable": 352}
FILTERS = (16, 32, 64, 64)
DROPOUTS = (0.0, 0.1, 0.1, 0.1)  # after each block's BatchNorm (none after the first)
DENSE_UNITS = 512
HEAD_DROPOUT = 0.2
MIN_SIDE = 46  # smallest axis that survives four (valid conv k3 + maxpool 2) stages
INITIAL_LR = 0.001  # the appendix code's value (the text says 0.1); see the module docstring
MOMENTUM = 0.9
DECAY_STEPS = 100_000
DECAY_RATE = 0.96
METRICS = ("accuracy", "mse")
# The thesis' callbacks (appendix code): ModelCheckpoint(save_best_only=True), i.e. Keras'
# default monitor, validation LOSS, and EarlyStopping(monitor="val_acc", patience=15).
CHECKPOINT_MONITOR = "val_loss"
STOP_MONITOR = "val_accuracy"
GRADCAM_LAYER = "block3_conv"  # finer than the last conv (12×12×4 at the paper's input)


@dataclass(frozen=True)
class Scenario:
    """One training scenario of study D."""

    key: str
    paper_epochs: int
    augment: bool
    lung_only: bool
    label: str


SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("aug_5", 5, True, False, "all slices, augmentation, 5 epochs"),
    Scenario("aug_10", 10, True, False, "all slices, augmentation, 10 epochs"),
    Scenario("aug_15", 15, True, False, "all slices, augmentation, 15 epochs"),
    Scenario("aug_25", 25, True, False, "all slices, augmentation, 25 epochs"),
    Scenario("noaug_5", 5, False, False, "all slices, no augmentation, 5 epochs"),
    Scenario("lung_25", 25, True, True, "lung-only slices, augmentation, 25 epochs"),
)}


def min_side_ok(n: int) -> bool:
    """Whether an axis of ``n`` voxels survives the four valid conv + pool stages."""
    for _ in FILTERS:
        n = (n - 2) // 2
        if n < 1:
            return False
    return True


def cnn3d(input_shape: Sequence[int] = PAPER_INPUT, *, name: str = "3dcnn"):
    """The 3-D CNN of Fig 4.5 (uncompiled keras ``Model``): ``(B, H, W, D, 1)`` → ``(B, 1)``.

    Any ``input_shape`` with every spatial axis >= :data:`MIN_SIDE` builds, with the same
    214,817 parameters; smaller axes raise ``ValueError``.
    """
    import keras
    from keras import layers

    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"cnn3d: input_shape must be (H, W, D, C), got {input_shape}")
    small = [s for s in input_shape[:3] if not min_side_ok(s)]
    if small:
        raise ValueError(f"cnn3d: input {input_shape} too small: every spatial axis must be "
                         f">= {MIN_SIDE} for four valid conv(3) + maxpool(2) stages")
    inputs = keras.Input(input_shape)
    x = inputs
    for i, (filters, rate) in enumerate(zip(FILTERS, DROPOUTS), start=1):
        x = layers.Conv3D(filters=filters, kernel_size=3, activation="relu",
                          name=f"block{i}_conv")(x)
        x = layers.MaxPool3D(pool_size=2, name=f"block{i}_pool")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        if rate:
            x = layers.Dropout(rate, name=f"block{i}_dropout")(x)
    x = layers.GlobalAveragePooling3D(name="global_avg_pool")(x)
    x = layers.Dense(units=DENSE_UNITS, activation="relu", name="dense")(x)
    x = layers.Dropout(HEAD_DROPOUT, name="head_dropout")(x)
    outputs = layers.Dense(units=1, activation="sigmoid", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_cnn3d(model, *, initial_lr: float = INITIAL_LR):
    """Compile with the study's settings: SGD(momentum 0.9) on the exponential-decay schedule,
    binary cross-entropy, metrics accuracy and MSE. Returns ``model``."""
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_lr, decay_steps=DECAY_STEPS, decay_rate=DECAY_RATE, staircase=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=MOMENTUM),
                  loss="binary_crossentropy", metrics=list(METRICS))
    return model


@dataclass
class ScenarioResult:
    """A trained scenario: its history (one row per epoch), its best weights and wall time.

    ``model`` may be shared between scenarios (see :func:`run_scenarios`); :meth:`restore`
    loads this scenario's weights into it and returns it."""

    scenario: Scenario
    epochs: int
    history: Any  # pandas.DataFrame
    model: Any
    weights: list
    seconds: float

    def last(self, column: str) -> float:
        """The value of ``column`` at the last epoch run (as the study's tables report)."""
        return float(self.history[column].iloc[-1])

    def restore(self):
        """The model holding this scenario's (best-restored) weights."""
        self.model.set_weights(self.weights)
        return self.model


def reset_model(model, initial_weights: list) -> None:
    """Put ``model`` back to ``initial_weights`` with a fresh optimizer state (momentum and step
    count zero), as if newly built and compiled with the same seed; keeps its traced functions."""
    model.set_weights(initial_weights)
    for var in model.optimizer.variables:
        var.assign(np.zeros(var.shape, dtype=var.dtype))


def train_scenario(scenario: Scenario | str, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray], *, epochs: int, batch: int,
                   patience: int, run_dir: str | Path, seed: int = 42,
                   initial_lr: float = INITIAL_LR, verbose: int = 2,
                   model=None, initial_weights: list | None = None) -> ScenarioResult:
    """Train one scenario with ``medrepro.train.fit``: a fresh :func:`cnn3d`, or ``model``
    reset to ``initial_weights`` (:func:`reset_model`).

    ``train`` / ``val``: ``(x, y)`` with ``x`` float32 ``(N, H, W, D)`` in [0, 1] (already
    lung-only for that scenario) and ``y`` 0/1. As in the thesis' code, the best checkpoint
    follows validation loss (:data:`CHECKPOINT_MONITOR`) and early stopping validation accuracy
    (:data:`STOP_MONITOR`, patience ``patience``); the best-loss weights are restored at the end
    (the model the thesis saved and evaluated).
    """
    import keras

    from medrepro import callbacks, volumes
    from medrepro import train as training

    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    x_train, y_train = train
    if model is None:
        keras.utils.set_random_seed(seed)
        model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1)), initial_lr=initial_lr)
    elif initial_weights is not None:
        reset_model(model, initial_weights)
    train_ds = volumes.make_dataset(x_train, y_train, batch=batch, augment=scenario.augment,
                                    shuffle=True, seed=seed)
    val_ds = volumes.make_dataset(*val, batch=batch)
    start = time.perf_counter()
    # A finished scenario is reused, an interrupted one resumes (train.fit_once); early
    # stopping is the resumable one of medrepro.callbacks, so its wait/best survive a kill.
    config = {"scenario": scenario.key,
              "train_shape": list(x_train.shape), "val_shape": list(val[0].shape),
              "batch": batch, "seed": seed, "initial_lr": initial_lr, "patience": patience,
              "checkpoint_monitor": CHECKPOINT_MONITOR, "stop_monitor": STOP_MONITOR}
    stop = callbacks.EarlyStopping(monitor=STOP_MONITOR, mode="max", patience=patience)
    history = training.fit_once(model, train_ds, val_ds, run_dir=run_dir, config=config,
                                epochs=epochs, monitor=CHECKPOINT_MONITOR, patience=None,
                                restore_best_weights=True, verbose=verbose, callbacks=[stop])
    return ScenarioResult(scenario=scenario, epochs=epochs, history=history, model=model,
                          weights=model.get_weights(), seconds=time.perf_counter() - start)


def predict_labels(model, x: np.ndarray, *, batch: int = 4,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of ``model`` on volumes ``x`` ``(N, H, W, D)``: float, 0/1 int."""
    from medrepro import train

    ds = train.from_arrays(x[..., None], batch_size=batch, cache=False)
    prob = train.predict_proba(model, ds).reshape(-1)
    return prob, (prob >= threshold).astype(np.int64)


def binary_scores(y_true, prob, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class = abnormal), binary cross-entropy and MSE
    of probabilities ``prob`` against 0/1 ``y_true``; rates in [0, 1], 0 where undefined."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    pred = (p >= threshold).astype(np.float64)
    tp = float(np.sum((pred == 1) & (y == 1)))
    fp = float(np.sum((pred == 1) & (y == 0)))
    fn = float(np.sum((pred == 0) & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {"accuracy": float(np.mean(pred == y)), "precision": precision, "recall": recall,
            "f1": f1, "loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "mse": float(np.mean((p - y) ** 2))}


def run_scenarios(splits: dict[str, tuple[np.ndarray, np.ndarray]], *, epochs: dict[str, int],
                  batch: int, patience: int, run_root: str | Path, seed: int = 42,
                  initial_lr: float = INITIAL_LR, verbose: int = 2) -> dict[str, ScenarioResult]:
    """Train every scenario of :data:`SCENARIOS` listed in ``epochs`` (scenario → epochs).

    ``splits``: ``{"train", "val", ...}`` → ``(x, y)`` with all slices; the lung-only scenario
    gets :func:`medrepro.volumes.lung_only` applied to every split. Each run lives in
    ``run_root/<scenario>`` (checkpoint, history, resume state). One model is built (seeded)
    and every scenario starts from its initial weights with a fresh optimizer state: the same
    start as a new model with the same seed, without re-tracing the training step each time.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x_train = splits["train"][0]
    model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1)), initial_lr=initial_lr)
    initial = model.get_weights()
    results = {}
    for key, scenario in SCENARIOS.items():
        if key not in epochs:
            continue
        data = lung_only_splits(splits) if scenario.lung_only else splits
        results[key] = train_scenario(scenario, data["train"], data["val"], epochs=epochs[key],
                                      batch=batch, patience=patience,
                                      run_dir=Path(run_root) / key, seed=seed,
                                      initial_lr=initial_lr, verbose=verbose, model=model,
                                      initial_weights=initial)
    return results


def lung_only_splits(splits: dict[str, tuple[np.ndarray, np.ndarray]]):
    """The same splits with :func:`medrepro.volumes.lung_only` applied to every volume."""
    from medrepro import volumes

    return {name: (volumes.lung_only(x), y) for name, (x, y) in splits.items()}


def evaluate_scenarios(results: dict[str, ScenarioResult],
                       splits: dict[str, tuple[np.ndarray, np.ndarray]], *,
                       batch: int = 4) -> dict[str, dict[str, Any]]:
    """Per scenario and split: probabilities, 0/1 predictions and :func:`binary_scores`
    of the trained (best-restored) model. ``out[key][split] = {"y", "prob", "pred", **scores}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, res in results.items():
        data = lung_only_splits(splits) if res.scenario.lung_only else splits
        # One predict call over all splits: fewer traced shapes, less per-call overhead.
        x_all = np.concatenate([x for x, _ in data.values()])
        prob_all, _ = predict_labels(res.restore(), x_all, batch=batch)
        out[key] = {}
        start = 0
        for name, (x, y) in data.items():
            prob = prob_all[start:start + len(x)]
            start += len(x)
            out[key][name] = {"y": y, "prob": prob, "pred": (prob >= 0.5).astype(np.int64),
                              **binary_scores(y, prob)}
    return out


def _reported(artifact_id: str):
    from medrepro import manifest

    return manifest.reported_frame(artifact_id).set_index("epochs")


def training_table(results: dict[str, ScenarioResult]):
    """D.table4_1: last-epoch training accuracy, s/epoch, loss, MSE per scenario, beside the
    reported values (the four augmentation scenarios; the others were not tabulated)."""
    import pandas as pd

    rep = _reported("D.table4_1")
    rows = []
    for res in results.values():
        r = rep.loc[res.scenario.paper_epochs] if res.scenario.key.startswith("aug_") else None
        rows.append({
            "scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
            "epochs_run": len(res.history),
            "train_acc": res.last("accuracy"), "reported_train_acc": _get(r, "train_acc"),
            "s_per_epoch": float(res.history["epoch_seconds"].mean()),
            "reported_s_per_epoch": _get(r, "s_per_epoch"),
            "train_loss": res.last("loss"), "reported_train_loss": _get(r, "train_loss"),
            "train_mse": res.last("mse"), "reported_train_mse": _get(r, "train_mse")})
    return pd.DataFrame(rows)


def validation_table(results: dict[str, ScenarioResult]):
    """D.table4_2: last-epoch validation accuracy, loss, MSE per scenario, beside the reported."""
    import pandas as pd

    rep = _reported("D.table4_2")
    rows = []
    for res in results.values():
        r = rep.loc[res.scenario.paper_epochs] if res.scenario.key.startswith("aug_") else None
        rows.append({
            "scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
            "epochs_run": len(res.history),
            "val_acc": res.last("val_accuracy"), "reported_val_acc": _get(r, "val_acc"),
            "val_loss": res.last("val_loss"), "reported_val_loss": _get(r, "val_loss"),
            "val_mse": res.last("val_mse"), "reported_val_mse": _get(r, "val_mse")})
    return pd.DataFrame(rows)


def performance_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                      split: str = "val", n_boot: int = 1000, seed: int = 0):
    """D.table4_3: accuracy, precision, recall, F1 (%) on ``split`` of the best-restored model
    per scenario (positive class: abnormal), each with a 95% bootstrap CI (``*_lo``,
    ``*_hi``), beside the reported values. The thesis computed its precision/recall/F1 from
    the confusion matrix of its saved (best validation loss) model on the 40 volumes its code
    calls the test set; accuracy here comes from the same matrix."""
    import pandas as pd

    from medrepro import evaluate

    rep = _reported("D.table4_3")
    rows = []
    for key, res in results.items():
        r = rep.loc[res.scenario.paper_epochs] if res.scenario.key.startswith("aug_") else None
        s = scores[key][split]
        ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed)
        row = {"scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
               "epochs_run": len(res.history), "n_eval": len(s["y"])}
        for ours, theirs in (("accuracy", "val_acc"), ("precision", "precision"),
                             ("recall", "recall"), ("f1", "f1")):
            col = "val_acc" if ours == "accuracy" else ours
            row.update({col: 100 * s[ours], f"{col}_lo": 100 * ci[f"{ours}_lo"],
                        f"{col}_hi": 100 * ci[f"{ours}_hi"],
                        f"reported_{col}": _get(r, theirs)})
        rows.append(row)
    return pd.DataFrame(rows)


def heldout_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                  n_boot: int = 1000, seed: int = 0):
    """D.heldout: the 70/20/10 variant's scenarios on their validation and held-out test
    volumes: accuracy, precision, recall, F1 (%) with 95% bootstrap CIs."""
    import pandas as pd

    from medrepro import evaluate

    rows = []
    for key, res in results.items():
        for split in ("val", "test"):
            s = scores[key][split]
            ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed)
            rows.append({"scenario": res.scenario.label, "epochs_run": len(res.history),
                         "split": split, "n": len(s["y"]),
                         **{k: 100 * v for k, v in ci.items()}})
    return pd.DataFrame(rows)


def _get(row, column: str) -> float | None:
    if row is None:
        return None
    value = row[column]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def best_scenario(scores: dict[str, dict[str, Any]]) -> str:
    """The scenario with the highest validation accuracy (ties: the first in :data:`SCENARIOS`)."""
    return max(scores, key=lambda k: (scores[k]["val"]["accuracy"], -list(SCENARIOS).index(k)))
