"""Tests of the one-pass evaluation of explanation maps and its table."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from medrepro.analysis import explain, sanity, xai_eval, xai_score


@pytest.fixture(scope="module")
def toy():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ], name="toy_eval")
    rng = np.random.default_rng(0)
    x = rng.random((6, 16, 16, 1)).astype("float32") * 0.2
    masks = np.zeros((6, 16, 16), dtype=bool)
    for i in range(6):
        r, c = 3 + i, 10 - i
        x[i, r:r + 3, c:c + 3] = 1.0
        masks[i, r:r + 3, c:c + 3] = True
    return model, x, masks


def _maps_of(model, x):
    return {"Grad-CAM": explain.gradcam(model, x, layer="conv2", class_index=0),
            "Eigen-CAM": explain.eigencam(model, x, layer="conv2")}


def _evaluate(toy, **kw):
    model, x, masks = toy
    maps = _maps_of(model, x)
    maps["copy of Sobel"] = xai_score.baseline_maps(x, seed=0)[xai_score.SOBEL]
    opts = {"maps_of": lambda m, xs: {**_maps_of(m, xs), "copy of Sobel": xai_score.baseline_maps(
        xs, seed=0)[xai_score.SOBEL]}, "masks": masks, "regions": None,
        "confidence": np.linspace(0.5, 1, 6), "lesion_size": masks.mean(axis=(1, 2)),
        "class_index": np.zeros(6, int), "n_sanity": 3, "n_faith": 4, "steps": 4, "n_boot": 50}
    return xai_eval.evaluate(model, x, maps, **{**opts, **kw})


def test_methods_and_baselines_are_scored_by_the_same_code(toy, monkeypatch):
    calls = []
    real = xai_score.pointing_game

    def spy(maps, masks, **kw):
        calls.append(np.asarray(maps).shape)
        return real(maps, masks, **kw)

    monkeypatch.setattr(xai_score, "pointing_game", spy)
    ev = _evaluate(toy)
    assert len(calls) == 3 + len(xai_score.BASELINES)  # one pointing game per map set
    rows = {r["method"]: r for r in ev.pointing}
    assert rows["copy of Sobel"]["role"] == "method"
    assert rows[xai_score.SOBEL]["role"] == "baseline"
    for key in ("value", "lo", "hi", "n", "chance_image"):
        assert rows["copy of Sobel"][key] == rows[xai_score.SOBEL][key]
    # a method identical to a baseline cannot beat it
    assert xai_score.SOBEL in rows["copy of Sobel"]["verdict"]


def test_the_evaluation_table_holds_every_check(toy):
    ev = _evaluate(toy, shuffled_model=toy[0], maps_by_seed={
        1: (["a", "b"], {"Grad-CAM": np.zeros((2, 16, 16)) + np.eye(16)}),
        2: (["b", "c"], {"Grad-CAM": np.zeros((2, 16, 16)) + np.eye(16)})})
    table = xai_eval.evaluation_table(ev)
    assert list(table.columns[:len(xai_eval.TABLE_COLUMNS)]) == list(xai_eval.TABLE_COLUMNS)
    checks = table["check"].unique().tolist()
    assert checks[:2] == ["pointing game", "faithfulness"]
    assert {"cascading randomisation", "shuffled labels", "pointing game by lesion size",
            "pointing game by confidence", "repeatability across seeds"} <= set(checks)
    assert ev.sizes == {"n_scored": 6, "n_sanity": 3, "n_faith": 4, "steps": 4, "n_seeds": 2,
                        "target": "probability", "n_layers": 3}
    faith = table[table["check"] == "faithfulness"]
    assert len(faith) == 2 * (3 + len(xai_score.BASELINES))
    assert faith.loc[faith["method"] == xai_score.RANDOM, "verdict"].isna().all()
    # the shuffled-label "model" here is the model itself: every method's maps survive it
    shuffled = table[(table["check"] == "shuffled labels") & table["verdict"].notna()]
    assert (shuffled["verdict"] == "FLAG: the maps survive").all()
    assert all(sanity.SHUFFLED in ev.flags[m] for m in ev.methods)
    assert ev.example["input"].shape == (16, 16, 1)
    assert set(ev.example["maps"]) == {"original", "top 1: out", sanity.FULL, sanity.SHUFFLED}
    lo, hi = table["lo"].astype(float), table["hi"].astype(float)
    ok = lo.notna() & hi.notna()
    assert (lo[ok] <= hi[ok] + 1e-12).all()
    text = xai_eval.notes(ev, what="toy")
    assert "faithfulness on 4 item(s), 4 steps" in text and "repeatability across 2 seeds" in text


def test_evaluate_rejects_maps_of_other_items(toy):
    model, x, masks = toy
    with pytest.raises(ValueError, match="6 inputs, maps of"):
        xai_eval.evaluate(model, x, {"G": np.zeros((5, 16, 16))}, maps_of=_maps_of, masks=masks,
                          regions=None, confidence=np.ones(6), lesion_size=np.ones(6),
                          class_index=np.zeros(6, int), n_sanity=2, n_faith=2, steps=2)


def test_without_masks_only_the_pointing_game_is_left_out(toy):
    ev = _evaluate(toy, masks=None)
    assert ev.games == {} and ev.pointing == [] and ev.strata == []
    assert ev.faith and ev.sanity and ev.example["mask"] is None
    table = xai_eval.evaluation_table(ev)
    assert "pointing game" not in set(table["check"])
    assert "no pointing game (no lesion masks" in xai_eval.notes(ev, what="real")


def test_no_sanity_or_faithfulness_items_leaves_those_checks_out(toy):
    ev = _evaluate(toy, n_sanity=0, n_faith=0)
    assert ev.sanity == [] and ev.faith == [] and ev.curves == {} and ev.pointing
    assert ev.sizes["n_sanity"] == ev.sizes["n_faith"] == 0
