"""medrepro.reporting.plots: every figure draws what its data says (01 overviews, evaluation, maps, volumes)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import pandas as pd
from PIL import Image

from medrepro.analysis import evaluate
from medrepro.reporting import plots
from medrepro.data import registry


def _layout(root, n=(3, 1)):
    sp = registry.spec("brain_tumor_sartaj")
    for split, k in zip(sp.splits, n):
        for c, cls in enumerate(sp.classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(k + c):
                Image.fromarray(np.full((8, 8, 3), 40 * c, np.uint8)).save(
                    root / split / cls / f"{i}.jpg")
    return root


def test_sample_files_are_seeded_and_bounded(tmp_path):
    root = _layout(tmp_path / "s")
    a = plots.sample_files(root, "brain_tumor_sartaj", per_class=2, seed=1)
    assert a == plots.sample_files(root, "brain_tumor_sartaj", per_class=2, seed=1)
    assert [len(v) for v in a.values()] == [2, 2, 2, 2]
    few = plots.sample_files(root, "brain_tumor_sartaj", split="Testing", per_class=3)
    assert [len(v) for v in few.values()] == [1, 2, 3, 3]
    fig = plots.plot_samples(root, "brain_tumor_sartaj", source="phantom", per_class=2)
    assert len(fig.axes) == 8 and "PHANTOM" in fig._suptitle.get_text()


def test_count_plots_use_the_rows_actually_used(tmp_path):
    inv = pd.DataFrame([
        # real data found but not used must not be drawn
        {"dataset": "brain_tumor_sartaj", "split": "Testing", "class": "no_tumor", "files": 99,
         "source": "brain_tumor_sartaj", "status": "found, not used"},
        {"dataset": "brain_tumor_sartaj", "split": "Training", "class": "no_tumor", "files": 5,
         "source": "phantom", "status": "used"},
        {"dataset": "brain_tumor_sartaj", "split": "Testing", "class": "no_tumor", "files": 2,
         "source": "phantom", "status": "used"},
    ])
    fig = plots.plot_split_counts(inv, "brain_tumor_sartaj", source="phantom")
    assert [p.get_height() for p in fig.axes[0].patches] == [5, 2]
    fig = plots.plot_class_counts(inv, "brain_tumor_sartaj", split="Testing", source="phantom")
    assert [p.get_height() for p in fig.axes[0].patches] == [0, 0, 2, 0]
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "2\n(official 105)" in labels


def test_plots_return_figures():
    cm = np.array([[3, 1], [0, 4]])
    fig = plots.plot_confusion(cm, labels=["a", "b"], title="counts")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3", "1", "0", "4"]
    history = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [0.5, 0.6, 0.7],
                            "val_accuracy": [0.4, 0.5, 0.55]})
    fig2 = plots.plot_history(history, metric="accuracy")
    assert len(fig2.axes[0].lines) == 2
    with pytest.raises(evaluate.EvaluationError, match="no column 'loss'"):
        plots.plot_history(history, metric="loss")
    images = np.random.default_rng(0).random((6, 8, 8))
    fig3 = plots.plot_predictions(images, [0, 1, 0, 1, 0, 1], [0, 1, 1, 1, 0, 0],
                                     labels=["a", "b"], n=4)
    assert sum(ax.has_data() for ax in fig3.axes) == 4
    plt.close("all")


def test_overlay_is_rgb_in_unit_range():
    rgb = plots.overlay(np.arange(64.0).reshape(8, 8), np.linspace(0, 1, 64).reshape(8, 8))
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1


def test_montage_tiles_slices_row_by_row():
    vol = np.broadcast_to(np.arange(5, dtype=np.float32), (2, 3, 5))
    m = plots.montage(vol, cols=2, gap=1)
    assert m.shape == (3 * 3, 2 * 4)
    assert m[0, 0] == 0 and m[0, 4] == 1 and m[3, 0] == 2 and m[6, 0] == 4
    assert np.isnan(m[6, 4]) and np.isnan(m[2, 0])  # unused tile, gap row


def test_scenario_confusions_show_rates_by_true_class_with_counts():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1])
    fig = plots.plot_confusions({"aug_5": {"train": {"y": y, "pred": pred}}}, splits=("train",))
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), [[0.75, 0.25], [0.0, 1.0]])
    assert sorted(t.get_text() for t in ax.texts) == ["0.00\n(0)", "0.25\n(1)", "0.75\n(3)",
                                                    "1.00\n(2)"]
    plt.close(fig)
