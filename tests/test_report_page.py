"""medrepro.reporting.report_page: the page a reader opens first, checked as HTML and in real Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from medrepro.core import manifest, paths
from medrepro.reporting import report, report_page

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture
def folder(tmp_path):
    """A small report folder: a phantom study A, a real study D, a run summary, one notebook."""
    report.start_run("03_lstm_cnn_mri", profile="smoke", seed=7, reports_root=tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    report.save_figure(fig, "A.fig12", source="phantom")
    report.save_table(pd.DataFrame({"class": ["glioma", "pituitary"], "f1": [0.5, 0.25]}),
                      "A.table2", source="phantom")
    report.record_metric("A", "test accuracy (LSTM-CNN, paper split)", 0.5, source="phantom",
                         artifact="A.table2", ci=(0.3, 0.7), n=40)
    report.start_run("05_3dcnn_mosmed", profile="smoke", seed=7, reports_root=tmp_path)
    fig, _ = plt.subplots()
    report.save_figure(fig, "D.fig4_10", source="mosmed")
    base = paths.reports_dir("smoke", root=tmp_path)
    (base / "03_lstm_cnn_mri.html").write_text("<html>executed</html>")
    (base / "run_summary.json").write_text(json.dumps({
        "profile": "smoke", "data": "phantom", "seed": 7, "total_seconds": 12.5,
        "wall_seconds": {"03_lstm_cnn_mri": 10.25, "05_3dcnn_mosmed": 2.25},
        "status": {"03_lstm_cnn_mri": "passed", "05_3dcnn_mosmed": "failed: KaggleError: x"},
        "git_commit": "abc123", "date_utc": "2026-12-02T04:00:00+00:00",
        "device": "2 x Tesla T4, 15 GiB, compute capability 7.5", "platform": "kaggle"}))
    return tmp_path


def test_page_holds_run_facts_results_studies_and_relative_links(folder):
    page = report_page.write_page(profile="smoke", reports_root=folder).read_text()
    assert "2 x Tesla T4" in page and "abc123" in page and "2026-12-02T04:00:00" in page
    assert "10.2 s" in page and "failed: KaggleError: x" in page  # wall time, status per notebook
    assert "href='03_lstm_cnn_mri.html'" in page
    # reported vs reproduced with its CI
    assert "0.981" in page and "0.300–0.700" in page
    # study banners: A phantom, D real, B not run
    a = page[page.index("id='study-A'"):page.index("id='study-D'")]
    assert "banner phantom" in a and "banner real" not in a
    d = page[page.index("id='study-D'"):]
    assert "Real data: mosmed" in d.split("</p>")[0]
    assert "id='study-B'" in page and "Not run" in page.split("id='study-B'")[1].split("</h2>")[1][:200]
    # thumbnail -> full size, table rendered with its provenance
    assert "<a href='figures/A.fig12.png'><img src='figures/A.fig12.png'" in page
    assert "<td>glioma</td>" in page and "seed 7" in page
    links = re.findall(r"(?:href|src)=['\"]([^'\"]+)['\"]", page)
    assert links and not [u for u in links if "://" in u or u.startswith("/")], links
    assert "<script" not in page and "<link" not in page  # self-contained: inline CSS only


def test_missing_artifacts_are_listed(folder):
    page = report_page.write_page(profile="smoke", reports_root=folder).read_text()
    assert "Missing artifacts (" in page and "<td>B.table2</td>" in page


def _chromium() -> str | None:
    explicit = os.environ.get("MEDREPRO_CHROMIUM")
    return explicit or next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def open_in_chromium(page: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` in headless Chromium: console errors, page errors, failed requests, and the
    images that did not resolve."""
    executable = _chromium()
    if executable is None:
        pytest.skip(f"no Chromium installed ({', '.join(CHROMIUM_NAMES)} not on PATH; "
                    "apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    found: dict[str, list] = {"console_errors": [], "page_errors": [], "failed": []}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.on("console", lambda m: m.type == "error" and found["console_errors"].append(m.text))
            tab.on("pageerror", lambda e: found["page_errors"].append(str(e)))
            tab.on("requestfailed", lambda r: found["failed"].append(r.url))
            tab.goto(page.resolve().as_uri(), wait_until="load")
            found["images"] = tab.evaluate("document.images.length")
            found["broken"] = tab.evaluate(
                "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                ".map(i => i.getAttribute('src'))")
            found["title"] = tab.title()
            if screenshot is not None:
                tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return found


def _assert_clean(found: dict) -> None:
    assert not found["console_errors"], found["console_errors"]
    assert not found["page_errors"], found["page_errors"]
    assert not found["failed"], found["failed"]
    assert not found["broken"], f"images that did not resolve: {found['broken']}"


def test_page_loads_in_chromium_without_errors(folder):
    page = report_page.write_page(profile="smoke", reports_root=folder)
    found = open_in_chromium(page)
    _assert_clean(found)
    assert found["images"] == 2 and found["title"] == "medrepro report — profile smoke"


def test_page_survives_being_moved_as_one_folder(folder, tmp_path_factory):
    page = report_page.write_page(profile="smoke", reports_root=folder)
    moved = tmp_path_factory.mktemp("shared") / "report"
    shutil.copytree(page.parent, moved)
    found = open_in_chromium(moved / page.name)
    _assert_clean(found)


@pytest.mark.after_notebooks
def test_smoke_run_report_page_in_chromium():
    """The page 06_compare wrote in this session's smoke run: every figure resolves."""
    page = paths.reports_dir("smoke") / report_page.PAGE_NAME
    if not page.is_file():
        pytest.fail(f"{page} missing: 06_compare should have written it")
    shot = Path(os.environ.get("MEDREPRO_SCREENSHOT") or page.with_name("index-screenshot.png"))
    found = open_in_chromium(page, screenshot=shot)
    _assert_clean(found)
    figures = list(paths.figures_dir("smoke").glob("*.png"))
    assert found["images"] >= len(figures) > 0


def test_consistency_cell_keeps_only_the_contradictions():
    cell = ("CONTRADICTION: A 98.1% is not k/653; consistent: Table 2 0.98 vs 0.981; "
            "CONTRADICTION: 98.1% vs 98.01%")
    assert report_page._contradictions(cell) == (
        "contradicts itself: A 98.1% is not k/653; 98.1% vs 98.01%")
    assert report_page._contradictions("consistent: a; consistent: b") == "consistent (2 checks)"
    assert report_page._contradictions(None) == ""


def test_papers_figures_not_made_are_listed_with_their_reasons(folder):
    page = report_page.write_page(profile="smoke", reports_root=folder).read_text()
    section = page[page.index("id='excluded'"):page.index("Missing artifacts")]
    for fig in ("A.fig7", "A.fig8", "B.fig2", "D.fig3_1", "D.fig3_3", "D.fig3_4"):
        row = section[section.index(f"<td>{fig}</td>"):].split("</tr>")[0]
        assert manifest.EXCLUDED_IDS[fig].reason[:40] in row.replace("&#x27;", "'")
