import keras
import numpy as np
import pytest
from medrepro.training import callbacks


def _model(width=4):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(width),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def test_state_round_trip_restores_model_optimizer_and_callbacks(tmp_path):
    model = _model()
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, verbose=0)
    early = callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    early.wait, early.best, early.best_epoch = 2, 0.25, 4
    early.best_weights = [w * 0 + 1 for w in model.get_weights()]
    plateau = callbacks.ReduceLROnPlateau(patience=1)
    plateau.wait, plateau.best, plateau.cooldown_counter = 1, 0.5, 0
    path = tmp_path / "state.npz"
    callbacks.save_state(path, model, [early, plateau], epochs_done=5)
    assert callbacks.read_meta(path)["epochs_done"] == 5

    fresh = _model()
    fresh.optimizer.learning_rate = 0.5  # differs until restored
    early2 = callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    plateau2 = callbacks.ReduceLROnPlateau(patience=1)
    assert callbacks.restore_state(path, fresh, [early2, plateau2]) == 5
    for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(fresh.optimizer.learning_rate) == pytest.approx(0.01)
    assert (early2.wait, early2.best, early2.best_epoch) == (2, 0.25, 4)
    assert all((w == 1).all() for w in early2.best_weights)
    assert (plateau2.wait, plateau2.best) == (1, 0.5)


def test_restoring_into_another_model_or_callbacks_raises(tmp_path):
    path = tmp_path / "state.npz"
    callbacks.save_state(path, _model(), [callbacks.EarlyStopping()], epochs_done=1)
    with pytest.raises(callbacks.ResumeError, match=r"state.npz: model variable .* has shape"):
        callbacks.restore_state(path, _model(width=5), [callbacks.EarlyStopping()])
    with pytest.raises(callbacks.ResumeError, match="saved callbacks .* differ"):
        callbacks.restore_state(path, _model(), [callbacks.ReduceLROnPlateau()])


def test_history_truncate_drops_rows_after_the_saved_state(tmp_path):
    recorder = callbacks.HistoryCSV(tmp_path / "history.csv")
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")
    recorder.truncate(2)
    assert list(recorder.read()["epoch"]) == [1, 2]
    assert recorder.best("loss", "min") == pytest.approx(0.4)


def _tiny_fit(tmp_path, at, epochs=4):
    """A small dense model trained ``epochs`` epochs with PrefixSnapshots ``at`` and a callback
    that records every epoch's weights; returns (history, weights per epoch)."""
    from medrepro.data import pipeline
    from medrepro.core import seeds
    from medrepro.training import train

    seeds.seed_everything(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="binary_crossentropy")
    per_epoch = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: per_epoch.append([w.copy() for w in model.get_weights()]))
    best = callbacks.BestInMemory(monitor="val_loss", mode="min")
    snaps = callbacks.PrefixSnapshots({k: (n, tmp_path / k, {"scenario": k})
                                       for k, n in at.items()},
                                      best=best, history_path=tmp_path / "long" / "history.csv")
    ds = pipeline.from_arrays(x, y, batch_size=8, cache=False)
    val = pipeline.from_arrays(-x, y, batch_size=8, cache=False)  # val loss rises: best is early
    history = train.fit(model, ds, val, train.FitConfig(epochs=epochs), run_dir=tmp_path / "long",
                        verbose=0, callbacks=[best, snaps, record], progress=False)
    return history, per_epoch


def test_prefix_snapshots_are_the_first_epochs_and_their_best_weights(tmp_path):
    history, per_epoch = _tiny_fit(tmp_path, {"short": 2, "long_stop": 9})
    got = callbacks.read_snapshot(tmp_path / "short", {"scenario": "short"})
    assert got is not None
    short_history, weights = got
    assert list(short_history["epoch"]) == [1, 2]
    np.testing.assert_allclose(short_history["val_loss"], history["val_loss"].iloc[:2])
    best_epoch = int(np.argmin(history["val_loss"].iloc[:2]))  # what a 2-epoch fit restores
    for w, ref in zip(weights, per_epoch[best_epoch]):
        np.testing.assert_array_equal(w, ref)
    # a shorter scenario of more epochs than the run had (early stop): the whole run's best
    long_history, long_weights = callbacks.read_snapshot(tmp_path / "long_stop",
                                                         {"scenario": "long_stop"})
    assert len(long_history) == len(history) == 4
    for w, ref in zip(long_weights, per_epoch[int(np.argmin(history["val_loss"]))]):
        np.testing.assert_array_equal(w, ref)
    # another configuration's snapshot is not read back
    assert callbacks.read_snapshot(tmp_path / "short", {"scenario": "short", "seed": 1}) is None
    assert callbacks.read_snapshot(tmp_path / "absent", {"scenario": "short"}) is None
