"""medrepro.run.hosted: badges and the set-up cell that lets a notebook opened alone on Colab/Kaggle
install and import medrepro without a kernel restart."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from medrepro.run import hosted
from medrepro.core import paths

NOTEBOOKS = paths.find_notebooks()
BADGE_LINK = re.compile(r"\]\((https://(?:colab\.research\.google\.com|kaggle\.com)/[^)\s]+)\)")


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_both_badges_and_the_setup_cell(nb):
    cells = _cells(nb)
    title = "".join(cells[0]["source"])
    assert hosted.badges_markdown(nb.stem) in title
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first_code["source"]) == hosted.SETUP_CELL, (
        f"{nb.name}: first code cell differs from hosted.SETUP_CELL; run python -m medrepro.run.hosted")


def test_every_badge_points_into_the_one_repository():
    readme = (paths.project_root() / "README.md").read_text(encoding="utf-8")
    guide = (paths.project_root() / "docs" / "platforms.md").read_text(encoding="utf-8")
    texts = {"README.md": readme, "docs/platforms.md": guide}
    texts |= {nb.name: "".join(_cells(nb)[0]["source"]) for nb in NOTEBOOKS}
    prefixes = (hosted.colab_url("x").rsplit("/blob/", 1)[0] + "/blob/" + hosted.BRANCH + "/",
                hosted.kaggle_url("x").rsplit("/blob/", 1)[0] + "/blob/" + hosted.BRANCH + "/")
    for name, text in texts.items():
        links = [u for u in BADGE_LINK.findall(text)
                 if u not in (hosted.COLAB_BADGE, hosted.KAGGLE_BADGE)]
        assert links, f"{name}: no Colab/Kaggle badge"
        bad = [u for u in links if not u.startswith(prefixes)]
        assert not bad, f"{name}: badges not derived from hosted.REPO_URL: {bad}"
    for nb in NOTEBOOKS:  # the platforms guide offers both badges for every notebook
        assert hosted.colab_url(nb.stem) in guide and hosted.kaggle_url(nb.stem) in guide
    assert hosted.REPO_URL in hosted.SETUP_CELL


def test_colab_and_kaggle_urls():
    assert hosted.colab_url("03_lstm_cnn_mri") == (
        "https://colab.research.google.com/github/medrepro/medrepro/blob/main/notebooks/"
        "03_lstm_cnn_mri.ipynb")
    assert hosted.kaggle_url("03_lstm_cnn_mri.ipynb") == (
        "https://kaggle.com/kernels/welcome?src=https://github.com/medrepro/medrepro/blob/main/"
        "notebooks/03_lstm_cnn_mri.ipynb")


def test_sync_is_idempotent_and_replaces_an_old_setup_cell(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 · title\n\nText."),
                nbformat.v4.new_code_cell(hosted.SETUP_MARKER + ": old version\nprint(1)"),
                nbformat.v4.new_code_cell("import medrepro")]
    path = tmp_path / "09_x.ipynb"
    nbformat.write(nb, path)
    assert hosted.sync_notebook(path) is True
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].source == f"# 09 · title\n\n{hosted.badges_markdown('09_x')}\n\nText."
    assert cells[1].source == hosted.SETUP_CELL and cells[2].source == "import medrepro"
    assert len(cells) == 3
    assert hosted.sync_notebook(path) is False


def _run_cell(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run SETUP_CELL in a fresh interpreter where the installed medrepro is hidden."""
    lib = str(paths.project_root() / "lib")
    script = textwrap.dedent(f"""
        import sys
        sys.path[:] = [p for p in sys.path if p.rstrip("/") != {lib!r}]
        assert "medrepro" not in sys.modules
    """) + hosted.SETUP_CELL + "\nprint('IMPORTED', device.__file__)\n"
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_setup_cell_clones_installs_and_imports_without_restart(tmp_path):
    """Colab emulation: no checkout around; git and pip are stand-ins that record their calls."""
    bin_dir, fake_pip = tmp_path / "bin", tmp_path / "fakepip"
    bin_dir.mkdir()
    (fake_pip / "pip").mkdir(parents=True)
    log = tmp_path / "calls.log"
    git = bin_dir / "git"  # "clones" by copying lib/ of this checkout
    git.write_text(f"#!/bin/sh\necho git \"$@\" >> {log}\nfor last; do :; done\n"
                   f"mkdir -p \"$last\" && cp -r {paths.project_root() / 'lib'} \"$last/lib\"\n")
    git.chmod(git.stat().st_mode | stat.S_IXUSR)
    (fake_pip / "pip" / "__init__.py").write_text("")
    (fake_pip / "pip" / "__main__.py").write_text(
        f"import sys\nopen({str(log)!r}, 'a').write('pip ' + ' '.join(sys.argv[1:]) + '\\n')\n")
    work = tmp_path / "content"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(fake_pip),
           "COLAB_RELEASE_TAG": "release-colab-test", "CUDA_VISIBLE_DEVICES": "-1"}
    proc = _run_cell(work, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = log.read_text().splitlines()
    assert calls[0] == f"git clone --depth 1 {hosted.REPO_URL} {hosted.CLONE_DIR}"
    assert calls[1] == f"pip install -q -e {hosted.CLONE_DIR}"
    assert f"IMPORTED {work / hosted.CLONE_DIR / 'lib' / 'medrepro' / 'core' / 'device.py'}" in proc.stdout
    assert "medrepro on colab: CPU only" in proc.stdout and "dtype policy: float32" in proc.stdout
    # the parameters are not known yet (papermill injects them after this cell)
    assert "data source" not in proc.stdout
    again = _run_cell(work, env)  # idempotent: no second clone
    assert again.returncode == 0 and log.read_text().count("git clone") == 1


def test_setup_cell_is_a_no_op_in_a_checkout():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    proc = subprocess.run([sys.executable, "-c", hosted.SETUP_CELL], cwd=paths.notebooks_dir(),
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "medrepro on local" in proc.stdout
    assert not (paths.notebooks_dir() / hosted.CLONE_DIR).exists()
