"""Tests of the deletion / insertion curves and their comparison with the random order."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from medrepro.analysis import faithfulness


def _key_region_score(x):
    """A 'model' whose class-0 score is the mean of the input over rows and columns 4-9."""
    s = x[:, 4:10, 4:10].reshape(len(x), -1).mean(axis=1)
    return np.stack([s, 1 - s], axis=1)


def test_pixel_order_is_highest_first_with_seeded_ties():
    m = np.array([[0.1, 0.9], [0.5, 0.5]])
    order = faithfulness.pixel_order(m, seed=0)
    assert order[0] == 1 and order[-1] == 0 and set(order[1:3]) == {2, 3}
    np.testing.assert_array_equal(order, faithfulness.pixel_order(m, seed=0))
    flat = np.zeros(50)
    assert not np.array_equal(faithfulness.pixel_order(flat, seed=0),
                              faithfulness.pixel_order(flat, seed=1))


def test_perturbed_inputs_start_and_end_where_they_should():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8, 2)).astype("float32")
    batch = faithfulness.perturbed(img, faithfulness.pixel_order(rng.random((8, 8))), steps=4)
    dele, ins = batch["deletion"], batch["insertion"]
    assert dele.shape == ins.shape == (5, 8, 8, 2)
    np.testing.assert_array_equal(dele[0], img)
    assert not dele[-1].any()
    np.testing.assert_array_equal(ins[-1], img)
    assert not np.allclose(ins[0], img)  # the blurred start
    removed = [(d == 0).all(axis=-1).sum() for d in dele]
    assert removed == [0, 16, 32, 48, 64]
    with pytest.raises(ValueError, match="order of 10 positions"):
        faithfulness.perturbed(img, np.arange(10), steps=4)


def test_a_map_on_the_key_region_beats_the_random_order():
    rng = np.random.default_rng(1)
    images = rng.random((12, 32, 32, 1)).astype("float32") * 0.1
    images[:, 4:10, 4:10] = 1.0  # the key region: bright, blurred away at the insertion start
    good = np.zeros((12, 32, 32))
    good[:, 4:10, 4:10] = 1.0
    rand = rng.random((12, 32, 32))
    c = {name: faithfulness.curves(_key_region_score, images, m, class_index=np.zeros(12, int),
                                   steps=8) for name, m in (("good", good), ("random", rand))}
    assert c["good"]["deletion"].shape == (12, 9)
    # the good map empties the key region at the first step (36 of 1,024 pixels < 1/8)
    assert np.allclose(c["good"]["deletion"][:, 1:], 0.0)
    assert np.allclose(c["good"]["insertion"][:, 1:], 1.0)
    rows = {(r["method"], r["condition"]): r
            for r in faithfulness.faithfulness_rows(c, reference="random", n_boot=200)}
    assert rows["good", "deletion"]["auc"] < rows["random", "deletion"]["auc"]
    assert rows["good", "deletion"]["beats_random"] and rows["good", "insertion"]["beats_random"]
    assert rows["good", "deletion"]["diff_vs_random_hi"] < 0
    assert rows["random", "deletion"]["beats_random"] is None
    assert rows["random", "insertion"]["diff_vs_random"] == 0.0
    with pytest.raises(ValueError, match="reference 'nope'"):
        faithfulness.faithfulness_rows(c, reference="nope")


def test_auc_is_the_trapezoid_over_the_fraction():
    np.testing.assert_allclose(faithfulness.auc(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])),
                               [1.0, 0.25])


def test_curves_reject_mismatched_maps():
    with pytest.raises(ValueError, match="channels last"):
        faithfulness.curves(_key_region_score, np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 7)),
                            class_index=[0, 0])
    with pytest.raises(ValueError, match="steps must be"):
        faithfulness.curves(_key_region_score, np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8)),
                            class_index=[0, 0], steps=0)


def test_scorer_returns_the_models_outputs_in_batches():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).random((5, 4, 4, 1)).astype("float32")
    out = faithfulness.scorer(model, batch=2)(x)
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="target='score'"):
        faithfulness.scorer(model, target="score")
