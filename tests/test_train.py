import keras
import numpy as np
import pandas as pd
import pytest
from medrepro.data import pipeline
from medrepro.training import train


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
    return (pipeline.from_arrays(x, y, batch_size=16, shuffle=True, seed=0),
            pipeline.from_arrays(xv, yv, batch_size=16))


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
    history = train.fit(model, train_ds, val_ds, train.FitConfig(epochs=4), run_dir=tmp_path,
                        verbose=0)
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
        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=5), run_dir=tmp_path,
                  verbose=0, callbacks=[_StopAfter(2)])
    assert len(pd.read_csv(tmp_path / "history.csv")) == 2
    assert (tmp_path / "state.npz").is_file() and (tmp_path / "best.keras").is_file()
    assert not (tmp_path / "done.json").exists()
    first_two = pd.read_csv(tmp_path / "history.csv")
    # a fresh process would build a fresh model: resume from the saved state
    history = train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=5), run_dir=tmp_path,
                        verbose=0)
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(history.iloc[:2], first_two)
    loaded = keras.models.load_model(tmp_path / "best.keras")
    assert loaded.count_params() == _model().count_params()
    assert (tmp_path / "done.json").is_file()


def test_early_stopping_and_reduce_lr_on_a_plateau(tmp_path):
    train_ds, val_ds = _datasets()
    frozen = _model(trainable=False)  # val_loss never changes: a plateau from epoch 1
    history = train.fit(frozen, train_ds, val_ds,
                        train.FitConfig(epochs=10, patience=2, reduce_lr_patience=1,
                                        reduce_lr_factor=0.5),
                        run_dir=tmp_path, verbose=0)
    assert len(history) == 3  # best at 1, no improvement at 2 and 3
    assert history["lr"].iloc[0] == pytest.approx(0.05)
    assert history["lr"].iloc[-1] < 0.05


def test_early_stopping_warm_up_ignores_the_first_epochs(tmp_path):
    train_ds, val_ds = _datasets()
    frozen = _model(trainable=False)  # a plateau from epoch 1: patience 2 alone stops at 3
    history = train.fit(frozen, train_ds, val_ds,
                        train.FitConfig(epochs=10, patience=2, stop_from_epoch=4), run_dir=tmp_path,
                        verbose=0)
    assert len(history) == 7  # epochs 1-4 unwatched; best at 5, no improvement at 6 and 7


def test_weights_checkpoint_and_accuracy_monitor(tmp_path):
    train_ds, val_ds = _datasets()
    model = _model()
    history = train.fit(model, train_ds, val_ds,
                        train.FitConfig(epochs=2, monitor="val_accuracy", checkpoint="weights",
                                        backup=False),
                        run_dir=tmp_path, verbose=0)
    assert (tmp_path / "best.weights.h5").is_file() and not (tmp_path / "best.keras").exists()
    acc = model.evaluate(val_ds, verbose=0)[1]
    assert acc == pytest.approx(history["val_accuracy"].max())
    # a fresh (not resumed) run in the same folder starts a new history; best kept in memory
    again = train.fit(model, train_ds, val_ds,
                      train.FitConfig(epochs=3, checkpoint="memory", backup=False),
                      run_dir=tmp_path, verbose=0)
    assert list(again["epoch"]) == [1, 2, 3] and not (tmp_path / "best.weights.h5").exists()
    assert model.evaluate(val_ds, verbose=0)[0] == pytest.approx(again["val_loss"].min(),
                                                                 rel=1e-4)


def test_bad_arguments_raise(tmp_path):
    train_ds, val_ds = _datasets()
    with pytest.raises(train.TrainingError, match="epochs must be"):
        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=0), run_dir=tmp_path)
    with pytest.raises(train.TrainingError, match="checkpoint="):
        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=1, checkpoint="all"),
                  run_dir=tmp_path)
    with pytest.raises(train.TrainingError, match="no training history"):
        train.read_history(tmp_path / "nothing")


def test_predict_classes():
    x, y = _data(20)
    model = _model()
    ds = pipeline.from_arrays(x, keras.utils.to_categorical(y, 2), batch_size=8)
    pred = train.predict_classes(model, ds)
    np.testing.assert_array_equal(pred, model.predict(x, verbose=0).argmax(-1))
    sigmoid = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
    out = train.predict_classes(sigmoid, pipeline.from_arrays(x, batch_size=8))
    np.testing.assert_array_equal(out, (sigmoid.predict(x, verbose=0)[:, 0] > 0.5))


def test_make_optimizer_by_name():
    opt = train.make_optimizer("Adamax", 0.001)
    assert type(opt).__name__ == "Adamax"
    assert float(opt.learning_rate) == pytest.approx(0.001)
    assert type(train.make_optimizer("SGD", 0.01)).__name__ == "SGD"
    with pytest.raises(train.TrainingError, match="unknown optimizer 'Nope'"):
        train.make_optimizer("Nope", 0.1)


# ---------------------------------------------------------------------------- exact resume
def _resume_job():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("resume_job",
                                                  Path(__file__).with_name("resume_job.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    job = _resume_job()
    run_dir = tmp_path_factory.mktemp("reference")
    model, history = job.run(run_dir)
    # the scenario must contain what the kills target: an LR cut, then early stopping
    assert history["lr"].is_monotonic_decreasing and history["lr"].nunique() >= 2
    assert len(history) < job.EPOCHS
    return job, run_dir, model, history


def _lr_cut_epoch(history) -> int:
    """The 1-based epoch at whose end ReduceLROnPlateau first lowered the learning rate."""
    lr = history["lr"].to_numpy()
    return int(history["epoch"].iloc[int(np.argmax(lr[1:] < lr[:-1]))])


@pytest.mark.parametrize("when, where", [("end", "lr_cut"), ("begin", "before_stop"),
                                         ("trainend", "stop")])
def test_sigkilled_fit_resumes_exactly(uninterrupted, tmp_path, when, where):
    import json
    import subprocess
    import sys
    from pathlib import Path

    job, ref_dir, ref_model, ref = uninterrupted
    epoch = {"lr_cut": _lr_cut_epoch(ref), "before_stop": len(ref) - 1, "stop": 0}[where]
    script = Path(__file__).with_name("resume_job.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), when, str(epoch)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILLed, nothing cleaned up
    assert (tmp_path / "state.npz").is_file() and not (tmp_path / "done.json").exists()
    killed = pd.read_csv(tmp_path / "history.csv")
    assert len(killed) == (len(ref) if when == "trainend" else epoch)

    model, history = job.run(tmp_path)  # the same command again
    columns = [c for c in ref.columns if c != "epoch_seconds"]
    assert list(history.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(history[columns], ref[columns], check_exact=False,
                                  atol=1e-6, rtol=0)
    on_disk = pd.read_csv(tmp_path / "history.csv")
    pd.testing.assert_frame_equal(on_disk[columns], ref[columns], check_exact=False, atol=1e-6,
                                  rtol=0)
    done, ref_done = (json.loads((d / "done.json").read_text()) for d in (tmp_path, ref_dir))
    assert done["best_epoch"] == ref_done["best_epoch"] == train.best_epoch(ref)
    assert done["stopped_early_at"] == ref_done["stopped_early_at"] == len(ref)
    for got, want in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    best = keras.models.load_model(tmp_path / "best.keras")
    ref_best = keras.models.load_model(ref_dir / "best.keras")
    for got, want in zip(best.get_weights(), ref_best.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert not (tmp_path / "state.npz").exists()


@pytest.mark.parametrize("job", ["C", "E", "D"])
def test_sigkilled_augmented_fit_resumes_exactly(tmp_path, job):
    # the augmentation draws from (seed, optimizer step): the epochs after the resume see the
    # augmentations the uninterrupted run saw (a generator restarted from its seed would not)
    import subprocess
    import sys
    from pathlib import Path

    from medrepro.data import pipeline

    module = _resume_job()
    assert pipeline.augment_of(module.data(job)[0]) is not None
    ref_model, ref = module.run(tmp_path / "reference", job=job)
    script = Path(__file__).with_name("resume_job.py")
    killed_dir = tmp_path / "killed"
    proc = subprocess.run([sys.executable, str(script), str(killed_dir), "begin", "3", job],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert len(pd.read_csv(killed_dir / "history.csv")) == 3
    model, history = module.run(killed_dir, job=job)
    columns = [c for c in ref.columns if c != "epoch_seconds"]
    assert len(ref) == module.AUGMENTED_EPOCHS or ref["lr"].nunique() > 1
    pd.testing.assert_frame_equal(history[columns], ref[columns], check_exact=False, atol=1e-6,
                                  rtol=0)
    for got, want in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_a_fast_dev_run_cuts_every_fit_and_kills_one_once(tmp_path, monkeypatch):
    # two epochs of two steps; the first fit with a saved state is SIGKILLed after a step of
    # epoch 2 (a session's end), and the same call again resumes it at epoch 2
    import os
    import subprocess
    import sys
    from pathlib import Path

    from medrepro.core import devrun

    module = _resume_job()
    marker = tmp_path / "kill.json"
    env = {**os.environ, devrun.ENV: "1", devrun.KILL_ENV: str(marker)}
    script = Path(__file__).with_name("resume_job.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), "never", "0", "C"],
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == -9, proc.stderr[-2000:]
    record = devrun.read_marker(marker)
    assert record["killed_run"] == str(tmp_path / "run") and record["killed_in_epoch"] == 2
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 1
    monkeypatch.setenv(devrun.ENV, "1")
    monkeypatch.setenv(devrun.KILL_ENV, str(marker))
    model, history = module.run(tmp_path / "run", job="C")  # resumes; no second kill
    assert len(history) == devrun.EPOCHS < module.AUGMENTED_EPOCHS
    assert int(model.optimizer.iterations.numpy()) == devrun.EPOCHS * devrun.STEPS
    record = devrun.read_marker(marker)
    assert record["resumed_run"] == str(tmp_path / "run") and record["resumed_at_epoch"] == 2
    _, again = module.run(tmp_path / "again", job="C")  # a later fit: cut, not killed
    assert len(again) == devrun.EPOCHS
    monkeypatch.delenv(devrun.ENV)
    assert not devrun.active() and devrun.kill_marker() is None


def test_unreadable_state_names_the_file(tmp_path):
    (tmp_path / "state.npz").write_bytes(b"not a zip")
    train_ds, val_ds = _datasets()
    from medrepro.training import callbacks

    with pytest.raises(callbacks.ResumeError, match="state.npz: unreadable training state"):
        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=2), run_dir=tmp_path,
                  verbose=0)


# ---------------------------------------------------------------------------- fit_once
def test_fit_once_reuses_a_finished_run_and_resumes_an_interrupted_one(tmp_path, monkeypatch):
    train_ds, val_ds = _datasets()
    first = _model()
    history = train.fit_once(first, train_ds, val_ds, train.FitConfig(epochs=3),
                             run_dir=tmp_path / "a", verbose=0, identity={"n": 64})
    assert history.attrs["reused"] is False
    weights = first.get_weights()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    with monkeypatch.context() as m:
        m.setattr(train, "fit", no_training)
        again = _model()
        reused = train.fit_once(again, train_ds, val_ds, train.FitConfig(epochs=3),
                                run_dir=tmp_path / "a", verbose=0, identity={"n": 64})
    assert reused.attrs["reused"] is True
    pd.testing.assert_frame_equal(reused, history)
    for got, want in zip(again.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    # another configuration in the same folder is trained afresh, not reused
    other = train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=2),
                           run_dir=tmp_path / "a", verbose=0, identity={"n": 64})
    assert other.attrs["reused"] is False and list(other["epoch"]) == [1, 2]

    # interrupted after two epochs: the same call again finishes the run, as if never stopped
    with pytest.raises(KeyboardInterrupt):
        train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                       run_dir=tmp_path / "b", verbose=0, callbacks=[_StopAfter(2)])
    assert not train.is_done(tmp_path / "b")
    resumed = train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                             run_dir=tmp_path / "b", verbose=0)
    whole = train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                           run_dir=tmp_path / "c", verbose=0)
    cols = [c for c in whole.columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols], check_exact=False, atol=1e-6)
    assert train.read_done(tmp_path / "b")["epochs_run"] == 4


def test_fit_once_without_a_checkpoint_keeps_the_final_weights(tmp_path):
    train_ds, val_ds = _datasets()
    model = _model()
    train.fit_once(model, train_ds, val_ds,
                   train.FitConfig(epochs=2, checkpoint="memory", backup=False), run_dir=tmp_path,
                   verbose=0)
    assert (tmp_path / "final.weights.h5").is_file()
    again = _model()
    assert train.fit_once(again, train_ds, val_ds,
                          train.FitConfig(epochs=2, checkpoint="memory", backup=False),
                          run_dir=tmp_path, verbose=0).attrs["reused"]
    for got, want in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_runs_dir_separates_sources_profiles_and_seeds(monkeypatch, tmp_path):
    from medrepro.core import paths

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path))
    phantom = paths.runs_dir("04_lightweight_ct", profile="paper", source="phantom", seed=42)
    real = paths.runs_dir("04_lightweight_ct", profile="paper", source="rsna_ich", seed=42)
    assert phantom != real and phantom.parent == real.parent == tmp_path / "runs" / \
        "04_lightweight_ct"
    assert real.name == "paper-rsna_ich-seed42"
    assert paths.runs_dir("x", profile="demo", source="a/b", seed=1).name == "demo-a_b-seed1"


def test_seed_runs_lists_the_seeds_that_ran(monkeypatch, tmp_path):
    from medrepro.core import paths

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path))
    for seed in (42, 7, 100):
        paths.runs_dir("05_x", profile="demo", source="phantom", seed=seed).mkdir(parents=True)
    paths.runs_dir("05_x", profile="smoke", source="phantom", seed=1).mkdir(parents=True)
    paths.runs_dir("05_x", profile="demo", source="mosmed", seed=1).mkdir(parents=True)
    (tmp_path / "runs" / "05_x" / "demo-phantom-seedX").mkdir()
    here = paths.runs_dir("05_x", profile="demo", source="phantom", seed=42)
    found = paths.seed_runs(here)
    assert list(found) == [7, 42, 100]
    assert found[7] == paths.runs_dir("05_x", profile="demo", source="phantom", seed=7)
    assert list(paths.seed_runs(here.parent / "paper-phantom-seed1")) == []
    with pytest.raises(ValueError, match="not a runs folder"):
        paths.seed_runs(tmp_path / "elsewhere")
