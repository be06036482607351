"""What notebooks 01, 02 and 06 show beside their artifacts (datasets, audit, rsna, notebook, report)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from medrepro.data import audit, datasets, rsna
from medrepro.run import notebook
from medrepro.reporting import report
from medrepro.data.datasets import ResolvedDataset


def _resolved(dataset_id, source="phantom", notes=(), splits=("Training", "Testing")):
    return ResolvedDataset(dataset_id=dataset_id, root=Path("/nonexistent") / dataset_id,
                           source=source, is_phantom=source == "phantom", origin="phantom",
                           splits_present=splits, notes=notes)


def test_acquired_table_joins_splits_and_notes():
    resolved = {"a": _resolved("a", notes=("fell back", "to the phantom")),
                "b": _resolved("b", source="b", splits=("train",))}
    t = datasets.acquired_table(resolved)
    assert list(t.columns) == ["dataset", "source", "origin", "splits", "notes"]
    assert t.to_dict("records")[0] == {"dataset": "a", "source": "phantom", "origin": "phantom",
                                       "splits": "Training, Testing",
                                       "notes": "fell back to the phantom"}
    assert t["notes"].iloc[1] == "" and t["splits"].iloc[1] == "train"


def test_print_unavailable_and_print_notes(capsys):
    notebook.print_unavailable({"rsna_ich": "no Kaggle credentials", "mosmed": "offline"})
    notebook.print_notes(["one", "two"])
    notebook.print_notes([])
    assert capsys.readouterr().out.splitlines() == [
        "UNAVAILABLE rsna_ich: no Kaggle credentials", "UNAVAILABLE mosmed: offline",
        "note: one", "note: two"]


def test_saved_duplicates_raise_naming_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setattr(audit, "duplicates_path", lambda d: tmp_path / f"{d}.json")
    with pytest.raises(FileNotFoundError, match=r"not saved by the audit.*x\.json"):
        audit.saved_duplicates({"x": _resolved("x")}, ["x"])
    (tmp_path / "x.json").write_text("{}")
    monkeypatch.setattr(audit, "load_duplicates", lambda d, root, source: [[1, 2], [3, 4]])
    assert audit.saved_duplicates({"x": _resolved("x")}, ["x"]) == {"x": "2 groups"}


def test_patients_note_counts_patients_per_split_in_split_order():
    split = pd.DataFrame({"split": ["train", "train", "test", "train"],
                          "patient_id": ["p1", "p1", "p2", "p3"]})
    assert rsna.patients_note(split) == "patients per split: train 2, val 0, test 1"
    assert rsna.patients_note(split, ["few images"], splits=("test",)) == (
        "patients per split: test 1; few images")


def test_recorded_by_lists_each_notebook_once_sorted():
    metrics = [{"notebook": "05_x"}, {"notebook": "03_y"}, {"notebook": "05_x"}]
    assert report.recorded_by(metrics) == ["03_y", "05_x"]
    assert report.recorded_by([]) == []


def test_only_the_training_notebooks_import_tensorflow_in_their_setup(tmp_path):
    import subprocess
    import sys

    from medrepro.core import profiles

    assert [nb for nb in profiles.NOTEBOOK_ROWS if profiles.trains_models(nb)] == [
        "03_lstm_cnn_mri", "04_lightweight_ct", "05_3dcnn_mosmed"]
    code = ("import sys; from medrepro.run import notebook; "
            "notebook.setup(sys.argv[1], profile='smoke', data='phantom', seed=3, "
            "reports=sys.argv[2], quiet=True); "
            "import random; print('keras' in sys.modules, random.random())")
    out = {}
    for nb in ("06_compare", "03_lstm_cnn_mri"):
        done = subprocess.run([sys.executable, "-c", code, nb, str(tmp_path)], check=True,
                              capture_output=True, text=True)
        out[nb] = done.stdout.split()
    import random

    random.seed(3)
    expected = str(random.random())
    assert out["06_compare"] == ["False", expected]  # seeded, without importing keras
    assert out["03_lstm_cnn_mri"] == ["True", expected]
