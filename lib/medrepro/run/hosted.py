"""Opening a notebook alone on Colab or Kaggle: the repository URL, the badges, the set-up cell.

``REPO_URL`` is the one place the repository's address is written; the README's badges, each
notebook's badges (first markdown cell) and its set-up cell (first code cell) are checked against
it by ``tests/test_hosted.py``. ``python -m medrepro.run.hosted`` rewrites the notebooks' badge line
and set-up cell from here (after a change of ``REPO_URL`` or of :data:`SETUP_CELL`).
"""

from __future__ import annotations

import sys
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

# The first code cell of every notebook. It must run before medrepro is importable, so it is
# plain Python: in a checkout (package installed, or ../lib beside the notebook) it only imports;
# on Colab/Kaggle it clones the repository, pip-installs it into the running kernel and puts its
# lib/ on sys.path, so no kernel restart is needed (an editable install's .pth file is only read
# at interpreter start).
SETUP_CELL = f'''{SETUP_MARKER}: a no-op in a checkout; on Colab/Kaggle clones and installs medrepro
import importlib, importlib.util, pathlib, subprocess, sys
REPO_URL, CLONE = "{REPO_URL}", pathlib.Path("{CLONE_DIR}")
if importlib.util.find_spec("medrepro") is None:
    lib = pathlib.Path("../lib").resolve()
    if not (lib / "medrepro").is_dir():
        if not (CLONE / "lib" / "medrepro").is_dir():
            subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(CLONE)], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(CLONE)], check=True)
        lib = (CLONE / "lib").resolve()
    sys.path.insert(0, str(lib))
    importlib.invalidate_caches()
from medrepro.core import device
device.print_setup()'''


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
