"""Study B (notebook 04): subsampling, training with reuse/resume, and the tables of results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from medrepro.core import manifest, profiles
from medrepro.studies import b


def test_subsample_train_keeps_every_class_and_the_other_splits():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(40, int), [1, 2, 3, 4, 5], rng.integers(0, 6, 30)]
    split = np.r_[["train"] * 45, ["val"] * 15, ["test"] * 15]
    df = pd.DataFrame({"image_id": [f"ID_{i}" for i in range(len(labels))], "label": labels,
                       "split": split})
    out = b.subsample_train(df, max_train=10, seed=0)
    train = out[out["split"] == "train"]
    assert len(train) == 10
    assert set(train["label"]) == {0, 1, 2, 3, 4, 5}
    assert (out["split"] != "train").sum() == 30
    assert b.subsample_train(df, max_train=None, seed=0) is df


def test_train_and_evaluate_reuses_a_finished_model_and_resumes_a_killed_one(tmp_path,
                                                                             monkeypatch):
    """Notebook 04's re-run: a finished model is not retrained, an interrupted one resumes
    and ends as the uninterrupted run."""
    keras = pytest.importorskip("keras")
    from medrepro.data import datasets, rsna
    from medrepro.training import train

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    ds = datasets.resolve("rsna_ich", data="phantom", profile="smoke", seed=0)
    cache = rsna.ensure_cache(ds, profile="smoke", progress=False)
    split = b.subsample_train(rsna.load_split(cache, kind="image"), max_train=24, seed=0)
    args = {"image_size": 32, "batch_size": 8, "max_epochs": 3, "patience": 3, "seed": 0}
    whole = b.train_and_evaluate("proposed", cache, split, run_dir=tmp_path / "whole", **args)

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("simulated kill after epoch 2")

    real_fit = train.fit
    with monkeypatch.context() as m:
        m.setattr(train, "fit", lambda *a, **k: real_fit(*a, **{**k, "callbacks": [Stop()]}))
        with pytest.raises(KeyboardInterrupt):
            b.train_and_evaluate("proposed", cache, split, run_dir=tmp_path / "killed", **args)
    resumed = b.train_and_evaluate("proposed", cache, split, run_dir=tmp_path / "killed",
                                   **args)
    cols = [c for c in whole.history.columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(resumed.history[cols], whole.history[cols],
                                  check_exact=False, atol=1e-5)
    np.testing.assert_allclose(resumed.proba, whole.proba, atol=1e-5)

    with monkeypatch.context() as m:
        m.setattr(train, "fit", lambda *a, **k: pytest.fail("a finished model was retrained"))
        m.setattr(train, "predict_proba", lambda *a, **k: pytest.fail("predicted again"))
        again = b.train_and_evaluate("proposed", cache, split, run_dir=tmp_path / "whole",
                                     **args)
    np.testing.assert_array_equal(again.proba, whole.proba)
    assert again.best_epoch == whole.best_epoch and again.test_acc == whole.test_acc
    assert again.params == whole.params and again.key == "proposed"


def _captured_fits(monkeypatch, tmp_path, row, keys):
    """Build and compile each model of ``keys`` as ``b._train`` does with ``row``, stopping at
    its fit: key -> (model, FitConfig, run identity)."""
    from types import SimpleNamespace

    from medrepro.training import train

    class Captured(Exception):
        pass

    seen = {}

    def capture(model, train_ds, val_ds, recipe, *, identity, **kwargs):
        seen[identity["model"]] = (model, recipe, identity)
        raise Captured

    monkeypatch.setattr(b.rsna, "make_dataset", lambda *a, **k: None)
    monkeypatch.setattr(train, "fit_once", capture)
    split = pd.DataFrame({"split": ["train", "val", "test"], "label": [0, 1, 2]})
    data = b.Data(SimpleNamespace(source="phantom"), tmp_path, {"image": split}, "demo")
    for key in keys:
        with pytest.raises(Captured):
            b._train(row, data, tmp_path, [key], split="image", batch_size=8,
                     folder=lambda key: "run", seed=0, init="random")
    return seen


def test_each_model_trains_with_its_rows_rate_and_batchnorm_momentum(tmp_path, monkeypatch):
    """The row's recipe reaches every model it trains, and a changed recipe is another run;
    the paper row keeps the paper's optimiser (docs/decisions.md#b9)."""
    keras = pytest.importorskip("keras")
    from medrepro.models import head_ct

    paper = profiles.settings("B", "paper")
    assert (paper.lr, paper.bn_momentum) == (head_ct.LEARNING_RATE, head_ct.BN_MOMENTUM)
    row = dataclasses.replace(profiles.settings("B", "demo"), image_size=32, bn_momentum=0.8,
                              lr=2e-4)
    seen = {}
    for key, (model, _, identity) in _captured_fits(monkeypatch, tmp_path, row,
                                                    ("proposed", "inception_v1")).items():
        momenta = {layer.momentum for layer in model._flatten_layers()
                   if isinstance(layer, keras.layers.BatchNormalization)}
        seen[key] = (float(model.optimizer.learning_rate), momenta, identity)
    assert seen["proposed"][:2] == (pytest.approx(2e-4), {0.8})
    assert seen["inception_v1"][:2] == (pytest.approx(2e-4), set())  # no BatchNorm in v1
    assert seen["proposed"][2]["lr"] == 2e-4 and seen["proposed"][2]["bn_momentum"] == 0.8


def test_inception_v1_takes_its_own_initialiser_and_epochs(tmp_path, monkeypatch):
    """The demo's Inception V1 (no BatchNorm) starts from He initialisation and trains longer;
    the other models and the paper row keep the shared recipe, and their run identities name
    none of it (docs/decisions.md#b10)."""
    keras = pytest.importorskip("keras")

    def inits(model):
        return {type(layer.kernel_initializer).__name__ for layer in model._flatten_layers()
                if isinstance(layer, keras.layers.Conv2D)}

    paper = profiles.settings("B", "paper")
    assert paper.recipe("inception_v1")["options"] == {"kernel_initializer": "glorot_uniform"}
    assert paper.recipe("inception_v1")["max_epochs"] == paper.max_epochs == 30
    row = dataclasses.replace(profiles.settings("B", "demo"), image_size=32,
                              inception_init="he_normal", inception_max_epochs=25)
    seen = _captured_fits(monkeypatch, tmp_path, row, ("proposed", "inception_v1"))
    model, recipe, identity = seen["inception_v1"]
    assert (recipe.epochs, recipe.patience) == (25, row.patience)
    assert inits(model) == {"HeNormal"}
    assert identity["options"] == {"kernel_initializer": "he_normal"}
    model, recipe, identity = seen["proposed"]
    assert recipe.epochs == row.max_epochs
    assert inits(model) == {"GlorotUniform"} and "options" not in identity
    model, _, identity = _captured_fits(monkeypatch, tmp_path,
                                        dataclasses.replace(paper, image_size=32),
                                        ["inception_v1"])["inception_v1"]
    assert inits(model) == {"GlorotUniform"} and "options" not in identity


@pytest.mark.parametrize(("batch_main", "folder"), [(8, "main"), (32, "image-proposed")])
def test_the_comparison_reads_the_main_run_back_when_it_has_the_same_batch(
        tmp_path, monkeypatch, batch_main, folder):
    """The demo's main run and its comparison both train the proposed model at batch 8 on the
    image split: the comparison reuses the main run's folder instead of training it again."""
    from types import SimpleNamespace

    folders = []
    monkeypatch.setattr(b, "train_and_evaluate",
                        lambda key, *a, run_dir, **k: folders.append((key, run_dir.name)))
    row = dataclasses.replace(profiles.settings("B", "demo"), batch_main=batch_main,
                              batch_compare=8)
    data = b.Data(SimpleNamespace(source="phantom"), tmp_path, {"image": None}, "demo")
    b.train_compare(row, data, tmp_path, seed=0, init="random")
    assert folders == [("proposed", folder), ("mobilenet", "image-mobilenet"),
                       ("inception_v1", "image-inception_v1")]


def _trained(models, *, bootstrap=50, replicas=1):
    settings = dataclasses.replace(profiles.settings("B", "smoke"), n_boot=bootstrap)
    return b.Trained(models, source="phantom", profile="smoke", seed=0, settings=settings,
                     batch_size=8, init="random", replicas=replicas)


def _result(key, y_true, y_pred):
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    return b.ModelResult(key=key, history=pd.DataFrame(), best_epoch=2, epochs_run=3,
                         train_seconds=120.0, train_images=40, images_per_s=1.0, train_acc=0.5,
                         train_loss=1.0, val_acc=0.25, val_loss=1.2,
                         test_acc=float((y_true == y_pred).mean()), test_loss=1.1,
                         y_true=y_true, y_pred=y_pred, proba=np.zeros((len(y_true), 6)),
                         val_proba=np.zeros((0, 6)), y_val=np.zeros(0, np.int64),
                         patient_id=np.array([f"ID_{i // 3:03d}" for i in range(len(y_true))]),
                         params=10, init="random")


Y = np.tile(np.arange(6), 5)  # 30 test images, 5 of each class


def test_tables_leave_models_not_trained_empty_and_sit_beside_the_paper():
    res = _trained({"proposed": _result("proposed", Y, Y), "mobilenet":
                    _result("mobilenet", Y, np.zeros_like(Y))})
    t3 = b.table3(res).set_index("model")
    assert list(t3.index) == b.MODELS
    assert t3.loc["proposed", "test_acc"] == 1.0
    assert t3.loc["mobilenet", "test_acc"] == pytest.approx(1 / 6)
    assert np.isnan(t3.loc["densenet121", "test_acc"]) and t3.loc["densenet121", "init"] == ""
    assert np.isnan(t3.loc["inception_v1", "test_ci95_low"])
    paper = manifest.reported_frame("B.table3").set_index("model")
    assert t3.loc["densenet121", "paper_test_acc"] == paper.loc["densenet121", "test_acc"]
    t4 = b.table4(res).set_index("model")
    assert t4.loc["proposed", "train_minutes"] == 2.0
    assert np.isnan(t4.loc["densenet121", "epochs_run"])
    t5 = b.table5(res).set_index("model")
    assert t5.loc["proposed", "f1"] == pytest.approx(1.0)
    assert t5.loc["mobilenet", "f1"] < 0.1


def test_the_notes_state_the_global_and_the_per_replica_batch(monkeypatch):
    monkeypatch.delenv(profiles.BATCH_PER_REPLICA_ENV, raising=False)
    one = _trained({"proposed": _result("proposed", Y, Y)})
    assert b.table2_notes(one).startswith("batch 8 (global; 8 per replica × 1 replica); paper:")
    two = _trained({"proposed": _result("proposed", Y, Y)}, replicas=2)
    assert b.patient_split_notes(two).startswith("batch 8 (global; 4 per replica × 2 replicas);")
    assert b.table3_notes(two).startswith("batch 8 (global; 4 per replica × 2 replicas);")
    assert b.curves_title(two) == ("Proposed model, batch 8 (global; 4 per replica × 2 replicas) "
                                   "(phantom, smoke)")
    monkeypatch.setenv(profiles.BATCH_PER_REPLICA_ENV, "1")  # the doubled batch: labelled
    assert "per-replica option" in b.table2_notes(two)


def test_bootstrap_cis_are_computed_once_per_model_and_metric(monkeypatch):
    res = _trained({"proposed": _result("proposed", Y, Y)})
    calls = []
    monkeypatch.setattr(b.evaluate, "bootstrap_ci",
                        lambda *a, **k: calls.append(k["metric"]) or {"point": 1, "lo": 0,
                                                                        "hi": 1})
    monkeypatch.setattr(b.stats, "cluster_bootstrap_ci",
                        lambda *a, **k: calls.append("patient " + k["metric"]) or {
                            "point": 1, "lo": 0, "hi": 1, "n_clusters": 10})
    b.table3(res), b.table3(res), b.table5(res)
    assert calls == ["accuracy", "patient accuracy", "weighted_f1"]
    assert b.table3(res).set_index("model").loc["proposed", "test_ci95_low"] == 0


def test_confusion_table_counts_ours_beside_the_papers():
    pred = Y.copy()
    pred[0] = 1  # one S1 image called S2
    res = _trained({"proposed": _result("proposed", Y, pred)})
    cm = b.confusion_table(res, "B.table6")
    assert cm.index.name == "true class" and cm.shape == (6, 12)
    assert cm.iloc[0, 0] == 4 and cm.iloc[0, 1] == 1
    assert cm.filter(like="ours_").to_numpy().sum() == len(Y)
    assert cm.filter(like="ours_").isna().sum().sum() == 0
    assert b.confusion_table(res, "B.table7").filter(like="ours_").isna().all().all()
    assert b.confusion_notes(res, "B.table7").endswith("not trained in this profile")
    assert b.confusion_notes(res, "B.table6") == "Proposed (lightweight CNN); "


def test_mcnemar_and_patient_split_rows():
    wrong = np.where(Y == 0, 1, Y)  # 5 of 30 wrong
    image = _trained({"proposed": _result("proposed", Y, Y),
                      "densenet121": _result("densenet121", Y, wrong)})
    mc = b.mcnemar(image).set_index("model_b")
    assert list(mc.index) == b.MODELS[1:]
    assert (mc.loc["densenet121", "n01"], mc.loc["densenet121", "n10"]) == (0, 5)
    assert mc.loc["densenet121", "acc_diff"] == pytest.approx(5 / 30)
    assert mc.loc["mobilenet", "method"] == "not trained in this profile"
    # 10 patients of 3 slices: the 5 wrong slices sit in 5 patients (rows 0, 6, ..., 24), so
    # Durkalski's statistic is 5² / 5 = 5
    from scipy.stats import chi2

    assert mc.loc["densenet121", "p_value_patient"] == pytest.approx(chi2.sf(5.0, df=1))
    assert mc.loc["densenet121", "acc_diff_patient_lo"] <= 5 / 30 <= mc.loc[
        "densenet121", "acc_diff_patient_hi"]
    # one comparison trained: Holm's adjustment leaves its p-value as it is
    assert mc.loc["densenet121", "p_holm"] == pytest.approx(mc.loc["densenet121", "p_value"])
    assert np.isnan(mc.loc["mobilenet", "p_holm"])
    patient = _trained({"proposed": _result("proposed", Y, wrong)})
    ps = b.patient_split(patient, image).set_index("model")
    assert ps.loc["proposed", "patient_test_acc"] == pytest.approx(25 / 30)
    assert ps.loc["proposed", "image_split_test_acc"] == 1.0
    assert np.isnan(ps.loc["mobilenet", "patient_test_acc"])
    assert np.isnan(ps.loc["mobilenet", "image_split_test_acc"])


def test_fig4_frame_lists_every_layer_with_unbatched_shapes():
    pytest.importorskip("keras")
    from medrepro.models import head_ct

    model = head_ct.lightweight_cnn((64, 64, 3))
    frame = b.fig4_frame(model)
    assert list(frame.columns) == ["layer", "type", "output shape", "params"]
    assert frame.iloc[0]["type"] == "InputLayer" and frame.iloc[0]["output shape"] == "(64, 64, 3)"
    assert len(frame) == len(model.layers)
    assert frame["params"].sum() == model.count_params()


def test_failure_source_lists_the_main_runs_test_images_in_gallery_order(monkeypatch, tmp_path):
    import matplotlib.pyplot as plt
    from medrepro.reporting import explorer

    y = np.array([0, 3, 5, 1])
    proba = np.full((4, 6), 0.02)
    proba[[0, 1, 2, 3], [0, 4, 4, 1]] = [0.5, 0.9, 0.6, 0.3]  # 1 and 2 wrong: 0.9 then 0.6
    split = pd.DataFrame({"image_id": [f"ID_{i}" for i in range(7)], "label": [2, 2, 0, 3, 5, 1, 4],
                          "split": ["train", "val", "test", "test", "test", "test", "train"],
                          "shard": 0, "row": np.arange(7)})
    r = dataclasses.replace(_result("proposed", y, proba.argmax(axis=1)), proba=proba)
    data = b.Data(_ds(label="RSNA (phantom)"), tmp_path, {"image": split}, "smoke")
    rows = []
    monkeypatch.setattr(b.rsna, "load_images", lambda cache, frame: rows.append(
        frame["row"].tolist()) or np.full((len(frame), 8, 8, 3), 255, np.uint8))
    source = b.failure_source(_trained({"proposed": r}), data)
    assert source.cases["name"].tolist() == ["ID_2", "ID_3", "ID_4", "ID_5"]
    assert source.image(0).max() == 1.0 and source.maps is None
    fig = explorer.gallery(source, n_wrong=5, n_unsure=1)
    names = [ax.get_title().split("\n")[0] for ax in fig.get_axes()[::2] if ax.get_title()]
    assert names == ["ID_3", "ID_4", "ID_5"] and rows[1:] == [[3], [4], [5]]
    plt.close(fig)
    other = b.Data(data.ds, tmp_path, {"image": split.assign(split="test")}, "smoke")
    with pytest.raises(ValueError, match="7 test rows in the image split, the main run scored 4"):
        b.failure_source(_trained({"proposed": r}), other)


def _ds(**kw):
    import types

    return types.SimpleNamespace(source="phantom", **kw)


def test_the_main_runs_record_states_the_batch_it_trained_at(monkeypatch):
    """The main run's headline keeps the paper's metric name (batch 32) and says in its notes
    at which batch this run trained (8 in the demo)."""
    recorded = []
    monkeypatch.setattr(b.report, "record_metric", lambda *a, **k: recorded.append((a, k)))
    b.record_table2(_trained({"proposed": _result("proposed", Y, Y)}))
    (args, kwargs), = recorded
    assert args[1] == "test accuracy (proposed, batch 32)"
    assert kwargs["notes"].startswith("main run at batch 8; CI over 10 patients")
