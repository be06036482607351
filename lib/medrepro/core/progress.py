"""Progress you can watch: a line per training epoch with its metrics and an ETA, tqdm bars.

- :func:`epoch_progress` is the Keras callback :func:`medrepro.training.train.fit` adds: at the start it
  prints the model, the number of replicas and the strategy; after each epoch
  ``epoch 3/50: loss 0.412, accuracy 0.830, val_loss 0.520 | 12.3 s/epoch, ETA 9 min 50 s``.
- :func:`bar` wraps ``tqdm.auto.tqdm`` (a widget in Jupyter, a text bar in a terminal or in
  papermill's streamed output), for the long loops: downloads, audits, cache builds.

Lines are printed with ``flush=True``, so ``./run_all.sh`` (papermill with ``log_output``)
streams them while a notebook runs.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")
HEADLESS_ENV = "MEDREPRO_HEADLESS"
MIN_BAR_ITEMS = 2  # below this a bar is noise
BAR_MIN_INTERVAL_S = 5.0  # at most one refresh per 5 s: streamed logs stay readable


def format_duration(seconds: float) -> str:
    """``42 s``, ``9 min 50 s``, ``2 h 05 min`` (seconds rounded)."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def epoch_line(epoch: int, epochs: int, logs: dict[str, Any], seconds: float,
               eta_seconds: float | None) -> str:
    """One epoch's line; ``epoch`` is 1-based, ``logs`` Keras' epoch logs (scalars shown)."""
    metrics = ", ".join(f"{k} {float(v):.4g}" for k, v in logs.items()
                        if k != "learning_rate" and _is_scalar(v))
    eta = "done" if eta_seconds is None else f"ETA {format_duration(eta_seconds)}"
    return f"epoch {epoch}/{epochs}: {metrics} | {seconds:.1f} s/epoch, {eta}"


def _is_scalar(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def epoch_progress(epochs: int, *, label: str = ""):
    """The Keras callback printing a line per epoch (see the module docstring)."""
    return _progress_class()(epochs, label=label)


@functools.cache
def _progress_class() -> type:
    import keras

    class EpochProgress(keras.callbacks.Callback):
        """Prints the set-up at train begin and one line per epoch with metrics and ETA."""

        def __init__(self, epochs: int, *, label: str = ""):
            super().__init__()
            self.epochs, self.label = int(epochs), label
            self._begin = 0.0
            self._durations: list[float] = []

        def on_train_begin(self, logs=None) -> None:
            strategy = getattr(self.model, "distribute_strategy", None)
            replicas = getattr(strategy, "num_replicas_in_sync", 1)
            name = (type(strategy).__name__ if replicas > 1 or "Mirrored" in
                    type(strategy).__name__ else "single device")
            policy = getattr(getattr(self.model, "dtype_policy", None), "name", "?")
            print(f"training {self.label or self.model.name}: {self.epochs} epoch(s), "
                  f"{replicas} replica(s) ({name}), dtype policy {policy}", flush=True)

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self._begin = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            seconds = time.perf_counter() - self._begin
            self._durations.append(seconds)
            left = self.epochs - (epoch + 1)
            mean = sum(self._durations) / len(self._durations)
            eta = mean * left if left > 0 else None
            print(epoch_line(epoch + 1, self.epochs, dict(logs or {}), seconds, eta), flush=True)

    return EpochProgress


def bar(items: Iterable[T], *, total: int | None = None, desc: str = "",
        unit: str = "it") -> Iterable[T]:
    """``items`` wrapped in a ``tqdm.auto`` bar (none for fewer than ``MIN_BAR_ITEMS`` items).

    Under ``./run_all.sh`` (``$MEDREPRO_HEADLESS`` set by the runner) the text bar is used, so it
    shows in the streamed log and the executed notebook rather than as a widget nobody renders.
    """
    if os.environ.get(HEADLESS_ENV):
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm

    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if total is not None and total < MIN_BAR_ITEMS:
        return items
    return tqdm(items, total=total, desc=desc, unit=unit, mininterval=BAR_MIN_INTERVAL_S,
                dynamic_ncols=True)


def byte_bar(total: int | None, *, desc: str = "", initial: int = 0):
    """A tqdm bar counting bytes (``update(n)`` per chunk, ``close()`` at the end)."""
    if os.environ.get(HEADLESS_ENV):
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, mininterval=BAR_MIN_INTERVAL_S, dynamic_ncols=True)
