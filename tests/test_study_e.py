import types

import numpy as np
import pandas as pd
import pytest
from medrepro.models import mri as mm
from medrepro.studies import e
from medrepro.studies._mri import ImageSplit
from PIL import Image


@pytest.fixture
def result(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        f = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(f)
        paths.append(str(f))
    images = pd.DataFrame({"path": paths, "label": np.arange(8) % 4})
    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)")
    data = ImageSplit(ds, images, images.iloc[:4], images.iloc[4:], images.iloc[:3],
                      images.iloc[3:4], note="data: Masoud (phantom)")
    history = pd.DataFrame({"accuracy": [0.3], "loss": [1.2], "val_accuracy": [0.25],
                            "val_loss": [1.3]})
    return e.Result(data, mm.xai_cnn((16, 16, 3)), history, 1.25, 0.5,
                    np.array([0, 1, 3, 3]))


def test_explanation_maps_are_finite_and_image_shaped(result):
    expl = e.explanation_maps(result, image_size=16, ig_steps=4)
    assert expl.images.shape == (4, 16, 16, 3)
    assert expl.titles[2] == "no tumour / pred pituitary"
    assert set(expl.maps) == set(e.MAPS)
    assert all(m.shape == (4, 16, 16) and np.isfinite(m).all() for m in expl.maps.values())


def test_table1_notes_and_leakage(result):
    ci = {"accuracy_lo": 0.1, "accuracy_hi": 0.9}
    notes = e.table1_notes(result, ci)
    assert "test accuracy 0.5000 (95% CI 0.100-0.900), test loss 1.2500, n = 4" in notes
    leak = e.leakage(result, [], n_boot=20, seed=0)
    assert list(leak["split"].unique()) == ["paper (pooled 80/20)"]
    assert leak.iloc[0]["accuracy"] == pytest.approx(0.75)
