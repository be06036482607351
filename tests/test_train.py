import keras
import numpy as np
import pandas as pd
import pytest
from medrepro import train


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return x, y


def _model(*, trainable=True, lr=0.05):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.trainable = trainable
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _datasets():
    x, y = _data()
    xv, yv = _data(32, seed=1)
    return (train.from_arrays(x, y, batch_size=16, shuffle=True, seed=0),
            train.from_arrays(xv, yv, batch_size=16))


class _StopAfter(keras.callbacks.Callback):
    """Simulates a crash at the start of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_fit_writes_history_checkpoint_and_restores_best(tmp_path):
    train_ds, val_ds = _datasets()
    model = _model()
    history = train.fit(model, train_ds, val_ds, epochs=4, run_dir=tmp_path, verbose=0)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "lr", "epoch_seconds"} <= set(
        history.columns)
    assert (history["epoch_seconds"] > 0).all()
    assert history["lr"].iloc[0] == pytest.approx(0.05)
    on_disk = pd.read_csv(tmp_path / "history.csv")
    pd.testing.assert_frame_equal(on_disk, history)
    # the model ends with the best epoch's weights
    val_loss = model.evaluate(val_ds, verbose=0)[0]
    assert val_loss == pytest.approx(history["val_loss"].min(), rel=1e-4)
    best = keras.models.load_model(tmp_path / "best.keras")
    assert best.evaluate(val_ds, verbose=0)[0] == pytest.approx(val_loss, rel=1e-4)
    assert not (tmp_path / "state.npz").exists()  # removed after a complete run
    assert not list(tmp_path.glob(".*tmp*")) and not list(tmp_path.glob(".best*"))
    assert train.best_epoch(history) == int(history["epoch"][history["val_loss"].idxmin()])


def test_interrupted_fit_resumes_to_the_same_epoch_count(tmp_path):
    train_ds, val_ds = _datasets()
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), train_ds, val_ds, epochs=5, run_dir=tmp_path, verbose=0,
                  callbacks=[_StopAfter(2)])
    assert len(pd.read_csv(tmp_path / "history.csv")) == 2
    assert (tmp_path / "state.npz").is_file() and (tmp_path / "best.keras").is_file()
    assert not (tmp_path / "done.json").exists()
    first_two = pd.read_csv(tmp_path / "history.csv")
    # a fresh process would build a fresh model: resume from the saved state
    history = train.fit(_model(), train_ds, val_ds, epochs=5, run_dir=tmp_path, verbose=0)
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(history.iloc[:2], first_two)
    loaded = keras.models.load_model(tmp_path / "best.keras")
    assert loaded.count_params() == _model().count_params()
    assert (tmp_path / "done.json").is_file()


def test_early_stopping_and_reduce_lr_on_a_plateau(tmp_path):
    train_ds, val_ds = _datasets()
    frozen = _model(trainable=False)  # val_loss never changes: a plateau from epoch 1
    history = train.fit(frozen, train_ds, val_ds, epochs=10, run_dir=tmp_path, verbose=0,
                        patience=2, reduce_lr_patience=1, reduce_lr_factor=0.5)
    assert len(history) == 3  # best at 1, no improvement at 2 and 3
    assert history["lr"].iloc[0] == pytest.approx(0.05)
    assert history["lr"].iloc[-1] < 0.05


def test_weights_checkpoint_and_accuracy_monitor(tmp_path):
    train_ds, val_ds = _datasets()
    model = _model()
    history = train.fit(model, train_ds, val_ds, epochs=2, run_dir=tmp_path, verbose=0,
                        monitor="val_accuracy", checkpoint="weights", backup=False)
    assert (tmp_path / "best.weights.h5").is_file() and not (tmp_path / "best.keras").exists()
    acc = model.evaluate(val_ds, verbose=0)[1]
    assert acc == pytest.approx(history["val_accuracy"].max())
    # a fresh (not resumed) run in the same folder starts a new history; best kept in memory
    again = train.fit(model, train_ds, val_ds, epochs=3, run_dir=tmp_path, verbose=0,
                      checkpoint="memory", backup=False)
    assert list(again["epoch"]) == [1, 2, 3] and not (tmp_path / "best.weights.h5").exists()
    assert model.evaluate(val_ds, verbose=0)[0] == pytest.approx(again["val_loss"].min(),
                                                                 rel=1e-4)


def test_bad_arguments_raise(tmp_path):
    train_ds, val_ds = _datasets()
    with pytest.raises(train.TrainingError, match="epochs must be"):
        train.fit(_model(), train_ds, val_ds, epochs=0, run_dir=tmp_path)
    with pytest.raises(train.TrainingError, match="checkpoint="):
        train.fit(_model(), train_ds, val_ds, epochs=1, run_dir=tmp_path, checkpoint="all")
    with pytest.raises(train.TrainingError, match="no training history"):
        train.read_history(tmp_path / "nothing")


def test_predict_classes_and_labels():
    x, y = _data(20)
    model = _model()
    ds = train.from_arrays(x, keras.utils.to_categorical(y, 2), batch_size=8)
    np.testing.assert_array_equal(train.labels_of(ds), y)
    pred = train.predict_classes(model, ds)
    np.testing.assert_array_equal(pred, model.predict(x, verbose=0).argmax(-1))
    sigmoid = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
    out = train.predict_classes(sigmoid, train.from_arrays(x, batch_size=8))
    np.testing.assert_array_equal(out, (sigmoid.predict(x, verbose=0)[:, 0] > 0.5))


def test_precision_and_strategy_on_cpu():
    try:
        assert train.configure_precision() == "float32"  # no GPU here
        assert keras.mixed_precision.global_policy().name == "float32"
        assert train.configure_precision(force="mixed_float16") == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert train.distribution_strategy().num_replicas_in_sync == 1



def test_make_optimizer_by_name():
    opt = train.make_optimizer("Adamax", 0.001)
    assert type(opt).__name__ == "Adamax"
    assert float(opt.learning_rate) == pytest.approx(0.001)
    assert type(train.make_optimizer("SGD", 0.01)).__name__ == "SGD"
    with pytest.raises(train.TrainingError, match="unknown optimizer 'Nope'"):
        train.make_optimizer("Nope", 0.1)
