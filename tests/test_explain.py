import keras
import numpy as np
import pytest
from medrepro.analysis import explain


def _identity_conv_model(spatial=(16, 16), channels=1, name="toy"):
    """Conv 1x1 (weight 1, bias 0, ReLU) -> global average -> Dense(2) with weights (+1, -1).

    The activation equals the (positive) input, and class 0's gradient is positive everywhere,
    so Grad-CAM of class 0 is the input itself, scaled to [0, 1].
    """
    conv = keras.layers.Conv3D if len(spatial) == 3 else keras.layers.Conv2D
    pool = (keras.layers.GlobalAveragePooling3D if len(spatial) == 3
            else keras.layers.GlobalAveragePooling2D)
    model = keras.Sequential([
        keras.Input((*spatial, channels)),
        conv(2, 1, activation="relu", kernel_initializer="ones", bias_initializer="zeros",
             name="conv_a"),
        pool(),
        keras.layers.Dense(2, name="head"),
    ], name=name)
    model.get_layer("head").set_weights([np.array([[1.0, -1.0], [1.0, -1.0]]), np.zeros(2)])
    return model


def _square(spatial=(16, 16)):
    x = np.zeros((*spatial, 1), dtype="float32")
    x[tuple(slice(2, 6) for _ in spatial)] = 1.0
    return x


def test_gradcam_2d_is_the_activation_for_a_linear_toy():
    model = _identity_conv_model()
    x = _square()
    cam = explain.gradcam(model, x, class_index=0)
    assert cam.shape == (16, 16) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, x[..., 0], atol=1e-6)
    # class 1 has negative gradients everywhere: nothing survives the ReLU
    assert not explain.gradcam(model, x, class_index=1).any()


def test_gradcam_3d_averages_over_all_spatial_axes():
    model = _identity_conv_model(spatial=(12, 12, 8))
    x = _square((12, 12, 8))
    cam = explain.gradcam(model, x, class_index=0)
    assert cam.shape == (12, 12, 8)
    np.testing.assert_allclose(cam, x[..., 0], atol=1e-6)
    batch = explain.gradcam(model, np.stack([x, x]), class_index=0)
    assert batch.shape == (2, 12, 12, 8)


def test_gradcam_in_passes_of_batch_size_gives_the_maps_of_one_pass():
    model = _identity_conv_model(spatial=(12, 12, 8))
    rng = np.random.default_rng(0)
    x = rng.random((5, 12, 12, 8, 1), dtype=np.float32)
    whole = explain.gradcam(model, x)  # each item's own predicted class
    passes = explain.gradcam(model, x, batch_size=2)  # passes of 2, 2, 1
    assert passes.shape == whole.shape == (5, 12, 12, 8)
    np.testing.assert_allclose(passes, whole, atol=1e-6)


def test_zero_input_gives_zero_maps_not_nan():
    model = _identity_conv_model()
    zero = np.zeros((16, 16, 1), dtype="float32")
    for cam in (explain.gradcam(model, zero, class_index=0), explain.eigencam(model, zero)):
        assert not np.isnan(cam).any() and not cam.any()
    ig = explain.integrated_gradients(model, zero, steps=4)
    assert not np.isnan(ig).any() and not ig.any()
    assert not explain.attribution_map(ig).any()


def test_eigencam_sign_follows_the_mean_activation(monkeypatch):
    model = _identity_conv_model(name="eig")
    x = _square()
    x[10:14, 10:14] = 0.2  # a weaker second blob
    cam = explain.eigencam(model, x)
    assert cam.shape == (16, 16)
    assert cam[3, 3] == pytest.approx(1.0)
    assert cam[3, 3] > cam[11, 11] > cam[0, 15] + 0.05
    # An SVD is only defined up to sign: the negated factors must give the same map.
    svd = np.linalg.svd

    def negated_svd(a, **kwargs):
        u, s, vt = svd(a, **kwargs)
        return -u, s, -vt

    monkeypatch.setattr(np.linalg, "svd", negated_svd)
    np.testing.assert_allclose(explain.eigencam(model, x), cam, atol=1e-6)


def _backbone():
    inp = keras.Input((20, 20, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="bb_conv1")(inp)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="bb_conv2")(h)
    return keras.Model(inp, h, name="backbone")


def test_nested_backbone_matches_the_same_layers_unnested():
    keras.utils.set_random_seed(3)
    backbone = _backbone()
    backbone.trainable = False  # a frozen backbone must still pass gradients
    pool, dense = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="cls")
    nested = keras.Sequential([keras.Input((20, 20, 3)), backbone, pool, dense])
    inp = keras.Input((20, 20, 3))
    h = inp
    for layer in backbone.layers[1:]:
        h = layer(h)
    flat = keras.Model(inp, dense(pool(h)))
    x = np.random.default_rng(0).random((20, 20, 3)).astype("float32")
    assert explain.find_layer(nested).name == "bb_conv2"
    a = explain.gradcam(nested, x, class_index=1)
    b = explain.gradcam(flat, x, class_index=1, layer="bb_conv2")
    assert a.shape == (20, 20) and a.max() == pytest.approx(1.0)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(explain.eigencam(nested, x), explain.eigencam(flat, x), atol=1e-5)
    # the layer is restored after the capture
    assert "call" not in vars(backbone.get_layer("bb_conv2"))


def test_unknown_layer_lists_the_conv_layers():
    nested = keras.Sequential([keras.Input((20, 20, 3)), _backbone(),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    with pytest.raises(explain.ExplainError, match=r"no layer 'conv9'.*bb_conv1, bb_conv2"):
        explain.gradcam(nested, np.zeros((20, 20, 3)), layer="conv9")
    with pytest.raises(explain.ExplainError, match="no spatial axes"):
        explain.gradcam(nested, np.zeros((20, 20, 3)), layer=nested.layers[-1].name)
    with pytest.raises(explain.ExplainError, match="does not fit"):
        explain.gradcam(nested, np.zeros((20, 3)))


def test_integrated_gradients_completeness():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 2)),
                              keras.layers.Conv2D(3, 3, activation="tanh"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(1).random((8, 8, 2)).astype("float32")
    attr = explain.integrated_gradients(model, x, steps=64, class_index=2)
    assert attr.shape == x.shape
    gap = model(x[None])[0, 2] - model(np.zeros((1, 8, 8, 2)))[0, 2]
    assert attr.sum() == pytest.approx(float(gap), rel=0.02, abs=1e-4)
    heat = explain.attribution_map(attr)
    assert heat.shape == (8, 8) and heat.max() == pytest.approx(1.0) and heat.min() >= 0


def _peaked_valid_conv_model(spatial=(20, 20)):
    """Conv 5x5 "valid" (centre weight 1, the rest 0.1, ReLU) -> max-pool-free GAP -> Dense(+1):
    a single bright input pixel gives the largest activation in the one cell whose receptive
    field is centred on it, and Grad-CAM of class 0 is that activation."""
    conv = keras.layers.Conv3D if len(spatial) == 3 else keras.layers.Conv2D
    pool = (keras.layers.GlobalAveragePooling3D if len(spatial) == 3
            else keras.layers.GlobalAveragePooling2D)
    inputs = keras.Input((*spatial, 1))
    x = conv(1, 5, padding="valid", activation="relu", use_bias=False, name="conv_v")(inputs)
    outputs = keras.layers.Dense(1, use_bias=False, name="head")(pool()(x))
    model = keras.Model(inputs, outputs, name="valid_toy")
    kernel = np.full((5,) * len(spatial) + (1, 1), 0.1, dtype="float32")
    kernel[(2,) * len(spatial)] = 1.0
    model.get_layer("conv_v").set_weights([kernel])
    model.get_layer("head").set_weights([np.ones((1, 1), dtype="float32")])
    return model


def test_valid_padding_map_peaks_where_the_input_does():
    # the conv's 16x16 cells sit at input rows/cols 2..17; a plain resize to 20x20 would put
    # cell (1, 15) at (1.4, 19) - off the pixel that lit it
    model = _peaked_valid_conv_model()
    assert explain.feature_grid(model, model.get_layer("conv_v")) == ((2.0, 1.0), (2.0, 1.0))
    x = np.zeros((20, 20, 1), dtype="float32")
    x[3, 17] = 1.0
    cam = explain.gradcam(model, x, class_index=0)
    assert cam.shape == (20, 20)
    assert np.unravel_index(np.argmax(cam), cam.shape) == (3, 17)
    # beyond the outermost cell centres (rows/cols 0-1 and 18-19) the edge value falls off
    # slightly, so the maximum of an edge cell stays at its centre
    x = np.zeros((20, 20, 1), dtype="float32")
    x[2, 2] = 1.0
    cam = explain.gradcam(model, x, class_index=0)
    assert np.unravel_index(np.argmax(cam), cam.shape) == (2, 2)
    assert 0.99 < cam[0, 0] < cam[2, 2] == 1.0


def test_valid_padding_map_peaks_where_the_input_does_in_3d():
    model = _peaked_valid_conv_model(spatial=(12, 12, 10))
    x = np.zeros((12, 12, 10, 1), dtype="float32")
    x[9, 2, 6] = 1.0
    cam = explain.gradcam(model, x, class_index=0)
    assert np.unravel_index(np.argmax(cam), cam.shape) == (9, 2, 6)
    eig = explain.eigencam(model, x, layer="conv_v")
    assert np.unravel_index(np.argmax(eig), eig.shape) == (9, 2, 6)


def test_feature_grid_follows_strides_pools_and_same_padding():
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((17, 20, 1)),
        # "same", stride 2: TF pads 17 rows with 1 before (centres 0, 2, ..), 20 cols with none
        # before (centres 1, 3, ..)
        layers.Conv2D(2, 3, strides=2, padding="same", name="c1"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling2D(2, name="p1"),
        layers.Conv2D(2, 3, padding="valid", name="c2"),
    ])
    grid = explain.feature_grid
    assert grid(model, model.get_layer("c1")) == ((0.0, 2.0), (1.0, 2.0))
    assert grid(model, model.get_layer("bn")) == grid(model, model.get_layer("c1"))
    assert grid(model, model.get_layer("p1")) == ((1.0, 4.0), (2.0, 4.0))
    assert grid(model, model.get_layer("c2")) == ((5.0, 4.0), (6.0, 4.0))


def test_feature_grid_gives_up_on_a_branching_path():
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(2, 1, name="b")(inputs)
    merged = keras.layers.Add(name="add")([a, b])
    top = keras.layers.Conv2D(2, 3, padding="same", name="top")(merged)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(top))
    assert explain.feature_grid(model, model.get_layer("top")) is None
    assert explain.gradcam(model, np.ones((8, 8, 1), "float32"), layer="top").shape == (8, 8)


def _two_channel_model(head, *, extra=()):
    """Conv 1x1 giving channels (x, 2x) -> global average -> ``head``; Dense weights set so
    that class 0 reads channel 1 only and class 1 (strongly) channel 2 only."""
    model = keras.Sequential([keras.Input((16, 16, 1)),
                              keras.layers.Conv2D(2, 1, activation="relu", name="conv_a"),
                              keras.layers.GlobalAveragePooling2D(), head, *extra])
    model.get_layer("conv_a").set_weights([np.array([[[[1.0, 2.0]]]]), np.zeros(2)])
    n = head.units
    w = np.zeros((2, n))
    w[0, 0] = 1.0
    if n > 1:
        w[1, 1] = 5.0
    head.set_weights([w, np.zeros(n)])
    return model


def test_gradcam_uses_the_score_before_the_softmax():
    x = _square()
    soft = _two_channel_model(keras.layers.Dense(3, activation="softmax", name="out"))
    linear = _two_channel_model(keras.layers.Dense(3, name="out"))
    logit_cam = explain.gradcam(soft, x, class_index=0)
    np.testing.assert_allclose(logit_cam, explain.gradcam(linear, x, class_index=0), atol=1e-6)
    np.testing.assert_allclose(logit_cam, x[..., 0], atol=1e-6)  # class 0's own channel
    # d p0 / dA = p0 (w0 - sum_j p_j w_j): class 1's strong channel outweighs class 0's here,
    # so the probability's map loses the evidence for class 0 altogether.
    assert not explain.gradcam(soft, x, class_index=0, target="probability").any()
    # the softmax is back after the call
    out = np.asarray(soft(x[None]))
    assert out.sum() == pytest.approx(1.0, abs=1e-6) and soft.get_layer("out").activation.__name__ == "softmax"


def test_gradcam_logit_through_an_activation_layer_and_a_sigmoid():
    x = _square()
    via_layer = _two_channel_model(keras.layers.Dense(3, name="out"),
                                   extra=[keras.layers.Activation("softmax", name="act")])
    linear = _two_channel_model(keras.layers.Dense(3, name="out"))
    np.testing.assert_allclose(explain.gradcam(via_layer, x, class_index=0),
                               explain.gradcam(linear, x, class_index=0), atol=1e-6)
    assert "call" not in vars(via_layer.get_layer("act"))
    sig = _two_channel_model(keras.layers.Dense(1, activation="sigmoid", name="out"))
    lin1 = _two_channel_model(keras.layers.Dense(1, name="out"))
    np.testing.assert_allclose(explain.gradcam(sig, x), explain.gradcam(lin1, x), atol=1e-6)
    assert explain.output_layer(via_layer).name == "act"


def test_gradcam_rejects_an_unknown_target():
    with pytest.raises(explain.ExplainError, match="target='prob'.*logit, probability"):
        explain.gradcam(_identity_conv_model(), _square(), target="prob")
