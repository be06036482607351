"""Training: ``fit`` with early stopping, atomic best checkpoints, resume, CSV history.

Everything a notebook needs to train a compiled Keras model reproducibly:

- :func:`fit` runs ``model.fit`` with the recipe of a :class:`FitConfig`: ``EarlyStopping``
  (optional), ``ReduceLROnPlateau`` (optional), a best-model checkpoint written atomically (temporary file, then rename), exact
  resume after an interruption (every epoch's model, optimizer and callback state in
  ``run_dir/state.npz``; the callbacks live in :mod:`medrepro.training.callbacks`) and the history
  written to ``run_dir/history.csv`` after every epoch (with wall seconds per epoch).
- XLA: off for every model unless ``MEDREPRO_XLA=1`` (:mod:`medrepro.training.xla`, applied by
  :func:`fit` and :func:`fit_once`, recorded in the sidecars), never Keras' ``"auto"``.
- Mixed precision and several GPUs: :func:`medrepro.core.device.configure_precision` and
  :func:`medrepro.core.device.distribution_strategy` (build and compile the model inside
  ``distribution_strategy().scope()``; ``fit`` itself needs no change).
- :func:`predict_proba`, :func:`predict_classes`, :func:`evaluate`, which pad batches to split
  evenly over the replicas. The tf.data datasets ``fit`` reads (:func:`medrepro.data.pipeline.finish`,
  :func:`medrepro.data.pipeline.epoch_shuffled`: epoch ``e`` shuffled by ``(seed, e)``, so a resumed
  run sees the same data order) are built in :mod:`medrepro.data.pipeline`.

TensorFlow and Keras are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.core import device, devrun, locks
from medrepro.core.fileio import CorruptFileError, atomic_path, read_json, write_json
from medrepro.data.pipeline import EPOCH_STREAM, augment_of, even_batches, pad_to_multiple
from medrepro.core.seeds import seed_everything

log = logging.getLogger(__name__)

BEST_MODEL = "best.keras"
BEST_WEIGHTS = "best.weights.h5"
HISTORY_CSV = "history.csv"
STATE_FILE = "state.npz"
RUN_CONFIG = "config.json"
FINAL_WEIGHTS = "final.weights.h5"
DONE_MARKER = "done.json"


class TrainingError(RuntimeError):
    """A training run that cannot start or continue (bad arguments, unreadable run folder)."""


# ---------------------------------------------------------------------------- set-up
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


def predict_proba(model, ds) -> np.ndarray:
    """Model outputs for a dataset of batches ``x`` or ``(x, y)``: ``(N, K)`` float32.

    Under a strategy with several replicas each batch is padded to split evenly
    (:func:`medrepro.data.pipeline.even_batches`) and the padded rows' outputs are dropped again.
    """
    replicas = device.replicas_in_sync()
    if replicas < 2:
        return np.asarray(model.predict(ds, verbose=0), dtype=np.float32)
    outs = []
    for batch in ds:
        x = batch[0] if isinstance(batch, tuple) else batch
        n = int(x.shape[0])
        padded = pad_to_multiple(x, replicas)
        outs.append(np.asarray(model.predict_on_batch(padded))[:n])
    return np.concatenate(outs).astype(np.float32)


def evaluate(model, ds) -> tuple[float, float]:
    """``(loss, accuracy)`` of a model compiled with a loss and an accuracy metric, on batches
    ``(x, y)`` (``y`` class indices or one-hot), as ``model.evaluate`` returns them.

    Under a strategy with several replicas ``model.evaluate`` fails on a batch that splits
    unevenly (see :func:`medrepro.data.pipeline.even_batches`); then the loss and accuracy are computed from the exact
    outputs of :func:`predict_proba`, so no item is counted twice.
    """
    if device.replicas_in_sync() < 2:
        loss, acc = model.evaluate(ds, verbose=0)[:2]
        return float(loss), float(acc)
    import keras

    proba = predict_proba(model, ds)
    y = np.concatenate([np.asarray(batch[1]) for batch in ds])
    loss = float(np.mean(np.asarray(keras.losses.get(model.loss)(y, proba))))
    truth = y.argmax(axis=-1) if y.ndim == proba.ndim else y.reshape(-1)
    return loss, float(np.mean(proba.argmax(axis=-1) == truth))


def predict_classes(model, ds) -> np.ndarray:
    """Predicted class indices ``(N,)`` int64: argmax, or ``p > 0.5`` for a single sigmoid unit."""
    proba = predict_proba(model, ds)
    if proba.ndim == 1 or proba.shape[-1] == 1:
        return (proba.reshape(-1) > 0.5).astype(np.int64)
    return proba.argmax(axis=-1).astype(np.int64)


# ---------------------------------------------------------------------------- fit
# One process trains in a run folder at a time; a second one stops at once, naming the holder.
_one_trainer = locks.holding("run_dir", what="a training run", wait=0)


@dataclass(frozen=True)
class FitConfig:
    """The training recipe :func:`fit` follows (what to watch, when to stop, what to keep).

    - ``epochs``: at most this many; ``monitor`` / ``mode``: the value that picks the best epoch
      (``"auto"``: max for accuracy-like names, else min).
    - ``patience``: early stopping on ``monitor`` (None: none); ``stop_from_epoch``: a warm-up
      for it (Keras' ``start_from_epoch``): it watches ``monitor`` only after the first
      ``stop_from_epoch`` epochs, so noise in the first epochs cannot end the run; the best
      checkpoint still considers every epoch.
    - ``reduce_lr_patience``: ReduceLROnPlateau on ``monitor`` (factor ``reduce_lr_factor``,
      down to ``min_lr``; None: none).
    - ``checkpoint``: ``"model"`` → ``run_dir/best.keras`` (full model, optimizer included);
      ``"weights"`` → ``run_dir/best.weights.h5`` (no architecture, optimizer state included);
      ``"memory"`` → a copy of the best weights in RAM only (for models whose checkpoint costs
      more than an epoch); ``None`` → none. ``restore_best_weights``: at the end the model holds
      the best epoch's weights.
    - ``backup``: the whole training state saved after every epoch, for an exact resume.
    - ``seed``: :func:`medrepro.core.seeds.seed_everything` before training (None: not seeded).
    """

    epochs: int
    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int | None = None
    stop_from_epoch: int = 0
    restore_best_weights: bool = True
    reduce_lr_patience: int | None = None
    reduce_lr_factor: float = 0.2
    min_lr: float = 1e-7
    checkpoint: str | None = "model"
    backup: bool = True
    seed: int | None = None

    def __post_init__(self):
        if self.epochs < 1:
            raise TrainingError(f"epochs must be >= 1, got {self.epochs}")
        if self.checkpoint not in ("model", "weights", "memory", None):
            raise TrainingError(f"checkpoint={self.checkpoint!r}: expected 'model', 'weights', "
                                "'memory' or None")


@_one_trainer
def fit(model, train_ds, val_ds, config: FitConfig, *, run_dir: str | os.PathLike,
        callbacks: Sequence[Any] = (), verbose: int = 2, progress: bool = True) -> pd.DataFrame:
    """Train a compiled model with the recipe ``config``; return the history, one row per epoch
    run (resumed ones too).

    - ``run_dir/history.csv``: columns ``epoch`` (1-based), the logged metrics (``loss``,
      ``val_loss``, ...), ``lr`` and ``epoch_seconds`` (wall time); rewritten atomically after
      every epoch.
    - The best checkpoint by ``config.monitor`` (:class:`FitConfig`'s ``checkpoint``) is written
      to a temporary file, then renamed, so an interruption never leaves a truncated checkpoint.
    - Resume: with ``config.backup`` the whole training state (model and optimizer variables,
      every callback's state: early stopping, ReduceLROnPlateau, best values) is saved
      atomically to ``run_dir/state.npz`` after every epoch (:class:`medrepro.training.callbacks.
      TrainingState`). A re-run of the same call after an interruption, even a SIGKILL,
      continues at the next epoch and ends exactly as the uninterrupted run would (the model
      must be built and compiled the same way; ``train_ds`` from
      :func:`medrepro.data.pipeline.finish` / :func:`medrepro.data.pipeline.epoch_shuffled`, whose epoch
      ``e`` order depends on ``(seed, e)`` only; its random augmentation, applied in the
      training step by :func:`augmented_steps`, draws from ``(seed, step)``, the step being
      the optimizer's, which the state holds).
      Without a saved state the run starts afresh (an earlier history and checkpoint are
      removed). The state is deleted when the run completes (``run_dir/done.json``).
    - ``restore_best_weights``: taken from the checkpoint, so this also holds across a resume.
    - ``val_ds`` may be None (then ``monitor`` should be a training metric, e.g. ``"loss"``).
    - ``callbacks``: more Keras callbacks; ``progress``: print the replicas/strategy at the start
      and a line per epoch with the metrics and an ETA
      (:func:`medrepro.core.progress.epoch_progress`), whatever ``verbose`` is.
    """
    from medrepro.training import callbacks as cb
    from medrepro.training import xla

    xla.apply(model)  # explicit per model, never Keras' "auto" (XLA on one GPU only)
    c = config
    if c.seed is not None:
        seed_everything(c.seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / DONE_MARKER).unlink(missing_ok=True)
    state_path = run_dir / STATE_FILE
    meta = cb.read_meta(state_path) if c.backup and state_path.is_file() else None
    if meta is None:  # a fresh run: results of an earlier run must not seed this one
        for stale in (HISTORY_CSV, BEST_MODEL, BEST_WEIGHTS, STATE_FILE):
            (run_dir / stale).unlink(missing_ok=True)
    monitor, mode, epochs = c.monitor, _resolve_mode(c.monitor, c.mode), c.epochs
    if devrun.active():  # a fast dev run: every fit two epochs (of two steps, _run_epochs)
        epochs = min(epochs, devrun.EPOCHS)
    recorder = cb.HistoryCSV(run_dir / HISTORY_CSV)
    if meta is not None:
        recorder.truncate(meta["epochs_done"])  # a row written after the last saved state
    cbs, best_path, in_memory, early = _recipe_callbacks(c, run_dir, mode, verbose=verbose)
    cbs.insert(0, recorder)
    cbs.extend(callbacks)
    if progress:
        from medrepro.core.progress import epoch_progress

        cbs.append(epoch_progress(epochs))
    marker = devrun.kill_marker()
    if marker is not None and c.backup and meta is None and epochs >= 2:
        cbs.append(cb.KillOnce(marker, run_dir))  # once per dev run: the resume path runs
    if marker is not None and meta is not None:
        devrun.write_marker({**devrun.read_marker(), "resumed_run": str(run_dir),
                             "resumed_at_epoch": meta["epochs_done"] + 1})
    state = None
    if c.backup:
        # Last: an epoch's state is saved after its CSV row and checkpoint exist, and restored
        # after the other callbacks have reset themselves in on_train_begin.
        state = cb.TrainingState(state_path, cbs)
        cbs.append(state)
    done = 0 if meta is None else meta["epochs_done"]
    if meta is not None and (meta["stop_training"] or done >= epochs):
        cb.restore_state(state_path, model, state.stateful)  # killed after the last epoch
    else:
        _run_epochs(model, train_ds, val_ds, initial_epoch=done, epochs=epochs, callbacks=cbs,
                    verbose=verbose, resuming=meta is not None)
    if c.restore_best_weights and best_path is not None and best_path.is_file():
        model.load_weights(str(best_path))
    if c.restore_best_weights and in_memory is not None and in_memory.weights is not None:
        model.set_weights(in_memory.weights)
    if early is not None and early.restore_best_weights and early.best_weights is not None:
        model.set_weights(early.best_weights)
    history = recorder.read()
    stopped = early.stopped_epoch + 1 if early is not None and early.stopped_epoch else None
    _write_json(run_dir / DONE_MARKER, {"epochs_run": len(history), "epochs": epochs,
                                        "stopped_early_at": stopped, "monitor": monitor,
                                        "best": recorder.best(monitor, mode),
                                        "best_epoch": (best_epoch(history, monitor=monitor,
                                                                  mode=mode)
                                                       if monitor in history else None)})
    state_path.unlink(missing_ok=True)
    return history


def _recipe_callbacks(c: FitConfig, run_dir: Path, mode: str, *, verbose: int):
    """The callbacks of the recipe ``c``: ``(list, best checkpoint path or None, in-memory best
    or None, early stopping or None)``."""
    from medrepro.training import callbacks as cb

    best_path = in_memory = early = None
    cbs: list[Any] = []
    if c.checkpoint in ("model", "weights"):
        best_path = run_dir / (BEST_MODEL if c.checkpoint == "model" else BEST_WEIGHTS)
        cbs.append(cb.AtomicBestCheckpoint(best_path, monitor=c.monitor, mode=mode,
                                           weights_only=c.checkpoint == "weights"))
    elif c.checkpoint == "memory":
        in_memory = cb.BestInMemory(monitor=c.monitor, mode=mode)
        cbs.append(in_memory)
    if c.patience is not None:
        early = cb.EarlyStopping(monitor=c.monitor, mode=mode, patience=c.patience,
                                 restore_best_weights=(c.restore_best_weights
                                                       and c.checkpoint is None),
                                 start_from_epoch=c.stop_from_epoch)
        cbs.append(early)
    if c.reduce_lr_patience is not None:
        cbs.append(cb.ReduceLROnPlateau(monitor=c.monitor, mode=mode,
                                        patience=c.reduce_lr_patience,
                                        factor=c.reduce_lr_factor, min_lr=c.min_lr,
                                        verbose=int(verbose > 0)))
    return cbs, best_path, in_memory, early


def _run_epochs(model, train_ds, val_ds, *, initial_epoch: int, epochs: int, callbacks: list,
                verbose: int, resuming: bool) -> None:
    """``model.fit`` from ``initial_epoch``; an :func:`medrepro.data.pipeline.epoch_shuffled` dataset
    is fed as its endless epoch stream from that epoch (``steps_per_epoch`` = its batches per
    epoch)."""
    augment = augment_of(train_ds)
    stream = getattr(train_ds, EPOCH_STREAM, None)
    steps = None
    if stream is not None:
        train_ds, steps = stream.build(initial_epoch), stream.batches
    elif resuming and _is_dataset(train_ds):
        log.warning("resuming at epoch %d with a dataset not made by pipeline.finish/"
                    "epoch_shuffled: its shuffling restarts, so the data order differs from "
                    "an uninterrupted run", initial_epoch + 1)
    if devrun.active():  # two steps of training and of validation per epoch
        steps = devrun.STEPS if steps is None else min(steps, devrun.STEPS)
        train_ds = train_ds.repeat() if _is_dataset(train_ds) and stream is None else train_ds
        val_ds = val_ds.take(devrun.STEPS) if _is_dataset(val_ds) else val_ds
    replicas = device.replicas_in_sync()
    if replicas > 1 and _is_dataset(train_ds):
        train_ds = even_batches(train_ds, replicas)
        val_ds = even_batches(val_ds, replicas) if _is_dataset(val_ds) else val_ds
    # tf.data inputs are shuffled by the pipeline; keras would only warn that it ignores shuffle.
    with augmented_steps(model, augment):
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps, callbacks=callbacks, verbose=verbose,
                  shuffle=not _is_dataset(train_ds))


@contextlib.contextmanager
def augmented_steps(model, augment):
    """Within the block, ``model.fit``'s training step first applies ``augment``
    (:class:`medrepro.data.augment.Augment`, None: nothing) to the batch's images, on the
    device, with the draws of step ``model.optimizer.iterations`` (saved with the training
    state, so a resumed run draws what the uninterrupted one drew) and of this replica's rows
    of the global batch."""
    if augment is None:
        yield
        return
    import keras
    import tensorflow as tf

    plain_step = type(model).train_step

    def train_step(data):
        x, y, weight = keras.utils.unpack_x_y_sample_weight(data)
        context = tf.distribute.get_replica_context()
        x = augment(x, step=model.optimizer.iterations,
                    replica=context.replica_id_in_sync_group,
                    replicas=context.num_replicas_in_sync)
        return plain_step(model, keras.utils.pack_x_y_sample_weight(x, y, weight))

    model.train_step, model.train_function = train_step, None  # traced anew with the step
    try:
        yield
    finally:
        del model.train_step
        model.train_function = None


@_one_trainer
def fit_once(model, train_ds, val_ds, config: FitConfig, *, run_dir: str | os.PathLike,
             identity: dict | None = None, callbacks: Sequence[Any] = (), verbose: int = 2,
             progress: bool = True) -> pd.DataFrame:
    """:func:`fit`, unless ``run_dir`` holds a completed run of the same configuration.

    The notebook-level resume: re-running a notebook after an interruption skips the models
    already trained, resumes the one in progress (``fit``'s saved state; ``config.backup``, the
    default) and trains the rest. The configuration is ``identity`` (what the run trains on:
    the caller's data and model settings, JSON values), the model's layer kinds and parameter
    count and the recipe ``config``; it is stored in ``run_dir/config.json`` before training. A
    completed run (``done.json``) of the same configuration is reused: the model gets its final
    weights (the best checkpoint, or ``final.weights.h5`` when there is none) and its history is
    returned with ``history.attrs["reused"] = True``. A run of another configuration in
    ``run_dir`` is deleted first.
    """
    from medrepro.training import xla

    run_dir = Path(run_dir)
    jit = xla.apply(model)  # a reused model predicts with the same setting as a trained one
    fingerprint = _fingerprint(model, identity, config)
    if jit:  # XLA changes the numbers: a model trained without it is not reused as one with it
        fingerprint["jit_compile"] = True
    config_path = run_dir / RUN_CONFIG
    saved = _read_record(config_path)
    if saved == fingerprint and is_done(run_dir):
        history = _reuse(model, run_dir, _final_weights_path(run_dir, config))
        if history is not None:
            return history
        saved = None  # a damaged finished run: trained again from scratch
    if saved != fingerprint:
        shutil.rmtree(run_dir, ignore_errors=True)  # another configuration's run, or none
        _write_json(config_path, fingerprint)
    history = fit(model, train_ds, val_ds, config, run_dir=run_dir, callbacks=callbacks,
                  verbose=verbose, progress=progress)
    weights = _final_weights_path(run_dir, config)
    if weights.name == FINAL_WEIGHTS:
        with atomic_path(weights, suffix=".weights.h5") as tmp:
            model.save_weights(tmp, overwrite=True)
    history.attrs["reused"] = False
    return history


def _read_record(path: Path) -> dict | None:
    """A run folder's JSON record (``config.json``, ``done.json``); None when absent or damaged
    (logged: a damaged record is never trusted, the run is redone)."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except CorruptFileError as exc:
        log.warning("%s; the run in %s is trained again", exc, path.parent)
        return None


def _reuse(model, run_dir: Path, weights: Path) -> pd.DataFrame | None:
    """The finished run's history, with its final ``weights`` loaded into ``model``; None when
    the weights or the history cannot be read back (truncated, garbled: logged, not trusted)."""
    if not weights.is_file():
        return None
    if not model.optimizer.built:  # checkpoints hold the optimizer state too
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(str(weights))
        history = read_history(run_dir)
        if history.empty or "epoch" not in history:
            raise ValueError("no epochs")
    except Exception as exc:  # noqa: BLE001 - h5py, zipfile, keras, pandas: each its own
        log.warning("%s: unreadable finished run (%s: %s); trained again", run_dir,
                    type(exc).__name__, exc)
        return None
    history.attrs["reused"] = True
    log.info("%s: finished earlier with this configuration; reused", run_dir)
    return history


def _fingerprint(model, identity: dict | None, config: FitConfig) -> dict:
    # through JSON so the comparison with the stored copy is like for like (tuples → lists)
    # layer kinds, not names: keras numbers the names of models built in one process
    layers = [type(layer).__name__ for layer in model.layers]
    return json.loads(json.dumps({"config": identity or {}, "layers": layers,
                                  "params": int(model.count_params()),
                                  "fit": dataclasses.asdict(config)},
                                 sort_keys=True, default=str))


def _final_weights_path(run_dir: Path, config: FitConfig) -> Path:
    """Where a completed run's final weights are: its best checkpoint when ``fit`` restored
    it, else ``final.weights.h5`` (saved by :func:`fit_once`)."""
    if config.restore_best_weights and config.checkpoint in ("model", "weights"):
        return run_dir / (BEST_MODEL if config.checkpoint == "model" else BEST_WEIGHTS)
    return run_dir / FINAL_WEIGHTS


def is_done(run_dir: str | os.PathLike) -> bool:
    """Whether :func:`fit` completed in ``run_dir`` (its ``done.json`` exists and reads back)."""
    return _read_record(Path(run_dir) / DONE_MARKER) is not None


def read_done(run_dir: str | os.PathLike) -> dict:
    """The ``done.json`` of a completed run (epochs run, early-stopping epoch, best value);
    ``TrainingError`` when absent, ``CorruptFileError`` naming it when damaged."""
    path = Path(run_dir) / DONE_MARKER
    if not path.is_file():
        raise TrainingError(f"{path}: no completed training run here")
    return read_json(path)


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


def _write_json(path: Path, payload: dict) -> None:
    write_json(path, payload, indent=2, default=str)
