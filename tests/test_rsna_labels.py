"""medrepro.data.rsna.labels: the label file read into one row per image, the six classes, the
image- and patient-level splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medrepro.data import rsna
from test_rsna_cache import _write_labels

SUBTYPES = rsna.SUBTYPES


# ---------------------------------------------------------------------------- labels

def test_read_labels_one_row_per_image_duplicates_dropped(tmp_path):
    _write_labels(tmp_path / "l.csv", {"ID_b": (0, 0, 1, 0, 0), "ID_a": (0, 0, 0, 0, 0)})
    with open(tmp_path / "l.csv", "a") as fh:  # duplicates: the first row counts
        fh.write("ID_b_subdural,1\nID_b_intraventricular,1\n")
    df = rsna.read_labels(tmp_path / "l.csv")
    assert list(df["image_id"]) == ["ID_a", "ID_b"]
    assert list(df.columns) == ["image_id", *SUBTYPES, "any"]
    assert df.set_index("image_id").loc["ID_b", "intraventricular"] == 1
    assert df[list(SUBTYPES)].to_numpy().sum() == 1


def test_read_labels_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        rsna.read_labels(tmp_path / "nothere.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected columns ID,Label"):
        rsna.read_labels(tmp_path / "bad.csv")
    (tmp_path / "row.csv").write_text("ID,Label\nID_a_epidural,0\nID_a_bleed,1\n")
    with pytest.raises(ValueError, match=r"row\.csv:3: expected ID_<image>_<subtype>"):
        rsna.read_labels(tmp_path / "row.csv")


def test_select_single_type_keeps_none_and_single(tmp_path):
    _write_labels(tmp_path / "l.csv", {"ID_0": (0, 0, 0, 0, 0), "ID_1": (1, 0, 0, 0, 0),
                                       "ID_2": (0, 0, 0, 0, 1), "ID_3": (0, 1, 1, 0, 0)})
    sel = rsna.select_single_type(rsna.read_labels(tmp_path / "l.csv"))
    assert list(sel["image_id"]) == ["ID_0", "ID_1", "ID_2"]
    assert list(sel["label"]) == [0, 1, 5]
    assert list(sel["label_name"]) == ["none", "epidural", "subdural"]
    assert rsna.CLASSES[5] == "subdural" and rsna.N_CLASSES == 6


# ---------------------------------------------------------------------------- splits

def test_split_stratified_reproduces_the_paper_counts():
    paper = {1: 1694, 2: 15664, 3: 9878, 4: 16423, 5: 32200}
    labels = np.concatenate([np.full(n, c) for c, n in paper.items()])
    split, notes = rsna.split_stratified(labels, seed=0)
    assert notes == []
    got = pd.crosstab(labels, split)
    expected = {1: (848, 423, 423), 2: (7832, 3916, 3916), 3: (4940, 2469, 2469),
                4: (8213, 4105, 4105), 5: (16100, 8050, 8050)}
    for c, (tr, va, te) in expected.items():
        assert (got.loc[c, "train"], got.loc[c, "val"], got.loc[c, "test"]) == (tr, va, te)


def test_split_stratified_is_seeded_and_keeps_small_classes_in_train():
    labels = np.array([0] * 40 + [1] * 3 + [2] * 8)
    a, notes = rsna.split_stratified(labels, seed=1)
    b, _ = rsna.split_stratified(labels, seed=1)
    c, _ = rsna.split_stratified(labels, seed=2)
    assert (a == b).all() and not (a == c).all()
    assert (a[labels == 1] == "train").all()
    assert notes == ["class S2 epidural: 3 image(s) < 4, all in train"]
    assert (a[labels == 2] == "val").sum() == 2 and (a[labels == 2] == "test").sum() == 2
    with pytest.raises(ValueError, match="fractions"):
        rsna.split_stratified(labels, seed=0, fractions=(0.5, 0.5, 0.5))


def test_split_by_patient_groups_patients_and_trains_every_class():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"P{i}" for i in range(40)], 5)
    labels = rng.choice(6, size=len(patients), p=[0.8, 0.01, 0.05, 0.05, 0.05, 0.04])
    labels[7] = 1  # epidural in exactly one image
    split, _ = rsna.split_by_patient(labels, patients, seed=4)
    per_patient = pd.Series(split).groupby(patients).nunique()
    assert (per_patient == 1).all()
    for c in np.unique(labels):
        assert (split[labels == c] == "train").any(), c
    counts = pd.Series(split).value_counts()
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0
    again, _ = rsna.split_by_patient(labels, patients, seed=4)
    assert (again == split).all()


def test_split_by_patient_with_few_patients_and_missing_ids():
    split, notes = rsna.split_by_patient([0, 0, 1, 0], ["A", "A", "", "B"], seed=0)
    assert split[0] == split[1]
    assert any("without PatientID" in n for n in notes)
    assert any("only 3 patient(s)" in n for n in notes)


# ---------------------------------------------------------------------------- usable images

def test_check_usable_passes_a_split_that_can_be_made():
    rsna.check_usable([0] * 8 + [1] * 2, [0] * 4 + [1])  # a class with 1 of 2: goes to train
    rsna.check_usable([], [])  # nothing selected: nothing to check


def test_check_usable_names_an_emptied_class_and_a_split_left_without_val_and_test():
    with pytest.raises(rsna.RsnaDataError, match=r"class S6 subdural has 0 usable of 3 selected "
                                                 r"image\(s\); 3 of 13 selected image\(s\) "
                                                 r"skipped \(e\.g\. ID_a, ID_b, ID_c\)"):
        rsna.check_usable([0] * 10 + [5] * 3, [0] * 10, examples=["ID_a", "ID_b", "ID_c", "ID_d"])
    with pytest.raises(rsna.RsnaDataError, match=r"no class has the 4 usable images a validation "
                                                 r"and a test image need \(most: 3\)"):
        rsna.check_usable([0] * 6 + [2] * 3, [0] * 3 + [2] * 3)
