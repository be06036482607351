"""Tests of the phantom generators: layouts and names, formats, determinism, HU, lesions, atomicity.

Small sizes throughout (64-128 px); the demo-size speed target is checked by
``benchmarks/bench_phantoms.py``, not here.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from medrepro.data import phantoms
from medrepro.data.phantoms import _common, chest_ct, brain_mri, head_ct
from medrepro.data.phantoms._common import rng_for
from PIL import Image

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_hu(path: Path) -> tuple[np.ndarray, object]:
    """HU of one RSNA file, with the known 12-bit intercept correction (written independently of
    the generator on purpose)."""
    import pydicom

    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.int32)
    if ds.BitsStored == 12 and ds.PixelRepresentation == 0 and float(ds.RescaleIntercept) > -100:
        x = raw + 1000
        x[x >= 4096] -= 4096
        return x - 1000, ds
    return raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept), ds


@pytest.fixture(scope="module")
def masoud(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mri") / "brain_tumor_masoud"
    return phantoms.make_mri(root, layout="masoud", n_per_class=6, n_test_per_class=3, seed=3,
                             size=96)


@pytest.fixture(scope="module")
def sartaj(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mri") / "brain_tumor_sartaj"
    return phantoms.make_mri(root, layout="sartaj", n_per_class=4, n_test_per_class=2, seed=3,
                             size=64)


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rsna") / "rsna_ich"
    return phantoms.make_rsna(root, n_images=96, seed=5, size=128)


@pytest.fixture(scope="module")
def rsna_files(rsna_root) -> dict[str, tuple[np.ndarray, object]]:
    corrupt = set(phantoms.read_marker(rsna_root)["corrupt_ids"])
    return {p.stem: _read_hu(p) for p in sorted((rsna_root / "stage_2_train").glob("*.dcm"))
            if p.stem not in corrupt}


@pytest.fixture(scope="module")
def rsna_labels(rsna_root) -> dict[str, dict[str, int]]:
    lines = (rsna_root / "stage_2_train.csv").read_text().splitlines()
    out: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        key, value = line.split(",")
        image, subtype = key.rsplit("_", 1)
        out.setdefault(image, {})[subtype] = int(value)
    return out


@pytest.fixture(scope="module")
def mosmed_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mosmed") / "mosmed"
    return phantoms.make_mosmed(root, n_per_class=2, seed=7, size=64)


# ------------------------------------------------------------------------------------- MRI


def test_masoud_layout_names_mode_and_sizes(masoud):
    sizes = Counter()
    for split, prefix, n in (("Training", "Tr", 6), ("Testing", "Te", 3)):
        assert sorted(p.name for p in (masoud / split).iterdir()) == sorted(brain_mri.MASOUD_DIRS.values())
        for cls, short in brain_mri.MASOUD_PREFIX.items():
            names = sorted(p.name for p in (masoud / split / cls).iterdir())
            expected = [f"{prefix}-{short}Tr_{i:04d}.jpg" for i in range(min(n, 10))]
            assert names == sorted(expected)
            for name in names:
                with Image.open(masoud / split / cls / name) as im:
                    assert im.format == "JPEG" and im.mode == "L"
                    sizes[im.size] += 1
    assert sizes[(96, 96)] > sum(sizes.values()) / 2  # most at the nominal size...
    assert len(sizes) > 1  # ...and some not


def test_masoud_names_beyond_ten_drop_the_tr_infix():
    names = brain_mri.file_names("masoud", "train", "glioma", 12)
    assert names[9] == "Tr-glTr_0009.jpg" and names[10] == "Tr-gl_0010.jpg"


def test_sartaj_layout_names_and_rgb(sartaj):
    assert sorted(p.name for p in (sartaj / "Training").iterdir()) == sorted(
        brain_mri.SARTAJ_DIRS.values())
    assert sorted(p.name for p in (sartaj / "Training" / "glioma_tumor").iterdir()) == \
        ["gg (1).jpg", "gg (2).jpg", "gg (3).jpg", "gg (4).jpg"]
    assert sorted(p.name for p in (sartaj / "Testing" / "pituitary_tumor").iterdir()) == \
        ["image(1).jpg", "image.jpg"]
    for path in sartaj.rglob("*.jpg"):
        with Image.open(path) as im:
            assert im.mode == "RGB"


def test_sartaj_names_follow_the_real_patterns():
    names = brain_mri.file_names("sartaj", "train", "meningioma", 822)
    assert Counter(re.sub(r"\(?\d+\)\.jpg", "", n) for n in names) == \
        {"m ": 200, "m1": 199, "m2 ": 177, "m3 ": 246}
    no = brain_mri.file_names("sartaj", "train", "notumor", 395)
    assert "1.jpg" in no and "image.jpg" in no and "image (4).jpg" in no and "image(1).jpg" in no
    assert len(set(no)) == 395


def test_planted_duplicates_within_and_across_splits(masoud):
    record = phantoms.read_marker(masoud)
    assert record["n_within_train_duplicates"] >= 2 and record["n_cross_split_duplicates"] >= 2
    groups: dict[str, list[Path]] = {}
    for path in masoud.rglob("*.jpg"):
        groups.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(path)
    dup = [g for g in groups.values() if len(g) > 1]
    n_copies = sum(len(g) - 1 for g in dup)
    assert n_copies == len(record["planted_duplicates"])
    assert any(len({p.relative_to(masoud).parts[0] for p in g}) == 2 for g in dup)  # cross split
    assert all(len({p.parent.name for p in g}) == 1 for g in dup)  # never across classes


def test_mri_lesions_by_class():
    for cls in brain_mri.CLASSES:
        for k in range(3):
            image, masks = brain_mri.render_image(rng_for(11, cls, k), cls, shape=(128, 128),
                                            return_masks=True)
            assert image.dtype == np.uint8 and image.shape == (128, 128)
            lesion, brain = masks["lesion"], masks["brain"]
            if cls == "notumor":
                assert not lesion.any()
                continue
            assert lesion.sum() > 3
            inside = (lesion & brain).sum() / lesion.sum()
            if cls == "glioma":
                assert inside > 0.9  # intra-axial
            if cls == "meningioma":  # dural-based: touches the brain's outer surface
                from scipy import ndimage

                outer = brain & ~ndimage.binary_erosion(brain, iterations=3)
                assert (lesion & outer).any()


def test_mri_same_image_with_or_without_masks():
    plain = brain_mri.render_image(rng_for(1, "x"), "glioma", shape=(64, 64))
    with_masks, _ = brain_mri.render_image(rng_for(1, "x"), "glioma", shape=(64, 64), return_masks=True)
    assert np.array_equal(plain, with_masks)


def test_mri_masks_are_saved_outside_the_class_folders(masoud):
    from medrepro.data import brain_mri as mri_data

    listed = mri_data.list_images(masoud, "brain_tumor_masoud")
    assert not any(".masks" in str(p) for p in listed["path"])  # no lister reads them
    masks = phantoms.lesion_masks(masoud)
    keys = {phantoms.mask_key(masoud, p) for p in listed["path"]}
    assert set(masks) == keys
    copies = {d["copy"]: d["original"] for d in phantoms.read_marker(masoud)["planted_duplicates"]}
    for key in keys:
        m = masks[key]
        with Image.open(masoud / key) as im:
            assert m["lesion"].shape == m["region"].shape == (im.height, im.width), key
        if "notumor" in key:
            assert not m["lesion"].any(), key
        if key in copies:  # a planted duplicate carries its source's masks
            src = masks[copies[key]]
            assert all(np.array_equal(m[k], src[k]) for k in ("lesion", "region")), key
    rng = rng_for(3, "mri", "masoud", "train", "glioma", 5)  # Tr-glTr_0005.jpg: drawn, not copied
    assert "Training/glioma/Tr-glTr_0005.jpg" not in copies
    _, drawn = brain_mri.render_image(rng, "glioma", shape=brain_mri.pick_shape(rng, "glioma", size=96),
                                return_masks=True)
    saved = masks["Training/glioma/Tr-glTr_0005.jpg"]
    assert np.array_equal(saved["lesion"], drawn["lesion"]) and saved["lesion"].any()
    assert np.array_equal(saved["region"], drawn["brain"])


def test_datasets_without_masks_say_so(tmp_path):
    real = tmp_path / "brain_tumor_sartaj"
    (real / "Testing" / "glioma_tumor").mkdir(parents=True)
    assert not phantoms.has_lesion_masks(real)
    with pytest.raises(phantoms.NoLesionMasksError, match=r"brain_tumor_sartaj: no lesion masks"):
        phantoms.lesion_masks(real)
    with pytest.raises(KeyError, match="no masks for 'Training/x.jpg'"):
        phantoms.lesion_masks(phantoms.make_mosmed(tmp_path / "mosmed", n_per_class=1, seed=0,
                                                   size=32))["Training/x.jpg"]


def test_mri_rejects_bad_arguments(tmp_path):
    with pytest.raises(phantoms.PhantomError, match="unknown MRI layout"):
        phantoms.make_mri(tmp_path / "x", layout="figshare", n_per_class=2, seed=0)
    with pytest.raises(phantoms.PhantomError, match="n_per_class >= 1"):
        phantoms.make_mri(tmp_path / "x", n_per_class=0, seed=0)


# ------------------------------------------------------------------------------------ RSNA


def test_rsna_csv_format(rsna_root, rsna_labels):
    lines = (rsna_root / "stage_2_train.csv").read_text().splitlines()
    assert lines[0] == "ID,Label"
    files = sorted(p.stem for p in (rsna_root / "stage_2_train").glob("*.dcm"))
    assert len(files) == 96 and sorted(rsna_labels) == files
    assert all(re.fullmatch(r"ID_[0-9a-f]{9}", f) for f in files)
    for i in range(1, len(lines), 6):  # six rows per image, the real order
        block = [ln.split(",")[0] for ln in lines[i:i + 6]]
        image = block[0].rsplit("_", 1)[0]
        assert block == [f"{image}_{s}" for s in head_ct.LABEL_COLUMNS]
    for row in rsna_labels.values():
        assert row["any"] == int(any(row[s] for s in head_ct.SUBTYPES))


def test_rsna_class_mix(rsna_root, rsna_labels):
    n_any = sum(r["any"] for r in rsna_labels.values())
    assert 0.1 < n_any / len(rsna_labels) < 0.5  # mostly none
    for subtype in head_ct.SUBTYPES:  # every subtype, even at smoke size
        assert sum(r[subtype] for r in rsna_labels.values()) >= 1, subtype
    singles = Counter(s for r in rsna_labels.values() for s in head_ct.SUBTYPES
                      if r[s] and sum(r[t] for t in head_ct.SUBTYPES) == 1)
    assert set(singles) == set(head_ct.SUBTYPES)  # the single-type selection keeps every class
    multi = sum(sum(r[s] for s in head_ct.SUBTYPES) >= 2 for r in rsna_labels.values())
    assert multi >= 1 and multi == phantoms.read_marker(rsna_root)["n_multi_subtype"]


def test_rsna_dicom_headers_and_encodings(rsna_files):
    encodings = Counter()
    studies: dict[str, list] = {}
    for image_id, (hu, ds) in rsna_files.items():
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.file_meta.MediaStorageSOPClassUID == head_ct.CT_IMAGE_STORAGE
        assert ds.SOPClassUID == head_ct.CT_IMAGE_STORAGE and ds.SOPInstanceUID == image_id
        assert ds.Modality == "CT" and ds.Rows == ds.Columns == 128
        assert float(ds.RescaleSlope) == 1
        assert ds.pixel_array.shape == (128, 128)
        if ds.BitsStored == 16:
            assert ds.PixelRepresentation == 1 and float(ds.RescaleIntercept) == -1024
            assert ds.pixel_array.dtype == np.int16
            encodings["int16"] += 1
        else:
            assert ds.BitsStored == 12 and ds.PixelRepresentation == 0
            assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.max() < 4096
            assert len(ds.WindowCenter) == 2  # multi-valued, as in the real 12-bit files
            quirk = float(ds.RescaleIntercept) > -100
            encodings["quirk" if quirk else "uint12"] += 1
        studies.setdefault(ds.StudyInstanceUID, []).append(ds)
    assert set(encodings) == {"int16", "uint12", "quirk"}
    assert 0.03 < encodings["quirk"] / sum(encodings.values()) < 0.35
    for slices in studies.values():  # one patient, one series, consecutive slices
        assert len({d.PatientID for d in slices}) == 1
        assert len({d.SeriesInstanceUID for d in slices}) == 1
        z = sorted(float(d.ImagePositionPatient[2]) for d in slices)
        assert np.allclose(np.diff(z), head_ct.SLICE_MM, atol=1e-3)
    assert len({d.PatientID for s in studies.values() for d in s}) == len(studies) > 5


def test_rsna_hu_read_back_with_correction(rsna_files):
    for image_id, (hu, ds) in rsna_files.items():
        center = hu[48:80, 48:80]  # the middle of the brain
        assert -20 < np.median(center) < 60, image_id
        assert hu.max() > 1000  # skull
        mid_row = hu[64]
        air = mid_row[np.nonzero(mid_row > -1100)[0][0]: np.nonzero(mid_row > -500)[0][0]]
        if air.size:  # between the scan circle and the scalp
            assert abs(np.median(air) + 1000) < 30, image_id
        if float(ds.RescaleIntercept) > -100:  # the naive reading is wrong for air
            naive = ds.pixel_array.astype(np.int32) + float(ds.RescaleIntercept)
            assert naive.max() > 3000


def test_rsna_haemorrhage_density_and_place():
    study = head_ct.plan_studies(40, seed=2)[0]
    for subtype in head_ct.SUBTYPES:
        level = 0.5
        lesion = head_ct._plan_lesion(rng_for(0, subtype), subtype, level, 0.03)
        lesion.level = level
        study.lesions = [lesion]
        hu, blood = head_ct.render_slice(rng_for(1, subtype), study, level, size=128)
        assert set(blood) == {subtype}
        values = hu[blood[subtype]]
        assert 40 < values.mean() < 95, subtype
        study.lesions = []
        clean, none = head_ct.render_slice(rng_for(1, subtype), study, level, size=128)
        assert none == {}
        assert -10 < clean[blood[subtype]].mean() < values.mean() - 12  # brain or CSF underneath


def test_rsna_corrupt_file_fails_to_read(rsna_root):
    import pydicom

    record = phantoms.read_marker(rsna_root)
    assert len(record["corrupt_ids"]) == 1
    path = rsna_root / "stage_2_train" / f"{record['corrupt_ids'][0]}.dcm"
    assert path.exists()
    with pytest.raises(ValueError, match="pixel data"):
        _ = pydicom.dcmread(path).pixel_array


# ---------------------------------------------------------------------------------- MosMed


def test_mosmed_layout_and_nifti_header(mosmed_root):
    import nibabel as nib

    assert sorted(p.name for p in (mosmed_root / "CT-0").iterdir()) == \
        ["study_0001.nii.gz", "study_0002.nii.gz"]
    assert sorted(p.name for p in (mosmed_root / "CT-23").iterdir()) == \
        ["study_0939.nii.gz", "study_0940.nii.gz"]
    for path in mosmed_root.rglob("*.nii.gz"):
        img = nib.load(path)
        assert img.get_data_dtype() == np.int16
        assert img.shape[:2] == (64, 64) and 30 <= img.shape[2] <= 70
        assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
        zooms = img.header.get_zooms()
        assert zooms[2] == chest_ct.SLICE_MM and zooms[0] == zooms[1]
        assert 0.6 * 8 <= zooms[0] <= 0.9 * 8  # 512-equivalent spacing scaled to 64 px
        assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
        assert img.header["descrip"].tobytes().startswith(b"Time=")
        data = np.asarray(img.dataobj)
        assert data.min() >= -1024 and data.max() > 300  # air and bone


def test_mosmed_masks_follow_the_volumes(mosmed_root):
    import nibabel as nib
    from medrepro.data import volumes

    masks = phantoms.lesion_masks(mosmed_root)
    listed = volumes.list_scans(mosmed_root)
    assert set(masks) == {phantoms.mask_key(mosmed_root, p) for p in listed["path"]}
    fractions = phantoms.read_marker(mosmed_root)["lesion_fraction"]
    for key in masks:
        m = masks[key]
        hu = np.asarray(nib.load(mosmed_root / key).dataobj)
        assert m["lesion"].shape == m["region"].shape == hu.shape, key
        if key.startswith("CT-0/"):
            assert not m["lesion"].any(), key  # normal dependent density is not a lesion
            continue
        assert m["lesion"].any() and not (m["lesion"] & ~m["region"]).any(), key  # in the lungs
        assert m["lesion"].sum() / m["region"].sum() == pytest.approx(fractions[key], abs=1e-3)
        assert np.median(hu[m["lesion"]]) > -750 > np.median(hu[m["region"] & ~m["lesion"]])


def test_mosmed_tissue_hu_and_findings():
    normal = chest_ct.render_volume(rng_for(0, "n"), abnormal=False, size=64)
    sick = chest_ct.render_volume(rng_for(0, "s"), abnormal=True, size=64)
    for ct in (normal, sick):
        healthy = ct.lung & ~ct.ggo & ~ct.consolidation
        assert -950 < ct.hu[healthy].mean() < -780
    assert not normal.consolidation.any()
    assert -720 < sick.hu[sick.ggo].mean() < -280
    assert -130 < sick.hu[sick.consolidation].mean() < 80
    assert chest_ct.EXTENT_RANGE[0] - 0.01 < sick.lesion_fraction < chest_ct.EXTENT_RANGE[1] + 0.01
    assert normal.lesion_fraction < chest_ct.NORMAL_DEPENDENT[1] + 0.01


def test_mosmed_extent_ranges_and_the_classes_separate(mosmed_root):
    # CT-23 lesions cover 20-60 % of the lung (MosMed's CT-2/CT-3: 25-75 %), CT-0's normal
    # dependent density 0.5-5 %: by design the two no longer overlap in extent.
    assert chest_ct.EXTENT_RANGE == (0.20, 0.60)
    assert chest_ct.NORMAL_DEPENDENT[1] < chest_ct.EXTENT_RANGE[0]
    fractions = phantoms.read_marker(mosmed_root)["lesion_fraction"]
    assert all(v > 0 for v in fractions.values())
    by_class = {cls: [v for k, v in fractions.items() if k.startswith(f"{cls}/")]
                for cls in chest_ct.CLASSES}
    lo, hi = chest_ct.EXTENT_RANGE
    assert all(lo - 0.01 < v < hi + 0.01 for v in by_class["CT-23"]), by_class
    assert all(v < chest_ct.NORMAL_DEPENDENT[1] + 0.01 for v in by_class["CT-0"]), by_class
    extents = [chest_ct.render_volume(rng_for(s, "x"), abnormal=True, size=32).lesion_fraction
               for s in range(12)]
    assert lo - 0.01 < min(extents) and max(extents) < hi + 0.01
    assert max(extents) - min(extents) > 0.15  # graded, not one fixed extent


# --------------------------------------------------------------- determinism and atomicity


@pytest.mark.parametrize("make,kwargs", [
    (phantoms.make_mri, {"layout": "masoud", "n_per_class": 2, "n_test_per_class": 1, "size": 48}),
    (phantoms.make_rsna, {"n_images": 6, "size": 64}),
    (phantoms.make_mosmed, {"n_per_class": 1, "size": 32}),
])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, make, kwargs):
    a = _digest(make(tmp_path / "a", seed=1, **kwargs))
    b = _digest(make(tmp_path / "b", seed=1, **kwargs))
    c = _digest(make(tmp_path / "c", seed=2, **kwargs))
    assert a == b
    assert set(a) - {_common.MARKER_NAME} == set(c) - {_common.MARKER_NAME} or \
        make is phantoms.make_rsna  # RSNA ids depend on the seed
    assert a != c and set(a.values()) & set(c.values()) <= {a.get(_common.MARKER_NAME)}


def test_rerun_is_a_noop_and_other_arguments_rebuild(tmp_path):
    root = phantoms.make_mosmed(tmp_path / "m", n_per_class=1, seed=0, size=32)
    marker = root / _common.MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    phantoms.make_mosmed(root, n_per_class=1, seed=0, size=32)
    assert marker.stat().st_mtime_ns == stamp
    phantoms.make_mosmed(root, n_per_class=2, seed=0, size=32)
    assert len(list((root / "CT-0").iterdir())) == 2
    assert phantoms.is_complete(root, {"generator": "mosmed", "n_per_class": 2, "seed": 0, "size": 32})
    assert not list(tmp_path.glob(".m.*"))  # no temporaries left


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = chest_ct.render_volume

    def dies_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(chest_ct, "render_volume", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        phantoms.make_mosmed(tmp_path / "m", n_per_class=1, seed=0, size=32)
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(chest_ct, "render_volume", real)
    root = phantoms.make_mosmed(tmp_path / "m", n_per_class=1, seed=0, size=32)
    assert phantoms.is_complete(root)


def test_refuses_to_overwrite_a_real_dataset(tmp_path):
    real = tmp_path / "brain_tumor_sartaj"
    (real / "Training").mkdir(parents=True)
    (real / "Training" / "x.jpg").write_bytes(b"not ours")
    with pytest.raises(phantoms.PhantomError, match="not a phantom"):
        phantoms.make_mri(real, layout="sartaj", n_per_class=2, seed=0, size=48)
    assert (real / "Training" / "x.jpg").read_bytes() == b"not ours"


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".phantom.json"}


@pytest.mark.parametrize("module,kwargs", [
    (brain_mri, {"layout": "sartaj", "n_per_class": 3, "size": 64}),
    (head_ct, {"n_images": 12, "size": 64}),
    (chest_ct, {"n_per_class": 2, "size": 32}),
])
def test_rendered_in_worker_processes_is_byte_identical(tmp_path, monkeypatch, module, kwargs):
    # two spawned workers (the thresholds lowered so that these small phantoms use them) must
    # write the same files and masks as one process: each file's generator is its own
    import concurrent.futures

    make = {brain_mri: brain_mri.make_mri, head_ct: head_ct.make_rsna,
            chest_ct: chest_ct.make_mosmed}[module]
    monkeypatch.setattr(_common, "PARALLEL_MIN_ITEMS", 1)
    monkeypatch.setattr(chest_ct, "PARALLEL_MIN_VOLUMES", 1)
    monkeypatch.setenv("MEDREPRO_PHANTOM_WORKERS", "1")
    serial = make(tmp_path / "serial", seed=5, **kwargs)
    pools = []

    class Recorded(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kw):
            pools.append(args[0] if args else kw.get("max_workers"))
            super().__init__(*args, **kw)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Recorded)
    monkeypatch.setenv("MEDREPRO_PHANTOM_WORKERS", "2")
    parallel = make(tmp_path / "parallel", seed=5, **kwargs)
    assert pools == [2]
    files = _tree_bytes(serial)
    assert len(files) >= 4 and files == _tree_bytes(parallel)


def test_phantom_workers_reads_the_environment(monkeypatch):
    monkeypatch.setenv("MEDREPRO_PHANTOM_WORKERS", "3")
    assert _common.phantom_workers() == 3
    monkeypatch.setenv("MEDREPRO_PHANTOM_WORKERS", "many")
    with pytest.raises(_common.PhantomError, match="MEDREPRO_PHANTOM_WORKERS"):
        _common.phantom_workers()
    monkeypatch.delenv("MEDREPRO_PHANTOM_WORKERS")
    assert 1 <= _common.phantom_workers() <= 8
