"""medrepro.data.tuning and the tuning scripts: a recipe is tuned without a path to the test split.

The view holds fit and validation images only (every path it holds is checked); the official
protocol never lists the Testing folder; the tuning scripts name no other way to the images;
and a whole tuning run, traced at the one place every image is decoded, reads no test file.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from medrepro.data import brain_mri, phantoms, tuning

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
TUNING_SCRIPTS = sorted(BENCH.glob("tune_*.py"))
# Names through which a script could list, split or load a dataset's images other than
# tuning.view (the pipelines come from tuning.pipelines, which takes a view).
FORBIDDEN = {"list_images", "official_split", "paper_split", "split_images", "validation_split",
             "load_masoud", "list_subsample", "resolve", "resolve_for_study", "load",
             "image_datasets", "image_dataset", "decode_files", "load_images", "train_trials",
             "duplicate_groups", "find_groups", "iterdir", "glob", "rglob", "walk", "listdir",
             "scandir", "TuningView"}


@pytest.fixture(scope="module")
def sartaj(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning") / "brain_tumor_sartaj"
    return phantoms.make_mri(root, layout="sartaj", n_per_class=10, n_test_per_class=4, seed=5,
                             size=48)


def _paths_in(view: tuning.TuningView) -> set[Path]:
    """Every path-like value the view holds, in any field or frame cell."""
    found = set()
    for field in dataclasses.fields(view):
        value = getattr(view, field.name)
        cells = value.to_numpy().ravel() if isinstance(value, pd.DataFrame) else [value]
        found |= {Path(c) for c in cells if isinstance(c, (str, Path)) and "/" in str(c)}
    return found


def test_official_view_holds_only_training_images(sartaj):
    v = tuning.view(sartaj, "brain_tumor_sartaj", protocol="official", seed=1)
    held = _paths_in(v)
    training = set(brain_mri.list_images(sartaj, "brain_tumor_sartaj", splits=("Training",))["path"])
    assert held == training and len(v.fit) + len(v.val) == 40 and len(v.val) == 4
    assert not [p for p in held if p.is_dir()]  # no folder to start a walk from
    # the study's own fit/validation split for that seed
    _, val = brain_mri.validation_split(brain_mri.official_split(
        brain_mri.list_images(sartaj, "brain_tumor_sartaj"))[0], seed=1)
    assert list(v.val["path"]) == list(val["path"])


def test_official_view_never_lists_the_testing_folder(sartaj, monkeypatch):
    import os

    listed = []
    original, scandir = Path.iterdir, os.scandir
    monkeypatch.setattr(Path, "iterdir", lambda self: (listed.append(self), original(self))[1])
    monkeypatch.setattr(os, "scandir", lambda p=".": (listed.append(Path(p)), scandir(p))[1])
    tuning.view(sartaj, "brain_tumor_sartaj", protocol="official", seed=2)
    assert listed and not [p for p in listed if "Testing" in Path(p).parts]


def test_paper_view_drops_the_pooled_test_part(sartaj):
    v = tuning.view(sartaj, "brain_tumor_sartaj", protocol="paper", seed=3)
    _, test = brain_mri.paper_split(brain_mri.list_images(sartaj, "brain_tumor_sartaj"), seed=3)
    assert not _paths_in(v) & set(test["path"])
    assert len(v.fit) + len(v.val) + len(test) == 56


def test_a_view_with_a_test_image_is_refused(sartaj):
    v = tuning.view(sartaj, "brain_tumor_sartaj", protocol="official", seed=1)
    testing = brain_mri.list_images(sartaj, "brain_tumor_sartaj", splits=("Testing",)).head(1)
    with pytest.raises(tuning.TuningViewError, match=r"val part holds 1 test image.*Testing"):
        tuning.TuningView("brain_tumor_sartaj", "official", 1, v.fit, pd.concat([v.val, testing]))
    with pytest.raises(tuning.TuningViewError, match="protocol='heldout'"):
        tuning.view(sartaj, "brain_tumor_sartaj", protocol="heldout", seed=1)


def _names(tree: ast.AST) -> set[str]:
    return ({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            | {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            | {a.name.rpartition(".")[2] for n in ast.walk(tree)
               if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names})


def _strings(tree: ast.AST) -> list[str]:
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]


@pytest.mark.parametrize("script", TUNING_SCRIPTS, ids=lambda p: p.name)
def test_tuning_scripts_reach_images_only_through_the_view(script):
    tree = ast.parse(script.read_text(encoding="utf-8"))
    names = _names(tree)
    assert {"view", "pipelines"} <= names, f"{script.name} must get its images from tuning.view"
    assert not names & FORBIDDEN, f"{script.name} names {sorted(names & FORBIDDEN)}"
    assert not [s for s in _strings(tree) if "Testing" in s or "Test" == s]


def test_there_is_a_tuning_script():
    assert [p.name for p in TUNING_SCRIPTS] == ["tune_c.py"]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_tuning_run_reads_no_test_file_and_the_test_report_comes_after(sartaj, tmp_path,
                                                                          monkeypatch):
    decoded = []
    original = brain_mri.decode_files
    monkeypatch.setattr(brain_mri, "decode_files",
                        lambda files, **kw: (decoded.extend(map(Path, files)),
                                             original(files, **kw))[1])
    monkeypatch.syspath_prepend(str(BENCH))
    tune_c, report = _script("tune_c"), _script("report_tuned_test")
    out = tmp_path / "tuned"
    assert report.main([str(out), "--root", str(sartaj)]) == 2  # no choice written yet
    args = ["--out", str(out), "--root", str(sartaj), "--candidates", "c16", "--seeds", "1",
            "--epochs", "1", "--size", "32"]
    assert tune_c.main(args) == 0
    testing = set(brain_mri.list_images(sartaj, "brain_tumor_sartaj", splits=("Testing",))["path"])
    assert decoded and not set(decoded) & testing
    choice = json.loads((out / tune_c.CHOICE).read_text())
    assert choice["chosen"] == "c16" and choice["ranking"][0]["per_seed"].startswith("1: ")
    lines = (out / tune_c.RESULTS).read_text().splitlines()
    assert tune_c.main(args) == 0 and (out / tune_c.RESULTS).read_text().splitlines() == lines
    decoded.clear()
    assert report.main([str(out), "--root", str(sartaj)]) == 0
    assert set(decoded) == testing  # the report, and only the report, reads the test split
    scored = json.loads((out / report.OUT).read_text())
    assert scored["choice"] == "c16" and scored["rows"][0]["n_test"] == len(testing)
    assert json.loads((out / tune_c.CHOICE).read_text()) == choice  # the choice is unchanged


def test_the_choice_is_the_best_mean_validation_accuracy_among_augmenting_recipes(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    tune_c = _script("tune_c")
    results = [{"candidate": c, "seed": s, "val_accuracy": a} for c, s, a in (
        ("c16", 1, 0.80), ("c16", 2, 0.84), ("geometry16", 1, 0.83), ("geometry16", 2, 0.83),
        ("none16", 1, 0.90), ("none16", 2, 0.91), ("c32", 1, 0.83), ("c32", 2, 0.83))]
    order = ["c16", "geometry16", "none16", "c32"]
    choice = tune_c.write_choice(tmp_path, results, dataset="x", candidates=order, seeds_=[1, 2])
    ranked = [r["candidate"] for r in choice["ranking"]]
    assert ranked == ["none16", "geometry16", "c32", "c16"]  # the tie goes to the listed first
    assert choice["chosen"] == "geometry16" and choice["ranking"][0]["reference_only"]
    assert json.loads((tmp_path / tune_c.CHOICE).read_text())["chosen"] == "geometry16"
