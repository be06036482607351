"""Datasets found among Kaggle's inputs under their real mount names and layouts
(medrepro.data.phantoms.kaggle_inputs builds the tree; medrepro.data.download finds it)."""

from __future__ import annotations

import shutil

import pytest
from medrepro.core import paths
from medrepro.data import datasets, download, registry, volumes
from medrepro.data.phantoms import kaggle_inputs

TOP = "MosMedData Chest CT Scans with COVID-19 Related Findings COVID19_1110 1.0"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle") / "input"
    return root, kaggle_inputs.make_kaggle_inputs(root, profile="smoke")


@pytest.fixture
def on_kaggle(inputs, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(inputs[0]))
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    return inputs


def test_the_tree_has_the_real_names(inputs):
    root, made = inputs
    studies = (root / "datasets" / "mathurinache" / "mosmeddata-chest-ct-scans-with-covid19" / TOP
               / "studies")
    assert made["mosmed"] == studies
    assert len(studies.relative_to(root).parts) == 5  # five levels under /kaggle/input
    names = {p.parent.name: p.name for p in studies.glob("CT-*/*")}
    assert set(names) == {"CT-0", "CT-1", "CT-2", "CT-3"}
    assert all(n.startswith("study_") and n.endswith(".nii") for n in names.values())
    assert (root / "competitions" / "rsna-intracranial-hemorrhage-detection"
            / "rsna-intracranial-hemorrhage-detection" / "stage_2_train.csv").is_file()


def test_every_dataset_is_found_where_kaggle_mounts_it(on_kaggle):
    _, made = on_kaggle
    for dataset_id, where in made.items():
        rd = datasets.resolve(dataset_id, data="kaggle", profile="smoke")
        assert rd.origin == "kaggle-input" and not rd.is_phantom, dataset_id
        if dataset_id != "mosmed":
            assert rd.root == where.resolve() and rd.copy == f"attached Kaggle input {rd.root}"


def test_the_mosmed_mirror_is_read_as_it_is_published(on_kaggle):
    """Uncompressed .nii, CT-2 + CT-3 composed into CT-23 (CT-1 left out), no download, and the
    inventory says which copy was read."""
    _, made = on_kaggle
    studies = made["mosmed"]
    rd = datasets.resolve("mosmed", data="kaggle", profile="smoke")
    assert rd.splits_present == ("CT-0", "CT-23")
    ct23 = sorted(p.name for p in (rd.root / "CT-23").iterdir())
    expected = sorted(p.name for part in ("CT-2", "CT-3") for p in (studies / part).iterdir())
    assert ct23 == expected and "study_0255.nii" not in ct23
    assert not (paths.downloads_dir()).exists()  # the release zips were not fetched
    inv = datasets.inventory([rd])
    assert set(inv["copy"]) == {(f"attached Kaggle input {studies.resolve()} (CT-23 = CT-2 + "
                                 f"CT-3, linked in {rd.root})")}
    assert inv.loc[inv["split"] == "CT-0", "files"].item() == len(list((studies / "CT-0").iterdir()))
    scans = volumes.list_scans(rd.root)
    assert len(scans) == len(ct23) + len(list((studies / "CT-0").iterdir()))
    vol = volumes.read_volume(scans["path"].iloc[-1])  # a .nii through its CT-23 link
    assert vol.ndim == 3


def test_the_classic_mount_and_gzipped_volumes_are_found_too(on_kaggle, tmp_path, monkeypatch):
    _, made = on_kaggle
    classic = tmp_path / "input" / "mosmeddata-chest-ct-scans-with-covid19" / TOP / "studies"
    shutil.copytree(made["mosmed"], classic)
    for f in classic.glob("CT-0/*.nii"):  # a mix of .nii and .nii.gz is read alike
        f.rename(f.with_name(f.name + ".gz"))
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "input"))
    sp = registry.spec("mosmed")
    assert download.find_kaggle_input(sp) == classic.resolve()
    assert registry.splits_present(classic, sp) == ("CT-0",)  # CT-23: composed on resolving
    rd = datasets.resolve("mosmed", data="kaggle", profile="smoke")
    assert len(datasets.image_files(rd.root, "mosmed", splits=["CT-0"])) == len(
        list(classic.glob("CT-0/*.nii.gz")))


def test_kaggle_mount_folders_of_a_dataset_and_a_competition():
    assert download.kaggle_mounts(registry.spec("brain_tumor_masoud")) == [
        "brain-tumor-mri-dataset", "masoudnickparvar/brain-tumor-mri-dataset",
        "datasets/masoudnickparvar/brain-tumor-mri-dataset"]
    assert download.kaggle_mounts(registry.spec("rsna_ich")) == [
        "rsna-intracranial-hemorrhage-detection",
        "competitions/rsna-intracranial-hemorrhage-detection"]
    assert "datasets/mathurinache/mosmeddata-chest-ct-scans-with-covid19" in download.kaggle_mounts(
        registry.spec("mosmed"))
