"""medrepro.data.images: the one rule for a user's MRI folder, and every reader that uses it."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bad_files import USED, picture, write_image_corpus
from medrepro.data import audit, brain_mri, datasets, images, registry
from medrepro.reporting import plots

SARTAJ = "brain_tumor_sartaj"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A Sartaj layout: 6 good images per class and split, the corpus in Training/glioma."""
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    root = tmp_path / "My data (copy) é" / SARTAJ
    for split in brain_mri.SPLITS:
        for k, cls in enumerate(brain_mri.CLASS_DIRS[SARTAJ]):
            (root / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(picture(10 * k + i)).save(root / split / cls / f"gg ({i}).jpg")
    expected = write_image_corpus(root / "Training" / "glioma_tumor")
    return root, expected


def test_scan_uses_or_skips_each_file_with_its_reason(corpus):
    root, expected = corpus
    found = images.scan(root, SARTAJ)
    glioma = root / "Training" / "glioma_tumor"
    skipped = {p.name: problem for p, problem in zip(found.skipped["path"],
                                                     found.skipped["problem"])}
    assert skipped == {n: p for n, p in expected.items() if p is not USED}
    used = {p.name for p in found.images["path"] if p.parent == glioma}
    assert used == {n for n, p in expected.items() if p is USED} | {
        f"gg ({i}).jpg" for i in range(6)}
    assert ".DS_Store" not in skipped  # hidden names are not looked at
    assert len(found.images) == 6 * 8 + sum(p is USED for p in expected.values())
    bomb = found.skipped.set_index(found.skipped["path"].map(lambda p: p.name)).loc[
        "bomb (1).png", "detail"]
    assert "10000000000 pixels" in bomb.replace(",", "")
    table = images.skips_table(found.skipped, n_files=len(found.images) + len(found.skipped))
    assert table.set_index("problem").loc["broken link", "files"] == 2
    assert table.iloc[-1].to_dict()["files"] == len(found.skipped)


def test_every_used_file_decodes_in_tf_data_as_it_should(corpus):
    root, _ = corpus
    frame = brain_mri.list_images(root, SARTAJ)
    x = brain_mri.load_images(frame, image_size=16)  # tf.data over every file the rule keeps
    assert x.shape == (len(frame), 16, 16, 3) and np.isfinite(x).all()
    glioma = root / "Training" / "glioma_tumor"
    want = picture(0).astype(np.float64)
    read = {name: brain_mri.load_images(pd.DataFrame({"path": [glioma / name]}),
                                        image_size=40, framing="stretch") for name in
            ("png inside (1).jpg", "bmp inside (1).jpg", "sixteen bit (1).png",
             "alpha (1).png", "cmyk (1).jpg", "animated (1).jpg")}
    small = np.asarray(Image.fromarray(picture(0)).resize((40, 40), Image.BILINEAR),
                       dtype=np.float64) / 255
    for name, arr in read.items():  # the picture itself, not its alpha, palette or bit depth
        assert np.abs(arr[0].mean(-1) - small).mean() < 0.02, name
    assert want.std() > 10  # a picture with contrast, so the comparison above could fail


def test_decode_files_refuses_files_the_rule_skips(corpus):
    root, _ = corpus
    bad = [root / "Training" / "glioma_tumor" / n for n in ("truncated (1).jpg", "notes (1).jpg")]
    with pytest.raises(brain_mri.MriDataError,
                       match=r"2 of 3 files cannot be decoded: .*truncated \(1\)\.jpg "
                             r"\(truncated or corrupt"):
        brain_mri.decode_files([root / "Testing" / "no_tumor" / "gg (0).jpg", *bad],
                               image_size=8)


def test_checks_are_remembered_and_redone_when_a_file_changes(corpus, monkeypatch):
    root, _ = corpus
    target = root / "Testing" / "no_tumor" / "gg (1).jpg"
    assert images.check_files([target])["problem"].tolist() == [""]
    stored = pd.read_csv(images.checks_path(), keep_default_na=False)
    assert str(target) in set(stored["path"])
    images._memo.clear()  # a new process: the CSV answers, nothing is decoded
    monkeypatch.setattr(images, "check_image", lambda p: pytest.fail(f"decoded {p} again"))
    assert images.check_files([target])["problem"].tolist() == [""]
    monkeypatch.undo()
    target.write_bytes(b"")  # changed: size and mtime differ, so it is checked again
    assert images.check_files([target])["problem"].tolist() == ["empty file"]
    images.checks_path().write_text("garbled,\x00\n")  # a damaged record is redone, not trusted
    images._memo.clear()
    assert images.check_files([target])["problem"].tolist() == ["empty file"]


def test_too_large_by_pillows_own_limit(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # 40×48 = 1920: over, under 2×
    Image.fromarray(picture(1)).save(tmp_path / "big.png")
    assert images.check_image(tmp_path / "big.png") == (
        "too large", "declares 48×40 = 1,920 pixels, over Pillow's MAX_IMAGE_PIXELS (1,000): a "
                     "decompression bomb?")


def test_inventory_audit_and_sample_figure_use_the_same_rule(corpus):
    root, expected = corpus
    n_bad = sum(p is not USED for p in expected.values())
    rows = pd.DataFrame(datasets.count_files(root, registry.spec(SARTAJ))).set_index(
        ["split", "class"])
    assert rows.loc[("Training", "glioma_tumor"), "skipped"] == n_bad
    assert rows.loc[("Training", "glioma_tumor"), "files"] == 6 + sum(
        p is USED for p in expected.values())
    assert "empty file 1" in rows.loc[("Training", "glioma_tumor"), "skipped_why"]
    assert rows["skipped"].sum() == n_bad
    result = audit.audit_dataset(root, SARTAJ, near=True)
    assert len(result.skipped) == n_bad
    assert result.n_files == 6 * 8 + len(expected)
    assert any("folder (1).jpg" in str(p) and why.startswith("not a file")
               for p, why in result.skipped)
    picks = plots.sample_files(root, SARTAJ, per_class=12, seed=0)
    assert not {p.name for p in picks["glioma_tumor"]} & {
        n for n, p in expected.items() if p is not USED}


def test_a_class_left_too_small_names_dataset_class_and_counts(tmp_path, monkeypatch):
    from medrepro.data.datasets import ResolvedDataset
    from medrepro.reporting import report
    from medrepro.studies import mri_common

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    root = tmp_path / SARTAJ
    for split in brain_mri.SPLITS:
        for k, cls in enumerate(brain_mri.CLASS_DIRS[SARTAJ]):
            (root / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(picture(k + i)).save(root / split / cls / f"gg ({i}).jpg")
    for i in range(6):  # every Testing glioma broken: that class has none left there
        (root / "Testing" / "glioma_tumor" / f"gg ({i}).jpg").write_bytes(b"")
    ds = ResolvedDataset(SARTAJ, root, source=SARTAJ, is_phantom=False, origin="folder")
    report.start_run("03_lstm_cnn_mri", profile="smoke", seed=1, reports_root=tmp_path / "r")
    frame = mri_common.list_subsample(ds, 41, seed=1)  # 42 usable: fewer dropped than strata
    assert len(frame) == 41 and frame.attrs["skipped"] == {"Testing/glioma_tumor": 6}
    record = json.loads((tmp_path / "r" / "smoke" / "skips" / "03_lstm_cnn_mri.json").read_text())
    assert record[0]["skipped"] == 6 and record[0]["by_problem"] == {"empty file": 6}
    mri_common.split_images(ds, frame, split="paper", seed=1)  # pooled: enough of each class
    with pytest.raises(brain_mri.MriDataError,
                       match=r"brain_tumor_sartaj: too few images for the official split: class "
                             r"'glioma' \(Testing/glioma_tumor\) has 0 usable image\(s\), needs 1 "
                             r"\(6 file\(s\) there skipped\)"):
        mri_common.split_images(ds, frame, split="official", seed=1)


def test_subsample_draws_per_stratum_where_sklearn_cannot(sartaj):
    frame = brain_mri.list_images(sartaj, SARTAJ)  # 60 images in 8 strata
    for n in (57, 5):  # 3 dropped / 5 kept: fewer than the strata
        small = brain_mri.subsample(frame, n, seed=2)
        assert len(small) == n and small.index.is_unique
        share = small.groupby(["split", "label"]).size() / frame.groupby(["split", "label"]).size()
        assert share.max() - share.min() <= 1 / 5 + 1e-9  # proportional within one image
    assert list(brain_mri.subsample(frame, 57, seed=2).index) == list(
        brain_mri.subsample(frame, 57, seed=2).index)


def test_unreadable_class_folder_is_named(tmp_path, monkeypatch):
    real = os.scandir

    def scandir(path):
        if str(path).endswith("meningioma_tumor"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    (tmp_path / SARTAJ / "Training" / "meningioma_tumor").mkdir(parents=True)
    monkeypatch.setattr(images.os, "scandir", scandir)
    with pytest.raises(brain_mri.MriDataError,
                       match=r"meningioma_tumor: cannot list the class folder \(Permission"):
        brain_mri.list_images(tmp_path / SARTAJ, SARTAJ)
