"""medrepro.models.volume: the 3-D CNN of Fig 4.5, its optimiser and the scenario scores."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro import profiles
from medrepro.models import volume
from medrepro.models.summary import param_counts


def test_cnn3d_has_the_papers_parameter_counts():
    model = volume.cnn3d()
    assert param_counts(model) == volume.PAPER_PARAMS == {
        "total": 214_817, "trainable": 214_465, "non_trainable": 352}
    assert tuple(model.output.shape) == (None, 1)
    shapes = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    assert (None, 6, 6, 2, 64) in shapes.values()  # last block of Fig 4.5
    assert model.name == "3dcnn"


def test_cnn3d_smaller_input_builds_with_the_same_parameters():
    model = volume.cnn3d((48, 48, 48, 1))
    assert param_counts(model)["total"] == 214_817
    out = model(np.zeros((2, 48, 48, 48, 1), np.float32), training=False)
    assert out.shape == (2, 1) and np.all((out.numpy() > 0) & (out.numpy() < 1))


def test_cnn3d_rejects_too_small_inputs():
    assert volume.min_side_ok(46) and not volume.min_side_ok(45)
    with pytest.raises(ValueError, match="too small.*>= 46"):
        volume.cnn3d((64, 64, 32, 1))


def test_compile_uses_sgd_momentum_and_the_decay_schedule():
    import keras

    model = volume.compile_cnn3d(volume.cnn3d((48, 48, 48, 1)))
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == pytest.approx(0.9)
    sched = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    assert float(sched(0)) == pytest.approx(volume.INITIAL_LR)
    assert float(sched(99_999)) == pytest.approx(volume.INITIAL_LR)  # staircase
    assert float(sched(100_000)) == pytest.approx(volume.INITIAL_LR * 0.96)


def test_scenarios_match_every_profile():
    assert list(volume.SCENARIOS) == ["aug_5", "aug_10", "aug_15", "aug_25", "noaug_5", "lung_25"]
    assert [s.augment for s in volume.SCENARIOS.values()] == [True] * 4 + [False, True]
    assert [s.lung_only for s in volume.SCENARIOS.values()] == [False] * 5 + [True]
    for name in profiles.PROFILE_NAMES:
        s = profiles.settings("05_3dcnn_mosmed", name)
        assert set(s["epochs"]) == set(volume.SCENARIOS)
        assert all(volume.min_side_ok(n) for n in s["volume_shape"])
    paper = profiles.settings("05_3dcnn_mosmed", "paper")["epochs"]
    assert {k: v.paper_epochs for k, v in volume.SCENARIOS.items()} == dict(paper)


def test_binary_scores_against_a_hand_count():
    # Appendix A of the thesis: CM [[10 10] [5 15]] → precision 60%, recall 75%, F1 66.67%.
    y = np.array([0] * 20 + [1] * 20)
    prob = np.array([0.2] * 10 + [0.8] * 10 + [0.3] * 5 + [0.9] * 15)
    s = volume.binary_scores(y, prob)
    assert s["accuracy"] == pytest.approx(25 / 40)
    assert s["precision"] == pytest.approx(0.6) and s["recall"] == pytest.approx(0.75)
    assert s["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert s["mse"] == pytest.approx(np.mean((prob - y) ** 2))


def test_binary_scores_undefined_precision_is_zero():
    s = volume.binary_scores([1, 1, 0], [0.1, 0.2, 0.3])
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["f1"] == 0.0


def test_train_scenario_checkpoints_on_val_loss_and_stops_on_val_accuracy(monkeypatch, tmp_path):
    import pandas as pd
    from medrepro import train as training

    seen = {}

    def fake_fit(model, train_ds, val_ds, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"epoch": [1], "loss": [0.7], "val_loss": [0.7]})

    monkeypatch.setattr(training, "fit", fake_fit)
    x = np.zeros((2, 48, 48, 48), dtype=np.float32)
    y = np.array([0, 1])
    res = volume.train_scenario("aug_5", (x, y), (x, y), epochs=5, batch=2, patience=15,
                                run_dir=tmp_path)
    assert seen["monitor"] == "val_loss" and seen["restore_best_weights"] is True
    assert seen["patience"] is None  # not on the checkpoint's monitor
    (stop,) = seen["callbacks"]
    assert type(stop).__name__ == "EarlyStopping"
    assert (stop.monitor, stop.patience) == ("val_accuracy", 15)
    assert len(res.history) == 1


def _fake_scores(pred):
    y = np.array([0] * 20 + [1] * 20)
    return {"y": y, "pred": np.asarray(pred), "prob": np.asarray(pred, dtype=float),
            **volume.binary_scores(y, np.asarray(pred, dtype=float))}


def test_performance_table_from_the_appendix_matrix_with_cis():
    import pandas as pd

    pred = [0] * 10 + [1] * 10 + [0] * 5 + [1] * 15  # appendix A, 5 epochs: [[10 10] [5 15]]
    res = volume.ScenarioResult(scenario=volume.SCENARIOS["aug_5"], epochs=5,
                                history=pd.DataFrame({"epoch": range(1, 6)}), model=None,
                                weights=[], seconds=1.0)
    t = volume.performance_table({"aug_5": {"val": _fake_scores(pred)}}, {"aug_5": res},
                                 n_boot=200, seed=0).iloc[0]
    assert t["n_eval"] == 40
    assert t["val_acc"] == pytest.approx(62.5) and t["reported_val_acc"] == 57.5
    assert (t["precision"], t["recall"]) == (pytest.approx(60.0), pytest.approx(75.0))
    assert t["f1"] == pytest.approx(66.667, abs=1e-3) and t["reported_f1"] == 66.67
    for m in ("val_acc", "precision", "recall", "f1"):
        assert t[f"{m}_lo"] < t[m] < t[f"{m}_hi"]
    held = volume.heldout_table({"aug_5": {"val": _fake_scores(pred), "test": _fake_scores(pred)}},
                                {"aug_5": res}, n_boot=50)
    assert list(held["split"]) == ["val", "test"] and held["accuracy"].iloc[1] == pytest.approx(62.5)
