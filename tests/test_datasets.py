"""medrepro.data.datasets: resolve (phantom, folder, archive, kaggle input), inventory.

The phantom generators are replaced by a tiny fake that writes a few bytes per file in the right
layout: these tests check the resolving logic, tests/test_phantoms.py the generators.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import zipfile
from pathlib import Path

import pytest

import medrepro.data
from conftest import mri_folder, tiny_jpeg
from medrepro.data import datasets, registry
from medrepro.core import paths, profiles
from medrepro.data.phantoms import _common as phantoms_common
from medrepro.data.registry import DatasetError

SMOKE = profiles.settings("phantoms", "smoke")


class FakePhantoms(types.ModuleType):
    """Stands in for medrepro.data.phantoms; records its calls."""

    def __init__(self, fail: bool = False):
        super().__init__("medrepro.data.phantoms")
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail

    def make_mri(self, root, *, layout, n_per_class, seed, n_test_per_class=None, size=512):
        self.calls.append(("mri", {"layout": layout, "n_per_class": n_per_class, "seed": seed,
                                   "n_test_per_class": n_test_per_class, "size": size}))
        sp = registry.spec("brain_tumor_sartaj" if layout == "sartaj" else "brain_tumor_masoud")
        for split, n in (("Training", n_per_class), ("Testing", n_test_per_class)):
            for cls in sp.classes:
                folder = Path(root) / split / cls
                folder.mkdir(parents=True)
                for i in range(n):
                    (folder / f"{cls[:2]}_{i:04d}.jpg").write_bytes(tiny_jpeg(seed + i))
                if self.fail:
                    raise RuntimeError("generator crashed midway")

    def make_rsna(self, root, *, n_images, seed):
        self.calls.append(("rsna", {"n_images": n_images, "seed": seed}))
        _write_rsna(Path(root), {f"ID_{i:09x}": {} for i in range(n_images)})

    def make_mosmed(self, root, *, n_per_class, seed, size=512):
        self.calls.append(("mosmed", {"n_per_class": n_per_class, "size": size, "seed": seed}))
        for split in ("CT-0", "CT-23"):
            (Path(root) / split).mkdir(parents=True)
            for i in range(n_per_class):
                (Path(root) / split / f"study_{i:04d}.nii.gz").write_bytes(b"nii")


def _write_rsna(root: Path, images: dict[str, dict[str, int]]) -> None:
    """RSNA layout: ``images`` maps an image id to its positive subtypes."""
    (root / "stage_2_train").mkdir(parents=True)
    rows = ["ID,Label"]
    for img, pos in images.items():
        (root / "stage_2_train" / f"{img}.dcm").write_bytes(b"DICM")
        for sub in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid",
                    "subdural"):
            rows.append(f"{img}_{sub},{pos.get(sub, 0)}")
        rows.append(f"{img}_any,{int(any(pos.values()))}")
    (root / "stage_2_train.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    ph = FakePhantoms()
    monkeypatch.setitem(sys.modules, "medrepro.data.phantoms", ph)
    monkeypatch.setattr(medrepro.data, "phantoms", ph, raising=False)
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    return ph


# --------------------------------------------------------------------------------------------
# resolve

def test_unknown_dataset_and_missing_path_are_clear_errors(fake, tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset id 'brats'.*brain_tumor_sartaj"):
        datasets.resolve("brats", data="phantom", profile="smoke")
    with pytest.raises(DatasetError, match="no such folder or archive"):
        datasets.resolve("mosmed", data=str(tmp_path / "nowhere"), profile="smoke")


# --------------------------------------------------------------------------------------------
# phantoms

def test_phantom_generated_once_with_profile_sizes(fake):
    rd = datasets.resolve("brain_tumor_masoud", data="phantom", profile="smoke")
    assert rd.is_phantom and rd.source == "phantom" and rd.origin == "phantom"
    assert rd.root == paths.data_dir() / "raw" / "phantom" / "smoke" / "brain_tumor_masoud"
    assert rd.splits_present == ("Training", "Testing")
    assert fake.calls == [("mri", {"layout": "masoud", "n_per_class": SMOKE.mri_train_per_class,
                                   "seed": 42, "n_test_per_class": SMOKE.mri_test_per_class,
                                   "size": SMOKE.mri_size})]
    assert (rd.root / phantoms_common.MARKER_NAME).is_file() and datasets.phantom_record(rd.root)
    again = datasets.resolve("brain_tumor_masoud", data=None, profile="smoke")
    assert again.root == rd.root and len(fake.calls) == 1, "a complete phantom was regenerated"


def test_phantom_other_seed_gets_own_folder_and_changed_sizes_regenerate(fake, monkeypatch):
    a = datasets.resolve("mosmed", data="phantom", profile="smoke")
    b = datasets.resolve("mosmed", data="phantom", profile="smoke", seed=7)
    assert a.root != b.root and b.root.name == "mosmed_seed7"
    assert [c[1]["seed"] for c in fake.calls] == [42, 7]
    table = dataclasses.replace(profiles.PROFILES["phantoms"]["smoke"], mosmed_per_class=3)
    monkeypatch.setitem(profiles.PROFILES["phantoms"], "smoke", table)
    c = datasets.resolve("mosmed", data="phantom", profile="smoke")
    assert c.root == a.root and fake.calls[-1][1]["n_per_class"] == 3
    assert len(list((c.root / "CT-0").iterdir())) == 3


def test_failed_generation_leaves_no_complete_looking_folder(fake):
    fake.fail = True
    with pytest.raises(RuntimeError, match="crashed midway"):
        datasets.resolve("brain_tumor_sartaj", data="phantom", profile="smoke")
    parent = paths.data_dir() / "raw" / "phantom" / "smoke"
    assert list(parent.iterdir()) == [], "staging or a partial dataset was left behind"


def test_profile_from_environment(fake, monkeypatch):
    monkeypatch.setenv("MEDREPRO_PROFILE", "demo")
    rd = datasets.resolve("rsna_ich", data="phantom", profile=None)
    assert rd.root.parent.name == "demo"
    assert fake.calls[-1] == ("rsna", {"n_images": profiles.settings("phantoms", "demo")
                                       .rsna_images, "seed": 42})


# --------------------------------------------------------------------------------------------
# folders, archives, kaggle inputs

def test_folder_complete_missing_split_and_absent(fake, tmp_path):
    base = tmp_path / "datasets"
    mri_folder(base / "brain_tumor_sartaj", "brain_tumor_sartaj")
    mri_folder(base / "brain_tumor_masoud", "brain_tumor_masoud", splits=("Testing",))
    (base / "rsna_ich_samples").mkdir()

    sartaj = datasets.resolve("brain_tumor_sartaj", data=str(base), profile="smoke")
    assert not sartaj.is_phantom and sartaj.source == "brain_tumor_sartaj"
    assert sartaj.root == (base / "brain_tumor_sartaj").resolve() and sartaj.origin == "folder"

    masoud = datasets.resolve("brain_tumor_masoud", data=str(base), profile="smoke")
    assert masoud.is_phantom and masoud.source == "phantom"
    assert masoud.found_root == (base / "brain_tumor_masoud").resolve()
    assert masoud.found_splits == ("Testing",)
    assert "missing Training" in masoud.notes[0]

    partial = datasets.resolve("brain_tumor_masoud", data=base, profile="smoke",
                               allow_partial=True)
    assert not partial.is_phantom and partial.splits_present == ("Testing",)

    rsna = datasets.resolve("rsna_ich", data=str(base), profile="smoke")
    assert rsna.is_phantom and "not found" in rsna.notes[0] and rsna.found_root is None
    assert [c[0] for c in fake.calls] == ["mri", "rsna"]


def test_folder_with_kaggle_names_and_nesting_and_dataset_root_itself(fake, tmp_path):
    nested = tmp_path / "in" / "brain-tumor-mri-dataset" / "extra"
    mri_folder(nested, "brain_tumor_masoud")
    rd = datasets.resolve("brain_tumor_masoud", data=tmp_path / "in", profile="smoke")
    assert rd.root == nested.resolve() and not rd.is_phantom
    # a dataset's own root given as the folder; other datasets' class names do not match it
    rd = datasets.resolve("brain_tumor_masoud", data=nested, profile="smoke")
    assert rd.root == nested.resolve()
    other = datasets.resolve("brain_tumor_sartaj", data=nested, profile="smoke")
    assert other.is_phantom


def test_archive_is_extracted_once_and_read(fake, tmp_path):
    src = mri_folder(tmp_path / "src" / "brain_tumor_sartaj", "brain_tumor_sartaj")
    arc = tmp_path / "datasets.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for f in sorted(src.rglob("*.jpg")):
            zf.write(f, f.relative_to(tmp_path / "src").as_posix())
    rd = datasets.resolve("brain_tumor_sartaj", data=str(arc), profile="smoke")
    assert not rd.is_phantom and rd.origin == "archive"
    assert rd.root.is_relative_to(paths.data_dir() / "raw" / "archives")
    assert len(datasets.image_files(rd.root, "brain_tumor_sartaj")) == 16
    stamp = rd.root.stat().st_mtime_ns
    again = datasets.resolve("brain_tumor_sartaj", data=str(arc), profile="smoke")
    assert again.root == rd.root and again.root.stat().st_mtime_ns == stamp


def test_unsupported_file_as_source(fake, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(DatasetError, match="not a folder or a supported archive"):
        datasets.resolve("mosmed", data=str(f), profile="smoke")


def test_kaggle_input_folder_is_used_in_place(fake, monkeypatch, tmp_path):
    inputs = tmp_path / "kaggle" / "input"
    mri_folder(inputs / "brain-tumor-classification-mri", "brain_tumor_sartaj")
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(inputs))
    rd = datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")
    assert rd.origin == "kaggle-input" and not rd.is_phantom
    assert rd.root == (inputs / "brain-tumor-classification-mri").resolve()
    assert fake.calls == []


def test_kaggle_unavailable_raises_in_resolve_and_is_recorded_by_resolve_available(
        fake, monkeypatch, tmp_path):
    from medrepro.data import download
    from medrepro.data.download import KaggleError

    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "input"))
    mri_folder(tmp_path / "input" / "brain-tumor-classification-mri", "brain_tumor_sartaj")

    def unavailable(sp):
        raise KaggleError(f"{sp.id}: cannot reach www.kaggle.com; this machine looks offline")

    monkeypatch.setattr(download, "_download_kaggle", unavailable)
    monkeypatch.setattr(download, "download_url_dataset", unavailable)
    with pytest.raises(KaggleError, match="looks offline"):
        datasets.resolve("brain_tumor_masoud", data="kaggle", profile="smoke")
    assert fake.calls == []  # resolve never falls back to a phantom for data="kaggle"

    resolved, missing = datasets.resolve_available(data="kaggle", profile="smoke")
    assert list(resolved) == list(registry.DATASET_IDS)
    assert set(missing) == {"brain_tumor_masoud", "rsna_ich", "mosmed"}
    assert not resolved["brain_tumor_sartaj"].is_phantom
    assert resolved["mosmed"].is_phantom and "looks offline" in resolved["mosmed"].notes[0]
    inv = datasets.inventory(resolved, unavailable=missing)
    rows = inv[inv["status"].str.startswith("unavailable")]
    assert set(rows["dataset"]) == set(missing)
    assert set(rows.loc[rows["dataset"] == "mosmed", "split"]) == {"CT-0", "CT-23"}
    assert rows["status"].str.contains("looks offline").all() and (rows["files"] == 0).all()


def test_kaggle_input_found_under_the_new_datasets_owner_slug_mount(fake, monkeypatch, tmp_path):
    inputs = tmp_path / "input"
    root = inputs / "datasets" / "masoudnickparvar" / "brain-tumor-mri-dataset"
    mri_folder(root, "brain_tumor_masoud")
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(inputs))
    rd = datasets.resolve("brain_tumor_masoud", data="kaggle", profile="smoke")
    assert rd.origin == "kaggle-input" and rd.root == root.resolve()


def test_mosmed_full_release_mirror_is_composed_into_ct23(fake, monkeypatch, tmp_path):
    mirror = tmp_path / "input" / registry.MOSMED_KAGGLE_MIRRORS[0] / "MosMedData" / "studies"
    for split, n in (("CT-0", 3), ("CT-1", 2), ("CT-2", 2), ("CT-3", 1)):
        (mirror / split).mkdir(parents=True)
        for i in range(n):
            (mirror / split / f"study_{split[-1]}{i:03d}.nii.gz").write_bytes(b"nii")
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "input"))
    rd = datasets.resolve("mosmed", data="kaggle", profile="smoke")
    assert rd.origin == "kaggle-input" and not rd.is_phantom
    assert rd.splits_present == ("CT-0", "CT-23")
    assert rd.root.is_relative_to(paths.data_dir() / "raw" / "mosmed_views")
    names = sorted(p.name for p in (rd.root / "CT-23").iterdir())
    assert names == ["study_2000.nii.gz", "study_2001.nii.gz", "study_3000.nii.gz"]  # no CT-1
    assert len(datasets.image_files(rd.root, "mosmed", splits=["CT-0"])) == 3
    assert datasets.resolve("mosmed", data="kaggle", profile="smoke").root == rd.root


# --------------------------------------------------------------------------------------------
# inventory

def test_inventory_reports_found_missing_and_used(fake, tmp_path):
    base = tmp_path / "ds"
    mri_folder(base / "brain_tumor_masoud", "brain_tumor_masoud", splits=("Testing",), n=3)
    rd = datasets.resolve("brain_tumor_masoud", data=str(base), profile="smoke")
    inv = datasets.inventory([rd])
    assert list(inv.columns) == ["dataset", "split", "class", "files", "bytes", "official_count",
                                 "skipped", "skipped_why", "source", "status", "copy",
                                 "split_sha256", "dataset_sha256", "hash_kind", "version"]
    real = inv[inv["source"] == "brain_tumor_masoud"]
    assert set(real["copy"]) == {str(rd.found_root)}
    # the real folder's Testing split: 12 files, counts unlike any published version
    assert real["version"].str.startswith("matches NO known published version").all()
    assert set(real.loc[real["split"] == "Training", "split_sha256"]) == {""}
    assert real.loc[real["split"] == "Testing", "split_sha256"].str.len().eq(64).all()
    assert set(real.loc[real["split"] == "Training", "status"]) == {"missing"}
    assert (real.loc[real["split"] == "Training", "files"] == 0).all()
    tested = real[real["split"] == "Testing"]
    assert set(tested["status"]) == {"found, not used"} and (tested["files"] == 3).all()
    assert tested["bytes"].sum() == sum(f.stat().st_size for f in (base / "brain_tumor_masoud"
                                                                  / "Testing").rglob("*.jpg"))
    assert (tested["skipped"] == 0).all() and (tested["skipped_why"] == "").all()
    used = inv[inv["source"] == "phantom"]
    assert set(used["status"]) == {"used"} and set(used["copy"]) == {f"phantom in {rd.root}"}
    assert used.loc[used["split"] == "Training", "files"].tolist() == [
        SMOKE.mri_train_per_class] * 4
    assert used.set_index(["split", "class"]).loc[("Testing", "notumor"), "official_count"] == 405


def test_inventory_rsna_counts_single_type_selection(tmp_path):
    root = tmp_path / "rsna_ich"
    _write_rsna(root, {"ID_a": {}, "ID_b": {"subdural": 1}, "ID_c": {"epidural": 1},
                       "ID_d": {"subdural": 1, "subarachnoid": 1}, "ID_e": {}})
    (root / "stage_2_train" / "ID_e.dcm").unlink()  # labelled but not on disk: not counted
    rows = {r["class"]: r["files"] for r in datasets.count_files(root, registry.spec("rsna_ich"))}
    assert rows == {"all": 4, "none": 1, "epidural": 1, "intraparenchymal": 0,
                    "intraventricular": 0, "subarachnoid": 0, "subdural": 1}


def test_shared_data_resolves_as_documented(fake):
    shared = paths.shared_data_dir()
    if shared is None:
        pytest.skip("../shared/data is not present")
    sartaj = datasets.resolve("brain_tumor_sartaj", data=str(shared), profile="smoke")
    assert not sartaj.is_phantom
    inv = datasets.inventory([sartaj])
    assert (inv["files"] == inv["official_count"]).all(), inv
    masoud = datasets.resolve("brain_tumor_masoud", data=str(shared), profile="smoke")
    assert masoud.is_phantom and masoud.found_splits == ("Testing",)
    for sample_only in ("rsna_ich", "mosmed"):
        assert datasets.resolve(sample_only, data=str(shared), profile="smoke").is_phantom


def test_relative_folder_is_taken_from_the_project_root(fake, monkeypatch, tmp_path):
    project = tmp_path / "project"
    mri_folder(project / "mydata" / "brain_tumor_sartaj", "brain_tumor_sartaj")
    (project / "notebooks").mkdir()
    monkeypatch.setenv("MEDREPRO_ROOT", str(project))
    monkeypatch.chdir(project / "notebooks")  # where papermill runs the notebooks
    rd = datasets.resolve("brain_tumor_sartaj", data="mydata", profile="smoke")
    assert not rd.is_phantom and rd.root == (project / "mydata" / "brain_tumor_sartaj").resolve()
