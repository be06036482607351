import types

import numpy as np
import pandas as pd
import pytest
from medrepro.data import brain_mri
from medrepro.studies import mri_common


def _images():
    return pd.DataFrame({"path": [f"/x/{s}/{i}.jpg" for i, s in
                                  enumerate(["Training"] * 40 + ["Testing"] * 20)],
                         "split": ["Training"] * 40 + ["Testing"] * 20,
                         "label": np.arange(60) % 4})


def test_split_images_paper_and_official():
    ds = types.SimpleNamespace(source="phantom")
    paper = mri_common.split_images(ds, _images(), split="paper", seed=0)
    assert len(paper.test) == 12 and len(paper.fit) + len(paper.val) == len(paper.train) == 48
    official = mri_common.split_images(ds, _images(), split="official", seed=0)
    assert (official.test["split"] == "Testing").all() and len(official.train) == 40
    assert set(official.fit.index) | set(official.val.index) == set(official.train.index)
    assert official.source == "phantom"
    with pytest.raises(ValueError, match="split='random': expected 'paper' or 'official'"):
        mri_common.split_images(ds, _images(), split="random", seed=0)


def test_record_duplicate_free_skips_an_empty_set(monkeypatch):
    recorded = []
    monkeypatch.setattr(mri_common.report, "record_metric", lambda *a, **k: recorded.append((a, k)))
    table = pd.DataFrame([{"test set": "all", "n_test": 4, "dropped": 0, "accuracy": 0.5,
                           "accuracy_lo": 0.1, "accuracy_hi": 0.9},
                          {"test set": "duplicate-free", "n_test": 0, "dropped": 4,
                           "accuracy": np.nan, "accuracy_lo": np.nan, "accuracy_hi": np.nan}])
    mri_common.record_duplicate_free("C", table, {"acc": "accuracy"}, source="phantom",
                               artifact="C.leakage", notes="n")
    assert recorded == []
    table.loc[1, ["n_test", "accuracy", "accuracy_lo", "accuracy_hi"]] = 3, 0.6, 0.2, 0.8
    mri_common.record_duplicate_free("C", table, {"acc": "accuracy"}, source="phantom",
                               artifact="C.leakage", notes="n")
    (args, kwargs), = recorded
    assert args[1].endswith(mri_common.results.DUPLICATE_FREE) and kwargs["ci"] == (0.2, 0.8)
    assert kwargs["n"] == 3 and kwargs["extra"] == {"dropped": 4}


def test_leakage_rows_drop_the_duplicated_test_image(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj")
    train, test = brain_mri.official_split(frame)
    groups = brain_mri.find_groups(frame, near=False)
    y = test["label"].to_numpy()
    dup = test.index.get_indexer(test.index[test["path"] == sartaj / "Testing" / "glioma_tumor"
                                             / "im (0).jpg"])[0]
    pred = y.copy()
    pred[np.arange(len(y)) != dup] = (y[np.arange(len(y)) != dup] + 1) % 4  # only the copy right
    rows = mri_common.leakage_rows(train, test, {"m": pred}, groups, split="official", n_boot=50, seed=0)
    whole, free = rows
    assert (whole["test set"], whole["dropped"], whole["n_test"]) == ("all", 0, 20)
    assert (free["test set"], free["dropped"], free["n_test"]) == ("duplicate-free", 1, 19)
    assert whole["accuracy"] == pytest.approx(1 / 20) and free["accuracy"] == 0.0
    # Every test image duplicated: the duplicate-free row is empty, not an error.
    everything = [[p] + [q] for p, q in zip(test["path"], train["path"])]
    empty = mri_common.leakage_rows(train, test, {"m": pred}, everything, split="x", n_boot=10, seed=0)
    assert empty[1]["n_test"] == 0 and np.isnan(empty[1]["accuracy"])


def test_run_identity_changes_with_the_images_and_the_size(tmp_path):
    import os

    files = []
    for i in range(12):
        f = tmp_path / f"{i}.jpg"
        f.write_bytes(b"x" * (i + 1))
        files.append(f)
    frame = pd.DataFrame({"path": files, "split": ["Training"] * 8 + ["Testing"] * 4,
                          "label": np.arange(12) % 4})
    data = mri_common.split_images(types.SimpleNamespace(source="phantom"), frame, split="official",
                             seed=0)
    base = mri_common.run_identity(data, image_size=64)
    assert base == mri_common.run_identity(data, image_size=64)  # the same images: reused
    assert base != mri_common.run_identity(data, image_size=128)
    assert base != mri_common.run_identity(data, image_size=64, framing="head")
    assert base != mri_common.run_identity(data, image_size=64, augment={"gamma": 0.4})
    fit_file = data.fit["path"].iloc[0]
    st = fit_file.stat()  # a regenerated training image: same name, newer file
    os.utime(fit_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert mri_common.run_identity(data, image_size=64)["images"] != base["images"]
