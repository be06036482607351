"""Every setting of the paper profile says where it comes from, and docs/profiles.md shows it."""

import re
from pathlib import Path

import pytest
from medrepro.core import paths, profiles
from medrepro.core import profile_sources as ps

ROOT = paths.project_root()
PAPERS = ROOT.parent / "shared" / "papers"
PAPER_FILES = {"A": "000_9be54878d460dfca.txt", "B": "001_0b17543ed2f5f1be.txt",
               "C": "002_caa736a0f1e206fc.txt", "D": "003_841f837f2a6ee237.txt",
               "E": "004_f2574a2ec9331318.txt"}


def _anchors() -> set[str]:
    text = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))


def _sources():
    return [(row, name, src) for row, names in ps.SOURCES.items() for name, src in names.items()]


def test_every_paper_setting_has_a_source_and_every_source_a_setting():
    assert ps.unsourced() == []
    assert len(_sources()) == len(profiles.table())  # one source per setting of the table


def test_unsourced_finds_a_missing_source_and_a_stale_one(monkeypatch):
    c = dict(ps.SOURCES["C"])
    c.pop("batch")
    c["batch_size"] = ps.Source(ps.CHOICE, "c3")
    monkeypatch.setitem(ps.SOURCES, "C", c)
    assert ps.unsourced() == [("C", "batch"), ("C", "batch_size")]


def test_sources_cite_lines_of_their_own_text_or_existing_decisions():
    anchors = _anchors()
    for row, name, src in _sources():
        assert src.kind in ps.KINDS, (row, name)
        assert src.what, f"{row}.{name}: say what the value is"
        assert set(src.decisions()) <= anchors, (row, name, src.decisions())
        lines = ps.TEXT_REF.findall(src.ref)
        if src.kind == ps.TEXT:
            assert lines, f"{row}.{name}: a text source cites no line"
            if row in PAPER_FILES:  # a study's setting cites its own text
                assert {ref[0] for ref in lines} == {row}, (row, name, src.ref)
        if src.kind == ps.CHOICE:
            assert src.decisions(), f"{row}.{name}: a choice links no decision"
        unknown = [r for r in src.ref.split() if not ps.DECISION_REF.match(r)
                   and not re.fullmatch(r"[A-E]:[0-9]+(-[0-9]+)?", r)]
        assert not unknown, (row, name, unknown)


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the original texts (shared/papers) are absent")
def test_cited_lines_exist_in_the_original_texts():
    length = {s: len((PAPERS / f).read_text(encoding="utf-8").splitlines())
              for s, f in PAPER_FILES.items()}
    for row, name, src in _sources():
        for ref in re.findall(r"([A-E]):([0-9]+)(?:-([0-9]+))?", src.ref):
            last = int(ref[2] or ref[1])
            assert int(ref[1]) <= last <= length[ref[0]], (row, name, ref)


def test_source_names_what_is_known():
    assert ps.source("B", "max_epochs") == ps.Source(ps.TEXT, "B:229",
                                                     "30 epochs, early stopping")
    with pytest.raises(KeyError, match=r"settings row 'C' has no source for 'lr'; known: image_"):
        ps.source("C", "lr")
    with pytest.raises(KeyError, match=r"no sources for settings row 'F'"):
        ps.source("F", "epochs")


def test_the_table_sets_each_source_beside_the_values():
    table = ps.table().loc[("03_lstm_cnn_mri", "C")]
    assert table.loc["batch", "paper"] == "16" and table.loc["batch", "source"] == "our choice"
    assert table.loc["epochs", "source"] == "from the text"
    assert table.loc["epochs", "ref"] == "C:15-21"


def test_docs_profiles_page_is_generated_from_the_table(tmp_path):
    assert ps.main(["--out", str(tmp_path / "p.md")]) == 0
    text = (tmp_path / "p.md").read_text(encoding="utf-8")
    assert "| `batch` | 16 | 16 | 16 | our choice | [C3](decisions.md#c3) |" in text
    assert "| `max_epochs` | 1 | 10 | 30 | from the text | B:229 |" in text
    page = Path(ps.page_path()).read_text(encoding="utf-8")
    assert page == text, ("docs/profiles.md is out of date: run "
                          "`python -m medrepro.core.profile_sources`")
