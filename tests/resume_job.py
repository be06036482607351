"""A tiny seeded training run for the exact-resume tests (``tests/test_train.py``).

``python tests/resume_job.py RUN_DIR WHEN EPOCH`` trains and SIGKILLs itself: ``WHEN`` is
``end`` (at the end of 1-based epoch ``EPOCH``, after its CSV row and checkpoint, before its
state is saved), ``begin`` (at the start of epoch ``EPOCH + 1``: epoch ``EPOCH`` fully saved) or
``trainend`` (after the last epoch, before ``fit`` finishes). Imported, :func:`run` trains
without a kill (the reference, and the resumed run).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from medrepro.data import pipeline
from medrepro.training import train

EPOCHS = 25
PATIENCE = 3
REDUCE_LR_PATIENCE = 1
SEED = 7


class KillAt(keras.callbacks.Callback):
    """SIGKILLs this process at the given point (no clean-up runs: like a killed session)."""

    def __init__(self, when: str, epoch: int):
        super().__init__()
        self.when, self.epoch = when, epoch

    def _kill(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_end(self, epoch, logs=None):
        if self.when == "end" and epoch + 1 == self.epoch:
            self._kill()

    def on_epoch_begin(self, epoch, logs=None):
        if self.when == "begin" and epoch == self.epoch:
            self._kill()

    def on_train_end(self, logs=None):
        if self.when == "trainend":
            self._kill()


def data():
    """Noisy two-class data: validation loss improves, then plateaus (LR cut, early stop)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] + 0.7 * x[:, 1] + rng.normal(scale=1.0, size=96) > 0).astype("int64")
    xv = rng.normal(size=(48, 6)).astype("float32")
    yv = (xv[:, 0] + 0.7 * xv[:, 1] + rng.normal(scale=1.0, size=48) > 0).astype("int64")
    return (pipeline.from_arrays(x, y, batch_size=16, shuffle=True, seed=SEED),
            pipeline.from_arrays(xv, yv, batch_size=16))


def model():
    keras.utils.set_random_seed(SEED)
    net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dropout(0.3),
                            keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    return net


def run(run_dir, callbacks=()):
    """Train the tiny model in ``run_dir``; returns ``(model, history)``."""
    tf.config.experimental.enable_op_determinism()
    train_ds, val_ds = data()
    net = model()
    history = train.fit(net, train_ds, val_ds,
                        train.FitConfig(epochs=EPOCHS, patience=PATIENCE,
                                        reduce_lr_patience=REDUCE_LR_PATIENCE,
                                        reduce_lr_factor=0.5, seed=SEED),
                        run_dir=run_dir, verbose=0, callbacks=list(callbacks))
    return net, history


if __name__ == "__main__":
    run(sys.argv[1], callbacks=[KillAt(sys.argv[2], int(sys.argv[3]))])
    sys.exit("resume_job: the kill point was never reached")
