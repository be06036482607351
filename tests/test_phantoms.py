"""Tests of the phantom generators: layouts, formats, determinism, HU, lesions, atomicity."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medrepro import phantoms
from medrepro.phantoms import mosmed, mri, rsna

warnings.filterwarnings("ignore", message="Invalid value for VR UI")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def masoud(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mri") / "brain_tumor_masoud"
    return phantoms.make_mri(root, layout="masoud", n_per_class=6, n_test_per_class=3, seed=3,
                             size=96)


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rsna") / "rsna_ich"
    return phantoms.make_rsna(root, n_images=40, seed=5, size=128)


@pytest.fixture(scope="module")
def mosmed_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mosmed") / "mosmed"
    return phantoms.make_mosmed(root, n_per_class=2, seed=7, size=64)


def test_masoud_layout_names_and_mode(masoud):
    for split, prefix, n in (("Training", "Tr", 6), ("Testing", "Te", 3)):
        for cls, short in mri.MASOUD_PREFIX.items():
            files = sorted((masoud / split / cls).glob("*.jpg"))
            assert len(files) == n
            assert files[0].name == f"{prefix}-{short}Tr_0000.jpg"
            with Image.open(files[0]) as im:
                assert im.mode == "L"


def test_rsna_csv_rows_and_dicom_reads(rsna_root):
    import pydicom

    lines = (rsna_root / "stage_2_train.csv").read_text().splitlines()
    assert lines[0] == "ID,Label"
    files = sorted((rsna_root / "stage_2_train").glob("ID_*.dcm"))
    assert len(lines) - 1 == 6 * len(files) == 6 * 40
    assert [ln.split(",")[0].rsplit("_", 1)[1] for ln in lines[1:7]] == list(rsna.LABEL_COLUMNS)
    corrupt = set(phantoms.read_marker(rsna_root)["corrupt_ids"])
    ds = pydicom.dcmread(next(f for f in files if f.stem not in corrupt))
    assert ds.pixel_array.shape == (128, 128)


def test_mosmed_layout_and_dtype(mosmed_root):
    import nibabel as nib

    files = sorted((mosmed_root / "CT-23").glob("*.nii.gz"))
    assert [f.name for f in files] == ["study_0939.nii.gz", "study_0940.nii.gz"]
    img = nib.load(files[0])
    assert img.get_data_dtype() == np.int16
    assert img.shape[:2] == (64, 64) and 30 <= img.shape[2] <= 70
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
