"""medrepro.run.hosted: badges and the set-up cell that lets a notebook opened alone on Colab/Kaggle
install and import medrepro without a kernel restart."""

from __future__ import annotations

import json
import os
import re
import shutil
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


def _copy_of_the_code(dest: Path) -> Path:
    """What a user brings: the repository's lib/ and pyproject.toml (no .git)."""
    dest.mkdir(parents=True)
    shutil.copytree(paths.project_root() / "lib", dest / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(paths.project_root() / "pyproject.toml", dest / "pyproject.toml")
    return dest


@pytest.fixture
def colab(tmp_path):
    """A Colab-like working folder; git and pip are stand-ins that record their calls (pip's
    arguments and the constraints file install.py hands it)."""
    bin_dir, fake_pip = tmp_path / "bin", tmp_path / "fakepip"
    bin_dir.mkdir()
    (fake_pip / "pip").mkdir(parents=True)
    log = tmp_path / "calls.log"
    git = bin_dir / "git"  # "clones" by copying lib/ of this checkout
    git.write_text(f"#!/bin/sh\necho git \"$@\" >> {log}\nfor last; do :; done\n"
                   f"mkdir -p \"$last\" && cp -r {paths.project_root() / 'lib'} \"$last/lib\"\n")
    git.chmod(git.stat().st_mode | stat.S_IXUSR)
    (fake_pip / "pip" / "__init__.py").write_text("")
    (fake_pip / "pip" / "__main__.py").write_text(textwrap.dedent(f"""
        import sys
        args = sys.argv[1:]
        pins = open(args[args.index("-c") + 1]).read() if "-c" in args else ""
        with open({str(log)!r}, "a") as f:
            f.write("pip " + " ".join(a for a in args if not a.endswith(".txt")) + "\\n")
            f.write(f"constraints pin ipykernel: {{'ipykernel==' in pins}}\\n")
    """))
    work = tmp_path / "content"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(fake_pip),
           "COLAB_RELEASE_TAG": "release-colab-test", "CUDA_VISIBLE_DEVICES": "-1",
           "MEDREPRO_KAGGLE_INPUT": str(tmp_path / "no-kaggle-input")}
    env.pop(hosted.REPO_URL_ENV, None)
    return work, env, log


def test_setup_cell_clones_installs_and_imports_without_restart(colab):
    """Colab emulation: no checkout around; the clone is installed keeping the image's packages."""
    work, env, log = colab
    proc = _run_cell(work, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = log.read_text().splitlines()
    assert calls[0] == f"git clone --depth 1 {hosted.REPO_URL} {hosted.CLONE_DIR}"
    # install.py: pip install -e, every installed package pinned, no --upgrade
    assert calls[1] == (f"pip install --quiet --disable-pip-version-check -e "
                        f"{(work / hosted.CLONE_DIR).resolve()} -c")
    assert calls[2] == "constraints pin ipykernel: True"
    assert "keeping its" in proc.stdout and f"code from {hosted.REPO_URL}" in proc.stdout
    assert f"IMPORTED {work / hosted.CLONE_DIR / 'lib' / 'medrepro' / 'core' / 'device.py'}" in proc.stdout
    assert "medrepro on colab: CPU only" in proc.stdout and "dtype policy: float32" in proc.stdout
    # the parameters are not known yet (papermill injects them after this cell)
    assert "data source" not in proc.stdout
    again = _run_cell(work, env)  # idempotent: no second clone
    assert again.returncode == 0 and log.read_text().count("git clone") == 1


def test_setup_cell_clones_a_fork_given_by_the_environment(colab):
    work, env, log = colab
    fork = "https://github.com/someone/medrepro-fork"
    proc = _run_cell(work, {**env, hosted.REPO_URL_ENV: fork})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert log.read_text().splitlines()[0] == f"git clone --depth 1 {fork} {hosted.CLONE_DIR}"


def test_setup_cell_uses_the_repository_attached_as_a_kaggle_dataset(colab, tmp_path):
    """Kaggle: the repository attached as a dataset (newer mount layout, a GitHub zip's folder
    inside) is read-only: it is copied to medrepro-src/ and installed from there, no clone."""
    work, env, log = colab
    inputs = tmp_path / "kaggle-input"
    attached = _copy_of_the_code(inputs / "datasets" / "someone" / "medrepro" / "medrepro-main")
    (inputs / "datasets" / "someone" / "medrepro" / "medrepro-main" / "data").mkdir()
    env = {**env, "MEDREPRO_KAGGLE_INPUT": str(inputs), "KAGGLE_KERNEL_RUN_TYPE": "Interactive"}
    env.pop("COLAB_RELEASE_TAG")
    proc = _run_cell(work, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "git clone" not in log.read_text() and f"code from {attached}" in proc.stdout
    assert f"pip install --quiet --disable-pip-version-check -e {(work / hosted.CLONE_DIR).resolve()} -c" in log.read_text()
    assert (work / hosted.CLONE_DIR / "lib" / "medrepro" / "run" / "install.py").is_file()
    assert not (work / hosted.CLONE_DIR / "data").exists()  # the copy leaves data/ behind
    assert "medrepro on kaggle" in proc.stdout


def test_setup_cell_installs_an_uploaded_copy_where_it_is(colab):
    work, env, log = colab
    uploaded = _copy_of_the_code(work / "medrepro-main")
    proc = _run_cell(work, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "git clone" not in log.read_text()
    assert f"pip install --quiet --disable-pip-version-check -e {uploaded.resolve()} -c" in log.read_text()
    assert f"IMPORTED {uploaded.resolve() / 'lib' / 'medrepro' / 'core' / 'device.py'}" in proc.stdout
    assert not (work / hosted.CLONE_DIR).exists()


def test_setup_cell_is_a_no_op_in_a_checkout():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    proc = subprocess.run([sys.executable, "-c", hosted.SETUP_CELL], cwd=paths.notebooks_dir(),
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "medrepro on local" in proc.stdout
    assert not (paths.notebooks_dir() / hosted.CLONE_DIR).exists()


SECRET = "s3cr3t-colab-token-value"


class _SecretNotFoundError(Exception):
    pass


_SecretNotFoundError.__name__ = "SecretNotFoundError"


def _colab_userdata(monkeypatch, secrets: dict, error: Exception | None = None):
    """google.colab.userdata as the Colab UI's kernel has it (its exceptions by their names)."""
    import types

    def get(name):
        if error is not None:
            raise error
        if name not in secrets:
            raise _SecretNotFoundError(name)
        return secrets[name]

    userdata = types.SimpleNamespace(get=get)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def _reporting_script(tmp_path: Path) -> Path:
    """A stand-in run_all.sh: prints its arguments and a digest of the token it was given."""
    script = tmp_path / "run_all.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "args: $*"
        {sys.executable} -c "import hashlib, os; t = os.environ.get('KAGGLE_API_TOKEN'); \\
        print('token digest:', hashlib.sha256(t.encode()).hexdigest() if t else None)"
        exit 3
    """))
    script.chmod(0o755)
    return script


def test_run_all_hands_the_colab_secrets_to_the_run_never_printed(tmp_path, monkeypatch, capsys):
    import hashlib

    for var in hosted.KAGGLE_SECRETS:
        monkeypatch.delenv(var, raising=False)
    _colab_userdata(monkeypatch, {"KAGGLE_API_TOKEN": SECRET})
    rc = hosted.run_all("--profile smoke --data kaggle", script=_reporting_script(tmp_path))
    out = capsys.readouterr().out
    assert rc == 3  # the run's exit status
    assert "args: --profile smoke --data kaggle" in out
    assert f"token digest: {hashlib.sha256(SECRET.encode()).hexdigest()}" in out
    assert "the Colab secret(s) KAGGLE_API_TOKEN" in out and SECRET not in out
    assert "KAGGLE_API_TOKEN" not in os.environ  # handed to the run only


def test_run_all_says_why_no_secret_could_be_read(tmp_path, monkeypatch, capsys):
    for var in hosted.KAGGLE_SECRETS:
        monkeypatch.delenv(var, raising=False)
    timeout = type("TimeoutException", (Exception,), {})
    _colab_userdata(monkeypatch, {}, error=timeout("no reply from the frontend"))
    hosted.run_all([], script=_reporting_script(tmp_path))
    out = capsys.readouterr().out
    assert "Colab secrets cannot be read here (TimeoutException): call this from a notebook " \
           "cell in the Colab UI" in out
    assert "none from Colab secrets" in out and "token digest: None" in out
    access = type("NotebookAccessError", (Exception,), {})
    _colab_userdata(monkeypatch, {}, error=access("not granted"))
    found, notes = hosted.colab_secrets(["KAGGLE_API_TOKEN"])
    assert found == {} and "switch on 'Notebook access'" in notes[0]
