"""medrepro.run.schedule: executions per seed and study; the sections of a notebook."""

from __future__ import annotations

import nbformat
import pytest
from medrepro.core import paths
from medrepro.run import runner, schedule

ALL = ["01_download", "02_preprocess_rsna", "03_lstm_cnn_mri", "04_lightweight_ct",
       "05_3dcnn_mosmed", "06_compare"]


def _labels(runs):
    return [(r.notebook[:2], r.seed, r.studies, r.primary) for r in runs]


def test_seeds_run_the_study_notebooks_primary_last_and_once_notebooks_once():
    runs = schedule.make_schedule(ALL, seeds=[42, 1])
    assert _labels(runs) == [("02", 1, None, False), ("03", 1, None, False),
                             ("04", 1, None, False), ("05", 1, None, False),
                             ("01", 42, None, True), ("02", 42, None, True),
                             ("03", 42, None, True), ("04", 42, None, True),
                             ("05", 42, None, True), ("06", 42, None, True)]
    assert runs[1].output_name == "03_lstm_cnn_mri.seed1.ipynb"
    assert runs[6].output_name == "03_lstm_cnn_mri.ipynb"
    assert schedule.seeds_of(runs) == [42, 1]


def test_the_paper_profile_runs_three_seeds_for_c_d_e_only():
    runs = runner.seed_runs(ALL, profile="paper", seed=42, seeds=None, studies=None)
    extra = [(r.notebook[:2], r.seed, r.studies) for r in runs if not r.primary]
    assert extra == [("03", 1, ("C", "E")), ("05", 1, None), ("03", 2, ("C", "E")),
                     ("05", 2, None)]
    assert runner.seed_runs(ALL, profile="demo", seed=7, seeds=None, studies=None)[0].seed == 7
    assert schedule.default_seeds("paper", 7)[0] == (7, 42, 1)


def test_studies_select_sections_and_notebooks():
    runs = schedule.make_schedule(["03_lstm_cnn_mri", "04_lightweight_ct"], seeds=[42, 1, 2],
                                  studies=["e"])
    assert _labels(runs) == [("03", 1, ("E",), False), ("03", 2, ("E",), False),
                             ("03", 42, ("E",), True)]
    with pytest.raises(ValueError, match="unknown study Q"):
        schedule.make_schedule(ALL, seeds=[42], studies=["Q"])
    with pytest.raises(ValueError, match="a seed is given twice"):
        schedule.make_schedule(ALL, seeds=[42, 42])


def test_select_studies_keeps_set_up_and_the_asked_sections(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("setup()"),
                nbformat.v4.new_markdown_cell("## Study A — x"), nbformat.v4.new_code_cell("a()"),
                nbformat.v4.new_markdown_cell("## A.table1 — y"), nbformat.v4.new_code_cell("a2()"),
                nbformat.v4.new_markdown_cell("## Study E — z"), nbformat.v4.new_code_cell("e()")]
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    out = schedule.select_studies(src, ["E"], tmp_path / "sel.ipynb")
    kept = [c.source for c in nbformat.read(out, as_version=4).cells]
    assert kept == ["# title", "setup()", "## Study E — z", "e()"]
    with pytest.raises(ValueError, match=r"nb.ipynb: no '## Study X' section for studies C"):
        schedule.select_studies(src, ["C"], tmp_path / "none.ipynb")


def test_notebook_03_has_a_section_per_study():
    nb = nbformat.read(paths.notebooks_dir() / "03_lstm_cnn_mri.ipynb", as_version=4)
    assert set(schedule.study_sections(nb.cells)) == {None, "A", "C", "E"}
