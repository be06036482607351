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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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
MONITOR = "val_accuracy"  # early stopping and checkpoint (the study: val acc, patience 15)


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
    for filters, rate in zip(FILTERS, DROPOUTS):
        x = layers.Conv3D(filters=filters, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)
        if rate:
            x = layers.Dropout(rate)(x)
    x = layers.GlobalAveragePooling3D()(x)
    x = layers.Dense(units=DENSE_UNITS, activation="relu")(x)
    x = layers.Dropout(HEAD_DROPOUT)(x)
    outputs = layers.Dense(units=1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def count_params(model) -> dict[str, int]:
    """``{"total", "trainable", "non_trainable"}`` parameter counts of a keras model."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": trainable + non_trainable, "trainable": trainable,
            "non_trainable": non_trainable}


def summary_frame(model):
    """The model summary as a ``DataFrame`` (layer, type, output shape, params), like Fig 4.5."""
    import pandas as pd

    rows = [{"layer": layer.name, "type": type(layer).__name__,
             "output_shape": str((None, *tuple(layer.output.shape)[1:])),
             "params": int(layer.count_params())} for layer in model.layers]
    counts = count_params(model)
    rows += [{"layer": f"{k.replace('_', '-')} params", "type": "", "output_shape": "",
              "params": v} for k, v in counts.items()]
    return pd.DataFrame(rows)


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
    """A trained scenario: its history (one row per epoch), model and wall time."""

    scenario: Scenario
    epochs: int
    history: Any  # pandas.DataFrame
    model: Any
    seconds: float

    def last(self, column: str) -> float:
        """The value of ``column`` at the last epoch run (as the study's tables report)."""
        return float(self.history[column].iloc[-1])


def train_scenario(scenario: Scenario | str, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray], *, epochs: int, batch: int,
                   patience: int, run_dir: str | Path, seed: int = 42,
                   initial_lr: float = INITIAL_LR, verbose: int = 2) -> ScenarioResult:
    """Train a fresh :func:`cnn3d` for one scenario with ``medrepro.train.fit``.

    ``train`` / ``val``: ``(x, y)`` with ``x`` float32 ``(N, H, W, D)`` in [0, 1] (already
    lung-only for that scenario) and ``y`` 0/1. Early stopping and the best checkpoint follow
    validation accuracy (patience ``patience``); the best weights are restored.
    """
    import keras

    from medrepro import train as training
    from medrepro import volumes

    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    keras.utils.set_random_seed(seed)
    x_train, y_train = train
    model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1)), initial_lr=initial_lr)
    train_ds = volumes.make_dataset(x_train, y_train, batch=batch, augment=scenario.augment,
                                    shuffle=True, seed=seed)
    val_ds = volumes.make_dataset(*val, batch=batch)
    start = time.perf_counter()
    history = training.fit(model, train_ds, val_ds, epochs=epochs, run_dir=run_dir,
                           monitor=MONITOR, patience=patience, restore_best_weights=True,
                           verbose=verbose)
    return ScenarioResult(scenario=scenario, epochs=epochs, history=history, model=model,
                          seconds=time.perf_counter() - start)


def predict_labels(model, x: np.ndarray, *, batch: int = 4,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of ``model`` on volumes ``x`` ``(N, H, W, D)``: float, 0/1 int."""
    prob = np.asarray(model.predict(x[..., None], batch_size=batch, verbose=0)).reshape(-1)
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
