import keras
import numpy as np
import pytest
from medrepro import callbacks


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
