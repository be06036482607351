import dataclasses
import types

import numpy as np
import pytest
import pandas as pd
from medrepro.core import profiles
from medrepro.data import brain_mri, pipeline
from medrepro.studies import c
from medrepro.studies.mri_common import ImageSplit


def _rows(val_acc):
    return pd.DataFrame({"trial": [1, 2, 3, 4, 5], "best_val_accuracy": val_acc})


@pytest.mark.parametrize("val_acc", [[0.9, 0.8, 0.5, 0.7, 0.6], [0.1, 0.2, 0.9, 0.3, 0.2],
                                     [0.5] * 5])
def test_final_trial_is_the_sources_last_trial_whatever_validation_says(val_acc):
    # The source's third graph, "the last graph I got" (C:32), follows graphs of trials 1 and
    # 3: the final model is trial 5, even where trial 3 or an Adamax trial validates better, so
    # C.fig3 (the final model's curves) never repeats C.fig1 or C.fig2.
    assert c.final_trial(_rows(val_acc)) == 5


def test_final_trial_needs_the_last_trial_and_the_sources_optimizer(monkeypatch):
    with pytest.raises(ValueError, match=r"lack the source's last trial 5"):
        c.final_trial(_rows([0.5] * 5).iloc[:4])
    monkeypatch.setattr(c, "FINAL_OPTIMIZER", "Adam")
    with pytest.raises(ValueError, match=r"last trial 5 uses SGD: expected Adam"):
        c.final_trial(_rows([0.5] * 5))


def _result(final=5):
    images = pd.DataFrame({"path": [f"/x/{i}.jpg" for i in range(8)], "label": np.arange(8) % 4})
    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)",
                               dataset_id="brain_tumor_masoud", is_phantom=True)
    data = ImageSplit(ds, images, images.iloc[:4], images.iloc[4:], images.iloc[:3],
                      images.iloc[3:4], note="data: Masoud (phantom)")
    rows = _rows([0.2, 0.2, 0.4, 0.2, 0.4]).assign(test_accuracy=0.25)
    pred = {t: np.arange(4) % 4 if t == final else np.zeros(4, dtype=int) for t in range(1, 6)}
    return c.Result(data, rows, {}, pred, final)


def test_table1_merges_the_trials_and_flags_the_final_one():
    table = c.table1(_result())
    assert list(table["optimizer"]) == ["Adamax", "Adamax", "SGD", "Adam", "SGD"]
    assert list(table["final"]) == [False, False, False, False, True]
    notes = c.table1_notes(_result(), profiles.settings("C", "smoke"), profile="smoke")
    assert "Final model = trial 5: the source's last trial" in notes
    assert "profile smoke (epochs capped at 1;" in notes
    assert "batch 16 (global; 16 per replica × 1 replica)" in notes


def test_table2_and_leakage_use_the_final_trial():
    res = _result()
    table = c.table2(res, n_boot=20, seed=0)
    assert list(table["recall"]) == [1.0, 1.0, 1.0, 1.0]  # trial 5 is right everywhere
    leak = c.leakage(res, [], n_boot=20, seed=0)
    assert list(leak["model"].unique()) == ["final (trial 5)"]
    assert list(leak["test set"]) == ["all", "duplicate-free"] and (leak["dropped"] == 0).all()


def test_trials_with_the_same_capped_settings_are_trained_once():
    capped = [(t.trial, epochs, same) for t, epochs, same in c.trial_plan(10)]
    assert capped == [(1, 10, None), (2, 10, 1), (3, 10, None), (4, 10, None), (5, 10, None)]
    full = [(t.trial, epochs, same) for t, epochs, same in c.trial_plan(None)]
    assert full == [(1, 25, None), (2, 50, None), (3, 25, None), (4, 25, None), (5, 25, None)]
    assert [same for _, _, same in c.trial_plan(30)] == [None] * 5  # 25 and 30 epochs differ


def test_table1_notes_say_when_a_trial_shows_another_trials_run():
    res = _result()
    s = dataclasses.replace(profiles.settings("C", "demo"), epochs=10)
    assert "same_run_as" not in c.table1_notes(res, s, profile="demo")
    rows = res.rows.assign(same_run_as=[None, 1, None, None, None])
    assert "same_run_as" in c.table1_notes(c.Result(res.data, rows, {}, res.pred, 5), s,
                                           profile="demo")


@pytest.mark.parametrize("framing", ["stretch", "head"])
def test_c_pipelines_apply_one_framing(tmp_path, monkeypatch, framing):
    # A wide image with the head at its right: C's pipelines (training, validation, test) must
    # all fit it into the square as c.FRAMING says (stretched, the choice; the head cropped and
    # padded, the variant).
    from PIL import Image

    img = np.zeros((40, 80), np.uint8)
    img[10:30, 50:60] = 250
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    images = pd.DataFrame({"path": paths, "label": np.arange(4)})
    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)",
                               dataset_id="brain_tumor_masoud", is_phantom=True)
    data = ImageSplit(ds, images, images, images, images, images)
    assert c.FRAMING == "stretch"  # chosen on validation (docs/decisions.md#c4)
    monkeypatch.setattr(c, "FRAMING", framing)
    settings = dataclasses.replace(profiles.settings("C", "smoke"), image_size=20, batch=4)
    fit, val, test = c.image_datasets(settings, data, seed=0)
    framed = brain_mri.load_images(images.iloc[:1], image_size=20, framing=framing)[0]
    if framing == "head":
        assert framed[:, 5:15].min() > 0.9 and framed[:, :5].max() == 0
    else:  # columns 50-60 of 80 -> 12.5-15 of 20
        assert framed[8:12, 13].min() > 0.9 and framed[:, :10].max() == 0
    for pipe in (val, test):
        np.testing.assert_allclose(next(iter(pipe))[0].numpy()[0], framed, atol=1e-6)
    assert pipeline.augment_of(fit) == brain_mri.augmenter(**brain_mri.C_AUGMENT, seed=0)
    assert next(iter(fit))[0].numpy().shape == (4, 20, 20, 3)


def test_calibration_scores_the_final_trial_and_names_a_shifted_test_set():
    res = _result()
    rng = np.random.default_rng(0)
    val, test = rng.dirichlet(np.ones(4), 40), np.eye(4)[res.data.y_test] * 0.7 + 0.075
    res = c.Result(res.data, res.rows, {}, res.pred, 5, {5: (val[:1], test)})
    cal = c.calibration(res, n_boot=20, seed=0)
    before = cal.table.set_index("scaling").loc["none"]
    assert before["model"] == "final (trial 5)" and before["accuracy"] == 1.0
    assert before["ece"] == pytest.approx(0.225)  # right everywhere at confidence 0.775
    assert before["test_set"] == ""  # a phantom is no shifted test set
    real = types.SimpleNamespace(source="brain_tumor_sartaj", label="Sartaj (real)",
                                 dataset_id="brain_tumor_sartaj", is_phantom=False)
    shifted = c.Result(ImageSplit(real, *[getattr(res.data, f) for f in
                                          ("images", "train", "test", "fit", "val")]),
                       res.rows, {}, res.pred, 5, res.proba)
    assert c.calibration(shifted, n_boot=20, seed=0).table["test_set"].str.startswith(
        "shifted test set").all()


def test_failure_gallery_shows_the_final_trials_confident_mistakes_first(monkeypatch):
    import matplotlib.pyplot as plt
    from medrepro.reporting import explorer

    res = _result()
    test = np.array([[0.1, 0.7, 0.1, 0.1],     # true 0, called 1 (0.7)
                     [0.1, 0.6, 0.2, 0.1],     # true 1, right, unsure
                     [0.05, 0.05, 0.85, 0.05],  # true 2, right, sure
                     [0.4, 0.1, 0.1, 0.4]])    # true 3, called 0 (0.4)
    res = c.Result(res.data, res.rows, {}, res.pred, 3, {3: (test[:1], test), 1: (test, test[::-1])})
    read = []
    monkeypatch.setattr(brain_mri, "load_images", lambda frame, image_size, framing: read.append(
        (list(frame["path"]), image_size, framing)) or np.full((len(frame), image_size,
                                                                image_size, 3), 0.5))
    source = c.failure_source(res, image_size=20)
    assert source.maps is None and source.cases["correct"].tolist() == [False, True, True, False]
    fig = explorer.gallery(source, n_wrong=8, n_unsure=1)
    titles = [ax.get_title() for ax in fig.get_axes()[::2]]
    assert [t.split("\n")[0] for t in titles] == ["4.jpg", "7.jpg", "5.jpg"]
    assert titles[0].endswith("pred meningioma (0.70)") and "trial 3" in fig._suptitle.get_text()
    assert read == [([f"/x/{i}.jpg"], 20, c.FRAMING) for i in (4, 7, 5)]
    plt.close(fig)
