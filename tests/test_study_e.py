import types

import numpy as np
import pandas as pd
import pytest
from medrepro.models import brain_mri as mm
from medrepro.studies import e
from medrepro.studies.mri_common import ImageSplit
from PIL import Image


@pytest.fixture
def result(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        f = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(f)
        paths.append(str(f))
    images = pd.DataFrame({"path": paths, "label": np.arange(8) % 4})
    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)")
    data = ImageSplit(ds, images, images.iloc[:4], images.iloc[4:], images.iloc[:3],
                      images.iloc[3:4], note="data: Masoud (phantom)")
    history = pd.DataFrame({"accuracy": [0.3], "loss": [1.2], "val_accuracy": [0.25],
                            "val_loss": [1.3]})
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2], [0.1, 0.1, 0.3, 0.5],
                      [0.05, 0.05, 0.1, 0.8]], dtype=np.float32)
    return e.Result(data, mm.xai_cnn((16, 16, 3)), history, 1.25, 0.5,
                    np.array([0, 1, 3, 3]), 0.75, proba)


def test_explanation_maps_are_finite_and_image_shaped(result):
    expl = e.explanation_maps(result, image_size=16, ig_steps=4)
    assert expl.images.shape == (4, 16, 16, 3)
    assert expl.titles[2] == "no tumour / pred pituitary"
    assert set(expl.maps) == set(e.MAPS)
    assert all(m.shape == (4, 16, 16) and np.isfinite(m).all() for m in expl.maps.values())


def test_table1_notes_and_leakage(result):
    ci = {"accuracy_lo": 0.1, "accuracy_hi": 0.9}
    notes = e.table1_notes(result, ci)
    assert ("test accuracy 0.5000 (95% CI 0.100-0.900), test loss 0.7500 (plain cross-entropy; "
            "1.2500 with our label smoothing), n = 4") in notes
    leak = e.leakage(result, [], n_boot=20, seed=0)
    assert list(leak["split"].unique()) == ["paper (pooled 80/20)"]
    assert leak.iloc[0]["accuracy"] == pytest.approx(0.75)


def test_performance_sets_the_plain_cross_entropy_beside_the_papers_loss(result):
    import keras

    # The evaluated losses of a real model: the plain cross-entropy is sklearn's log loss of
    # the same probabilities, and the smoothed objective is another number.
    from medrepro.data import brain_mri
    from sklearn.metrics import log_loss

    test_ds = brain_mri.image_dataset(result.data.test.assign(label=[0, 1, 2, 3]),
                                      image_size=16, batch_size=4)
    result.model.compile(loss=keras.losses.CategoricalCrossentropy(
        label_smoothing=e.LABEL_SMOOTHING), metrics=["accuracy"])
    res = e.evaluate_cnn(result.data, result.model, result.history, test_ds)
    proba = result.model.predict(test_ds, verbose=0)
    assert res.test_cross_entropy == pytest.approx(log_loss([0, 1, 2, 3], proba,
                                                            labels=range(4)), rel=1e-5)
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=e.LABEL_SMOOTHING)(
        np.eye(4), proba)
    assert res.test_loss == pytest.approx(float(smoothed), rel=1e-4)
    assert list(res.pred) == list(proba.argmax(axis=1))

    table = e.performance(result).set_index("source")
    assert list(table.index) == ["ours", "paper"]
    assert table.loc["ours", e.CE_COLUMN] == 0.75 and table.loc["ours", e.SMOOTHED_COLUMN] == 1.25
    assert table.loc["paper", e.CE_COLUMN] == 0.1544  # E:45, plain cross-entropy (E:24)
    assert np.isnan(table.loc["paper", e.SMOOTHED_COLUMN])  # the source names no smoothing
    assert e.SMOOTHED_COLUMN == "test_loss_smoothed_0.1"
    assert "label smoothing 0.1" in e.performance_notes(result)


def _with_root(result, root):
    import dataclasses

    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)", root=root)
    return dataclasses.replace(result, data=dataclasses.replace(result.data, ds=ds))


def test_xai_score_without_masks_says_not_scored(result, tmp_path):
    import matplotlib.pyplot as plt

    score = e.score_explanations(_with_root(result, tmp_path), image_size=16, ig_steps=2,
                                 n_boot=50, seed=0)
    table = e.xai_score_table(score)
    assert list(table["method"]) == list(e.XAI_METHODS)
    assert (table["status"] == "not scored: Masoud (phantom) has no lesion masks").all()
    assert "hit_rate" not in table
    plt.close(e.xai_score_figure(score))


def test_xai_score_scores_the_correct_tumour_images_against_their_masks(result, tmp_path):
    import matplotlib.pyplot as plt
    from medrepro.data.phantoms._masks import MaskCollector

    store = MaskCollector()
    lesion = np.zeros((20, 20), dtype=bool)
    lesion[5:10, 5:10] = True
    for i, path in enumerate(result.data.images["path"]):
        empty = i == 7  # a correct pituitary image whose lesion is not drawn: left out, counted
        store.add(f"{i}.png", lesion=lesion & (not empty), region=np.ones((20, 20), dtype=bool))
    store.save(tmp_path)
    score = e.score_explanations(_with_root(result, tmp_path), image_size=16, ig_steps=2,
                                 n_boot=50, seed=0)
    table = e.xai_score_table(score).set_index("method")
    # test rows 4-7: labels 0 1 2 3, predicted 0 1 3 3 -> 4, 5, 7 correct tumours; 7 empty
    assert (table["n_correct_tumour"] == 3).all() and (table["n_empty_mask"] == 1).all()
    assert (table["n_scored"] == 2).all() and (table["status"] == e.SCORED).all()
    assert score.masks.shape == (2, 16, 16) and score.masks[0, 5, 5] and not score.masks[0, 12, 12]
    assert table["hit_rate"].between(0, 1).all()
    assert table["chance_brain"].to_numpy() == pytest.approx(table["chance_image"].to_numpy())
    plt.close(e.xai_score_figure(score))


def _scored(result, tmp_path):
    from medrepro.data.phantoms._masks import MaskCollector

    store = MaskCollector()
    lesion = np.zeros((20, 20), dtype=bool)
    lesion[5:10, 5:10] = True
    for i in range(len(result.data.images)):
        store.add(f"{i}.png", lesion=lesion, region=np.ones((20, 20), dtype=bool))
    store.save(tmp_path)
    res = _with_root(result, tmp_path)
    return res, e.score_explanations(res, image_size=16, ig_steps=2, n_boot=50, seed=0)


def _tiny_settings(**kw):
    import dataclasses

    from medrepro.core import profiles

    return dataclasses.replace(profiles.settings("E", "smoke"), image_size=16, ig_steps=2,
                               n_boot=50, xai_sanity=2, xai_faith=2, xai_steps=3, **kw)


def test_evaluate_explanations_scores_methods_and_baselines_and_the_seeds(result, tmp_path):
    import matplotlib.pyplot as plt
    from medrepro.analysis import sanity, xai_eval, xai_score

    res, score = _scored(result, tmp_path)
    assert score.status == e.SCORED and len(score.images) == 3  # test rows 4, 5, 7
    settings = _tiny_settings()
    other = mm.xai_cnn((16, 16, 3))  # stands in for the shuffled-label model
    runs = {s: tmp_path / "runs" / f"smoke-phantom-seed{s}" for s in (1, 2)}
    ev = e.evaluate_explanations(res, score, settings=settings, runs=runs[1],
                                 shuffled_model=other, seed=0)
    assert (runs[1] / e.MAPS_FILE).is_file() and ev.sizes["n_seeds"] == 1
    table = xai_eval.evaluation_table(ev)
    assert list(table.columns[:len(xai_eval.TABLE_COLUMNS)]) == list(xai_eval.TABLE_COLUMNS)
    pointing = table[table["check"] == xai_eval.POINTING].set_index("method")
    assert set(pointing.index) == {*e.XAI_METHODS, *xai_score.BASELINES}
    assert (pointing.loc[list(e.XAI_METHODS), "role"] == "method").all()
    assert (pointing["n"] == 3).all()
    assert {"faithfulness", "cascading randomisation", "shuffled labels",
            "pointing game by lesion size"} <= set(table["check"])
    # the randomised model's maps differ from the trained one's
    assert set(ev.flags) == set(e.XAI_METHODS)
    assert ev.sizes["n_sanity"] == 2 and ev.sizes["n_faith"] == 2 and ev.sizes["steps"] == 3
    # a second seed's run: its maps and the first seed's are compared on the shared images
    ev2 = e.evaluate_explanations(res, score, settings=settings, runs=runs[2],
                                  shuffled_model=other, seed=0)
    repeat = [r for r in ev2.repeat if r["condition"] == "seed 1 vs seed 2"]
    assert {r["method"] for r in repeat} == set(e.XAI_METHODS) and repeat[0]["n"] == 3
    assert "repeatability across 2 seeds" in e.xai_eval_notes(ev2, score, "data: x")
    assert sanity.read_maps(runs[2] / e.MAPS_FILE)[0] == list(score.titles)
    plt.close(e.xai_eval_figure(ev, "Masoud (phantom)"))


def test_evaluate_explanations_without_masks_runs_the_other_checks(result, tmp_path):
    from medrepro.analysis import xai_eval

    res = _with_root(result, tmp_path)
    score = e.score_explanations(res, image_size=16, ig_steps=2, n_boot=50, seed=0)
    ev = e.evaluate_explanations(res, score, settings=_tiny_settings(), shuffled_model=None,
                                 runs=tmp_path / "smoke-phantom-seed42", seed=0)
    table = xai_eval.evaluation_table(ev)
    assert xai_eval.POINTING not in set(table["check"])
    assert {"faithfulness", "cascading randomisation"} <= set(table["check"])
    assert "not scored: Masoud (phantom) has no lesion masks" in e.xai_eval_notes(ev, score, "d")


def test_train_shuffled_trains_on_permuted_labels_in_its_own_run(result, tmp_path):
    import json

    model = e.train_shuffled(_tiny_settings(shuffled_epochs=1), result.data, tmp_path, seed=3)
    assert model.output_shape == (None, 4)
    config = json.loads((tmp_path / e.SHUFFLED_RUN / "config.json").read_text())
    assert "shuffled" in json.dumps(config)


def test_failure_gallery_and_explorer_source(result):
    import matplotlib.pyplot as plt
    from medrepro.analysis import failures

    cases = e.failure_cases(result)
    assert len(cases) == 4 and list(cases["true"]) == [0, 1, 2, 3]
    assert list(cases["pred"]) == list(result.pred)  # the evaluation's own predictions
    assert {f"p_{label}" for label in e.mri_common.LABELS} <= set(cases.columns)
    settings = _tiny_settings(gallery_wrong=1, gallery_unsure=1)
    shown = failures.gallery_cases(cases, n_wrong=1, n_unsure=1)
    fig = e.failures_figure(result, cases, settings=settings)
    # one row per shown case: image, three maps, probabilities
    assert len(fig.axes) == len(shown) * (2 + len(e.XAI_METHODS))
    plt.close(fig)
    source = e.explorer_source(result, cases, settings=settings)
    assert source.image(2).shape == (16, 16, 3)
    maps = source.maps(2)
    assert set(maps) == set(e.XAI_METHODS) and all(m.shape == (16, 16) for m in maps.values())
