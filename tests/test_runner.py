import nbformat
import pytest
from medrepro.core import paths
from medrepro.run import runner


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# t")]
    params = nbformat.v4.new_code_cell("profile = None\ndata = None\nseed = 1\nreports = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_failure_names_notebook_and_cell(tmp_path, capsys):
    nb = _notebook(tmp_path / "09_fail.ipynb", "x = 1", "raise ValueError('bad pixel data')")
    with pytest.raises(Exception) as info:
        runner.run_notebook(nb, tmp_path / "out", profile="smoke", data="phantom", seed=3)
    msg = runner._describe_failure(nb, info.value, tmp_path / "out")
    assert "09_fail.ipynb" in msg and "ValueError: bad pixel data" in msg
    assert "cell 4" in msg  # papermill's index: injected-parameters cell counts
    assert (tmp_path / "out" / "09_fail.html").stat().st_size > 0


def test_parameters_are_injected(tmp_path):
    nb = _notebook(tmp_path / "08_ok.ipynb", "assert profile == 'smoke' and seed == 5")
    seconds = runner.run_notebook(nb, tmp_path / "out", profile="smoke", data="phantom", seed=5)
    assert seconds > 0
    assert (tmp_path / "out" / "08_ok.ipynb").is_file()


def test_only_selects_by_number():
    with pytest.raises(SystemExit, match="no notebook matches"):
        paths.find_notebooks(["99"])


def test_a_failing_notebook_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    import json

    from medrepro.core import paths

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_fail.ipynb", "raise RuntimeError('mosmed unavailable: offline')")
    _notebook(nbs / "02_ok.ipynb", "print('epoch 1/1: loss 0.5')")
    monkeypatch.setattr(paths, "notebooks_dir", lambda: nbs)
    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "reports"))
    assert runner.main(["--profile", "smoke"]) == 1
    captured = capsys.readouterr()
    assert "FAILED: notebook 01_fail.ipynb" in captured.err and "offline" in captured.err
    assert "epoch 1/1: loss 0.5" in captured.out  # the kernel's output is streamed
    out = tmp_path / "reports" / "smoke"
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"]["02_ok"] == "passed"
    assert summary["status"]["01_fail"].startswith("failed: RuntimeError: mosmed unavailable")
    assert (out / "02_ok.html").is_file() and (out / "index.html").is_file()
    assert f"report: {out / 'index.html'}" in captured.out


def test_the_html_copy_shows_a_widgets_fallback_not_the_dead_widget(tmp_path):
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("display_data", data={
        runner.WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "m1"},
        "text/html": "<p>FALLBACK GALLERY</p>", "text/plain": "explorer"})
    nb.cells = [nbformat.v4.new_code_cell("explore()", outputs=[out])]
    # as an executed notebook stores it: the widget's state, which would make nbconvert pick it
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"m1": {"model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                         "model_module_version": "2.0.0", "state": {}}},
        "version_major": 2, "version_minor": 0}}
    path = tmp_path / "07_widget.ipynb"
    nbformat.write(nb, path)
    runner._to_html(path)
    html = (tmp_path / "07_widget.html").read_text()
    assert "FALLBACK GALLERY" in html
