"""Training: ``fit`` with early stopping, atomic best checkpoints, resume, CSV history.

Everything a notebook needs to train a compiled Keras model reproducibly:

- :func:`fit` runs ``model.fit`` with ``EarlyStopping`` (optional), ``ReduceLROnPlateau``
  (optional), a best-model checkpoint written atomically (temporary file, then rename), resume
  after an interruption (``keras.callbacks.BackupAndRestore`` in ``run_dir/backup``) and the
  history written to ``run_dir/history.csv`` after every epoch (with wall seconds per epoch).
- :func:`configure_precision` (mixed float16 on a GPU) and :func:`distribution_strategy`
  (``MirroredStrategy`` with several GPUs): build and compile the model inside
  ``distribution_strategy().scope()``; ``fit`` itself needs no change.
- Small tf.data helpers (:func:`from_arrays`, :func:`finish`) and :func:`predict_classes`.

TensorFlow and Keras are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.fileio import atomic_path

log = logging.getLogger(__name__)

BEST_MODEL = "best.keras"
BEST_WEIGHTS = "best.weights.h5"
HISTORY_CSV = "history.csv"
BACKUP_DIR = "backup"
DONE_MARKER = "done.json"


class TrainingError(RuntimeError):
    """A training run that cannot start or continue (bad arguments, unreadable run folder)."""


# ---------------------------------------------------------------------------- set-up
def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow/Keras (``keras.utils.set_random_seed``)."""
    import keras

    keras.utils.set_random_seed(int(seed))


def configure_precision(*, force: str | None = None) -> str:
    """Set Keras' global dtype policy: ``mixed_float16`` on GPUs of compute capability >= 7.0,
    ``float32`` on older GPUs and CPU (:func:`medrepro.device.configure_precision`).

    Returns the policy name. ``force`` sets a policy explicitly (tests, or ``"float32"`` on a GPU).
    Model builders keep their output layer in float32 (``dtype="float32"``), so losses and
    softmax stay numerically safe under mixed precision.
    """
    from medrepro import device

    return device.configure_precision(force=force)


def distribution_strategy():
    """``tf.distribute.MirroredStrategy`` over all GPUs when there are several, else the default.

    Usage: ``with distribution_strategy().scope(): model = build(); model.compile(...)``.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def make_optimizer(name: str, learning_rate: float, **kwargs):
    """A Keras optimizer by name (``"adam"``, ``"Adamax"``, ``"SGD"``...) with a learning rate."""
    import keras

    try:
        return keras.optimizers.get({"class_name": name.lower() if name.lower() in
                                     {"sgd", "adam", "adamax", "rmsprop", "adamw", "nadam",
                                      "adagrad", "adadelta", "ftrl", "lion"} else name,
                                     "config": {"learning_rate": learning_rate, **kwargs}})
    except ValueError as exc:
        raise TrainingError(f"unknown optimizer {name!r}: {exc}") from None


# ---------------------------------------------------------------------------- tf.data
def from_arrays(x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int,
                shuffle: bool = False, seed: int = 0, augment=None, cache: bool = True):
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` (or ``x``) from arrays.

    ``augment`` is an optional callable on a batch ``x`` (e.g. a ``keras.Sequential`` of
    preprocessing layers), applied after caching, so every epoch sees fresh augmentations.
    Shuffling is seeded and reshuffled each epoch.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    return finish(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, augment=augment,
                  cache=cache, n_items=len(x))


def finish(ds, *, batch_size: int, shuffle: bool = False, seed: int = 0, augment=None,
           cache: bool = True, n_items: int | None = None):
    """Cache → shuffle (seeded) → batch → augment (on the fly) → prefetch an unbatched dataset.

    ``ds`` yields single items ``x`` or ``(x, y)``; ``augment`` maps a batch of ``x``.
    """
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = n_items or 10_000
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        def _augment(*item):
            if len(item) == 1:
                return augment(item[0], training=True)
            return (augment(item[0], training=True), *item[1:])

        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def labels_of(ds) -> np.ndarray:
    """The integer class indices of a dataset of ``(x, y)`` batches (``y`` one-hot or indices)."""
    ys = [np.asarray(y) for _, y, *_ in ds.as_numpy_iterator()]
    if not ys:
        return np.zeros(0, dtype=np.int64)
    y = np.concatenate(ys)
    return (y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)).astype(
        np.int64)


def predict_proba(model, ds) -> np.ndarray:
    """Model outputs for a dataset of batches ``x`` or ``(x, y)``: ``(N, K)`` float32."""
    return np.asarray(model.predict(ds, verbose=0), dtype=np.float32)


def predict_classes(model, ds) -> np.ndarray:
    """Predicted class indices ``(N,)`` int64: argmax, or ``p > 0.5`` for a single sigmoid unit."""
    proba = predict_proba(model, ds)
    if proba.ndim == 1 or proba.shape[-1] == 1:
        return (proba.reshape(-1) > 0.5).astype(np.int64)
    return proba.argmax(axis=-1).astype(np.int64)


# ---------------------------------------------------------------------------- fit
def fit(model, train_ds, val_ds, *, epochs: int, run_dir: str | os.PathLike,
        monitor: str = "val_loss", patience: int | None = None,
        restore_best_weights: bool = True, reduce_lr_patience: int | None = None,
        verbose: int = 2, mode: str = "auto", reduce_lr_factor: float = 0.2,
        min_lr: float = 1e-7, checkpoint: str | None = "model", backup: bool = True,
        seed: int | None = None, callbacks: Sequence[Any] = (),
        progress: bool = True) -> pd.DataFrame:
    """Train a compiled model; return the history, one row per epoch run (resumed ones too).

    - ``run_dir/history.csv``: columns ``epoch`` (1-based), the logged metrics (``loss``,
      ``val_loss``, ...), ``lr`` and ``epoch_seconds`` (wall time); rewritten atomically after
      every epoch.
    - Best checkpoint by ``monitor``: ``checkpoint="model"`` → ``run_dir/best.keras`` (full
      model, optimizer included); ``"weights"`` → ``run_dir/best.weights.h5`` (no architecture,
      optimizer state included); ``"memory"`` → a copy of the best weights in RAM only (for
      models whose checkpoint costs more than an epoch); ``None`` → none. Files are written to a
      temporary file, then renamed, so an interruption never leaves a truncated checkpoint.
    - Resume: with ``backup=True`` a ``BackupAndRestore`` state in ``run_dir/backup`` lets a
      re-run of the same call after an interruption continue at the next epoch (the model must
      be built and compiled the same way). The best value so far is read back from the CSV.
      Without a backup state the run starts afresh (an earlier history and checkpoint are
      removed).
    - ``patience``: early stopping on ``monitor``; ``reduce_lr_patience``: ReduceLROnPlateau
      on ``monitor`` (factor ``reduce_lr_factor``).
    - ``restore_best_weights``: at the end, the model holds the weights of the best epoch
      (from the checkpoint, so this also holds across a resume).
    - ``val_ds`` may be None (then ``monitor`` should be a training metric, e.g. ``"loss"``).
    - ``progress``: print the replicas/strategy at the start and a line per epoch with the
      metrics and an ETA (:func:`medrepro.progress.epoch_progress`), whatever ``verbose`` is.
    """
    import keras

    if epochs < 1:
        raise TrainingError(f"epochs must be >= 1, got {epochs}")
    if checkpoint not in ("model", "weights", "memory", None):
        raise TrainingError(f"checkpoint={checkpoint!r}: expected 'model', 'weights', 'memory' "
                            "or None")
    if seed is not None:
        set_seed(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / DONE_MARKER).unlink(missing_ok=True)
    resuming = backup and (run_dir / BACKUP_DIR / "training_metadata.json").is_file()
    if not resuming:  # a fresh run: results of an earlier complete run must not seed this one
        for stale in (HISTORY_CSV, BEST_MODEL, BEST_WEIGHTS):
            (run_dir / stale).unlink(missing_ok=True)
    mode = _resolve_mode(monitor, mode)
    classes = _callback_classes()
    recorder = classes["HistoryCSV"](run_dir / HISTORY_CSV)
    best_path = None
    in_memory = None
    cbs: list[Any] = [recorder]
    if checkpoint in ("model", "weights"):
        best_path = run_dir / (BEST_MODEL if checkpoint == "model" else BEST_WEIGHTS)
        cbs.append(classes["AtomicBestCheckpoint"](best_path, monitor=monitor, mode=mode,
                                                   weights_only=checkpoint == "weights",
                                                   best=recorder.best(monitor, mode)))
    elif checkpoint == "memory":
        in_memory = classes["BestInMemory"](monitor=monitor, mode=mode)
        cbs.append(in_memory)
    early = None
    if patience is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience,
            restore_best_weights=restore_best_weights and checkpoint is None)
        cbs.append(early)
    if reduce_lr_patience is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, patience=reduce_lr_patience, factor=reduce_lr_factor,
            min_lr=min_lr, verbose=int(verbose > 0)))
    cbs.extend(callbacks)
    if progress:
        from medrepro.progress import epoch_progress

        cbs.append(epoch_progress(epochs))
    if backup:
        # Last, so an epoch's state is backed up only after its CSV row and checkpoint exist.
        cbs.append(keras.callbacks.BackupAndRestore(str(run_dir / BACKUP_DIR)))
    # tf.data inputs are shuffled by the pipeline; keras would only warn that it ignores shuffle.
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs, verbose=verbose,
              shuffle=not _is_dataset(train_ds))
    if restore_best_weights and best_path is not None and best_path.is_file():
        model.load_weights(str(best_path))
    if restore_best_weights and in_memory is not None and in_memory.weights is not None:
        model.set_weights(in_memory.weights)
    history = recorder.read()
    stopped = early.stopped_epoch if early is not None and early.stopped_epoch else None
    _write_json(run_dir / DONE_MARKER, {"epochs_run": len(history), "epochs": epochs,
                                        "stopped_early_at": stopped, "monitor": monitor,
                                        "best": recorder.best(monitor, mode)})
    return history


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The ``history.csv`` of a run folder as a frame (``TrainingError`` if absent)."""
    path = Path(run_dir) / HISTORY_CSV
    if not path.is_file():
        raise TrainingError(f"{path}: no training history (was fit run with this run_dir?)")
    return pd.read_csv(path)


def best_epoch(history: pd.DataFrame, *, monitor: str = "val_loss", mode: str = "auto") -> int:
    """The 1-based epoch with the best ``monitor`` value."""
    mode = _resolve_mode(monitor, mode)
    values = history[monitor].to_numpy()
    i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
    return int(history["epoch"].iloc[i])


# ---------------------------------------------------------------------------- callbacks
@functools.cache
def _callback_classes() -> dict[str, type]:
    """The Keras callback classes, defined on first use so importing this module stays cheap."""
    import keras

    class HistoryCSV(keras.callbacks.Callback):
        """Writes a CSV row per finished epoch (atomically), with ``lr`` and ``epoch_seconds``.

        Rows of epochs at or after a (re)started epoch are replaced, so a resumed run never
        duplicates an epoch.
        """

        def __init__(self, path: str | os.PathLike):
            super().__init__()
            self.path = Path(path)
            self._start = 0.0

        def read(self) -> pd.DataFrame:
            return pd.read_csv(self.path) if self.path.is_file() else pd.DataFrame(
                columns=["epoch"])

        def best(self, monitor: str, mode: str) -> float | None:
            history = self.read()
            if monitor not in history.columns or history[monitor].isna().all():
                return None
            return float(history[monitor].min() if mode == "min" else history[monitor].max())

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in (logs or {}).items()
                        if np.ndim(v) == 0 and k != "learning_rate"})
            row["lr"] = _current_lr(self.model)
            row["epoch_seconds"] = time.perf_counter() - self._start
            history = self.read()
            if len(history):
                history = history[history["epoch"] < epoch + 1]
            history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)
            with atomic_path(self.path, suffix=".csv") as tmp:
                history.to_csv(tmp, index=False)

    class AtomicBestCheckpoint(keras.callbacks.Callback):
        """Saves the model (or weights) when ``monitor`` improves: temporary file, then rename.

        Keras' ``ModelCheckpoint`` writes in place; a kill during the write leaves a corrupt
        file.
        ``best`` seeds the best value so far (after a resume).
        """

        def __init__(self, path: str | os.PathLike, *, monitor: str = "val_loss",
                     mode: str = "min", weights_only: bool = False, best: float | None = None):
            super().__init__()
            self.path = Path(path)
            self.monitor = monitor
            self.mode = mode
            self.weights_only = weights_only
            self.best = best

        def _improved(self, value: float) -> bool:
            if self.best is None:
                return True
            return value < self.best if self.mode == "min" else value > self.best

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            value = (logs or {}).get(self.monitor)
            if value is None:
                log.warning("AtomicBestCheckpoint: %r not in the logs (%s); nothing saved",
                            self.monitor, ", ".join(logs or {}))
                return
            value = float(value)
            if np.isnan(value) or not self._improved(value):
                return
            self.best = value
            suffix = ".weights.h5" if self.weights_only else ".keras"
            with atomic_path(self.path, suffix=suffix) as tmp:
                if self.weights_only:
                    self.model.save_weights(tmp, overwrite=True)
                else:
                    self.model.save(tmp, overwrite=True)

    class BestInMemory(keras.callbacks.Callback):
        """Keeps a copy of the best weights in memory (no file): for very large models whose
        checkpoint would cost more than the epoch (study A's 207M-parameter head on CPU)."""

        def __init__(self, *, monitor: str = "val_loss", mode: str = "min"):
            super().__init__()
            self.monitor, self.mode = monitor, mode
            self.best: float | None = None
            self.weights: list | None = None

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            value = (logs or {}).get(self.monitor)
            if value is None or np.isnan(value):
                return
            if self.best is None or (value < self.best if self.mode == "min"
                                     else value > self.best):
                self.best = float(value)
                self.weights = [np.array(w) for w in self.model.get_weights()]

    return {"HistoryCSV": HistoryCSV, "AtomicBestCheckpoint": AtomicBestCheckpoint,
            "BestInMemory": BestInMemory}


def __getattr__(name: str):
    if name in ("HistoryCSV", "AtomicBestCheckpoint", "BestInMemory"):
        return _callback_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------- helpers
def _resolve_mode(monitor: str, mode: str) -> str:
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise TrainingError(f"mode={mode!r}: expected 'auto', 'min' or 'max'")
    name = monitor.removeprefix("val_")
    return "max" if any(k in name for k in ("acc", "auc", "f1", "precision", "recall")) else "min"


def _is_dataset(obj) -> bool:
    import tensorflow as tf

    return isinstance(obj, tf.data.Dataset)


def _current_lr(model) -> float:
    try:
        lr = model.optimizer.learning_rate
        return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
    except (AttributeError, TypeError, ValueError):
        return float("nan")


def _write_json(path: Path, payload: dict) -> None:
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, default=str) + "\n")
