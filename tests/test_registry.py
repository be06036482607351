"""medrepro.data.registry: the dataset specs and finding a dataset's layout inside a folder."""

from __future__ import annotations

from conftest import mri_folder
from medrepro.data import registry


def test_registry_ids_counts_and_sources():
    assert registry.DATASET_IDS == ("brain_tumor_sartaj", "brain_tumor_masoud", "rsna_ich",
                                    "mosmed")
    totals = {d: registry.spec(d).official_total for d in registry.DATASET_IDS}
    assert totals == {"brain_tumor_sartaj": 3264, "brain_tumor_masoud": 7023,
                      "rsna_ich": 752_803, "mosmed": 424}
    assert registry.spec("brain_tumor_masoud").official_counts["Testing"]["notumor"] == 405
    assert sum(v for k, v in registry.spec("rsna_ich").official_counts["stage_2_train"].items()
               if k != "all") == registry.RSNA_SELECTED_IMAGES
    mosmed = registry.spec("mosmed")
    assert [u.filename for u in mosmed.urls] == ["CT-0.zip", "CT-23.zip"]
    assert all(u.sha256 is None for u in mosmed.urls)  # not published: recorded on download
    assert registry.spec("rsna_ich").kaggle_competition == "rsna-intracranial-hemorrhage-detection"

def test_folder_named_for_another_dataset_is_not_entered(tmp_path):
    mri_folder(tmp_path / "brain_tumor_sartaj" / "brain_tumor_masoud", "brain_tumor_masoud")
    assert registry.find_dataset_root(tmp_path, "brain_tumor_masoud") is None
