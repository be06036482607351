"""The Keras callbacks of :func:`medrepro.training.train.fit`, each able to save and restore its state.

An interrupted run resumes *exactly* (same epochs, metrics, learning rates, best epoch and
weights as an uninterrupted one) because everything that decides the next epoch is saved,
atomically, at the end of every epoch by :class:`TrainingState`, into one file:

- the model's variables (weights, BatchNorm statistics, dropout seed-generator states),
- the optimizer's variables (step count, learning rate, moments),
- the state of every callback that has one (:class:`Stateful`): early stopping's wait/best/best
  epoch (and best weights when it keeps them), ReduceLROnPlateau's wait/best/cooldown, the best
  value of the checkpoints,
- the number of finished epochs and whether training was asked to stop.

The data order is the other half: :func:`medrepro.data.pipeline.finish` datasets shuffle epoch ``e``
with a permutation drawn from ``(seed, e)``, so epoch ``k + 1`` after a resume sees the order it
would have seen without the interruption.

A callback is stateful when it has ``get_state() -> dict`` (JSON values) and
``set_state(dict)``; ``get_arrays() -> list[np.ndarray]`` / ``set_arrays(list)`` add arrays
(best weights kept in memory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np
import pandas as pd

from medrepro.core.fileio import atomic_path

log = logging.getLogger(__name__)

STATE_FORMAT = 1
_META_KEY = "meta"  # JSON of the epoch count and callback states, stored as a 0-d string array


class ResumeError(RuntimeError):
    """A saved training state that cannot be restored into this model (file named)."""


@runtime_checkable
class Stateful(Protocol):
    """A callback whose state survives a resume (saved with every epoch by TrainingState)."""

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


def _better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------- history
class HistoryCSV(keras.callbacks.Callback):
    """Writes a CSV row per finished epoch (atomically), with ``lr`` and ``epoch_seconds``.

    Columns: ``epoch`` (1-based), the logged scalars (``loss``, ``val_loss``...), ``lr`` (the
    learning rate the epoch trained with) and ``epoch_seconds`` (wall time). Rows of epochs at
    or after a (re)started epoch are replaced, so a resumed run never duplicates an epoch.
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

    def truncate(self, epochs_done: int) -> None:
        """Drop rows after ``epochs_done`` (an epoch written, then killed before its state)."""
        history = self.read()
        if len(history) and (history["epoch"] > epochs_done).any():
            with atomic_path(self.path, suffix=".csv") as tmp:
                history[history["epoch"] <= epochs_done].to_csv(tmp, index=False)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()
                    if np.ndim(v) == 0 and k != "learning_rate"})
        row["lr"] = current_lr(self.model)
        row["epoch_seconds"] = time.perf_counter() - self._start
        history = self.read()
        if len(history):
            history = history[history["epoch"] < epoch + 1]
        history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)
        with atomic_path(self.path, suffix=".csv") as tmp:
            history.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------- best model
class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the model (or weights) when ``monitor`` improves: temporary file, then rename.

    Keras' ``ModelCheckpoint`` writes in place; a kill during the write leaves a corrupt file.
    State: the best value so far and its epoch (1-based).
    """

    def __init__(self, path: str | os.PathLike, *, monitor: str = "val_loss",
                 mode: str = "min", weights_only: bool = False):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.weights_only = weights_only
        self.best: float | None = None
        self.best_epoch: int | None = None

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = _float_or_none(state["best"]), state["best_epoch"]

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            log.warning("AtomicBestCheckpoint: %r not in the logs (%s); nothing saved",
                        self.monitor, ", ".join(logs or {}))
            return
        value = float(value)
        if np.isnan(value) or not _better(value, self.best, self.mode):
            return
        self.best, self.best_epoch = value, epoch + 1
        suffix = ".weights.h5" if self.weights_only else ".keras"
        with atomic_path(self.path, suffix=suffix, needed=_variables_bytes(self.model)) as tmp:
            if self.weights_only:
                self.model.save_weights(tmp, overwrite=True)
            else:
                self.model.save(tmp, overwrite=True)


class BestInMemory(keras.callbacks.Callback):
    """Keeps a copy of the best weights in memory (no file of its own): for very large models
    whose checkpoint would cost more than the epoch (study A's 207M-parameter head on CPU).

    With a :class:`TrainingState` the copy is saved with the state (``get_arrays``), so a resume
    still ends with the best epoch's weights.
    """

    def __init__(self, *, monitor: str = "val_loss", mode: str = "min"):
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.weights: list | None = None

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "n_arrays": 0 if self.weights is None else len(self.weights)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = _float_or_none(state["best"])

    def get_arrays(self) -> list[np.ndarray]:
        return list(self.weights or [])

    def set_arrays(self, arrays: list[np.ndarray]) -> None:
        self.weights = list(arrays) or None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or np.isnan(value):
            return
        if _better(float(value), self.best, self.mode):
            self.best = float(value)
            self.weights = [np.array(w) for w in self.model.get_weights()]


# ---------------------------------------------------------------------------- prefix runs
# The files of a folder written by PrefixSnapshots.
SNAPSHOT_MARKER, SNAPSHOT_WEIGHTS, SNAPSHOT_HISTORY = "snapshot.json", "weights.npz", "history.csv"


class KillOnce(keras.callbacks.Callback):
    """The fast dev run's kill (:mod:`medrepro.core.devrun`): SIGKILLs this process after the
    first training step of epoch 2, epoch 1's state saved, as a session's end would, and
    records the run folder in the kill marker first; a no-op once the marker records a kill
    (the continued run, and every later fit of the dev run)."""

    def __init__(self, marker: str | os.PathLike, run_dir: str | os.PathLike):
        super().__init__()
        self.marker, self.run_dir = Path(marker), Path(run_dir)
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        from medrepro.core import devrun

        if self._epoch >= 1 and not devrun.read_marker(self.marker):
            import signal

            devrun.write_marker({"killed_run": str(self.run_dir), "epochs_saved": self._epoch,
                                 "killed_in_epoch": self._epoch + 1, "pid": os.getpid()},
                                self.marker)
            os.kill(os.getpid(), signal.SIGKILL)


class PrefixSnapshots(keras.callbacks.Callback):
    """Writes, during a run, what shorter runs of the same set-up would have ended with.

    When nothing in a run depends on how many epochs it will have (same start, data order and
    per-step schedule; early stopping that would end a shorter run at the same epoch), its first
    ``k`` epochs are a ``k``-epoch run, and that run's result is the best weights within them
    (what :func:`medrepro.training.train.fit` restores at its end).

    ``at``: ``key -> (k, folder, meta)``. At the end of epoch ``k``, or at the end of a run that
    stopped before it, ``folder`` (emptied first) gets the weights of ``best`` (a
    :class:`BestInMemory` on the checkpoint's monitor, listed before this callback), the first
    ``k`` rows of ``history_path`` (:class:`HistoryCSV`'s file) and, last,
    :data:`SNAPSHOT_MARKER` with ``meta``; each file written atomically. Read one back with
    :func:`read_snapshot`.
    """

    def __init__(self, at: dict[str, tuple[int, Path, dict]], *, best: BestInMemory,
                 history_path: str | os.PathLike):
        super().__init__()
        self.at, self.best, self.history_path = at, best, Path(history_path)
        self.written: set[str] = set()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        for key, (k, _, _) in self.at.items():
            if k == epoch + 1:
                self._write(key, epoch + 1)

    def on_train_end(self, logs=None) -> None:
        done = len(pd.read_csv(self.history_path)) if self.history_path.is_file() else 0
        for key, (k, _, _) in self.at.items():
            if key not in self.written and k > done > 0:  # the run stopped before epoch k
                self._write(key, done)

    def _write(self, key: str, n_epochs: int) -> None:
        import shutil

        from medrepro.core.fileio import write_json

        _, folder, meta = self.at[key]
        folder = Path(folder)
        weights = self.best.weights or self.model.get_weights()  # no finite monitor value yet
        shutil.rmtree(folder, ignore_errors=True)  # an earlier run in this folder
        folder.mkdir(parents=True)
        with atomic_path(folder / SNAPSHOT_WEIGHTS, suffix=".npz") as tmp:
            np.savez(tmp, *weights)
        with atomic_path(folder / SNAPSHOT_HISTORY) as tmp:
            pd.read_csv(self.history_path).iloc[:n_epochs].to_csv(tmp, index=False)
        write_json(folder / SNAPSHOT_MARKER, {"meta": meta, "epochs_run": n_epochs}, default=str)
        self.written.add(key)


def read_snapshot(folder: str | os.PathLike, meta: dict) -> tuple[pd.DataFrame, list] | None:
    """``(history, weights)`` of a :class:`PrefixSnapshots` folder written with ``meta``, or
    None when ``folder`` holds none (or one written with other ``meta``)."""
    folder = Path(folder)
    marker = folder / SNAPSHOT_MARKER
    if not marker.is_file():
        return None
    saved = json.loads(marker.read_text(encoding="utf-8"))
    if saved["meta"] != json.loads(json.dumps(meta, default=str)):
        return None
    with np.load(folder / SNAPSHOT_WEIGHTS) as arrays:
        weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return pd.read_csv(folder / SNAPSHOT_HISTORY), weights


# ---------------------------------------------------------------------------- schedules
class EarlyStopping(keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` with its wait, best, best epoch, stopped epoch (and the
    best weights it keeps with ``restore_best_weights``) saved and restored on resume."""

    def get_state(self) -> dict[str, Any]:
        # best_epoch exists only once on_train_begin has run
        return {"wait": int(self.wait), "best": _float_or_none(self.best),
                "best_epoch": int(getattr(self, "best_epoch", 0)),
                "stopped_epoch": int(self.stopped_epoch)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait, self.best = state["wait"], state["best"]
        self.best_epoch, self.stopped_epoch = state["best_epoch"], state["stopped_epoch"]

    def get_arrays(self) -> list[np.ndarray]:
        return list(self.best_weights or []) if self.restore_best_weights else []

    def set_arrays(self, arrays: list[np.ndarray]) -> None:
        self.best_weights = list(arrays) or None


class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """``keras.callbacks.ReduceLROnPlateau`` with wait, best and cooldown saved and restored on
    resume (the learning rate itself is an optimizer variable, saved with the optimizer)."""

    def get_state(self) -> dict[str, Any]:
        return {"wait": int(self.wait), "best": _float_or_none(self.best),
                "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait, self.best = state["wait"], state["best"]
        self.cooldown_counter = state["cooldown_counter"]


# ---------------------------------------------------------------------------- the state
class TrainingState(keras.callbacks.Callback):
    """Saves the whole training state to ``path`` (``.npz``) after every epoch, atomically.

    Put it LAST in the callback list: an epoch's state is then saved only after its CSV row,
    checkpoint and schedule updates exist, and its ``on_train_begin`` (which restores a saved
    state, see :func:`read_epochs_done`) runs after the other callbacks have reset themselves.
    ``callbacks``: the callbacks whose state to keep (the non-stateful ones are ignored).
    """

    def __init__(self, path: str | os.PathLike, callbacks: list[Any]):
        super().__init__()
        self.path = Path(path)
        self.stateful = [cb for cb in callbacks if isinstance(cb, Stateful)]
        self.restored_epochs = 0

    def on_train_begin(self, logs=None) -> None:
        if self.path.is_file():
            self.restored_epochs = restore_state(self.path, self.model, self.stateful)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        save_state(self.path, self.model, self.stateful, epochs_done=epoch + 1,
                   stop_training=bool(self.model.stop_training))


def _callback_key(i: int, cb: Any) -> str:
    return f"{i}:{type(cb).__name__}"


def _optimizer_variables(model) -> list:
    optimizer = model.optimizer
    if not optimizer.built:  # variables exist only after the first step, or an explicit build
        strategy = getattr(model, "distribute_strategy", None)  # MirroredStrategy: same scope
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            optimizer.build(model.trainable_variables)
    return list(optimizer.variables)


def save_state(path: str | os.PathLike, model, callbacks: list[Any], *, epochs_done: int,
               stop_training: bool = False) -> None:
    """Write model + optimizer variables and callback states to ``path`` (one ``.npz``),
    atomically (temporary file, then rename)."""
    arrays: dict[str, np.ndarray] = {}
    for i, var in enumerate(model.variables):
        arrays[f"model/{i}"] = np.asarray(var.numpy())
    for i, var in enumerate(_optimizer_variables(model)):
        arrays[f"optimizer/{i}"] = np.asarray(var.numpy())
    states = {}
    for i, cb in enumerate(callbacks):
        key = _callback_key(i, cb)
        states[key] = cb.get_state()
        for j, arr in enumerate(cb.get_arrays() if hasattr(cb, "get_arrays") else []):
            arrays[f"callback/{key}/{j}"] = np.asarray(arr)
        states[key]["_arrays"] = sum(k.startswith(f"callback/{key}/") for k in arrays)
    meta = {"format": STATE_FORMAT, "epochs_done": int(epochs_done),
            "stop_training": bool(stop_training), "n_model": len(model.variables),
            "callbacks": states}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    needed = sum(a.nbytes for a in arrays.values())
    with atomic_path(path, suffix=".npz", needed=needed) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON part of a saved state: ``epochs_done``, ``stop_training``, ``callbacks``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz[_META_KEY]))
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("epochs_done"), int):
        raise _unreadable(path, ValueError("no epoch count in its metadata"))
    return meta


# what numpy's zip reader raises for a truncated or garbled .npz
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
               json.JSONDecodeError)


def _unreadable(path: Path, exc: BaseException) -> ResumeError:
    return ResumeError(f"{path}: unreadable training state ({type(exc).__name__}: {exc}); "
                       "delete it to start this run afresh")


def restore_state(path: str | os.PathLike, model, callbacks: list[Any]) -> int:
    """Load a state written by :func:`save_state` into ``model``, its optimizer and
    ``callbacks`` (the same kinds, in the same order). Returns the number of epochs done."""
    path = Path(path)
    meta = read_meta(path)
    try:
        return _restore(path, meta, model, callbacks)
    except ResumeError:
        raise
    except _UNREADABLE as exc:  # the metadata read, an array did not (truncated in the middle)
        raise _unreadable(path, exc) from None


def _restore(path: Path, meta: dict, model, callbacks: list[Any]) -> int:
    with np.load(path, allow_pickle=False) as npz:
        _assign(path, "model", model.variables, npz)
        _assign(path, "optimizer", _optimizer_variables(model), npz)
        saved = meta["callbacks"]
        keys = [_callback_key(i, cb) for i, cb in enumerate(callbacks)]
        if list(saved) != keys:
            raise ResumeError(f"{path}: saved callbacks {list(saved)} differ from this run's "
                              f"{keys}; delete the file to start afresh")
        for key, cb in zip(keys, callbacks):
            state = dict(saved[key])
            n_arrays = state.pop("_arrays")
            cb.set_state(state)
            if hasattr(cb, "set_arrays"):
                cb.set_arrays([npz[f"callback/{key}/{j}"] for j in range(n_arrays)])
    return int(meta["epochs_done"])


def _assign(path: Path, group: str, variables: list, npz) -> None:
    names = sorted((k for k in npz.files if k.startswith(f"{group}/")),
                   key=lambda k: int(k.split("/")[1]))
    if len(names) != len(variables):
        raise ResumeError(f"{path}: {len(names)} saved {group} variables, this model has "
                          f"{len(variables)} (built differently?); delete the file to start "
                          "afresh")
    for name, var in zip(names, variables):
        value = npz[name]
        if tuple(value.shape) != tuple(var.shape):
            raise ResumeError(f"{path}: {group} variable {var.path!r} has shape "
                              f"{tuple(var.shape)}, saved {tuple(value.shape)}")
        var.assign(value)


def _variables_bytes(model) -> int:
    """Bytes of a model's variables and its optimizer's: about what a checkpoint needs."""
    variables = [*model.variables, *getattr(model.optimizer, "variables", [])]
    return int(sum(np.prod(v.shape, dtype=np.int64) * np.dtype(v.dtype).itemsize
                   for v in variables))


def current_lr(model) -> float:
    """The optimizer's current learning rate as a float (NaN when it has none)."""
    try:
        lr = model.optimizer.learning_rate
        return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
    except (AttributeError, TypeError, ValueError):
        return float("nan")
