"""Install medrepro into the running Python; on Kaggle and Colab change nothing the image has.

    python lib/medrepro/run/install.py [--extras dev,dicom-codecs] [PROJECT_DIR]

What ``./run_all.sh`` and the notebooks' set-up cell call (it needs only the standard library, so
it runs before medrepro is importable). On a hosted image (Kaggle, Colab: detected by
:func:`medrepro.core.device.detect_platform`, or ``MEDREPRO_KEEP_INSTALLED=1``) every installed
distribution is pinned at its installed version through a pip constraints file, so pip installs
only what is missing (pydicom, nilearn, ... at versions that fit the image) and never upgrades
pip, the kernel stack (ipykernel, jupyter_client, tornado, traitlets), nbconvert or pandas under
the live kernel. Where a requirement cannot be met without a change, pip stops with its
resolver's message and nothing is changed. Elsewhere (a virtualenv of the user's) it is a plain
``pip install -e``. It prints what it added and checks, afterwards, that nothing it found
changed version (exit status 1 if something did).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

KEEP_ENV = "MEDREPRO_KEEP_INSTALLED"
PROJECT = "medrepro"


def _normalise(name: str) -> str:
    """PEP 503 name: ``Jupyter_Client`` -> ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """``{normalised name: version}`` of every distribution this Python sees (first one wins,
    as for imports); medrepro itself left out."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and dist.version and _normalise(name) != PROJECT:
            found.setdefault(_normalise(name), dist.version)
    return found


def constraints_text(versions: dict[str, str]) -> str:
    """A pip constraints file pinning ``versions`` (one ``name==version`` a line)."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def keep_installed(environ: dict[str, str] | None = None) -> bool:
    """Whether to pin what is installed: on Kaggle and Colab, or with ``MEDREPRO_KEEP_INSTALLED=1``."""
    env = os.environ if environ is None else environ
    flag = env.get(KEEP_ENV, "").strip().lower()
    if flag in ("0", "false", "no"):
        return False
    if flag in ("1", "true", "yes"):
        return True
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # lib/, before medrepro is installed
    from medrepro.core.device import LOCAL, detect_platform

    return detect_platform(env) != LOCAL


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """``{name: (version before, version after or None)}`` for what pip changed or removed."""
    return {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}


def pip_command(project: Path, *, extras: str = "", constraints: Path | None = None) -> list[str]:
    """``python -m pip install -q -e PROJECT[extras] [-c constraints]`` (no upgrade of anything)."""
    target = f"{project}[{extras}]" if extras else str(project)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
           target]
    return cmd + (["-c", str(constraints)] if constraints else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("project", nargs="?", default=str(Path(__file__).resolve().parents[3]))
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. dev")
    args = parser.parse_args(argv)
    project = Path(args.project).resolve()
    before = installed()
    keep = keep_installed()
    with tempfile.TemporaryDirectory(prefix="medrepro-install-") as tmp:
        constraints = None
        if keep:
            constraints = Path(tmp) / "installed.txt"
            constraints.write_text(constraints_text(before), encoding="utf-8")
            print(f"medrepro: installing into this image's Python, keeping its {len(before)} "
                  "packages as they are (only what is missing is added)", flush=True)
        proc = subprocess.run(pip_command(project, extras=args.extras, constraints=constraints),
                              check=False)
    if proc.returncode != 0:
        print("medrepro: pip could not install the kit"
              + (" without changing a package this image has (pip's message above names it)"
                 if keep else "") + f"; exit status {proc.returncode}", file=sys.stderr)
        return proc.returncode
    after = installed()
    added = sorted(set(after) - set(before))
    print(f"medrepro: installed; added {len(added)} package(s)"
          + (": " + ", ".join(f"{n} {after[n]}" for n in added) if added else ""), flush=True)
    moved = changed(before, after)
    if keep and moved:
        print("medrepro: WARNING: these packages of the image changed: " + ", ".join(
            f"{n} {a} -> {b or 'removed'}" for n, (a, b) in sorted(moved.items())),
            file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
