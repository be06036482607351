import dataclasses
import types

import keras
import numpy as np
import pandas as pd
import pytest
from medrepro.core import manifest, profiles
from medrepro.studies import a
from medrepro.studies.mri_common import ImageSplit
from PIL import Image


def test_train_head_knows_the_tanh_variant(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 1, 16)).astype("float32"), np.arange(8) % 4
    model, hist = a.train_head("lstm_tanh", x, y, x, y, epochs=1, batch_size=4,
                               learning_rate=1e-3, run_dir=tmp_path, verbose=0)
    assert model.get_layer("lstm").cell.activation is keras.activations.tanh and len(hist) == 1
    assert a.predict_head(model, x).shape == (8,)
    with pytest.raises(ValueError, match="kind='gru': expected one of lstm, lstm_tanh"):
        a.train_head("gru", x, y, x, y, epochs=1, batch_size=4, learning_rate=1e-3,
                     run_dir=tmp_path)


def test_features_fall_back_to_random_init_with_a_warning_and_are_cached(offline, tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i, mode in enumerate(["RGB", "L", "RGB"]):
        f = tmp_path / f"img {i}.jpg"
        shape = (40, 48, 3) if mode == "RGB" else (40, 48)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(f)
        files.append(f)
    with pytest.warns(RuntimeWarning, match="FALLING BACK TO A RANDOMLY INITIALISED"):
        first = a.resnet50_features(files, cache_dir=tmp_path / "cache", root=tmp_path,
                                    image_size=32, batch_size=2)
    assert first.weights == "random" and not first.cached
    assert first.x.shape == (3, 1, 2048) and first.x.dtype == np.float16
    assert np.isfinite(first.x.astype(np.float32)).all()
    assert first.path.is_file() and first.path.with_suffix(".json").is_file()
    with pytest.warns(RuntimeWarning, match="RANDOMLY INITIALISED"):
        again = a.resnet50_features(files, cache_dir=tmp_path / "cache", root=tmp_path,
                                    image_size=32)
    assert again.cached and again.path == first.path
    np.testing.assert_array_equal(again.x, first.x)
    assert "RANDOMLY INITIALISED" in a.weights_note(first)
    assert a.describe_features(again).endswith(f"cached -> {first.path.name}")


def test_scale_features_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = (5.0 + rng.normal(size=(20, 1, 6))).astype(np.float16)
    test = (5.0 + rng.normal(size=(4, 1, 6))).astype(np.float16)
    tr, te = a.scale_features(train, test)
    assert tr.dtype == np.float32 and te.shape == (4, 1, 6)
    np.testing.assert_allclose(tr.mean(axis=0), 0.0, atol=1e-5)
    assert tr.std() == pytest.approx(1.0, rel=1e-5)
    centred = train.astype(np.float32) - train.astype(np.float32).mean(axis=0)
    np.testing.assert_allclose(te, (test.astype(np.float32) - train.astype(np.float32).mean(axis=0))
                               / centred.std(), rtol=1e-5)


def _split(n=12):
    images = pd.DataFrame({"path": [f"/x/{i}.jpg" for i in range(n)], "label": np.arange(n) % 4})
    ds = types.SimpleNamespace(source="phantom", label="Sartaj (phantom)", dataset_id="d")
    return ImageSplit(ds, images, images.iloc[:8], images.iloc[8:], images.iloc[:6],
                      images.iloc[6:8])


def test_inputs_take_each_part_by_image_row():
    data = _split()
    x = np.arange(12, dtype=np.float16).reshape(12, 1, 1) * 10
    feats = a.FeatureSet(x, "random", None, False)
    inp = a.inputs(feats, data)
    assert inp.x_fit.shape == (6, 1, 1) and inp.x_test.shape == (4, 1, 1)
    np.testing.assert_array_equal(inp.y_test, [0, 1, 2, 3])
    # the test rows are images 8..11, scaled with the fit rows' (0..5) statistics
    x32 = x.astype(np.float32).ravel()
    mean, std = x32[:6].mean(), (x32[:6] - x32[:6].mean()).std()
    np.testing.assert_allclose(inp.x_test.ravel(), (x32[8:] - mean) / std, rtol=1e-5)


def test_table3_appends_our_row_to_the_papers():
    feats = a.FeatureSet(np.zeros((1, 1, 1)), "random", None, False)
    table = a.table3(_split(), feats, {"accuracy": 0.5}, "note", profile="smoke")
    assert table["study"].iloc[-1] == "This reproduction (smoke profile)"
    paper = manifest.reported_frame("A.table3")
    assert len(table) == len(paper) + 1
    last = table.iloc[-1]
    assert last["accuracy"] == 50.0 and "12 images used" in last["dataset"]
    assert "4 test images" in last["dataset"] and last["source"] == "reproduced: phantom, note"
    assert (table["source"].iloc[:-1] == "paper (static)").all()


def test_mcnemar_table_counts_the_discordant_items():
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    lstm = y.copy()
    std = y.copy()
    std[:3] = 3  # the standard head is wrong on three items the LSTM gets right
    table = a.mcnemar_table(y, lstm, std, n_boot=50, seed=0)
    row = table.iloc[0]
    assert (row["n01"], row["n10"]) == (0, 3)
    assert row["accuracy_a"] == 1.0 and row["accuracy_b"] == pytest.approx(5 / 8)
    assert row["acc_diff"] == pytest.approx(3 / 8)
    assert row["acc_diff_lo"] <= row["acc_diff"] <= row["acc_diff_hi"]


def test_splits_table_has_two_rows_per_model_and_split():
    data = _split()
    preds = {a.LSTM: data.y_test, a.STANDARD: np.zeros(4, dtype=int)}
    table = a.splits_table(data, preds, data, {a.STANDARD: data.y_test}, [], n_boot=20, seed=0)
    assert len(table) == 6
    assert list(table["split"].unique()) == [a.PAPER_SPLIT, a.OFFICIAL_SPLIT]
    lstm = table[(table["model"] == a.LSTM) & (table["test set"] == "all")].iloc[0]
    assert lstm["accuracy"] == 1.0 and lstm["n_test"] == 4


def test_train_official_trains_both_heads_when_the_profile_says_so(tmp_path):
    settings = dataclasses.replace(profiles.settings("A", "smoke"), official_lstm=True, epochs=1,
                                   batch=4, lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 1, 16)).astype("float32")
    y = np.arange(8) % 4
    inputs = a.Inputs(x, x, x[:4], y, y, y[:4])
    preds = a.train_official(settings, inputs, tmp_path, seed=0)
    assert list(preds) == [a.LSTM, a.STANDARD]
    assert all(p.shape == (4,) for p in preds.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A_lstm_official",
                                                          "A_standard_official"]
    no_lstm = dataclasses.replace(settings, official_lstm=False)
    assert list(a.train_official(no_lstm, inputs, tmp_path, seed=0)) == [a.STANDARD]
