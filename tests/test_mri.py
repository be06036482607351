import numpy as np
import pandas as pd
import pytest
from medrepro.data import brain_mri, pipeline


def test_list_images_and_counts(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj")
    assert len(frame) == 60
    assert list(frame.columns) == ["path", "split", "class_dir", "class_name", "label"]
    assert sorted(frame["label"].unique()) == [0, 1, 2, 3]
    assert (frame.loc[frame["class_dir"] == "no_tumor", "class_name"] == "no tumour").all()
    table = brain_mri.counts(frame)
    assert table.loc["glioma", "Training"] == 10 and table.loc["total", "total"] == 60
    with pytest.raises(brain_mri.MriDataError, match="no images"):
        brain_mri.list_images(sartaj / "Training", "brain_tumor_sartaj")
    with pytest.raises(brain_mri.MriDataError, match="not an MRI dataset"):
        brain_mri.list_images(sartaj, "rsna_ich")


def test_paper_split_pools_and_stratifies(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj")
    train, test = brain_mri.paper_split(frame, seed=3)
    assert len(test) == 12 and len(train) == 48
    assert test["label"].value_counts().tolist() == [3, 3, 3, 3]
    assert set(test["split"]) == {"Training", "Testing"}  # pooled
    assert not set(train["path"]) & set(test["path"])
    again, _ = brain_mri.paper_split(frame, seed=3)
    assert list(again["path"]) == list(train["path"])
    other, _ = brain_mri.paper_split(frame, seed=4)
    assert list(other["path"]) != list(train["path"])
    fit, val = brain_mri.validation_split(train, fraction=0.1)
    assert len(val) == 5 and len(fit) == 43 and val["label"].nunique() == 4


# Sartaj's images per class (glioma, meningioma, no tumour, pituitary) and A's Table 2 supports.
SARTAJ_TOTALS = {0: 926, 1: 937, 2: 500, 3: 901}
A_SUPPORTS = {0: 198, 1: 192, 2: 79, 3: 184}


def test_paper_split_reproduces_a_papers_per_class_test_counts():
    labels = [k for k, n in SARTAJ_TOTALS.items() for _ in range(n)]
    frame = pd.DataFrame({"path": [f"x/{i}.jpg" for i in range(len(labels))], "split": "Training",
                          "label": labels})
    train, test = brain_mri.paper_split(frame, seed=3, test_counts=A_SUPPORTS)
    assert test["label"].value_counts().to_dict() == A_SUPPORTS  # stratified: 185/188/100/180
    assert len(train) + len(test) == 3264 and not set(train["path"]) & set(test["path"])
    again, _ = brain_mri.paper_split(frame, seed=3, test_counts=A_SUPPORTS)
    other, _ = brain_mri.paper_split(frame, seed=4, test_counts=A_SUPPORTS)
    assert list(again["path"]) == list(train["path"]) != list(other["path"])
    strat = brain_mri.paper_split(frame, seed=3)[1]["label"].value_counts().to_dict()
    assert strat == {0: 185, 1: 188, 2: 100, 3: 180}


def test_allocate_test_scales_the_papers_counts_where_the_data_allows():
    assert brain_mri.allocate_test(SARTAJ_TOTALS, A_SUPPORTS, n_test=653) == A_SUPPORTS
    assert sum(brain_mri.allocate_test(SARTAJ_TOTALS, A_SUPPORTS, n_test=40).values()) == 40
    # a class with too few images keeps one for training
    assert brain_mri.allocate_test({0: 3, 1: 50, 2: 50, 3: 50}, A_SUPPORTS, n_test=100)[0] == 2


def test_official_split_and_duplicate_free_test(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj")
    train, test = brain_mri.official_split(frame)
    assert len(train) == 40 and len(test) == 20
    groups = brain_mri.find_groups(frame, near=False)
    assert len(groups) == 1
    clean, dropped = brain_mri.duplicate_free_test(train, test, groups)
    assert dropped == 1 and len(clean) == 19
    assert sartaj / "Testing" / "glioma_tumor" / "im (0).jpg" not in set(clean["path"])
    with pytest.raises(brain_mri.MriDataError, match="Training and Testing"):
        brain_mri.official_split(frame[frame["split"] == "Testing"])


def test_subsample_is_stratified(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj")
    small = brain_mri.subsample(frame, 24, seed=0)
    assert len(small) == 24
    assert small.groupby(["split", "label"]).size().min() >= 2
    assert brain_mri.subsample(frame, None) is frame


def test_image_dataset_decodes_gray_and_rgb_in_order(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj").iloc[:6]
    ds = brain_mri.image_dataset(frame, image_size=16, batch_size=4)
    batches = list(ds.as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y.argmax(1), frame["label"].to_numpy())
    gray = brain_mri.load_images(frame.iloc[[0]], image_size=16)[0]  # (i + k) even: grayscale
    np.testing.assert_allclose(gray[..., 0], gray[..., 2])
    raw = brain_mri.load_images(frame.iloc[:2], image_size=16, scale="raw")
    np.testing.assert_allclose(raw / 255.0, x[:2], atol=1e-5)


def test_the_pipeline_carries_the_augmentation_for_fit(sartaj):
    frame = brain_mri.list_images(sartaj, "brain_tumor_sartaj").iloc[:4]
    aug = brain_mri.augmenter(**brain_mri.E_AUGMENT, seed=1)
    ds = brain_mri.image_dataset(frame, image_size=16, batch_size=4, augment=aug, one_hot=False)
    assert pipeline.augment_of(ds) is aug
    np.testing.assert_allclose(next(iter(ds))[0].numpy(),
                               brain_mri.load_images(frame, image_size=16), atol=1e-6)
    assert brain_mri.augmenter() is None


def test_intensity_augmentation_changes_contrast_within_range():
    ramp = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (16, 1))
    x = np.repeat(np.stack([ramp] * 8)[..., None], 3, axis=-1)  # 8 identical ramps (8, 16, 16, 3)
    out = np.asarray(brain_mri.augmenter(contrast=0.3, gamma=0.4, seed=3)(x, step=0))
    assert out.shape == x.shape and 0.0 <= out.min() and out.max() <= 1.0
    assert not np.allclose(out[0], out[1])  # each image draws its own curve
    row = out[:, 0, :, 0]
    assert (np.diff(row, axis=1) >= -1e-6).all()  # monotone: the tissues keep their order
    gamma_only = np.asarray(brain_mri.augmenter(gamma=0.4, seed=3)(x, step=0))
    np.testing.assert_allclose(gamma_only[:, 0, [0, -1], 0], np.tile([0.0, 1.0], (8, 1)),
                               atol=1e-3)  # black stays black, white stays white
    log_gamma = np.log(np.log(gamma_only[:, 0, 8, 0]) / np.log(ramp[0, 8]))
    assert np.abs(log_gamma).max() <= 0.4 + 1e-4 and np.ptp(log_gamma) > 0.05
    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=1)
    assert (aug.contrast, aug.gamma) == ((0.3, 0.3), 0.4)


def test_resolve_for_study_uses_real_sartaj_when_masoud_is_partial(sartaj, tmp_path, image_writer):
    masoud_test = tmp_path / "brain_tumor_masoud" / "Testing" / "glioma"
    image_writer(masoud_test / "Te-gl_0.jpg", np.random.default_rng(1))
    rd, note = brain_mri.resolve_for_study("brain_tumor_masoud", data=str(tmp_path), profile="smoke")
    assert rd.dataset_id == "brain_tumor_sartaj" and not rd.is_phantom
    assert "real brain_tumor_sartaj" in note
    rd, note = brain_mri.resolve_for_study("brain_tumor_sartaj", data=str(tmp_path), profile="smoke")
    assert rd.root == sartaj and note == ""


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_head_framing_crops_to_the_head_and_pads_to_a_square(tmp_path):
    # A 40×80 (H×W) image, black but for a 20×10 "head" (rows 10-29, columns 50-59) and faint
    # noise below the threshold: "head" framing must keep only the head, centred, aspect kept.
    img = np.zeros((40, 80), np.uint8)
    img[::7, ::5] = 15  # ~6 % of the maximum: background noise, not head
    img[10:30, 50:60] = 250
    wide = _png(tmp_path / "wide.png", img)
    blank = _png(tmp_path / "blank.png", np.zeros((8, 12), np.uint8))
    import tensorflow as tf

    y0, x0, y1, x1 = (int(v) for v in brain_mri.head_box(tf.constant(img[..., None], tf.float32)))
    assert (y0, x0, y1, x1) == (10, 50, 30, 60)
    assert [int(v) for v in brain_mri.head_box(tf.zeros((8, 12, 3)))] == [0, 0, 8, 12]  # none: all
    head, empty = brain_mri.decode_files([wide, blank], image_size=20, framing="head")
    head, empty = head.numpy()[..., 0], empty.numpy()
    # the 20×10 box scaled to 20×10 and padded by 5 columns each side
    np.testing.assert_allclose(head[:, 5:15], 250 / 255, atol=1e-5)
    assert np.abs(head[:, :5]).max() < 1e-6 and np.abs(head[:, 15:]).max() < 1e-6
    assert empty.shape == (20, 20, 3) and empty.max() == 0.0  # a blank image: the whole image
    stretched = brain_mri.decode_files([wide], image_size=20).get_single_element().numpy()[..., 0]
    assert stretched[:, :10].max() < 0.1 and stretched[6:14, 13:15].min() > 0.5  # squashed, at right
    with pytest.raises(brain_mri.MriDataError, match="framing='crop'"):
        brain_mri.decode_files([wide], image_size=20, framing="crop")
