"""Colab and Kaggle: the repository URL, the badges, the set-up cell, a whole run from Colab.

``REPO_URL`` is the one place the repository's address is written; the README's badges, each
notebook's badges (first markdown cell) and its set-up cell (first code cell) are checked against
it by ``tests/test_hosted.py``. ``python -m medrepro.run.hosted`` rewrites the notebooks' badge line
and set-up cell from here (after a change of ``REPO_URL`` or of :data:`SETUP_CELL`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_URL = "https://github.com/medrepro/medrepro"
BRANCH = "main"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KAGGLE_BADGE = "https://kaggle.com/static/images/open-in-kaggle.svg"
BADGE_MARKER = "<!-- badges -->"
SETUP_MARKER = "# medrepro set-up"
# Not "medrepro": a folder of that name in the working directory would import as an empty
# namespace package and hide the real one.
CLONE_DIR = "medrepro-src"

REPO_URL_ENV = "MEDREPRO_REPO_URL"  # a fork's address, for the set-up cell
# Where the set-up cell looks for a copy of the code brought without git: a folder uploaded (and
# unzipped) into /content or the working folder (installed where it is), or the repository
# attached as a Kaggle dataset (read-only: copied to CLONE_DIR first). The patterns stay out of
# /kaggle/input/competitions/, where RSNA's 750k files are.
COPY_PATTERNS = ("*/lib/medrepro", "*/*/lib/medrepro", "datasets/*/*/lib/medrepro",
                 "datasets/*/*/*/lib/medrepro")

# The first code cell of every notebook. It must run before medrepro is importable, so it is
# plain Python: in a checkout (package installed, or ../lib beside the notebook) it only imports;
# on Colab/Kaggle it finds the code (a copy as above, else a clone of $MEDREPRO_REPO_URL or
# REPO_URL), installs it into the running kernel with lib/medrepro/run/install.py (which keeps
# every package of the image as it is) and puts its lib/ on sys.path, so no kernel restart is
# needed (an editable install's .pth file is only read at interpreter start).
SETUP_CELL = f'''{SETUP_MARKER}: a no-op in a checkout; on Colab/Kaggle finds or clones medrepro, installs it
import importlib, importlib.util, os, pathlib, shutil, subprocess, sys
REPO_URL = os.environ.get("{REPO_URL_ENV}") or "{REPO_URL}"  # a fork: set {REPO_URL_ENV}
CLONE = pathlib.Path("{CLONE_DIR}")
if importlib.util.find_spec("medrepro") is None:
    lib = pathlib.Path("../lib").resolve()
    if not (lib / "medrepro").is_dir():
        inputs = pathlib.Path(os.environ.get("MEDREPRO_KAGGLE_INPUT", "/kaggle/input"))
        attached = [p.parents[1] for pattern in {COPY_PATTERNS!r} for p in sorted(inputs.glob(pattern))]
        uploaded = [p.parents[1] for base in ("/content", ".") for pattern in {COPY_PATTERNS!r}
                    for p in sorted(pathlib.Path(base).glob(pattern)) if p.parents[1].name != CLONE.name]
        if uploaded:
            CLONE = uploaded[0]  # installed where it is
        elif attached and not (CLONE / "lib").is_dir():  # read-only: copied first
            shutil.copytree(attached[0], CLONE, ignore=shutil.ignore_patterns(".git", "data", "reports"))
        elif not (CLONE / "lib").is_dir():
            subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(CLONE)], check=True)
        print("medrepro: code from", (uploaded or attached or [REPO_URL])[0])
        subprocess.run([sys.executable, str(CLONE / "lib/medrepro/run/install.py"), str(CLONE)], check=True)
        lib = (CLONE / "lib").resolve()
    sys.path.insert(0, str(lib))
    importlib.invalidate_caches()
from medrepro.core import device
device.print_setup()'''


# The Colab secrets kagglehub reads (a new-style API token, or the legacy username and key).
KAGGLE_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")


def colab_secrets(names: Sequence[str] = KAGGLE_SECRETS) -> tuple[dict[str, str], list[str]]:
    """``({name: value}, notes)``: the Colab secrets among ``names`` that this kernel may read
    (``google.colab.userdata``; only the Colab UI's kernel can), and one note per problem
    (a secret the notebook was not granted, not the Colab UI). Values are never in the notes."""
    try:
        from google.colab import userdata
    except ImportError:
        return {}, ["not on Colab (google.colab is not importable): no secrets read"]
    found, notes = {}, []
    for name in names:
        try:
            value = userdata.get(name)
        except Exception as exc:  # SecretNotFoundError, NotebookAccessError, TimeoutException
            kind = type(exc).__name__
            if kind == "SecretNotFoundError":
                continue
            if kind == "NotebookAccessError":
                notes.append(f"the secret {name} exists but this notebook may not read it: "
                             "switch on 'Notebook access' for it in the key panel")
                continue
            notes.append(f"Colab secrets cannot be read here ({kind}): call this from a "
                         "notebook cell in the Colab UI, not from a shell or a script")
            break
        if value and str(value).strip():
            found[name] = str(value).strip()
    return found, notes


def run_all(args: str | Sequence[str] = (), *, secrets: Mapping[str, str] | None = None,
            script: str | os.PathLike | None = None) -> int:
    """Run ``./run_all.sh args`` from a Colab notebook cell with the Kaggle credentials of the
    Colab secrets (:func:`colab_secrets`) in its environment; stream its output; return its
    exit status. ``secrets``: use these instead of reading Colab's (tests). Variables already in
    the environment win over secrets. Only the names of the secrets handed over are printed."""
    import shlex

    from medrepro.core import paths

    argv = shlex.split(args) if isinstance(args, str) else list(args)
    if secrets is None:
        secrets, notes = colab_secrets()
        for note in notes:
            print(f"medrepro: {note}")
    env = {**{k: v for k, v in secrets.items() if k in KAGGLE_SECRETS}, **os.environ}
    handed = sorted(k for k in secrets if k in KAGGLE_SECRETS and k not in os.environ)
    print("medrepro: Kaggle credentials for the run: " + (
        f"the Colab secret(s) {', '.join(handed)}" if handed else
        "none from Colab secrets (public datasets download anonymously; RSNA needs a token: "
        "add KAGGLE_API_TOKEN in the key panel)"), flush=True)
    script = Path(script) if script else paths.project_root() / "run_all.sh"
    with subprocess.Popen([str(script), *argv], cwd=script.parent, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
    return proc.returncode


def notebook_url(notebook: str) -> str:
    """The notebook's page on GitHub: ``<REPO_URL>/blob/<BRANCH>/notebooks/<notebook>.ipynb``."""
    return f"{REPO_URL}/blob/{BRANCH}/notebooks/{Path(notebook).stem}.ipynb"


def colab_url(notebook: str) -> str:
    """Colab's "open from GitHub" address of a notebook."""
    return notebook_url(notebook).replace("https://github.com/",
                                          "https://colab.research.google.com/github/", 1)


def kaggle_url(notebook: str) -> str:
    """Kaggle's "import a notebook from a URL" address."""
    return f"https://kaggle.com/kernels/welcome?src={notebook_url(notebook)}"


def badges_markdown(notebook: str) -> str:
    """The two badges of a notebook as one Markdown line (starts with :data:`BADGE_MARKER`)."""
    return (f"{BADGE_MARKER} [![Open In Colab]({COLAB_BADGE})]({colab_url(notebook)}) "
            f"[![Open In Kaggle]({KAGGLE_BADGE})]({kaggle_url(notebook)})")


def sync_notebook(path: str | Path) -> bool:
    """Put the badge line in the first markdown cell and :data:`SETUP_CELL` as the first code
    cell of a stored notebook (replacing older versions of either); True if it changed."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    title = next(c for c in nb.cells if c.cell_type == "markdown")
    head, *rest = [ln for ln in title.source.split("\n") if not ln.startswith(BADGE_MARKER)]
    while rest and not rest[0].strip():
        rest.pop(0)
    title.source = "\n".join([head, "", badges_markdown(path.stem), "", *rest])
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code and code[0].source.startswith(SETUP_MARKER):
        code[0].source = SETUP_CELL
    else:
        cell = nbformat.v4.new_code_cell(SETUP_CELL)
        nb.cells.insert(nb.cells.index(title) + 1, cell)
    after = nbformat.writes(nb)
    if after != before:
        nbformat.write(nb, path)
    return after != before


def main(argv: list[str] | None = None) -> int:
    """Sync every stored notebook (``python -m medrepro.run.hosted``)."""
    from medrepro.core import paths

    changed = [p.name for p in sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
               if sync_notebook(p)]
    print(f"updated: {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
