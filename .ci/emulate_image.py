#!/usr/bin/env python3
"""Emulate a hosted image, then do what its user does: ``python .ci/emulate_image.py colab|kaggle``.

The check behind "the kit installs into Kaggle's and Colab's images without changing them":

1. a virtualenv on the image's Python (pyenv's 3.13 for Colab, 3.12 for Kaggle; patch releases
   differ) holding, at the image's versions (``.ci/images/<image>-gpu.txt``, the published
   list, constraints on everything), the kernel stack, the scientific stack, TensorFlow/Keras and
   every other package of the image that medrepro's install would touch (found by pip's resolver
   against those pins), pip and setuptools included;
2. ``pip freeze`` before;
3. the user's steps exactly, with the platform's environment variables, the four datasets under
   their real Kaggle folder names (``MEDREPRO_KAGGLE_INPUT``; phantoms,
   ``medrepro.data.phantoms.kaggle_inputs``) and this repository's committed HEAD as the
   "GitHub" address (``MEDREPRO_REPO_URL``): the notebooks' set-up cell in the image's Python,
   then the whole smoke run: on Kaggle ``cd medrepro-src && ./run_all.sh --profile smoke --data
   kaggle``; on Colab the documented cell ``hosted.run_all("--profile smoke --data kaggle")`` in
   the "UI kernel" (a stand-in ``google.colab.userdata`` holding a Kaggle token, which must reach
   the run and no output);
4. ``pip freeze`` after: every package the image had keeps its version (pip too); what was added
   is listed. Exit status 0 when nothing pinned changed and the smoke run passed.

Writes ``<workdir>/summary.json`` (times per step, added packages, changes). ``--workdir``
defaults to ``/tmp/medrepro-emulate-<image>``; it is emptied first. Needs PyPI (pip) and the
image's Python; no GPU. Also the module behind the suite's fast guard (``tests/test_platform_images.py``):
:func:`pins`, :func:`constraints_file`, :func:`resolve`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = Path(__file__).resolve().parent / "images"
# Installed from the image's list whether or not medrepro needs them: what runs the notebooks.
STACK = ("pip", "setuptools", "wheel", "ipykernel", "ipython", "jupyter-client", "jupyter-core",
         "nbclient", "nbconvert", "nbformat", "tornado", "traitlets", "pyzmq", "numpy", "scipy",
         "pandas", "scikit-learn", "matplotlib", "seaborn", "pillow", "requests", "tqdm", "pyyaml",
         "tensorflow", "keras", "ml-dtypes", "h5py", "protobuf", "nibabel", "kagglehub",
         "tabulate", "matplotlib-inline")
MANYLINUX = [f"manylinux_2_{m}_x86_64" for m in range(35, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]  # Ubuntu 22.04: 2.35
TOKEN = "emulated-kaggle-api-token-0123456789"


@dataclass(frozen=True)
class Image:
    name: str
    python: str  # major.minor
    pins: Path
    env: dict = field(default_factory=dict)
    work: str = "content"  # the notebook's working folder, under the workdir


IMAGES = {
    "colab": Image("colab", "3.13", IMAGES_DIR / "colab-gpu.txt", {
        "COLAB_RELEASE_TAG": "release-colab-external-images_20260917-060051_RC00",
        "COLAB_BACKEND_VERSION": "next", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline"}, "content"),
    "kaggle": Image("kaggle", "3.12", IMAGES_DIR / "kaggle-gpu.txt", {
        "KAGGLE_KERNEL_RUN_TYPE": "Interactive", "KAGGLE_URL_BASE": "https://www.kaggle.com"},
        "kaggle/working"),
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(image: Image) -> dict[str, str]:
    """``{normalised name: version}`` of the image's list (``name==version`` lines; URL and
    git installs left out)."""
    out = {}
    for line in image.pins.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s#;]+)", line)
        if m:
            out[normalise(m.group(1))] = m.group(2)
    return out


def constraints_file(image: Image, folder: Path) -> Path:
    """The image's pins as a pip constraints file in ``folder``."""
    path = folder / f"{image.name}-constraints.txt"
    path.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins(image).items())))
    return path


def requirements() -> list[str]:
    """medrepro's dependencies as pyproject.toml declares them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def resolve(image: Image, folder: Path, *, python: str | None = None,
            timeout: float = 900) -> dict:
    """pip's resolution of medrepro's dependencies for the image's Python and platform with the
    image's pins as constraints (nothing installed): ``{"ok", "install": {name: version},
    "added": [...], "error", "seconds"}``. ``added``: what the image lacks. ``python``: the pip
    to ask, by default one of the image's Python (pip checks a package's Requires-Python against
    the interpreter it runs in, whatever ``--python-version`` says), else this one."""
    python = python or find_python(image.python) or sys.executable
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / f"{image.name}-report.json"
    report.unlink(missing_ok=True)
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), "--target", str(folder / "no-target"),
           "--python-version", image.python, "--only-binary=:all:",
           *[a for p in MANYLINUX for a in ("--platform", p)],
           "-c", str(constraints_file(image, folder)), *requirements()]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not report.is_file():
        err = "\n".join(ln for ln in proc.stderr.splitlines() if "is ignored" not in ln)
        return {"ok": False, "install": {}, "added": [], "error": err[-4000:], "seconds": seconds}
    got = {normalise(i["metadata"]["name"]): i["metadata"]["version"]
           for i in json.loads(report.read_text())["install"]}
    pinned = pins(image)
    return {"ok": True, "install": got, "added": sorted(n for n in got if n not in pinned),
            "error": "", "seconds": seconds}


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` (major.minor): ``$MEDREPRO_PYTHON<MM>``, pyenv's, or on PATH."""
    env = os.environ.get(f"MEDREPRO_PYTHON{version.replace('.', '')}")
    if env:
        return env
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for cand in sorted(pyenv.glob(f"{version}.*/bin/python"), reverse=True):
        return str(cand)
    return shutil.which(f"python{version}")


def freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True,
                         text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)(?:==| @ )(.+)$", line.strip())
        if m:
            found[normalise(m.group(1))] = m.group(2).strip()
    return found


def _run(cmd, *, log: Path, **kw) -> tuple[int, float]:
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, check=False, **kw)
    return proc.returncode, time.perf_counter() - start


def _stage(summary: dict, name: str, rc: int, seconds: float, log: Path) -> None:
    summary["steps"][name] = {"rc": rc, "seconds": round(seconds, 1), "log": str(log)}
    print(f"  {name}: rc {rc}, {seconds:.0f} s ({log})", flush=True)


def build_image(image: Image, work: Path, summary: dict) -> Path:
    """The emulated image's virtualenv (steps 1 and 2 of the module docstring)."""
    python = find_python(image.python)
    if python is None:
        raise SystemExit(f"no Python {image.python} here (pyenv or python{image.python}): the "
                         f"{image.name} image cannot be emulated")
    summary["python"] = subprocess.run([python, "-V"], capture_output=True, text=True,
                                       check=True).stdout.strip()
    resolved = resolve(image, work)
    if not resolved["ok"]:
        raise SystemExit(f"pip cannot resolve medrepro against the {image.name} pins:\n"
                         f"{resolved['error']}")
    pinned = pins(image)
    targets = sorted(n for n in set(resolved["install"]) | set(STACK) if n in pinned)
    (work / "targets.txt").write_text("".join(f"{n}=={pinned[n]}\n" for n in targets))
    venv = work / "venv"
    rc, secs = _run([python, "-m", "venv", str(venv)], log=work / "venv.log")
    _stage(summary, "venv", rc, secs, work / "venv.log")
    rc, secs = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
                     str(work / "targets.txt"), "-c", str(constraints_file(image, work))],
                    log=work / "image-install.log")
    _stage(summary, f"install the image's {len(targets)} packages", rc, secs,
           work / "image-install.log")
    if rc != 0:
        raise SystemExit(f"the emulated {image.name} image could not be built: "
                         f"{work / 'image-install.log'}")
    return venv


def user_steps(image: Image, venv: Path, work: Path, summary: dict) -> int:
    """Step 3: the set-up cell, then the whole smoke run, as the platform's user does them."""
    sys.path.insert(0, str(ROOT / "lib"))
    from medrepro.data.phantoms import kaggle_inputs
    from medrepro.run import hosted

    inputs = work / "kaggle" / "input"
    start = time.perf_counter()
    kaggle_inputs.make_kaggle_inputs(inputs, profile="smoke")
    _stage(summary, "the Kaggle input tree (phantoms, real names)", 0,
           time.perf_counter() - start, inputs)
    cwd = work / image.work
    cwd.mkdir(parents=True, exist_ok=True)
    keep = ("HOME", "LANG", "LC_ALL", "TERM", "USER", "PIP_CACHE_DIR", "PIP_CONFIG_FILE", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(image.env)
    env.update({"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "MEDREPRO_REPO_URL": f"file://{ROOT}", "MEDREPRO_KAGGLE_INPUT": str(inputs),
                "MEDREPRO_KAGGLE_ROOT": str(work / "kaggle"), "CUDA_VISIBLE_DEVICES": "-1",
                "TF_CPP_MIN_LOG_LEVEL": "2"})
    python = str(venv / "bin" / "python")
    rc, secs = _run([python, "-c", hosted.SETUP_CELL], log=work / "setup-cell.log", cwd=cwd,
                    env=env)
    _stage(summary, "the set-up cell", rc, secs, work / "setup-cell.log")
    if rc != 0:
        return rc
    src = cwd / hosted.CLONE_DIR
    if image.name == "colab":  # the documented Colab cell, in the "UI kernel" with a secret
        stub = work / "colab-ui"
        (stub / "google" / "colab").mkdir(parents=True, exist_ok=True)
        (stub / "google" / "colab" / "__init__.py").write_text("")
        (stub / "google" / "colab" / "userdata.py").write_text(
            "class SecretNotFoundError(Exception):\n    pass\n\n\ndef get(name):\n"
            f"    if name == 'KAGGLE_API_TOKEN':\n        return {TOKEN!r}\n"
            "    raise SecretNotFoundError(name)\n")
        cell = (f"import sys; sys.path.insert(0, {str(stub)!r}); sys.path.insert(0, 'lib')\n"
                "from medrepro.run import hosted\n"
                "sys.exit(hosted.run_all('--profile smoke --data kaggle'))\n")
        cmd = [python, "-c", cell]
    else:
        cmd = ["./run_all.sh", "--profile", "smoke", "--data", "kaggle"]
    rc, secs = _run(cmd, log=work / "run.log", cwd=src, env=env)
    _stage(summary, "the smoke run (--data kaggle)", rc, secs, work / "run.log")
    leaked = [str(p) for p in [work / "run.log", *(src / "reports").rglob("*")]
              if p.is_file() and TOKEN in p.read_text(errors="replace")]
    summary["token_in_outputs"] = leaked
    if image.name == "colab":
        summary["token_reached_the_run"] = "Colab secret(s) KAGGLE_API_TOKEN" in (
            work / "run.log").read_text()
    return rc or (1 if leaked else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", choices=sorted(IMAGES))
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    image = IMAGES[args.image]
    work = (args.workdir or Path(f"/tmp/medrepro-emulate-{image.name}")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True,
                           check=True).stdout.strip()
    summary = {"image": image.name, "pins": str(image.pins.relative_to(ROOT)), "commit": head,
               "uncommitted_changes_not_tested": bool(dirty), "steps": {}}
    print(f"emulating {image.name} ({image.pins.name}) with commit {head} in {work}"
          + (" (uncommitted changes are not part of the run)" if dirty else ""), flush=True)
    start = time.perf_counter()
    venv = build_image(image, work, summary)
    before = freeze(venv / "bin" / "python")
    rc = user_steps(image, venv, work, summary)
    after = freeze(venv / "bin" / "python")
    changed = {n: [v, after.get(n)] for n, v in before.items() if after.get(n) != v}
    summary.update({"packages_before": len(before), "changed": changed,
                    "added": {n: after[n] for n in sorted(set(after) - set(before))},
                    "smoke_run_rc": rc, "total_seconds": round(time.perf_counter() - start, 1),
                    "freeze_digest_before": hashlib.sha256(json.dumps(before, sort_keys=True)
                                                           .encode()).hexdigest()[:12]})
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{image.name}: {len(before)} packages before; changed: "
          f"{', '.join(f'{n} {a} -> {b}' for n, (a, b) in changed.items()) or 'none'}; added: "
          f"{', '.join(f'{n} {v}' for n, v in summary['added'].items()) or 'none'}")
    print(f"{image.name}: smoke run rc {rc}; total {summary['total_seconds']:.0f} s; "
          f"summary {work / 'summary.json'}")
    return 0 if rc == 0 and not changed else 1


if __name__ == "__main__":
    raise SystemExit(main())
