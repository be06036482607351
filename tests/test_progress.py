"""medrepro.core.progress: epoch lines with ETA, durations, bars."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.data import pipeline
from medrepro.core import progress
from medrepro.training import train


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (42, "42 s"), (590, "9 min 50 s"),
                                           (7500, "2 h 05 min")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_epoch_line_shows_scalar_metrics_and_eta():
    line = progress.epoch_line(3, 50, {"loss": 0.41234, "val_accuracy": 0.8, "learning_rate": 1e-3,
                                       "confusion": [[1, 2]]}, 12.34, 590)
    assert line == "epoch 3/50: loss 0.4123, val_accuracy 0.8 | 12.3 s/epoch, ETA 9 min 50 s"
    assert progress.epoch_line(2, 2, {}, 1.0, None).endswith("done")


def test_fit_prints_one_line_per_epoch_with_eta(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(16) % 2]
    ds = pipeline.from_arrays(x, y, batch_size=8)
    train.fit(model, ds, ds, train.FitConfig(epochs=3, backup=False), run_dir=tmp_path, verbose=0)
    out = capsys.readouterr().out
    assert "1 replica(s) (single device), dtype policy float32" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "ETA" in lines[0] and "val_loss" in lines[0] and lines[-1].endswith("done")


def test_bar_is_text_when_headless_and_skipped_for_tiny_loops(monkeypatch, capsys):
    monkeypatch.setenv(progress.HEADLESS_ENV, "1")
    assert progress.bar([1]) == [1]
    items = list(progress.bar(range(3), desc="audit"))
    assert items == [0, 1, 2]
    assert "audit" in capsys.readouterr().err
