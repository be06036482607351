"""medrepro.data.augment: Keras' transforms and ranges, drawn from (seed, step, item) alone."""

import math

import numpy as np
import pytest

from medrepro.data import augment, brain_mri, volumes
from medrepro.data.augment import Augment

RNG = np.random.default_rng(0)
X = RNG.random((4, 20, 24, 3), dtype=np.float32)


def _fixed(n, **values):
    """Draws with every transform at its identity, except ``values``."""
    import tensorflow as tf

    draws = {"flip": 0.0, "angle": 0.0, "shift_x": 0.0, "shift_y": 0.0, "zoom": 1.0,
             "contrast": 1.0, "gamma": 1.0, **values}
    return {k: tf.fill([n], float(v)) for k, v in draws.items()}


@pytest.mark.parametrize("fill_mode", augment.FILL_MODES)
def test_warp_is_tensorflows_projective_transform(fill_mode):
    import keras

    rng = np.random.default_rng(1)
    angle = rng.uniform(-1, 1, 4)
    t = np.zeros((4, 8), np.float32)
    t[:, 0], t[:, 1], t[:, 2] = 1.1 * np.cos(angle), -np.sin(angle), rng.uniform(-8, 8, 4)
    t[:, 3], t[:, 4], t[:, 5] = np.sin(angle), 0.9 * np.cos(angle), rng.uniform(-8, 8, 4)
    want = np.asarray(keras.ops.image.affine_transform(X, t, fill_mode=fill_mode))
    np.testing.assert_allclose(np.asarray(augment.warp(X, t, fill_mode=fill_mode)), want,
                               atol=1e-5)
    with pytest.raises(ValueError, match="fill_mode='wrap'"):
        augment.warp(X, t, fill_mode="wrap")


def test_each_transform_is_the_keras_layers_at_the_same_draw():
    import keras
    from keras import layers

    cases = [(layers.RandomRotation((0.03, 0.03), fill_mode="constant"),
              {"angle": 0.03 * 2 * math.pi}, "constant", ""),
             (layers.RandomRotation((0.2, 0.2)), {"angle": 0.2 * 2 * math.pi}, "reflect", ""),
             (layers.RandomZoom((0.1, 0.1), fill_mode="constant"), {"zoom": 1.1}, "constant",
              ""),
             (layers.RandomTranslation((0.05, 0.05), (-0.02, -0.02), fill_mode="constant"),
              {"shift_y": 0.05, "shift_x": -0.02}, "constant", "")]
    for layer, values, fill_mode, flip in cases:
        want = np.asarray(layer(X, training=True))
        got = augment.warp(X, augment.affine_matrix(_fixed(4, **values), height=20, width=24,
                                                    flip=flip), fill_mode=fill_mode)
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, err_msg=str(layer))
    both = augment.affine_matrix(_fixed(4, flip=1.0), height=20, width=24,
                                 flip="horizontal_and_vertical")
    np.testing.assert_allclose(np.asarray(augment.warp(X, both)), X[:, ::-1, ::-1], atol=1e-6)
    # RandomContrast((-0.3, 0.3)) draws its factor from [1.3, 1.3]
    want = keras.layers.RandomContrast((-0.3, 0.3), value_range=(0, 1))(X, training=True)
    got = Augment(contrast=(0.5, 1.0)).apply(X, _fixed(4, contrast=1.3))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    flipped = keras.layers.RandomFlip("horizontal")(X, training=True)  # some flipped, some not
    got = augment.warp(X, augment.affine_matrix(_fixed(4, flip=1.0), height=20, width=24,
                                                flip="horizontal"))
    for w, g, x in zip(np.asarray(flipped), np.asarray(got), X):
        assert np.allclose(w, x) or np.allclose(w, g, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got), X[:, :, ::-1], atol=1e-6)


def test_the_draws_stay_in_the_ranges_of_c_and_d():
    c = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=1)
    assert c == Augment(flip="horizontal", rotation=0.03, zoom=0.1, contrast=(0.3, 0.3),
                        gamma=0.4, seed=1)
    d = c.draw(0, 4000)
    assert np.abs(d["angle"]).max() <= 0.03 * 2 * math.pi and np.ptp(d["angle"]) > 0.3
    assert 0.9 <= np.min(d["zoom"]) and np.max(d["zoom"]) <= 1.1
    assert 0.45 < np.mean(d["flip"]) < 0.55
    assert 0.7 <= np.min(d["contrast"]) and np.max(d["contrast"]) <= 1.3
    assert np.abs(np.log(d["gamma"])).max() <= 0.4 + 1e-6
    v = volumes.make_augmenter(seed=1).draw(0, 4000)
    assert 0.5 <= np.min(v["contrast"]) < 0.52 and 1.98 < np.max(v["contrast"]) <= 2.0
    assert np.abs(v["angle"]).max() <= 0.2 * 2 * math.pi


def test_draws_are_a_function_of_seed_step_and_item():
    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=3)
    first = np.asarray(aug(X, step=5))
    np.testing.assert_array_equal(first, np.asarray(aug(X, step=5)))  # no state: repeats
    assert not np.allclose(first, np.asarray(aug(X, step=6)))  # the next step draws anew
    other = Augment(**{**aug.options(), "contrast": (0.3, 0.3), "seed": 4})
    assert not np.allclose(first, np.asarray(other(X, step=5)))
    assert not np.allclose(first[0], first[1])  # each image its own draw
    assert first.min() >= 0 and first.max() <= 1
    # replica r of R holds rows r*B..(r+1)*B of the global batch: the same items, the same draws
    global_batch = np.asarray(aug(np.concatenate([X, X[::-1]]), step=7))
    np.testing.assert_allclose(np.asarray(aug(X[::-1], step=7, replica=1, replicas=2)),
                               global_batch[4:], atol=1e-6)
    np.testing.assert_allclose(np.asarray(aug(X, step=7, replica=0, replicas=2)),
                               global_batch[:4], atol=1e-6)


def test_a_volume_gets_one_transform_for_all_its_slices():
    base = RNG.random((16, 16), dtype=np.float32)
    base[2:6, 3:9] = 1.0
    vol = np.repeat(base[:, :, None], 6, axis=2)  # every slice identical
    aug = volumes.make_augmenter(seed=3)
    out = np.asarray(aug(np.stack([vol] * 4)[..., None], step=0))[..., 0]  # (4, 16, 16, 6)
    for v in out:
        np.testing.assert_allclose(v, np.repeat(v[:, :, :1], 6, axis=2), atol=1e-6)
    assert max(np.abs(v - vol).max() for v in out) > 0.1 and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(volumes.augment_volume(vol, aug, step=2),
                                  np.asarray(aug(vol[None, ..., None], step=2))[0, ..., 0])


def test_it_compiles_with_xla():
    import tensorflow as tf

    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=3)
    draws = aug.draw(5, 4)
    jitted = tf.function(lambda x, d: aug.apply(x, d), jit_compile=True)
    np.testing.assert_allclose(np.asarray(jitted(X, draws)), np.asarray(aug.apply(X, draws)),
                               atol=1e-5)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="flip='diagonal'"):
        Augment(flip="diagonal")
    with pytest.raises(ValueError, match="fill_mode='wrap'"):
        Augment(fill_mode="wrap")
    with pytest.raises(ValueError, match="rotation must be >= 0, got -0.1"):
        Augment(rotation=-0.1)
    with pytest.raises(ValueError, match="zoom < 1"):
        Augment(zoom=1.5)
    assert brain_mri.augmenter() is None
