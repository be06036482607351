"""After the smoke run: every manifest artifact of every stored notebook exists and is non-empty.

The notebooks normally ran just before under nbval (same session, same ``.test-work/``); a
notebook that did not run in this session (e.g. ``pytest tests``) is executed here with papermill,
so this check is never skipped.
"""

from __future__ import annotations

import os

import pytest
from medrepro.core import manifest, paths
from medrepro.reporting import report
from medrepro.run import runner

from conftest import NOTEBOOK_IMAGES, NOTEBOOK_OUTCOMES


@pytest.mark.after_notebooks
@pytest.mark.parametrize("nb", [p.stem for p in paths.find_notebooks()] or ["<none>"])
def test_notebook_made_every_artifact(nb: str, request: pytest.FixtureRequest) -> None:
    if nb == "<none>":
        pytest.fail("no notebooks found in notebooks/")
    outcomes = request.config.stash[NOTEBOOK_OUTCOMES]
    if nb not in outcomes:
        nb_path = paths.notebooks_dir() / f"{nb}.ipynb"
        runner.run_notebook(nb_path, paths.reports_dir("smoke"), profile="smoke",
                            data=os.environ.get("MEDREPRO_DATA_SOURCE", "phantom"), seed=42)
    elif outcomes[nb] == "failed":
        pytest.fail(f"{nb} failed under nbval; its artifacts are not checked")
    assert manifest.for_notebook(nb), f"{nb} has no artifacts in the manifest"
    missing = report.missing_artifacts([nb], profile="smoke")
    assert not missing, f"{nb} did not write: {', '.join(missing)}"
    for art in manifest.for_notebook(nb):
        meta = report.read_sidecar(art.id, profile="smoke")
        assert meta["profile"] == "smoke" and meta["seed"] == 42, art.id
        assert meta["data_source"], art.id


@pytest.mark.after_notebooks
@pytest.mark.parametrize("nb", [p.stem for p in paths.find_notebooks()] or ["<none>"])
def test_every_saved_figure_is_shown_inline(nb: str, request: pytest.FixtureRequest) -> None:
    """Per notebook: image/png outputs (nbval's, else the executed copy's) >= figures it saved."""
    import json

    import nbformat

    saved = [p for p in paths.figures_dir("smoke").glob("*.json")
             if json.loads(p.read_text(encoding="utf-8")).get("notebook") == nb]
    manifest_figures = [a for a in manifest.for_notebook(nb) if a.kind == "figure"]
    assert len(saved) >= len(manifest_figures), f"{nb}: figures missing on disk"
    images = request.config.stash[NOTEBOOK_IMAGES].get(nb)
    if images is None:  # ran with papermill in test_notebook_made_every_artifact
        executed = paths.reports_dir("smoke") / f"{nb}.ipynb"
        if not executed.is_file():
            pytest.fail(f"{nb}: neither an nbval run nor an executed copy at {executed}")
        cells = nbformat.read(executed, as_version=4).cells
        images = sum("image/png" in o.get("data", {}) for c in cells if c.cell_type == "code"
                     for o in c.outputs)
    assert images >= len(saved), f"{nb}: {images} image outputs for {len(saved)} saved figures"
