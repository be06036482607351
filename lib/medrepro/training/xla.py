"""XLA compilation (Keras' ``jit_compile``) chosen per model, never left to ``"auto"``.

Keras 3 compiles with ``jit_compile="auto"`` by default, which turns XLA on by itself on a
single GPU (a Colab T4, Kaggle with ``MEDREPRO_MIRROR=0``) and off on a CPU and under
``MirroredStrategy`` (Kaggle's T4 x2): three numerical paths, one of them run by no test. Here
every model of the studies has its setting in :data:`JIT_COMPILE`, the same on every device:
off, as the papers trained (TensorFlow 2 / Keras 2, whose default is no XLA), so a Colab T4, the
two T4s of Kaggle and the CPU of the tests run one graph. ``MEDREPRO_XLA=1`` turns XLA on for
every model on one device (faster on a GPU, tested on the CPU by ``tests/test_xla.py``); with
several replicas it stays off (Keras does not combine XLA with ``tf.distribute``).

:func:`apply` is what :func:`medrepro.training.train.fit` and ``fit_once`` call: it sets the
choice on the model and records it (:func:`medrepro.core.device.record_jit_compile`), so every
sidecar written afterwards states it under ``device.jit_compile``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from medrepro.core import device

XLA_ENV = "MEDREPRO_XLA"
# Builder names (medrepro.models): A's heads, C, E, B's four models, D.
JIT_COMPILE: Mapping[str, bool] = MappingProxyType({
    "lstm_cnn_head": False, "standard_cnn_head": False,  # A
    "seq_cnn": False,  # C
    "xai_cnn": False,  # E
    "lightweight_cnn": False, "inception_v1": False, "densenet121": False, "mobilenet": False,  # B
    "3dcnn": False,  # D
})
DEFAULT = False  # any other model (tests' toy models)


def choice(model_name: str, *, replicas: int = 1) -> tuple[bool, str]:
    """``(jit_compile, why)`` for the model named ``model_name`` on ``replicas`` replicas."""
    forced = os.environ.get(XLA_ENV, "").strip().lower() in ("1", "true", "yes")
    if forced and replicas > 1:
        return False, f"{XLA_ENV}=1 ignored: {replicas} replicas (MirroredStrategy)"
    if forced:
        return True, f"{XLA_ENV}=1"
    if model_name in JIT_COMPILE:
        return JIT_COMPILE[model_name], "the study's setting"
    return DEFAULT, "default"


def apply(model) -> bool:
    """Set the model's ``jit_compile`` to :func:`choice` (dropping train/test/predict functions
    built with another setting) and record it for the sidecars; return the setting."""
    jit, why = choice(model.name, replicas=device.replicas_in_sync())
    if getattr(model, "run_eagerly", False):
        jit, why = False, "run_eagerly"
    if model.jit_compile != jit:
        model.jit_compile = jit
        model.train_function = model.test_function = model.predict_function = None
    if jit and not model.jit_compile:  # Keras declines XLA, e.g. with op determinism enabled
        why = f"{why}, declined by Keras (op determinism on, or a layer XLA cannot compile)"
    device.record_jit_compile(model.name, bool(model.jit_compile), why)
    return bool(model.jit_compile)
