"""Tests of the sanity checks: cascading randomisation, map similarity, flags, seed repeatability."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from medrepro.analysis import explain, sanity


def _toy_cnn(seed=0, size=16):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(4, 3, padding="same", name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.Activation("relu", name="relu1"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ], name="toy")


def _blobs(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1)).astype("float32") * 0.2
    for i in range(n):
        r, c = rng.integers(3, size - 5, 2)
        x[i, r:r + 3, c:c + 3] = 1.0
    return x


def test_stages_keep_a_convolution_with_its_batchnorm():
    names = [[layer.name for layer in s] for s in sanity.stages(_toy_cnn())]
    assert names == [["conv1", "bn1"], ["conv2"], ["out"]]


def test_cascade_randomises_from_the_output_down_and_leaves_the_model_alone():
    model = _toy_cnn()
    before = [w.copy() for w in model.get_weights()]
    seen = []
    for name, copy in sanity.cascade(model, seed=1):
        seen.append(name)
        changed = {layer.name: not all(np.array_equal(a, b) for a, b in zip(
            layer.get_weights(), model.get_layer(layer.name).get_weights()))
            for layer in sanity.weighted_layers(copy)}
        if name == "out":
            assert changed == {"conv1": False, "bn1": False, "conv2": False, "out": True}
    assert seen == ["out", "conv2", "conv1+bn1"]
    # every kernel of the last copy is new; the original model is untouched
    assert not np.array_equal(copy.get_layer("conv1").get_weights()[0], before[0])
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_randomised_models_maps_differ():
    model = _toy_cnn()
    x = _blobs()
    original = explain.gradcam(model, x, layer="conv2")
    *_, (_, copy) = sanity.cascade(model, seed=2)
    randomised = explain.gradcam(copy, x, layer="conv2")
    assert not np.allclose(original, randomised, atol=1e-3)
    sims = sanity.similarities({"Grad-CAM": original}, {"Grad-CAM": randomised})["Grad-CAM"]
    assert sims["ssim"].shape == (3,) and (sims["ssim"] < 0.99).all()


def test_reinitialise_uses_the_layers_own_initializer_else_shuffles():
    layer = keras.layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros")
    layer.build((None, 2))
    layer.set_weights([np.full((2, 3), 7.0, "float32"), np.full(3, 5.0, "float32")])
    sanity.reinitialise(layer, seed=0)
    np.testing.assert_array_equal(layer.get_weights()[0], np.ones((2, 3)))
    np.testing.assert_array_equal(layer.get_weights()[1], np.zeros(3))

    class NoInit(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(6,), initializer="zeros", name="w")

    odd = NoInit()
    odd.build((None, 1))
    odd.w.assign(np.arange(6, dtype="float32"))
    sanity.reinitialise(odd, seed=0)
    values = np.asarray(odd.w)
    assert sorted(values.tolist()) == list(range(6)) and values.tolist() != list(range(6))


def test_map_similarity_ranks_and_structure():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    same = sanity.map_similarity(a, a)
    assert same["spearman"] == pytest.approx(1.0) and same["ssim"] == pytest.approx(1.0)
    assert sanity.map_similarity(a, 1 - a)["spearman"] == pytest.approx(-1.0)
    flat = sanity.map_similarity(a, np.zeros_like(a))
    assert np.isnan(flat["spearman"]) and np.isfinite(flat["ssim"])
    vol = sanity.map_similarity(rng.random((8, 8, 8)), rng.random((8, 8, 8)))
    assert abs(vol["spearman"]) < 0.2
    with pytest.raises(ValueError, match="shapes"):
        sanity.map_similarity(a, a[:8])


def test_similarity_rows_flag_the_maps_that_survive():
    rng = np.random.default_rng(1)
    orig = rng.random((5, 12, 12))
    sims = sanity.similarities({"kept": orig, "lost": orig},
                               {"kept": orig + 0.01 * rng.random((5, 12, 12)),
                                "lost": rng.random((5, 12, 12))})
    rows = {r["method"]: r for r in sanity.similarity_rows(sims, check="c", condition=sanity.FULL,
                                                           n_boot=100)}
    assert rows["kept"]["survives"] and not rows["lost"]["survives"]
    assert rows["kept"]["spearman_lo"] <= rows["kept"]["spearman"] <= rows["kept"]["spearman_hi"]
    assert rows["lost"]["n"] == 5 and rows["lost"]["n_constant"] == 0
    shuffled = [{**rows["lost"], "condition": sanity.SHUFFLED, "survives": True}]
    step = [{**rows["kept"], "condition": "top 1: out"}]  # surviving one step is not a flag
    assert sanity.flags([rows["kept"], rows["lost"]] + shuffled + step) == {
        "kept": [sanity.FULL], "lost": [sanity.SHUFFLED]}


def test_cascade_rows_compare_every_step_and_keep_the_first_and_last_maps():
    model = _toy_cnn()
    x = _blobs()

    def maps_of(m):
        return {"Grad-CAM": explain.gradcam(m, x, layer="conv2", class_index=0),
                "Eigen-CAM": explain.eigencam(m, x, layer="conv2")}

    rows, kept = sanity.cascade_rows(model, maps_of, maps_of(model), n_boot=50)
    steps = sorted({(r["step"], r["condition"]) for r in rows if r["condition"] != sanity.FULL})
    assert steps == [(1, "top 1: out"), (2, "top 2: conv2"), (3, "top 3: conv1+bn1")]
    full = {r["method"]: r for r in rows if r["condition"] == sanity.FULL}
    assert set(full) == {"Grad-CAM", "Eigen-CAM"} and all(r["step"] == 3 for r in full.values())
    # Eigen-CAM of conv2 does not depend on the output layer: it survives step 1 exactly
    first = {r["method"]: r for r in rows if r["step"] == 1 and r["condition"] != sanity.FULL}
    assert first["Eigen-CAM"]["ssim"] == pytest.approx(1.0)
    assert set(kept) == {"top 1: out", sanity.FULL}


def test_seed_repeatability_on_the_shared_items():
    rng = np.random.default_rng(2)
    m = rng.random((4, 10, 10))
    by_seed = {1: (["a", "b", "c", "d"], {"G": m}),
               2: (["d", "x", "b"], {"G": np.stack([m[3], rng.random((10, 10)), m[1]])})}
    rows = sanity.seed_repeatability(by_seed, n_boot=50)
    assert len(rows) == 1 and rows[0]["condition"] == "seed 1 vs seed 2"
    assert rows[0]["n"] == 2 and rows[0]["spearman"] == pytest.approx(1.0)
    assert rows[0]["survives"] is None
    assert sanity.seed_repeatability({1: by_seed[1]}) == []


def test_maps_stored_per_seed_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sanity, "MAX_STORED", 3)
    maps = {"Grad-CAM": np.random.default_rng(0).random((4, 6, 6)).astype("float32")}
    sanity.save_maps(tmp_path / "s" / sanity.MAPS_FILE, ["a", "b", "c", "d"], maps)
    keys, back = sanity.read_maps(tmp_path / "s" / sanity.MAPS_FILE)
    assert keys == ["a", "b", "c"] and back["Grad-CAM"].shape == (3, 6, 6)
    np.testing.assert_allclose(back["Grad-CAM"], maps["Grad-CAM"][:3], atol=1e-3)
