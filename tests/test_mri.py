import numpy as np
import pytest
from medrepro import mri


def test_list_images_and_counts(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj")
    assert len(frame) == 60
    assert list(frame.columns) == ["path", "split", "class_dir", "class_name", "label"]
    assert sorted(frame["label"].unique()) == [0, 1, 2, 3]
    assert (frame.loc[frame["class_dir"] == "no_tumor", "class_name"] == "no tumour").all()
    table = mri.counts(frame)
    assert table.loc["glioma", "Training"] == 10 and table.loc["total", "total"] == 60
    with pytest.raises(mri.MriDataError, match="no images"):
        mri.list_images(sartaj / "Training", "brain_tumor_sartaj")
    with pytest.raises(mri.MriDataError, match="not an MRI dataset"):
        mri.list_images(sartaj, "rsna_ich")


def test_paper_split_pools_and_stratifies(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj")
    train, test = mri.paper_split(frame, seed=3)
    assert len(test) == 12 and len(train) == 48
    assert test["label"].value_counts().tolist() == [3, 3, 3, 3]
    assert set(test["split"]) == {"Training", "Testing"}  # pooled
    assert not set(train["path"]) & set(test["path"])
    again, _ = mri.paper_split(frame, seed=3)
    assert list(again["path"]) == list(train["path"])
    other, _ = mri.paper_split(frame, seed=4)
    assert list(other["path"]) != list(train["path"])
    fit, val = mri.validation_split(train, fraction=0.1)
    assert len(val) == 5 and len(fit) == 43 and val["label"].nunique() == 4


def test_official_split_and_duplicate_free_test(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj")
    train, test = mri.official_split(frame)
    assert len(train) == 40 and len(test) == 20
    groups = mri.find_groups(frame, near=False)
    assert len(groups) == 1
    clean, dropped = mri.duplicate_free_test(train, test, groups)
    assert dropped == 1 and len(clean) == 19
    assert sartaj / "Testing" / "glioma_tumor" / "im (0).jpg" not in set(clean["path"])
    with pytest.raises(mri.MriDataError, match="Training and Testing"):
        mri.official_split(frame[frame["split"] == "Testing"])


def test_subsample_is_stratified(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj")
    small = mri.subsample(frame, 24, seed=0)
    assert len(small) == 24
    assert small.groupby(["split", "label"]).size().min() >= 2
    assert mri.subsample(frame, None) is frame


def test_image_dataset_decodes_gray_and_rgb_in_order(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj").iloc[:6]
    ds = mri.image_dataset(frame, image_size=16, batch_size=4)
    batches = list(ds.as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y.argmax(1), frame["label"].to_numpy())
    gray = mri.load_images(frame.iloc[[0]], image_size=16)[0]  # (i + k) even: grayscale
    np.testing.assert_allclose(gray[..., 0], gray[..., 2])
    raw = mri.load_images(frame.iloc[:2], image_size=16, scale="raw")
    np.testing.assert_allclose(raw / 255.0, x[:2], atol=1e-5)


def test_augmentation_is_on_the_fly_and_seeded(sartaj):
    frame = mri.list_images(sartaj, "brain_tumor_sartaj").iloc[:4]
    aug = mri.augmenter(**mri.E_AUGMENT, seed=1)
    ds = mri.image_dataset(frame, image_size=16, batch_size=4, augment=aug, one_hot=False)
    first = next(iter(ds))[0].numpy()
    second = next(iter(ds))[0].numpy()
    plain = mri.load_images(frame, image_size=16)
    assert not np.allclose(first, plain)
    assert not np.allclose(first, second)  # fresh augmentation every pass
    assert mri.augmenter() is None


def test_resolve_for_study_uses_real_sartaj_when_masoud_is_partial(sartaj, tmp_path, image_writer):
    masoud_test = tmp_path / "brain_tumor_masoud" / "Testing" / "glioma"
    image_writer(masoud_test / "Te-gl_0.jpg", np.random.default_rng(1))
    rd, note = mri.resolve_for_study("brain_tumor_masoud", data=str(tmp_path), profile="smoke")
    assert rd.dataset_id == "brain_tumor_sartaj" and not rd.is_phantom
    assert "real brain_tumor_sartaj" in note
    rd, note = mri.resolve_for_study("brain_tumor_sartaj", data=str(tmp_path), profile="smoke")
    assert rd.root == sartaj and note == ""
