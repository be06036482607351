"""Study B models: exact parameter counts at 224, small inputs, float32 heads, FLOP counting."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from medrepro.models import head_ct


@pytest.mark.parametrize("key", list(head_ct.BUILDERS))
def test_parameter_count_at_224_matches_the_paper_spec(key):
    model = head_ct.build(key)
    assert model.count_params() == head_ct.PAPER_PARAMS[key]
    assert model.output_shape == (None, head_ct.N_CLASSES)
    assert model.layers[-1].activation.__name__ == "softmax"
    # the paper's rounded figure (Table 3) is within 0.4% of the built model
    assert abs(model.count_params() / 1e6 - head_ct.REPORTED_PARAMS_M[key]) < 0.012


def test_lightweight_cnn_has_the_papers_layout():
    model = head_ct.lightweight_cnn()
    assert model.get_layer("stem_conv").kernel.shape == (7, 7, 3, 64)
    assert model.get_layer("stem_conv").strides == (2, 2)
    assert model.get_layer("block4_pool").output.shape[1:] == (4, 4, 2048)
    widths = [model.get_layer(f"block{i}_conv").filters for i in range(1, 5)]
    assert widths == [64, 128, 256, 512]
    assert model.get_layer("predictions").input.shape[-1] == 4 * 4 * 2048


def test_inception_v1_has_true_5x5_branches_and_no_aux_heads():
    model = head_ct.inception_v1()
    assert model.get_layer("inception_3a_5x5").kernel.shape == (5, 5, 16, 32)
    assert model.get_layer("inception_3a_concat").output.shape[-1] == 64 + 128 + 32 + 32
    assert model.get_layer("inception_5b_concat").output.shape[1:] == (7, 7, 1024)
    assert len(model.outputs) == 1
    assert all(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("key", list(head_ct.BUILDERS))
def test_models_accept_the_reduced_profiles_input(key):
    model = head_ct.build(key, (64, 64, 3))
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (2, head_ct.N_CLASSES)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_head_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = head_ct.lightweight_cnn((32, 32, 3))
        assert model.get_layer("stem_conv").compute_dtype == "float16"
        assert model.outputs[0].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_forward_flops_counts_convs_depthwise_and_dense_by_hand():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8·8·4 outputs, 3·3·2 MACs each
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)  # 4·4·4
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)  # 64 → 5
    model = keras.Model(inputs, out)
    expected = (2 * 9 * 2 * 256 + 256) + (2 * 9 * 64) + (2 * 64 * 5 + 5)
    assert head_ct.forward_flops(model) == expected


def test_forward_flops_of_the_proposed_model():
    # stem conv dominates at 112²; the dense head is 2·32768·6 + 6
    flops = head_ct.forward_flops(head_ct.lightweight_cnn())
    stem = 2 * 7 * 7 * 3 * 64 * 112 * 112 + 64 * 112 * 112
    head = 2 * 32768 * 6 + 6
    assert stem + head < flops < 2.0e9
    assert flops == 1_755_198_470


def test_compile_paper_uses_the_papers_optimiser():
    model = head_ct.compile_paper(head_ct.lightweight_cnn((32, 32, 3)))
    opt = model.optimizer
    assert float(opt.learning_rate) == pytest.approx(1e-5)
    assert float(opt.beta_1) == pytest.approx(0.95)
    assert model.loss == "categorical_crossentropy"


def test_unknown_model_and_bad_weights_raise():
    with pytest.raises(ValueError, match="unknown study-B model 'resnet'"):
        head_ct.build("resnet")
    with pytest.raises(head_ct.ModelWeightsError, match="weights must be None or 'imagenet'"):
        head_ct.mobilenet(weights="bogus")


def test_imagenet_weights_offline_fail_clearly(monkeypatch):
    def offline(**kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    with pytest.raises(head_ct.ModelWeightsError, match="mobilenet: could not obtain the ImageNet"):
        head_ct.mobilenet(weights="imagenet")


def test_build_initialised_falls_back_offline_and_says_so(monkeypatch):
    real = keras.applications.MobileNet

    def offline(**kwargs):
        if kwargs.get("weights") == "imagenet":
            raise urllib.error.URLError("network is unreachable")
        return real(**kwargs)

    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    with pytest.warns(UserWarning, match="mobilenet: ImageNet weights unavailable"):
        model, used = head_ct.build_initialised("mobilenet", (32, 32, 3), init="imagenet",
                                           fallback=True)
    assert used.startswith("random (ImageNet weights unavailable") and "unreachable" in used
    assert model.output_shape == (None, 6)
    with pytest.raises(head_ct.ModelWeightsError, match="could not obtain the ImageNet weights"):
        head_ct.build_initialised("mobilenet", (32, 32, 3), init="imagenet", fallback=False)


def test_build_initialised_random_default_and_models_without_weights(monkeypatch):
    asked = []
    monkeypatch.setattr(head_ct, "build", lambda key, shape, n, **kw: asked.append((key, kw)) or key)
    assert head_ct.build_initialised("densenet121") == ("densenet121", "random")
    assert head_ct.build_initialised("proposed", init="imagenet") == (
        "proposed", "random (no ImageNet weights for this model)")
    assert head_ct.build_initialised("densenet121", init="imagenet") == ("densenet121", "imagenet")
    assert asked == [("densenet121", {}), ("proposed", {}),
                     ("densenet121", {"weights": "imagenet"})]
    with pytest.raises(ValueError, match="init='pretrained': expected one of random, imagenet"):
        head_ct.build_initialised("mobilenet", init="pretrained")


def test_set_bn_momentum_reaches_every_batchnorm():
    import keras

    for key in ("proposed", "mobilenet"):
        model = head_ct.set_bn_momentum(head_ct.build(key, (64, 64, 3)), 0.9)
        momenta = {layer.momentum for layer in model._flatten_layers()
                   if isinstance(layer, keras.layers.BatchNormalization)}
        assert momenta == {0.9}, key
    built = {layer.momentum for layer in head_ct.build("mobilenet", (64, 64, 3))._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)}
    assert built == {head_ct.BN_MOMENTUM}  # what the paper profile trains with
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\), got 1.5"):
        head_ct.set_bn_momentum(model, 1.5)
