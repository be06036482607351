"""The documents hold together: every link to a decision-record entry lands on one, every entry
says what the paper says, what we chose, the evidence and the date, and no dated measurement
sits in the library or the notebooks (they go in docs/)."""

import json
import re

import pytest
from medrepro.core import paths

ROOT = paths.project_root()
DOCS = ROOT / "docs"
DECISIONS = DOCS / "decisions.md"
ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
# "decisions.md#c2", "docs/decisions.md#c2" or a full URL ending so; ``(#c2)`` inside the record
LINK = re.compile(r"decisions\.md#([A-Za-z0-9-]+)")
INNER_LINK = re.compile(r"\]\(#([a-z0-9-]+)\)")
DATE = re.compile(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]")
FIELDS = ("**Paper**", "**Choice**", "**Evidence**", "**Date**")


def _anchors() -> set[str]:
    return set(ANCHOR.findall(DECISIONS.read_text(encoding="utf-8")))


def _entries() -> dict[str, str]:
    """Entry id -> its text (from its anchor to the next)."""
    text = DECISIONS.read_text(encoding="utf-8")
    parts = ANCHOR.split(text)[1:]
    return dict(zip(parts[::2], parts[1::2]))


def _texts() -> dict[str, str]:
    """Every place that may link the record: docs, README, library sources, notebook cells."""
    out = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
           for p in [*DOCS.glob("*.md"), ROOT / "README.md", *(ROOT / "lib").rglob("*.py")]}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        out[str(nb.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells)
    return out


def test_every_link_to_the_decision_record_lands_on_an_entry():
    anchors = _anchors()
    broken = {name: sorted(set(LINK.findall(text)) - anchors) for name, text in _texts().items()}
    broken = {k: v for k, v in broken.items() if v}
    assert not broken, f"links to missing decisions.md anchors: {broken}"


def test_the_record_links_only_its_own_entries_and_sections():
    text = DECISIONS.read_text(encoding="utf-8")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^## (.+)$", text, flags=re.MULTILINE)}
    missing = set(INNER_LINK.findall(text)) - _anchors() - headings
    assert not missing, f"decisions.md links to {sorted(missing)}, which it does not hold"


def test_every_entry_says_what_the_paper_says_the_choice_the_evidence_and_the_date():
    entries = _entries()
    assert len(entries) >= 40 and {"a1", "b1", "c1", "d1", "d2"} <= set(entries)
    for key, body in entries.items():
        missing = [f for f in FIELDS if f not in body]
        assert not missing, f"decisions.md#{key} lacks {missing}"
        date_line = next(ln for ln in body.splitlines() if ln.startswith("- **Date**"))
        assert DATE.search(date_line), f"decisions.md#{key}: its Date line has no date"


def test_every_decision_is_linked_from_somewhere_else():
    linked = set()
    for name, text in _texts().items():
        if name != "docs/decisions.md":
            linked |= set(LINK.findall(text))
    unlinked = _anchors() - linked
    assert not unlinked, f"decisions nothing points to (link them from a notebook or docs): " \
                         f"{sorted(unlinked)}"


@pytest.mark.parametrize("folder,pattern", [("lib", "*.py"), ("notebooks", "*.ipynb")])
def test_no_dated_lines_in_the_library_or_the_notebooks(folder, pattern):
    dated = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / folder).rglob(pattern))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if DATE.search(line)]
    assert not dated, f"dated lines (measurements belong in docs/): {dated}"


def test_the_date_pattern_and_the_link_pattern_match_what_they_should():
    assert DATE.search("measured 2026-12-05 on 2 cores") and not DATE.search("seed 2026")
    assert LINK.findall("see docs/decisions.md#c2 and decisions.md#x7") == ["c2", "x7"]
    assert ANCHOR.findall('<a id="c2"></a>\n### C2. x') == ["c2"]


def test_notebook_intros_are_short_and_link_their_choices():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        intro = "".join(json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"])
        paragraphs = [p for p in intro.split("\n\n") if p.strip()]
        longest = max(len(p.splitlines()) for p in paragraphs)
        assert longest <= 12, f"{nb.name}: an intro paragraph of {longest} lines"
        assert "protocols.md" in intro, f"{nb.name}: the intro names no protocol"
        assert LINK.search(intro), f"{nb.name}: the intro links no decision"


def test_protocols_cover_every_study_without_the_shared_folder():
    text = (DOCS / "protocols.md").read_text(encoding="utf-8")
    missing = [s for s in "abcde" if f'<a id="study-{s}"></a>' not in text]
    assert not missing, f"protocols.md has no section anchor for studies {missing}"
    assert "../shared" not in text, "protocols.md must read without a ../shared folder"
