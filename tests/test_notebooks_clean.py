"""The stored notebooks follow the house rules (outputs stripped, one parameters cell, ...)."""

import json

import pytest
from medrepro.core import manifest, paths

NOTEBOOKS = paths.find_notebooks()


def test_notebooks_exist_and_are_known():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    for nb in NOTEBOOKS:
        assert nb.stem in manifest.NOTEBOOKS, f"{nb.name} is not a notebook the manifest knows"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{nb.name}: code cells {dirty} are stored with outputs; strip them"
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"], "first cell: title"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{nb.name}: expected one cell tagged 'parameters'"
    src = "".join(params[0]["source"])
    for name in ("profile", "data", "seed", "reports"):
        assert f"{name} =" in src, f"{nb.name}: parameters cell lacks {name}"
    for c in code:
        text = "".join(c["source"])
        assert "\ndef " not in "\n" + text, f"{nb.name}: functions belong in lib/medrepro"
        assert "/work/" not in text and "/home/" not in text, f"{nb.name}: absolute path"
