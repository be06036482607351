"""medrepro.studies.d: study D's scenarios, their training set-up, scores and tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from medrepro.core import profiles
from medrepro.models import chest_ct
from medrepro.studies import d


def test_scenarios_match_every_profile():
    assert list(d.SCENARIOS) == ["aug_5", "aug_10", "aug_15", "aug_25", "noaug_5", "lung_25"]
    assert [s.augment for s in d.SCENARIOS.values()] == [True] * 4 + [False, True]
    assert [s.lung_only for s in d.SCENARIOS.values()] == [False] * 5 + [True]
    for name in profiles.PROFILE_NAMES:
        s = profiles.settings("D", name)
        assert set(s.epochs) == set(d.SCENARIOS)
        assert all(chest_ct.min_side_ok(n) for n in s.volume_shape)
    paper = profiles.settings("D", "paper").epochs
    assert {k: v.paper_epochs for k, v in d.SCENARIOS.items()} == dict(paper)


def test_binary_scores_against_a_hand_count():
    # Appendix A of the thesis: CM [[10 10] [5 15]] → precision 60%, recall 75%, F1 66.67%.
    y = np.array([0] * 20 + [1] * 20)
    prob = np.array([0.2] * 10 + [0.8] * 10 + [0.3] * 5 + [0.9] * 15)
    s = d.binary_scores(y, prob)
    assert s["accuracy"] == pytest.approx(25 / 40)
    assert s["precision"] == pytest.approx(0.6) and s["recall"] == pytest.approx(0.75)
    assert s["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert s["mse"] == pytest.approx(np.mean((prob - y) ** 2))


def test_binary_scores_undefined_precision_is_zero():
    s = d.binary_scores([1, 1, 0], [0.1, 0.2, 0.3])
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["f1"] == 0.0


def test_train_scenario_checkpoints_on_val_loss_and_stops_on_val_accuracy(monkeypatch, tmp_path):
    import pandas as pd
    from medrepro.training import train as training

    seen = {}

    def fake_fit(model, train_ds, val_ds, config, **kwargs):
        seen.update(kwargs, recipe=config)
        return pd.DataFrame({"epoch": [1], "loss": [0.7], "val_loss": [0.7]})

    monkeypatch.setattr(training, "fit", fake_fit)
    x = np.zeros((2, 48, 48, 48), dtype=np.float32)
    y = np.array([0, 1])
    recipe = d.Recipe(epochs={"aug_5": 5, "aug_25": 25}, batch=2, patience=15)
    res = d.train_scenario("aug_5", (x, y), (x, y), recipe, tmp_path)
    fit = seen["recipe"]
    assert fit.epochs == 5 and fit.monitor == "val_loss" and fit.restore_best_weights is True
    assert fit.patience is None  # not on the checkpoint's monitor
    (stop,) = seen["callbacks"]
    assert type(stop).__name__ == "EarlyStopping"
    assert (stop.monitor, stop.patience) == ("val_accuracy", 15)
    assert len(res.history) == 1
    # the run's configuration (train.fit_once) names the BatchNorm momentum and the data
    import json

    config = json.loads((tmp_path / "config.json").read_text())["config"]
    assert config["bn_momentum"] == [recipe.bn_momentum] == [chest_ct.BN_MOMENTUM] == [0.99]
    assert d.Recipe.of(profiles.settings("D", "demo"), seed=1).bn_momentum == 0.9  # reduced
    assert config["data"] == d.data_digest((x, y), (x, y))
    assert d.data_digest((x + 1, y), (x, y)) != config["data"]


def _fake_scores(pred):
    y = np.array([0] * 20 + [1] * 20)
    return {"y": y, "pred": np.asarray(pred), "prob": np.asarray(pred, dtype=float),
            **d.binary_scores(y, np.asarray(pred, dtype=float))}


def test_performance_table_from_the_appendix_matrix_with_cis():
    import pandas as pd

    pred = [0] * 10 + [1] * 10 + [0] * 5 + [1] * 15  # appendix A, 5 epochs: [[10 10] [5 15]]
    res = d.ScenarioResult(scenario=d.SCENARIOS["aug_5"], epochs=5,
                                history=pd.DataFrame({"epoch": range(1, 6)}), model=None,
                                weights=[], seconds=1.0)
    t = d.performance_table({"aug_5": {"val": _fake_scores(pred)}}, {"aug_5": res},
                                 n_boot=200, seed=0).iloc[0]
    assert t["n_eval"] == 40
    assert t["val_acc"] == pytest.approx(62.5) and t["reported_val_acc"] == 57.5
    assert (t["precision"], t["recall"]) == (pytest.approx(60.0), pytest.approx(75.0))
    assert t["f1"] == pytest.approx(66.667, abs=1e-3) and t["reported_f1"] == 66.67
    for m in ("val_acc", "precision", "recall", "f1"):
        assert t[f"{m}_lo"] < t[m] < t[f"{m}_hi"]
    held = d.heldout_table({"aug_5": {"val": _fake_scores(pred), "test": _fake_scores(pred)}},
                                {"aug_5": res}, n_boot=50)
    assert list(held["split"]) == ["val", "test"] and held["accuracy"].iloc[1] == pytest.approx(62.5)


def test_binary_scores_agree_with_the_original_hand_formulas():
    # The pre-refactor binary_scores counted TP/FP/FN itself; the evaluate-based one must give
    # the same floats bit for bit (the study's tables are compared byte for byte).
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, size=37)
        prob = rng.random(37).astype(np.float32)
        pred = (prob.astype(np.float64) >= 0.5)
        tp = float(np.sum(pred & (y == 1)))
        fp = float(np.sum(pred & (y == 0)))
        fn = float(np.sum(~pred & (y == 1)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        s = d.binary_scores(y, prob)
        assert (s["precision"], s["recall"], s["f1"]) == (precision, recall, f1)
        assert s["accuracy"] == float(np.mean(pred == y))


def test_best_scenario_breaks_ties_by_scenario_order():
    scores = {k: {"val": {"accuracy": a}} for k, a in
              (("lung_25", 0.7), ("aug_10", 0.7), ("aug_5", 0.6))}
    assert d.best_scenario(scores) == "aug_10"


def test_scenario_splits_replace_slices_only_for_the_lung_only_scenario():
    x = np.random.default_rng(0).random((2, 48, 48, 64)).astype(np.float32)
    splits = {"train": (x, np.array([0, 1]))}
    assert d.scenario_splits(d.SCENARIOS["aug_25"], splits) is splits
    lung = d.scenario_splits(d.SCENARIOS["lung_25"], splits)["train"][0]
    assert lung.shape == x.shape and not np.array_equal(lung, x)
    np.testing.assert_array_equal(lung[..., 12:56], x[..., 12:56])  # the lung slices stay


def test_eval_split_and_split_listing(capsys):
    x = np.zeros((3, 48, 48, 48), np.float32)
    splits = {"train": (x, np.array([0, 1, 1])), "val": (x[:1], np.array([1]))}
    assert d.eval_split(splits) == "val"
    assert d.eval_split({**splits, "test": splits["val"]}) == "test"
    d.print_splits(splits)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("train x (3, 48, 48, 48) float32") and out[0].endswith("2 / 3")
    assert out[1].endswith("abnormal 1 / 1")


def test_cache_frames_list_skips_only_when_there_are_some(tmp_path):
    from medrepro.data import volumes

    cache = volumes.CacheSummary(folder=tmp_path, shape=(48, 48, 48), built=2)
    assert len(d.cache_frames(cache)) == 1
    cache.skipped.append(("bad.nii.gz", "truncated"))
    frames = d.cache_frames(cache)
    assert len(frames) == 2 and list(frames[1]["reason"]) == ["truncated"]


def test_train_variant_puts_the_heldout_runs_in_their_own_folder(monkeypatch, tmp_path):
    from medrepro.studies.d import training

    seen = {}
    monkeypatch.setattr(training, "run_scenarios",
                        lambda splits, recipe, root: seen.update(recipe=recipe, root=root) or {})
    monkeypatch.setattr(training, "evaluate_scenarios", lambda results, splits, **kw: {})
    settings = dataclasses.replace(profiles.settings("D", "smoke"), epochs={"aug_5": 1},
                                   heldout_epochs={"aug_25": 2})
    d.train_variant(settings, {}, tmp_path, seed=7)
    recipe = seen["recipe"]
    assert seen["root"] == tmp_path and recipe.epochs == {"aug_5": 1} and recipe.seed == 7
    assert (recipe.batch, recipe.patience) == (settings.batch, settings.patience)
    res = d.train_variant(settings, {}, tmp_path, seed=7, heldout=True)
    assert seen["root"] == tmp_path / "heldout" and seen["recipe"].epochs == {"aug_25": 2}
    assert res.splits == {} and res.results == {} and res.scores == {}


def test_lesion_masks_follow_the_volumes_preprocessing(tmp_path):
    from medrepro.data import phantoms, volumes

    root = phantoms.make_mosmed(tmp_path / "mosmed", n_per_class=1, seed=4, size=48)
    key = "CT-23/study_0939.nii.gz"
    drawn = phantoms.lesion_masks(root)[key]
    shape = (32, 32, 24)
    vol = volumes.process_scan(root / key, shape=shape)  # what the model sees, (H, W, D)
    lesion = d.preprocess_mask(drawn["lesion"], shape=shape, lung_only=False)
    lungs = d.preprocess_mask(drawn["region"], shape=shape, lung_only=False)
    assert lesion.shape == shape and lesion.any()

    def agreement(les, lu):  # lesion voxels at GGO/consolidation HU; lung voxels aerated
        band = (vol[les] > (-720 + 1000) / 1400) & (vol[les] < (40 + 1000) / 1400)
        return band.mean(), (vol[lu & ~les] < (-720 + 1000) / 1400).mean()

    right = agreement(lesion, lungs)
    assert min(right) > 0.6
    for turn in (-1, 2):  # not rotated (90° off) and rotated the wrong way (180° off)
        wrong = agreement(*[volumes.resize_volume(np.rot90(m.astype(np.float32), turn,
                                                           axes=(0, 1)), shape) >= 0.5
                            for m in (drawn["lesion"], drawn["region"])])
        # turned masks agree with the volume far worse than the preprocessed ones; turned 180°
        # (the chest is nearly symmetric) lung lands on lung and lesions covering 20-60 % of it
        # partly on lesions, so only the 90° turn lands clearly off the findings
        assert sum(wrong) < sum(right) - 0.4, (turn, wrong, right)
        if turn == -1:
            assert max(wrong) < 0.5, wrong
    lung_only = d.preprocess_mask(drawn["lesion"], shape=shape, lung_only=True)
    assert np.array_equal(lung_only, volumes.lung_only(lesion))


def test_xai_score_without_masks_says_not_scored(tmp_path):
    import types

    import matplotlib.pyplot as plt

    res = types.SimpleNamespace(results={"aug_5": types.SimpleNamespace(
        scenario=d.SCENARIOS["aug_5"])})
    ds = types.SimpleNamespace(root=tmp_path, label="mosmed (real)")
    score = d.score_gradcam(res, None, ds, "aug_5", split="val", n_boot=10, seed=0)
    table = d.xai_score_table(score)
    assert table["status"].tolist() == ["not scored: mosmed (real) has no lesion masks"] * 2
    plt.close(d.xai_score_figure(score))


def test_nested_plan_trains_the_longest_scenario_of_each_kind():
    demo = {"aug_5": 3, "aug_10": 4, "aug_15": 5, "aug_25": 6, "noaug_5": 3, "lung_25": 6}
    assert d.nested_plan(demo) == {"aug_25": ["aug_5", "aug_10", "aug_15"], "noaug_5": [],
                                   "lung_25": []}
    # the longest by epochs, whatever its name; a tie trains the later one
    assert d.nested_plan({"aug_5": 4, "aug_10": 2}) == {"aug_5": ["aug_10"]}
    assert d.nested_plan({"aug_5": 2, "aug_10": 2}) == {"aug_10": ["aug_5"]}
    assert d.nested_plan({"lung_25": 1}) == {"lung_25": []}


def test_run_scenarios_trains_the_long_run_once_and_reuses_its_snapshots(monkeypatch, tmp_path):
    import shutil

    from medrepro.training import train as training

    calls = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit",
                        lambda *a, **kw: calls.append(a[3].epochs) or real_fit(*a, **kw))
    rng = np.random.default_rng(1)
    x = rng.random((4, 48, 48, 48), dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    splits = {"train": (x, y), "val": (x[:2], y[:2])}
    recipe = d.Recipe(epochs={"aug_5": 1, "aug_25": 2}, batch=2, patience=15, verbose=0)
    res = d.run_scenarios(splits, recipe, tmp_path)
    assert calls == [2] and list(res) == ["aug_5", "aug_25"]
    assert res["aug_5"].nested_in == "aug_25" and res["aug_25"].nested_in is None
    assert list(res["aug_5"].history["epoch"]) == [1]
    np.testing.assert_allclose(res["aug_5"].history["val_loss"],
                               res["aug_25"].history["val_loss"].iloc[:1])
    # a re-run trains nothing; a lost snapshot is trained on its own
    d.run_scenarios(splits, recipe, tmp_path)
    assert calls == [2]
    shutil.rmtree(tmp_path / "aug_5")
    again = d.run_scenarios(splits, recipe, tmp_path)
    assert calls == [2, 1] and again["aug_5"].nested_in is None


def test_xai_score_table_puts_the_best_model_first_then_every_other_scenario():
    from medrepro.analysis import xai_score

    masks = np.zeros((3, 16, 16, 8), dtype=bool)
    masks[:, 2:5, 2:5, 2:5] = True
    on, off = np.zeros(masks.shape, np.float32), np.zeros(masks.shape, np.float32)
    on[:, 3, 3, 3], off[:, 12, 12, 6] = 1.0, 1.0  # maxima inside / far outside the lesions

    def scored(key, cams, correct):
        return d.XaiScore(label="mosmed (phantom)", status=d.SCORED, key=key, split="val",
                          n_candidates=int(np.sum(correct)), volumes=np.zeros(masks.shape),
                          masks=masks, lungs=np.ones(masks.shape, bool), cams=cams,
                          game=xai_score.pointing_game(cams, masks, regions=np.ones(masks.shape)),
                          correct=np.asarray(correct), names=("a", "b", "c"), n_boot=50)

    scores = {"aug_5": scored("aug_5", off, [True, True, False]),
              "aug_10": scored("aug_10", on, [True, False, False]),
              "lung_25": scored("lung_25", on, [True, True, True])}
    table = d.xai_score_table(scores, best="aug_10")
    assert table["scenario"].tolist() == ["aug_10", "aug_10", "aug_5", "lung_25"]
    assert table["model"].tolist() == ["best", "best", "other scenario", "other scenario"]
    # the best model's correct volumes, then all of its volumes; the others' correct ones only
    assert table["n_scored"].tolist() == [1, 3, 2, 3]
    assert table["hit_rate"].tolist() == [1.0, 1.0, 0.0, 1.0]
    # one score alone: the two rows of that model
    assert d.xai_score_table(scores["aug_5"])["scenario"].tolist() == ["aug_5", "aug_5"]
    with pytest.raises(ValueError, match="best scenario 'aug_15'"):
        d.xai_score_table(scores, best="aug_15")


def _scored_volumes(model):
    from medrepro.analysis import explain, xai_score
    from medrepro.models.chest_ct import GRADCAM_LAYER

    rng = np.random.default_rng(0)
    vols = rng.random((3, 48, 48, 48), dtype=np.float32) * 0.3
    masks = np.zeros(vols.shape, dtype=bool)
    for i in range(3):
        masks[i, 10 + 8 * i:18 + 8 * i, 20:28, 20:28] = True
    vols[masks] = 0.9
    lungs = np.ones(vols.shape, dtype=bool)
    cams = explain.gradcam(model, vols[..., None], layer=GRADCAM_LAYER)
    return d.XaiScore(label="mosmed (phantom)", status=d.SCORED, key="aug_5", split="val",
                      n_candidates=2, volumes=vols, masks=masks, lungs=lungs, cams=cams,
                      game=xai_score.pointing_game(cams, masks, regions=lungs),
                      correct=np.array([True, True, False]), names=("a", "b", "c"), n_boot=50)


def test_evaluate_gradcam_scores_the_3d_maps_against_the_baselines(tmp_path):
    import types

    import matplotlib.pyplot as plt
    from medrepro.analysis import xai_eval, xai_score
    from medrepro.core import profiles
    from medrepro.models.chest_ct import cnn3d

    model = cnn3d((48, 48, 48, 1))
    score = _scored_volumes(model)
    res = types.SimpleNamespace(results={"aug_5": types.SimpleNamespace(
        restore=lambda: model, scenario=d.SCENARIOS["aug_5"])}, splits={})
    settings = dataclasses.replace(profiles.settings("D", "smoke"), n_boot=50, xai_steps=3)
    ev = d.evaluate_gradcam(score, res, settings=settings, shuffled_model=cnn3d((48, 48, 48, 1)),
                            runs=tmp_path / "smoke-phantom-seed42", seed=0)
    table = xai_eval.evaluation_table(ev)
    pointing = table[table["check"] == xai_eval.POINTING].set_index("method")
    assert set(pointing.index) == {d.xai.METHOD, *xai_score.BASELINES}
    assert (pointing["n"] == 3).all()  # every abnormal volume, whatever the prediction
    assert pointing.loc[xai_score.BRIGHTEST, "value"] == 1.0  # the lesions are the brightest
    assert {"faithfulness", "cascading randomisation", "shuffled labels"} <= set(table["check"])
    assert ev.sizes["n_sanity"] == settings.xai_sanity and ev.sizes["steps"] == 3
    assert "best model (aug_5)" in d.xai_eval_notes(ev, score)
    plt.close(d.xai_eval_figure(ev, score))


def test_train_shuffled_permutes_the_labels_of_the_training_volumes(monkeypatch, tmp_path):
    import types

    from medrepro.core import profiles
    from medrepro.studies.d import training

    seen = {}
    monkeypatch.setattr(training, "train_scenario", lambda key, train, val, recipe, run_dir:
                        seen.update(key=key, y=train[1], recipe=recipe, run_dir=run_dir) or
                        types.SimpleNamespace(model="m"))
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    splits = {"train": (np.zeros((8, 1)), y), "val": (np.zeros((2, 1)), y[:2])}
    settings = dataclasses.replace(profiles.settings("D", "demo"), shuffled_epochs=None)
    assert d.train_shuffled(settings, splits, tmp_path, seed=1) == "m"
    assert seen["key"] == "noaug_5" and not d.SCENARIOS[seen["key"]].augment
    assert sorted(seen["y"]) == sorted(y) and not np.array_equal(seen["y"], y)
    assert seen["recipe"].epochs == {"noaug_5": 25}  # the longest scenario's
    assert seen["recipe"].patience > 25 and seen["run_dir"] == tmp_path / d.xai.SHUFFLED_RUN


def test_failure_source_browses_the_heldout_test_volumes_with_their_gradcam(monkeypatch):
    import types

    import matplotlib.pyplot as plt
    import pandas as pd
    from medrepro.analysis import explain
    from medrepro.models.chest_ct import GRADCAM_LAYER, cnn3d
    from medrepro.reporting import explorer, xai_plots
    from medrepro.studies.d import failures

    model = cnn3d((48, 48, 48, 1))
    x = _scored_volumes(model).volumes  # (3, 48, 48, 48), a bright lesion each
    heldout = {"train": (x, np.array([0, 1, 1])), "test": (x, np.array([0, 0, 1]))}
    restored = []
    variant = d.VariantResult(heldout, {"aug_25": types.SimpleNamespace(
        scenario=d.SCENARIOS["aug_25"], restore=lambda: restored.append(1) or model)},
        {"aug_25": {"test": {"prob": np.array([0.9, 0.2, 0.55])}}})
    data = types.SimpleNamespace(splits={}, heldout_splits=heldout)
    seen = {}
    monkeypatch.setattr(failures, "split_scans", lambda data, split, heldout: seen.update(
        split=split, heldout=heldout) or pd.DataFrame({"name": ["n0", "n1", "a2"]}))
    source = d.failure_source(variant, data, types.SimpleNamespace(label="mosmed (phantom)"))
    assert seen == {"split": "test", "heldout": True} and source.volume
    assert source.cases["pred_label"].tolist() == ["abnormal", "normal", "abnormal"]
    assert source.cases["confidence"].tolist() == pytest.approx([0.9, 0.8, 0.55])
    assert "70/20/10 variant" in source.title
    cam = explain.gradcam(model, x[0][..., None], layer=GRADCAM_LAYER)
    np.testing.assert_allclose(source.maps(0)[d.xai.METHOD], cam, atol=1e-6)
    assert restored  # the scenario's own weights put back first (the model is shared)
    k = xai_plots.volume_slice(x[0], cam)
    fig = explorer.gallery(source, n_wrong=1, n_unsure=1)
    names = [ax.get_title().split("\n")[0] for ax in fig.get_axes()[::3]]
    assert names[0] == f"n0, slice {k}" and names[1].startswith("a2, slice ")
    plt.close(fig)
    ex = explorer.Explorer(source)
    assert ex.case.value == 0 and ex.slice.value == k and ex.slice.max == 47
    ex.outcome.value = "correct"
    assert [v for _, v in ex.case.options] == [2, 1]
