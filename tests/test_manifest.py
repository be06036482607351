import dataclasses
import re

import pytest
from medrepro.core import manifest, paths, profiles


def test_every_paper_artifact_id_is_in_the_manifest():
    shared = paths.shared_data_dir()
    papers = shared.parent / "PAPERS.md" if shared else None
    if papers is None or not papers.is_file():
        pytest.skip("../shared/PAPERS.md is not beside this checkout")
    ids = set(re.findall(r"`([A-EX]\.(?:fig|table)[0-9_]+|X\.compare)`", papers.read_text()))
    assert len(ids) > 50
    assert not ids - set(manifest.ARTIFACTS), sorted(ids - set(manifest.ARTIFACTS))


def test_manifest_entries_are_consistent():
    for art in manifest.ARTIFACTS.values():
        assert art.study in manifest.STUDIES or art.study == "X", art.id
        assert art.id.startswith(art.study + "."), art.id
        assert art.kind in {"figure", "table"}, art.id
        assert art.notebook in manifest.NOTEBOOKS, art.id
        if art.kind == "figure":
            assert art.reported is None, art.id
    for nb in manifest.NOTEBOOKS:
        assert manifest.for_notebook(nb), nb
        assert nb in profiles.NOTEBOOK_ROWS


def test_reported_values_match_the_papers_totals():
    cm = manifest.reported_frame("B.table6")
    assert cm.shape == (6, 6)
    assert cm.iloc[0, 0] == 156974
    t1 = manifest.reported_frame("B.table1")
    assert (t1["train"] + t1["val"] + t1["test"] == t1["total"]).all()
    assert t1["total"].sum() == 720_733
    a2 = manifest.reported_frame("A.table2")
    assert a2.loc[a2["class"].str.endswith("tumor"), "support"].sum() == 653
    a1 = manifest.reported_frame("A.table1")
    assert a1["params"].iloc[:-1].sum() == a1["params"].iloc[-1] == 207_605_764


def test_unknown_ids_and_notebooks_raise():
    with pytest.raises(manifest.UnknownArtifactError, match="B.table6"):
        manifest.get("B.tabel6")
    with pytest.raises(ValueError, match="unknown notebook"):
        manifest.for_notebook("07_extra")


def test_profile_table_covers_every_profile():
    for name, by_profile in profiles.PROFILES.items():
        assert set(by_profile) == set(profiles.PROFILE_NAMES), name
        assert len({type(row) for row in by_profile.values()}) == 1, name  # one row type
    assert set(profiles.NOTEBOOK_ROWS) == set(manifest.NOTEBOOKS)
    assert sorted(r for rows in profiles.NOTEBOOK_ROWS.values() for r in rows) == sorted(
        profiles.PROFILES)  # every row read by exactly one notebook
    assert profiles.settings("D", "paper").volume_shape == (128, 128, 64)
    assert profiles.settings("B", "paper").max_epochs == 30
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        profiles.settings("B", "fast")
    with pytest.raises(KeyError, match="no settings row '04_lightweight_ct'"):
        profiles.settings("04_lightweight_ct", "paper")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profiles.settings("A", "paper").epochs = 5
    with pytest.raises(TypeError):
        profiles.settings("D", "paper").epochs["aug_5"] = 1  # read-only, like the row
    df = profiles.table()
    assert {"smoke", "demo", "paper"} <= set(df.columns)
    assert df.loc[("03_lstm_cnn_mri", "C", "batch"), "paper"] == "16"
    assert list(profiles.table("D").index.get_level_values("settings").unique()) == ["D"]


@pytest.mark.parametrize("ids, notebook", [
    (("E.xai_score", "E.fig_xai_score"), "03_lstm_cnn_mri"),
    (("D.xai_score", "D.fig_xai_score"), "05_3dcnn_mosmed"),
    (("E.xai_eval", "E.fig_xai_eval", "E.fig_failures"), "03_lstm_cnn_mri"),
    (("D.xai_eval", "D.fig_xai_eval"), "05_3dcnn_mosmed"),
])
def test_explanation_scores_belong_to_their_notebooks(ids, notebook):
    made_there = {a.id: a.kind for a in manifest.for_notebook(notebook)}
    assert {i: made_there.get(i) for i in ids} == {
        i: "table" if k == 0 else "figure" for k, i in enumerate(ids)}
    assert all(manifest.get(i).beyond for i in ids)  # none is the papers'


@pytest.mark.parametrize("study, notebook", [("B", "04_lightweight_ct"), ("C", "03_lstm_cnn_mri"),
                                             ("D", "05_3dcnn_mosmed"), ("E", "03_lstm_cnn_mri")])
def test_every_classifier_has_a_failure_gallery_in_its_notebook(study, notebook):
    art = manifest.get(f"{study}.fig_failures")
    assert (art.study, art.kind, art.notebook, art.beyond) == (study, "figure", notebook, True)
    assert art.description.startswith("Failure gallery of ")


def test_every_numbered_figure_of_the_papers_is_made_or_excluded_with_a_reason():
    for study, figures in manifest.PAPER_FIGURES.items():
        for fig in figures:
            assert (fig in manifest.ARTIFACTS) != (fig in manifest.EXCLUDED_IDS), fig
    assert all(x.reason and x.id.startswith(x.study + ".fig") for x in manifest.EXCLUDED)
    # the paper's own model diagrams are excluded pointing at what shows the built model
    assert "A.fig9" in manifest.EXCLUDED_IDS["A.fig7"].reason


def test_paper_figures_list_what_the_original_texts_number():
    shared = paths.shared_data_dir()
    folder = shared.parent / "papers" if shared else None
    if folder is None or not folder.is_dir():
        pytest.skip("../shared/papers is not beside this checkout")
    for study, prefix in (("A", "000_"), ("B", "001_"), ("D", "003_")):
        text = next(folder.glob(prefix + "*.txt")).read_text(encoding="utf-8")
        printed = {f"{study}.fig{n.replace('.', '_')}"
                   for n in re.findall(r"Şekil (\d+(?:\.\d+)?)\.\s", text)}
        printed.discard("D.fig4_13")  # the text cites a "Şekil 4.13" it never prints (Fig 4.11)
        assert printed == set(manifest.PAPER_FIGURES[study]), (study, printed ^ set(
            manifest.PAPER_FIGURES[study]))
