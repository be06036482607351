import types

import numpy as np
import pandas as pd
import pytest
from medrepro.models import brain_mri as mm
from medrepro.studies import e
from medrepro.studies.mri_common import ImageSplit
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


def _with_root(result, root):
    import dataclasses

    ds = types.SimpleNamespace(source="phantom", label="Masoud (phantom)", root=root)
    return dataclasses.replace(result, data=dataclasses.replace(result.data, ds=ds))


def test_xai_score_without_masks_says_not_scored(result, tmp_path):
    import matplotlib.pyplot as plt

    score = e.score_explanations(_with_root(result, tmp_path), image_size=16, ig_steps=2,
                                 n_boot=50, seed=0)
    table = e.xai_score_table(score)
    assert list(table["method"]) == list(e.XAI_METHODS)
    assert (table["status"] == "not scored: Masoud (phantom) has no lesion masks").all()
    assert "hit_rate" not in table
    plt.close(e.xai_score_figure(score))


def test_xai_score_scores_the_correct_tumour_images_against_their_masks(result, tmp_path):
    import matplotlib.pyplot as plt
    from medrepro.data.phantoms._masks import MaskCollector

    store = MaskCollector()
    lesion = np.zeros((20, 20), dtype=bool)
    lesion[5:10, 5:10] = True
    for i, path in enumerate(result.data.images["path"]):
        empty = i == 7  # a correct pituitary image whose lesion is not drawn: left out, counted
        store.add(f"{i}.png", lesion=lesion & (not empty), region=np.ones((20, 20), dtype=bool))
    store.save(tmp_path)
    score = e.score_explanations(_with_root(result, tmp_path), image_size=16, ig_steps=2,
                                 n_boot=50, seed=0)
    table = e.xai_score_table(score).set_index("method")
    # test rows 4-7: labels 0 1 2 3, predicted 0 1 3 3 -> 4, 5, 7 correct tumours; 7 empty
    assert (table["n_correct_tumour"] == 3).all() and (table["n_empty_mask"] == 1).all()
    assert (table["n_scored"] == 2).all() and (table["status"] == e.SCORED).all()
    assert score.masks.shape == (2, 16, 16) and score.masks[0, 5, 5] and not score.masks[0, 12, 12]
    assert table["hit_rate"].between(0, 1).all()
    assert table["chance_brain"].to_numpy() == pytest.approx(table["chance_image"].to_numpy())
    plt.close(e.xai_score_figure(score))
