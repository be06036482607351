import keras
import numpy as np
import pytest
from medrepro import manifest
from medrepro.models import mri as mm
from medrepro.models.summary import summary_frame


def test_lstm_head_matches_table1_exactly():
    model = mm.lstm_cnn_head()
    assert model.count_params() == mm.LSTM_HEAD_PARAMS == 207_605_764
    assert not model.non_trainable_weights
    table1 = manifest.reported_frame("A.table1")
    ours = summary_frame(model)
    layers = ours[ours["layer"] != "Total"]
    expected = table1[table1["layer"].str.startswith(("lstm", "dropout", "flatten", "dense"))]
    assert list(layers["params"]) == list(expected["params"])
    assert list(layers["output_shape"]) == list(expected["output_shape"])
    assert model.output_shape == (None, 4)
    # The paper's model section: ReLU as the LSTM activation, in every LSTM layer.
    lstms = [layer for layer in model.layers if type(layer).__name__ == "LSTM"]
    assert len(lstms) == 4
    assert all(layer.cell.activation is keras.activations.relu for layer in lstms)
    del model


def test_tanh_variant_has_the_same_parameter_count():
    small = {"n_features": 32}
    relu, tanh = mm.lstm_cnn_head(**small), mm.lstm_cnn_head(activation="tanh", **small)
    assert relu.count_params() == tanh.count_params()
    assert tanh.get_layer("lstm").cell.activation is keras.activations.tanh
    x = np.random.default_rng(0).normal(size=(3, 1, 32)).astype("float32")
    tanh.set_weights(relu.get_weights())
    assert not np.allclose(np.asarray(relu(x)), np.asarray(tanh(x)))  # the activation acts


def test_standard_head_and_study_c_e_models():
    assert mm.standard_cnn_head().count_params() == mm.N_FEATURES * 4 + 4
    seq = mm.seq_cnn((64, 64, 3))
    assert seq.output_shape == (None, 4)
    assert [type(layer).__name__ for layer in seq.layers[:4]] == [
        "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"]
    assert seq.get_layer("bn1").momentum == mm.SEQ_CNN_BN_MOMENTUM
    out = seq(np.zeros((2, 64, 64, 3), dtype="float32"))
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)
    xai = mm.xai_cnn((48, 48, 3))
    kinds = {type(layer).__name__ for layer in xai.layers}
    assert {"Conv2D", "BatchNormalization", "MaxPooling2D", "Dropout", "Dense"} <= kinds
    assert xai.output_shape == (None, 4)


def test_softmax_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = mm.xai_cnn((32, 32, 3))
        assert model.layers[0].compute_dtype == "float16"
        assert model(np.zeros((1, 32, 32, 3), dtype="float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_offline_weights_fail_fast_with_a_clear_message(offline):
    with pytest.raises(mm.WeightsUnavailableError, match=r"ImageNet weights unavailable.*"
                                                         r"put the file there to run offline"):
        mm.resnet50_backbone(weights="imagenet", fallback=False, image_size=32)
    with pytest.raises(mm.WeightsUnavailableError, match="expected 'imagenet' or None"):
        mm.resnet50_backbone(weights="places365")
