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


def test_a_full_disk_stops_the_run_and_the_summary_counts_skipped_inputs(tmp_path, monkeypatch,
                                                                        capsys):
    import json

    from medrepro.core import paths

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_skips.ipynb",
              "import pandas as pd\nfrom medrepro.reporting import report\n"
              "report.start_run('01_skips', profile='smoke', seed=1)\n"
              "report.record_skips('brain_tumor_sartaj', pd.DataFrame({'path': ['a (1).jpg', "
              "'b.jpg'], 'problem': ['empty file', 'not an image'], 'detail': ['0 bytes', "
              "'text']}), source='brain_tumor_sartaj', n_files=10)")
    _notebook(nbs / "02_again.ipynb",  # the same dataset read again: its files count once
              "import pandas as pd\nfrom medrepro.reporting import report\n"
              "report.start_run('02_again', profile='smoke', seed=1)\n"
              "report.record_skips('brain_tumor_sartaj', pd.DataFrame({'path': ['a (1).jpg'], "
              "'problem': ['empty file'], 'detail': ['0 bytes']}), source='brain_tumor_sartaj', "
              "n_files=10)")
    _notebook(nbs / "03_full.ipynb", "from medrepro.core.fileio import DiskFullError\n"
                                     "raise DiskFullError('/data/runs', what='state.npz', "
                                     "needed=1000)")
    _notebook(nbs / "04_never.ipynb", "print('not reached')")
    monkeypatch.setattr(paths, "notebooks_dir", lambda: nbs)
    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "reports"))
    assert runner.main(["--profile", "smoke"]) == 1
    captured = capsys.readouterr()
    assert "disk full in /data/runs: writing state.npz needs 1,000 bytes" in captured.err
    assert "STOPPED: the disk is full" in captured.err and "not reached" not in captured.out
    out = tmp_path / "reports" / "smoke"
    summary = json.loads((out / "run_summary.json").read_text())
    assert list(summary["status"]) == ["01_skips", "02_again", "03_full"]
    skips = summary["skipped_inputs"]
    assert skips["total"] == 2 and skips["by_dataset"] == {"brain_tumor_sartaj": 2}
    entry = skips["by_notebook"]["01_skips"][0]
    assert entry["by_problem"] == {"empty file": 1, "not an image": 1}
    assert entry["files_checked"] == 10 and entry["files"][0]["path"] == "a (1).jpg"
    page = (out / "index.html").read_text()
    assert "Input files skipped (2)" in page and "a (1).jpg — empty file: 0 bytes" in page
    assert "<th>input files skipped</th><td>2 (see" in page


def test_a_fast_dev_run_continues_the_notebook_it_killed(tmp_path, monkeypatch, capsys):
    import json

    from medrepro.core import devrun

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_data.ipynb", "from medrepro.core import devrun\nassert devrun.active()")
    # a training that the dev run kills once, then resumes (as train.fit does), with 150 MiB
    _notebook(nbs / "03_train.ipynb", """import os, time, numpy as np
from medrepro.core import devrun
run = os.path.join(os.environ['MEDREPRO_DATA'], 'runs', '03_train', 'model')
ballast = np.ones(150 * 2**20 // 8)
record = devrun.read_marker()
if not record: devrun.write_marker({'killed_run': run}); os.kill(os.getpid(), 9)
devrun.write_marker({**record, 'resumed_run': run})
time.sleep(1)""")
    monkeypatch.setattr(paths, "notebooks_dir", lambda: nbs)
    for var, value in (("MEDREPRO_REPORTS", tmp_path / "reports"),
                       ("MEDREPRO_DATA", tmp_path / "data"), (devrun.ENV, "0"),
                       (devrun.KILL_ENV, "")):
        monkeypatch.setenv(var, str(value))  # restored afterwards: the runner changes them
    stale = tmp_path / "data" / devrun.FOLDER / "runs" / "03_train" / "model"
    stale.mkdir(parents=True)  # an earlier dev run's training: removed, not reused
    assert runner.main(["--profile", "smoke", "--fast-dev-run"]) == 0
    out = tmp_path / "reports" / devrun.FOLDER / "smoke"
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["fast_dev_run"] is True and not stale.exists()
    assert summary["status"]["03_train"] == "passed (killed once mid-training, then resumed)"
    assert summary["kill_and_resume"]["resumed_run"].endswith("model")
    assert summary["peak_rss_mib"]["03_train"] >= 150
    assert "killed mid-training" in capsys.readouterr().out
    assert "peak memory" in (out / "index.html").read_text()


def test_peak_memory_of_a_child_process():
    import subprocess
    import sys

    monitor = runner.PeakMemory(interval=0.05)
    code = "import numpy as np, time; a = np.ones(2**25); time.sleep(0.5)"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert monitor.stop() >= 2**25 * 8 / 2**20  # 256 MiB

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
