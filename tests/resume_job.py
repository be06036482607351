"""Tiny seeded training runs for the exact-resume tests (``tests/test_train.py``).

``python tests/resume_job.py RUN_DIR WHEN EPOCH [JOB]`` trains and SIGKILLs itself: ``WHEN`` is
``end`` (at the end of 1-based epoch ``EPOCH``, after its CSV row and checkpoint, before its
state is saved), ``begin`` (at the start of epoch ``EPOCH + 1``: epoch ``EPOCH`` fully saved) or
``trainend`` (after the last epoch, before ``fit`` finishes). ``JOB``: ``plain`` (default, a
dense net on vectors) or ``C``, ``E``, ``D``: a small CNN trained with that study's loss and
augmentation on images (C, E) or volumes (D). Imported, :func:`run` trains without a kill (the
reference, and the resumed run).
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


JOBS = ("plain", "C", "E", "D")
AUGMENTED_EPOCHS = 6


def data(job: str = "plain"):
    """Noisy two-class data: validation loss improves, then plateaus (LR cut, early stop);
    for C, E and D images or volumes whose class is a bright square, with the study's
    augmentation."""
    rng = np.random.default_rng(0)
    if job != "plain":
        return _image_data(job, rng)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] + 0.7 * x[:, 1] + rng.normal(scale=1.0, size=96) > 0).astype("int64")
    xv = rng.normal(size=(48, 6)).astype("float32")
    yv = (xv[:, 0] + 0.7 * xv[:, 1] + rng.normal(scale=1.0, size=48) > 0).astype("int64")
    return (pipeline.from_arrays(x, y, batch_size=16, shuffle=True, seed=SEED),
            pipeline.from_arrays(xv, yv, batch_size=16))


def _image_data(job, rng):
    from medrepro.data import brain_mri, volumes

    shape = (12, 12, 8) if job == "D" else (16, 16, 3)

    def draw(n):
        x = rng.random((n, *shape), dtype=np.float32) * 0.5
        y = rng.integers(0, 2, n)
        x[y == 1, 3:8, 4:9] += 0.5
        return x, y

    (x, y), (xv, yv) = draw(40), draw(16)
    if job == "D":
        return (volumes.make_dataset(x, y, batch=8, augment=True, shuffle=True, seed=SEED),
                volumes.make_dataset(xv, yv, batch=8))
    options = brain_mri.C_AUGMENT if job == "C" else brain_mri.E_AUGMENT
    onehot = np.eye(2, dtype=np.float32)
    return (pipeline.from_arrays(x, onehot[y], batch_size=8, shuffle=True, seed=SEED,
                                 augment=brain_mri.augmenter(**options, seed=SEED)),
            pipeline.from_arrays(xv, onehot[yv], batch_size=8))


def model(job: str = "plain"):
    keras.utils.set_random_seed(SEED)
    if job == "plain":
        net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                                keras.layers.Dropout(0.3),
                                keras.layers.Dense(2, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(0.05),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return net
    volume = job == "D"
    conv, pool = ((keras.layers.Conv3D, keras.layers.GlobalAveragePooling3D) if volume else
                  (keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D))
    net = keras.Sequential([keras.Input((12, 12, 8, 1) if volume else (16, 16, 3)),
                            conv(4, 3, activation="relu"), keras.layers.BatchNormalization(),
                            pool(), keras.layers.Dropout(0.2),
                            keras.layers.Dense(1, activation="sigmoid") if volume else
                            keras.layers.Dense(2, activation="softmax")])
    loss = {"C": "mse", "E": "categorical_crossentropy", "D": "binary_crossentropy"}[job]
    net.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return net


def run(run_dir, callbacks=(), job: str = "plain"):
    """Train the tiny model of ``job`` in ``run_dir``; returns ``(model, history)``."""
    tf.config.experimental.enable_op_determinism()
    train_ds, val_ds = data(job)
    net = model(job)
    epochs = EPOCHS if job == "plain" else AUGMENTED_EPOCHS
    history = train.fit(net, train_ds, val_ds,
                        train.FitConfig(epochs=epochs, patience=PATIENCE,
                                        reduce_lr_patience=REDUCE_LR_PATIENCE,
                                        reduce_lr_factor=0.5, seed=SEED),
                        run_dir=run_dir, verbose=0, callbacks=list(callbacks))
    return net, history


if __name__ == "__main__":
    run(sys.argv[1], callbacks=[KillAt(sys.argv[2], int(sys.argv[3]))],
        job=sys.argv[4] if len(sys.argv) > 4 else "plain")
    sys.exit("resume_job: the kill point was never reached")
