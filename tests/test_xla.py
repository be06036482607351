"""medrepro.training.xla: every study's model trains with an explicit XLA setting, the same on a
CPU, one GPU and several, recorded in the sidecars; XLA itself (MEDREPRO_XLA=1) on the CPU."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from medrepro.core import device
from medrepro.data import pipeline
from medrepro.models import brain_mri, chest_ct, head_ct
from medrepro.training import train, xla

# (builder, input shape, loss, classes): the studies' models at tiny sizes
MODELS = {
    "lstm_cnn_head": (lambda s: brain_mri.lstm_cnn_head(n_features=s[-1]), (1, 8),
                      "categorical_crossentropy", 4),
    "seq_cnn": (brain_mri.seq_cnn, (32, 32, 3), "mse", 4),
    "xai_cnn": (brain_mri.xai_cnn, (32, 32, 3), "categorical_crossentropy", 4),
    "lightweight_cnn": (lambda s: head_ct.build("proposed", s), (32, 32, 3),
                        "sparse_categorical_crossentropy", None),
    "3dcnn": (chest_ct.cnn3d, (48, 48, 48, 1), "binary_crossentropy", 1),
}


def _data(shape, loss, classes, n=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype("float32")
    if classes == 1:
        y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    elif loss.startswith("sparse"):
        y = rng.integers(0, 6, size=n)
    else:
        y = keras.utils.to_categorical(rng.integers(0, classes, size=n), classes)
    return pipeline.from_arrays(x, y, batch_size=2, shuffle=True, seed=1), \
        pipeline.from_arrays(x, y, batch_size=2)


def _model(name, *, lr=1e-3):
    build, shape, loss, classes = MODELS[name]
    keras.utils.set_random_seed(3)
    model = build(shape)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss)
    return model, _data(shape, loss, classes)


def test_every_study_model_has_an_explicit_setting():
    assert set(MODELS) <= set(xla.JIT_COMPILE)
    for name in MODELS:
        assert xla.JIT_COMPILE[name] is False  # as the papers trained, on every device


def test_the_single_gpu_path_trains_without_xla_and_the_sidecar_says_so(monkeypatch, tmp_path):
    """On one GPU Keras' "auto" resolves to XLA; the explicit setting wins over it."""
    monkeypatch.delenv(xla.XLA_ENV, raising=False)
    monkeypatch.setattr(keras.Model, "_resolve_auto_jit_compile", lambda self: True)
    model, (fit_ds, val_ds) = _model("seq_cnn")
    assert model.jit_compile is True  # what Keras chose by itself, as on a Colab T4
    train.fit(model, fit_ds, val_ds, train.FitConfig(epochs=1),
              run_dir=tmp_path, verbose=0, progress=False)
    assert model.jit_compile is False
    assert device.summary()["jit_compile"]["seq_cnn"] == {"jit_compile": False,
                                                          "why": "the study's setting"}
    from medrepro.reporting import report

    assert report.provenance("x", profile="smoke", seed=1)["device"]["jit_compile"]["seq_cnn"]["jit_compile"] is False


@pytest.fixture
def op_determinism_off():
    """Op determinism off for the test (a resume job of another test may have turned it on in
    this process; Keras then declines XLA), as it was afterwards."""
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    if was:
        tf_config.disable_op_determinism()
    yield
    if was:
        tf_config.enable_op_determinism()


def test_xla_declined_by_keras_is_recorded_as_off_with_why(monkeypatch, op_determinism_off):
    from tensorflow.python.framework import config as tf_config

    monkeypatch.setenv(xla.XLA_ENV, "1")
    model, _ = _model("seq_cnn")
    tf_config.enable_op_determinism()
    try:
        assert xla.apply(model) is False
    finally:
        tf_config.disable_op_determinism()
    record = device.summary()["jit_compile"]["seq_cnn"]
    assert record["jit_compile"] is False and "declined by Keras" in record["why"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm_cnn_head", "seq_cnn", "lightweight_cnn"])
def test_xla_on_the_cpu_trains_a_study_model_and_predicts_as_without_it(
        name, monkeypatch, tmp_path, op_determinism_off):
    """MEDREPRO_XLA=1: the training step is compiled by XLA (TensorFlow's CPU backend), the fit
    records it, and the trained model predicts what it predicts without XLA. (Dropout draws
    differ under XLA, so the two trainings are not compared; C and E share seq_cnn's layers, D's
    3-D convolutions take minutes to compile on a CPU.)"""
    monkeypatch.setenv(xla.XLA_ENV, "1")
    model, (fit_ds, val_ds) = _model(name)
    history = train.fit(model, fit_ds, val_ds, train.FitConfig(epochs=1, seed=3),
                        run_dir=tmp_path, verbose=0, progress=False)
    assert model.jit_compile is True and np.isfinite(history["loss"]).all()
    assert device.summary()["jit_compile"][model.name] == {"jit_compile": True,
                                                           "why": f"{xla.XLA_ENV}=1"}
    with_xla = train.predict_proba(model, val_ds)
    model.jit_compile, model.predict_function = False, None
    np.testing.assert_allclose(with_xla, train.predict_proba(model, val_ds), atol=1e-5)


def test_xla_is_refused_under_several_replicas(monkeypatch):
    monkeypatch.setenv(xla.XLA_ENV, "1")
    assert xla.choice("seq_cnn", replicas=2) == (
        False, "MEDREPRO_XLA=1 ignored: 2 replicas (MirroredStrategy)")
    assert xla.choice("seq_cnn", replicas=1) == (True, "MEDREPRO_XLA=1")
    monkeypatch.delenv(xla.XLA_ENV)
    assert xla.choice("some_toy", replicas=1) == (False, "default")
