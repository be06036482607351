"""medrepro.overview: the 01_download figures draw what the inventory says."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from medrepro import overview, registry


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
    a = overview.sample_files(root, "brain_tumor_sartaj", per_class=2, seed=1)
    assert a == overview.sample_files(root, "brain_tumor_sartaj", per_class=2, seed=1)
    assert [len(v) for v in a.values()] == [2, 2, 2, 2]
    few = overview.sample_files(root, "brain_tumor_sartaj", split="Testing", per_class=3)
    assert [len(v) for v in few.values()] == [1, 2, 3, 3]
    fig = overview.plot_samples(root, "brain_tumor_sartaj", source="phantom", per_class=2)
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
    fig = overview.plot_split_counts(inv, "brain_tumor_sartaj", source="phantom")
    assert [p.get_height() for p in fig.axes[0].patches] == [5, 2]
    fig = overview.plot_class_counts(inv, "brain_tumor_sartaj", split="Testing", source="phantom")
    assert [p.get_height() for p in fig.axes[0].patches] == [0, 0, 2, 0]
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "2\n(official 105)" in labels
