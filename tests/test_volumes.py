"""medrepro.data.volumes: NIfTI reading and its errors, HU normalisation, lung-only, the exact fast
resize against scipy, the split, the cache and the volume-wise augmentation."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from medrepro.core import paths
from medrepro.data import volumes

RNG_SEED = 7


def write_nifti(path, arr, dtype=np.int16):
    nib.save(nib.Nifti1Image(np.asarray(arr, dtype=dtype), affine=np.eye(4)), str(path))
    return path


def phantom_ct(shape, seed=RNG_SEED):
    """A chest-like HU volume: air outside, a soft-tissue body, two dark lungs, noise."""
    rng = np.random.default_rng(seed)
    h, w, d = shape
    yy, xx = np.mgrid[:h, :w]
    body = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.4 * w)) ** 2 < 1
    lungs = (((yy - h / 2) / (0.3 * h)) ** 2 + ((np.abs(xx - w / 2) - 0.18 * w) / (0.12 * w)) ** 2
             < 1)
    sl = np.where(body, 40.0, -1000.0) + np.where(lungs, -860.0, 0.0)
    vol = np.repeat(sl[:, :, None], d, axis=2) + rng.normal(0, 30, (h, w, d))
    return vol.astype(np.float32)


# ---- reading


def test_read_volume_returns_float32_hu_in_stored_order(tmp_path):
    arr = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3) - 1000
    vol = volumes.read_volume(write_nifti(tmp_path / "a.nii.gz", arr))
    assert vol.dtype == np.float32 and vol.shape == (4, 5, 3)
    np.testing.assert_array_equal(vol, arr.astype(np.float32))


def test_read_volume_applies_the_scale_slope(tmp_path):
    img = nib.Nifti1Image(np.full((3, 3, 2), 10, np.int16), affine=np.eye(4))
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    assert np.all(volumes.read_volume(tmp_path / "s.nii.gz") == 10 * 2.0 - 1024.0)


def test_read_volume_drops_a_trailing_singleton_axis(tmp_path):
    vol = volumes.read_volume(write_nifti(tmp_path / "a.nii.gz", np.zeros((4, 5, 3, 1))))
    assert vol.shape == (4, 5, 3)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3, 2)])
def test_read_volume_rejects_non_3d(tmp_path, shape):
    path = write_nifti(tmp_path / "bad.nii.gz", np.zeros(shape))
    with pytest.raises(volumes.VolumeError, match=r"bad\.nii\.gz.*expected a 3-D volume"):
        volumes.read_volume(path)


def test_read_volume_rejects_empty_file(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(volumes.VolumeError, match=r"empty\.nii\.gz: empty file"):
        volumes.read_volume(tmp_path / "empty.nii.gz")


def test_read_volume_rejects_missing_file(tmp_path):
    with pytest.raises(volumes.VolumeError, match="no such file"):
        volumes.read_volume(tmp_path / "nope.nii.gz")


def test_read_volume_rejects_non_gzip_with_gz_name(tmp_path):
    plain = write_nifti(tmp_path / "plain.nii", np.zeros((4, 4, 2)))
    fake = tmp_path / "fake.nii.gz"
    fake.write_bytes(plain.read_bytes())
    with pytest.raises(volumes.VolumeError, match=r"fake\.nii\.gz: named \.gz but not gzip"):
        volumes.read_volume(fake)


def test_read_volume_rejects_truncated_gzip(tmp_path):
    full = write_nifti(tmp_path / "full.nii.gz", np.random.default_rng(0).integers(
        -1000, 400, (32, 32, 8)))
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(volumes.VolumeError, match=r"cut\.nii\.gz: unreadable or truncated"):
        volumes.read_volume(cut)


def test_read_volume_rejects_non_finite(tmp_path):
    arr = np.zeros((4, 4, 2), np.float32)
    arr[1, 2, 1] = np.nan
    arr[0, 0, 0] = np.inf
    path = write_nifti(tmp_path / "nan.nii.gz", arr, dtype=np.float32)
    with pytest.raises(volumes.VolumeError, match=r"nan\.nii\.gz: 2 non-finite"):
        volumes.read_volume(path)


def _lying_nifti(path, shape, n_data_bytes=1000):
    """A NIfTI-1 header declaring ``shape`` (int16) followed by only ``n_data_bytes`` of data."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * n_data_bytes
    if str(path).endswith(".gz"):
        import gzip
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


@pytest.fixture
def no_voxel_read(monkeypatch):
    """Fail the test if any NIfTI voxel data is read (the check must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("voxel data read before the header check")
    monkeypatch.setattr(nib.Nifti1Image, "get_fdata", refuse)


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_read_volume_refuses_a_header_over_the_cap(tmp_path, no_voxel_read, name):
    path = _lying_nifti(tmp_path / name, (4000, 4000, 4000))
    with pytest.raises(volumes.VolumeError, match=rf"{name}: header declares shape "
                       r"\(4000, 4000, 4000\) = 64,000,000,000 voxels, over the cap"):
        volumes.read_volume(path)


def test_read_volume_refuses_a_header_the_file_cannot_hold(tmp_path, no_voxel_read):
    path = _lying_nifti(tmp_path / "short.nii", (64, 64, 64))  # needs 524,288 + 352 bytes
    with pytest.raises(volumes.VolumeError,
                       match=r"short.nii: header declares shape \(64, 64, 64\) \(524,640 bytes "
                             r"with the header\), the file has only 1,352 bytes"):
        volumes.read_volume(path)


def test_read_volume_refuses_a_gzip_too_small_for_its_header(tmp_path, no_voxel_read,
                                                             monkeypatch):
    monkeypatch.setattr(volumes, "MAX_VOXELS", 10**9)
    path = _lying_nifti(tmp_path / "bomb.nii.gz", (900, 900, 900), n_data_bytes=10)
    with pytest.raises(volumes.VolumeError, match=r"bomb.nii.gz: header declares shape "
                       r"\(900, 900, 900\) .* more than a \d+-byte gzip file can hold"):
        volumes.read_volume(path)


def test_read_volume_cap_is_adjustable(tmp_path, monkeypatch):
    path = write_nifti(tmp_path / "v.nii.gz", np.zeros((8, 8, 4)))
    monkeypatch.setattr(volumes, "MAX_VOXELS", 255)
    with pytest.raises(volumes.VolumeError, match="256 voxels, over the cap of 255"):
        volumes.read_volume(path)
    monkeypatch.setattr(volumes, "MAX_VOXELS", 256)
    assert volumes.read_volume(path).shape == (8, 8, 4)


def test_read_volume_on_real_mosmed_masks():
    shared = paths.shared_data_dir()
    masks = sorted((shared / "mosmed_masks" / "masks").glob("*.nii.gz")) if shared else []
    if not masks:
        pytest.skip("no ../shared/data/mosmed_masks")
    for path in masks[:2]:
        vol = volumes.read_volume(path)
        raw = np.asanyarray(nib.load(str(path)).dataobj)
        assert vol.dtype == np.float32 and vol.shape == raw.shape
        assert vol.shape[:2] == (512, 512) and vol.shape[2] > 1
        np.testing.assert_array_equal(vol, raw.astype(np.float32))


# ---- intensity and slices


def test_normalize_hu_clips_and_scales():
    hu = np.array([-3000, -1000, -300, 400, 3000], np.float64)
    out = volumes.normalize_hu(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_normalize_hu_rejects_empty_window():
    with pytest.raises(ValueError, match="hi > lo"):
        volumes.normalize_hu(np.zeros(3), lo=10, hi=10)


@pytest.mark.parametrize("depth, head, tail", [(64, 12, 8), (32, 6, 4), (48, 9, 6)])
def test_lung_only_replaces_head_and_tail_slices(depth, head, tail):
    vol = np.broadcast_to(np.arange(depth, dtype=np.float32), (3, 2, depth)).copy()
    before = vol.copy()
    out = volumes.lung_only(vol)
    idx = out[0, 0]
    expected = np.arange(depth, dtype=np.float32)
    expected[:head] = np.arange(head, 2 * head)
    expected[depth - tail:] = np.arange(depth - 2 * tail, depth - tail)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(vol, before)  # input untouched


# ---- resize: exact against scipy


@pytest.mark.parametrize("shape", [(7, 7, 3), (8, 8, 2), (6, 10, 3), (11, 5, 2), (7, 10, 2)])
def test_rotate90_matches_scipy(shape):
    from scipy import ndimage

    vol = np.random.default_rng(1).random(shape).astype(np.float32)
    np.testing.assert_allclose(volumes.rotate90(vol), ndimage.rotate(vol, 90, reshape=False),
                               atol=1e-5)


@pytest.mark.parametrize("in_shape, out_shape", [
    ((37, 37, 11), (16, 16, 8)),  # square, odd, shrink in-plane, shrink depth
    ((40, 30, 9), (16, 20, 7)),  # non-square, even difference: exact index rotation
    ((45, 30, 5), (12, 12, 6)),  # odd difference: scipy rotation fallback
    ((21, 21, 3), (24, 24, 6)),  # upsampling
    ((5, 5, 1), (3, 3, 4)),  # single slice
])
def test_resize_volume_matches_scipy_on_random(in_shape, out_shape):
    vol = np.random.default_rng(2).random(in_shape).astype(np.float32)
    ref = volumes.resize_volume_reference(vol, out_shape)
    out = volumes.resize_volume(vol, out_shape)
    assert out.shape == ref.shape == out_shape and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.parametrize("in_shape", [(97, 97, 23), (101, 75, 13)])
def test_resize_volume_matches_scipy_on_phantom(in_shape):
    vol = volumes.normalize_hu(phantom_ct(in_shape))
    ref = volumes.resize_volume_reference(vol, (32, 32, 16))
    out = volumes.resize_volume(vol, (32, 32, 16))
    assert np.abs(out - ref).max() <= 1e-4
    assert out.std() > 0.1  # a real picture, not a constant


def test_linear_zoom_matrix_is_scipys_grid():
    mat = volumes.linear_zoom_matrix(5, 3)  # outputs sample 0, 2, 4
    np.testing.assert_array_equal(mat, np.eye(5, dtype=np.float32)[[0, 2, 4]])
    mat = volumes.linear_zoom_matrix(3, 5)  # 0, .5, 1, 1.5, 2
    np.testing.assert_allclose(mat @ np.array([0, 10, 20]), [0, 5, 10, 15, 20])


def test_process_scan_reads_normalises_resizes(tmp_path):
    hu = phantom_ct((40, 40, 10)).astype(np.int16)
    path = write_nifti(tmp_path / "p.nii.gz", hu)
    out = volumes.process_scan(path, shape=(16, 16, 8))
    ref = volumes.resize_volume_reference(volumes.normalize_hu(hu), (16, 16, 8))
    assert out.shape == (16, 16, 8) and np.abs(out - ref).max() <= 1e-4


# ---- split, listing, cache


@pytest.mark.parametrize("n, expected", [(100, (70, 20, 10)), (6, (4, 1, 1)), (16, (11, 3, 2)),
                                         (3, (1, 1, 1))])
def test_split_counts(n, expected):
    c = volumes.split_counts(n)
    assert (c["train"], c["test"], c["val"]) == expected


def test_split_counts_needs_three():
    with pytest.raises(ValueError, match=">= 3"):
        volumes.split_counts(2)


@pytest.mark.parametrize("n, expected", [(100, (80, 20)), (6, (5, 1)), (16, (13, 3)), (2, (1, 1))])
def test_thesis_split_counts_are_80_20(n, expected):
    c = volumes.split_counts(n, "thesis")
    assert (c["train"], c["val"]) == expected and set(c) == {"train", "val"}


def test_split_protocol_errors():
    with pytest.raises(ValueError, match="unknown split protocol 'random'; expected one of thesis"):
        volumes.split_counts(10, "random")
    with pytest.raises(ValueError, match=">= 2"):
        volumes.split_counts(1, "thesis")


def make_tree(root, n_per_class, shape=(24, 24, 6)):
    for folder in ("CT-0", "CT-23"):
        (root / folder).mkdir(parents=True)
        for i in range(n_per_class):
            write_nifti(root / folder / f"study_{folder[-1]}{i:03d}.nii.gz",
                        phantom_ct(shape, seed=i))
    return root


def test_list_scans_and_assign_split(tmp_path):
    root = make_tree(tmp_path / "mosmed", 6)
    scans = volumes.assign_split(volumes.list_scans(root))
    assert list(scans.label.value_counts().sort_index()) == [6, 6]
    for _, group in scans.groupby("label"):
        assert list(group.split) == ["train"] * 4 + ["test", "val"]
        assert list(group.name) == sorted(group.name)


def test_thesis_split_is_160_40_of_200_and_loads_train_val(tmp_path):
    import pandas as pd

    scans = pd.DataFrame({"path": [f"s{i:03d}.nii.gz" for i in range(200)],
                          "label": [0] * 100 + [1] * 100})
    split = volumes.assign_split(scans, "thesis")
    assert split.split.value_counts().to_dict() == {"train": 160, "val": 40}
    for _, group in split.groupby("label"):  # first 80 train, last 20 validation
        assert list(group.split) == ["train"] * 80 + ["val"] * 20
    root = make_tree(tmp_path / "mosmed", 3)
    small = volumes.assign_split(volumes.list_scans(root), "thesis")
    folder = tmp_path / "cache"
    volumes.build_cache(small.path, folder=folder, shape=(8, 8, 4))
    loaded = volumes.load_splits(small, folder=folder)
    assert list(loaded) == ["train", "val"]
    assert loaded["train"][0].shape == (4, 8, 8, 4) and list(loaded["val"][1]) == [0, 1]


def test_list_scans_empty_folder(tmp_path):
    with pytest.raises(volumes.VolumeError, match="no NIfTI volumes"):
        volumes.list_scans(tmp_path)


def test_build_cache_resumes_and_skips_bad_files(tmp_path):
    root = make_tree(tmp_path / "mosmed", 2)
    (root / "CT-0" / "study_broken.nii.gz").write_bytes(b"")
    scans = volumes.list_scans(root)
    folder = tmp_path / "cache"
    first = volumes.build_cache(scans.path, folder=folder, shape=(8, 8, 4))
    assert (first.built, first.reused, len(first.skipped)) == (4, 0, 1)
    assert "study_broken" in first.skipped[0][0] and "empty file" in first.skipped[0][1]
    again = volumes.build_cache(scans.path, folder=folder, shape=(8, 8, 4))
    assert (again.built, again.reused) == (0, 4)
    x, y = volumes.load_cached(scans, folder=folder)
    assert x.shape == (4, 8, 8, 4) and x.dtype == np.float32 and sorted(y) == [0, 0, 1, 1]
    np.testing.assert_allclose(x[0], volumes.process_scan(scans.path[0], shape=(8, 8, 4)))
    with pytest.raises(volumes.VolumeError, match="cache holds shape"):
        volumes.build_cache(scans.path, folder=folder, shape=(8, 8, 6))


def test_build_cache_rebuilds_a_volume_newer_than_its_cache(tmp_path):
    import os

    root = make_tree(tmp_path / "mosmed", 2)
    scans = volumes.list_scans(root)
    folder = tmp_path / "cache"
    volumes.build_cache(scans.path, folder=folder, shape=(8, 8, 4))
    newer = volumes.cached_path(folder, scans.path[0]).stat().st_mtime_ns + 10**9
    os.utime(scans.path[0], ns=(newer, newer))  # e.g. a regenerated phantom
    again = volumes.build_cache(scans.path, folder=folder, shape=(8, 8, 4))
    assert (again.built, again.reused) == (1, 3)


def test_cache_dir_names_the_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path))
    monkeypatch.delenv("MEDREPRO_CACHE_DIR", raising=False)
    assert volumes.cache_dir("phantom", "demo").name == "phantom-demo"
    a = volumes.cache_dir("phantom", "demo", (48, 48, 48))
    assert a.name == "phantom-demo-48x48x48" and a.parent == volumes.cache_dir("x", "y").parent
    assert a != volumes.cache_dir("phantom", "demo", (64, 64, 48))


# ---- augmentation


def test_an_augmented_dataset_carries_the_studys_augmentation():
    from medrepro.data import pipeline

    x = np.random.default_rng(4).random((4, 8, 8, 4)).astype(np.float32)
    ds = volumes.make_dataset(x, np.array([0, 1, 0, 1]), batch=4, augment=True, seed=3)
    assert pipeline.augment_of(ds) == volumes.make_augmenter(seed=3)
    np.testing.assert_array_equal(next(iter(ds))[0].numpy()[..., 0], x)  # fit augments
    assert pipeline.augment_of(volumes.make_dataset(x, np.zeros(4), batch=4)) is None


def test_dataset_without_augmentation_is_the_input():
    x = np.random.default_rng(4).random((3, 8, 8, 4)).astype(np.float32)
    batches = list(volumes.make_dataset(x, np.array([0, 1, 1]), batch=2))
    xs = np.concatenate([b[0].numpy() for b in batches])
    assert xs.shape == (3, 8, 8, 4, 1)
    np.testing.assert_array_equal(xs[..., 0], x)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), [0, 1, 1])


def test_lung_only_works_on_a_batch():
    x = np.broadcast_to(np.arange(48, dtype=np.float32), (2, 3, 3, 48)).copy()
    out = volumes.lung_only(x)
    np.testing.assert_array_equal(out[1, 2, 2, :9], np.arange(9, 18))
    np.testing.assert_array_equal(out[0, 0, 0, -6:], np.arange(36, 42))


RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def _cifti(path):
    import nibabel as nib
    from nibabel import cifti2

    series = cifti2.cifti2_axes.SeriesAxis(0, 1, 3)
    brain = cifti2.cifti2_axes.BrainModelAxis.from_mask(np.ones((2, 2, 2), bool),
                                                       affine=np.eye(4))
    nib.save(cifti2.Cifti2Image(np.zeros((3, 8), np.float32), header=(series, brain)), path)
    return path


@pytest.mark.parametrize(("name", "make", "why"), [
    ("series.nii.gz", lambda p: write_nifti(p, np.zeros((6, 6, 4, 3))),
     r"a 4-D series of shape \(6, 6, 4, 3\)"),
    ("flat.nii", lambda p: write_nifti(p, np.zeros((6, 6))), r"a 2-D image of shape \(6, 6\)"),
    ("cplx.nii", lambda p: write_nifti(p, np.zeros((6, 6, 4)), dtype=np.complex64),
     r"voxel data type complex64"),
    ("rgb.nii", lambda p: write_nifti(p, np.zeros((6, 6, 4), RGB), dtype=RGB),
     r"voxel data type \[\('R'"),
    ("grey.dtseries.nii", _cifti, r"a Cifti2Image, not a NIfTI-1/2 scan volume"),
    ("nan.nii", lambda p: write_nifti(p, np.full((6, 6, 4), np.nan), dtype=np.float32),
     r"144 non-finite voxel"),
    ("folder.nii.gz", lambda p: p.mkdir(), r"not a regular file"),
])
def test_nifti_that_is_not_one_3d_scan_gets_a_named_volume_error(tmp_path, name, make, why):
    path = tmp_path / name
    make(path)
    with pytest.raises(volumes.VolumeError, match=rf"{name.replace('.', '[.]')}: {why}"):
        volumes.read_volume(path)


def test_a_nifti_with_an_extension_is_still_read(tmp_path):
    import nibabel as nib

    img = nib.Nifti1Image(np.full((6, 6, 4), 7, np.int16), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(40, b"<afni>notes</afni>"))
    nib.save(img, tmp_path / "ext.nii")
    assert (volumes.read_volume(tmp_path / "ext.nii") == 7).all()
