"""The kit installs into Kaggle's and Colab's images as they ship, changing nothing they pin.

The fast guard of ``.ci/emulate_image.py`` (the full emulation: a virtualenv of each image's
pins, the user's steps, freeze before and after; minutes, run as a documented check):

- ``requires-python`` admits every Python of the supported TensorFlow releases (3.10-3.13) and
  both images' Pythons; where a Python 3.13 is installed, the library compiles with it and every
  standard-library module it imports exists there;
- every dependency's bounds admit the version each image pins (offline);
- pip's resolver, against each image's pins as constraints (``pip install --dry-run``, PyPI),
  resolves medrepro's dependencies: what ``lib/medrepro/run/install.py`` does on the image then
  adds only missing packages and changes none.
"""

from __future__ import annotations

import ast
import importlib.util
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from medrepro.core import paths
from medrepro.run import install
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = paths.project_root()
_spec = importlib.util.spec_from_file_location("emulate_image", ROOT / ".ci" / "emulate_image.py")
emulate = sys.modules.setdefault("emulate_image", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(emulate)
IMAGES = emulate.IMAGES


def _requires_python() -> SpecifierSet:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return SpecifierSet(project["requires-python"])


def test_requires_python_admits_every_supported_python_and_the_images():
    spec = _requires_python()
    for version in ("3.10.0", "3.11.7", "3.12.1", "3.12.13", "3.13.0", "3.13.15"):
        assert spec.contains(version), version
    assert not spec.contains("3.9.18")
    for image in IMAGES.values():
        assert spec.contains(f"{image.python}.0"), image.name


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_bound_admits_the_version_the_image_pins(name):
    pins = emulate.pins(IMAGES[name])
    checked = 0
    for line in emulate.requirements():
        req = Requirement(line)
        pinned = pins.get(emulate.normalise(req.name))
        if pinned is not None:
            assert req.specifier.contains(Version(pinned), prereleases=True), (
                f"{name} pins {req.name}=={pinned}, outside medrepro's {req}")
            checked += 1
    assert checked >= 15  # the kernel, scientific and TensorFlow stacks are in both images
    for kernel in ("ipykernel", "jupyter-client", "nbconvert", "nbclient", "tornado", "traitlets"):
        assert kernel in pins


def _stdlib_imports() -> set[str]:
    names = set()
    for path in (ROOT / "lib" / "medrepro").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n in sys.stdlib_module_names}


def test_the_library_compiles_on_python_3_13_with_its_stdlib():
    python = emulate.find_python("3.13")
    if python is None:
        pytest.skip("no Python 3.13 here (pyenv or python3.13): Colab's Python not checked")
    mods = sorted(_stdlib_imports())
    code = ("import compileall, importlib.util, sys\n"
            f"ok = compileall.compile_dir({str(ROOT / 'lib')!r}, quiet=1, legacy=False, "
            "optimize=0, workers=1, force=True, ddir='lib')\n"
            f"missing = [m for m in {mods!r} if importlib.util.find_spec(m) is None]\n"
            "print('missing', missing); sys.exit(0 if ok and not missing else 1)\n")
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": "/tmp/medrepro-py313-pycache"}
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "missing []" in proc.stdout


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_pip_resolves_medrepro_against_each_images_pins(tmp_path):
    if not _pypi_reachable():
        pytest.skip("pypi.org unreachable: the resolver cannot be asked")
    with ThreadPoolExecutor(len(IMAGES)) as pool:  # network-bound: both at once
        results = dict(zip(IMAGES, pool.map(lambda i: emulate.resolve(i, tmp_path / i.name),
                                            IMAGES.values())))
    for name, result in results.items():
        assert result["ok"], f"{name}: pip cannot install medrepro into the image unchanged:\n" \
                             f"{result['error']}"
        pins = emulate.pins(IMAGES[name])
        moved = {n: (pins[n], v) for n, v in result["install"].items() if n in pins
                 and Version(v) != Version(pins[n])}
        assert not moved, f"{name}: {moved}"
        assert {"pydicom", "tensorflow", "ipykernel"} <= set(result["install"])
    # what each image lacks and the install adds: Colab has no pydicom, nilearn, papermill
    assert {"pydicom", "nilearn", "papermill", "imagehash"} <= set(results["colab"]["added"])
    assert "pandas" not in results["colab"]["added"] + results["kaggle"]["added"]


def test_install_pins_what_is_installed_only_on_a_hosted_image(tmp_path):
    assert install.keep_installed({"KAGGLE_KERNEL_RUN_TYPE": "Batch"})
    assert install.keep_installed({"COLAB_RELEASE_TAG": "release-colab-x"})
    assert not install.keep_installed({})
    assert not install.keep_installed({"KAGGLE_KERNEL_RUN_TYPE": "Batch",
                                       install.KEEP_ENV: "0"})
    assert install.keep_installed({install.KEEP_ENV: "1"})
    found = install.installed()
    assert found["pip"] and "medrepro" not in found
    text = install.constraints_text({"ipykernel": "6.17.1", "pandas": "2.2.3"})
    assert text == "ipykernel==6.17.1\npandas==2.2.3\n"
    cmd = install.pip_command(tmp_path, extras="dev", constraints=tmp_path / "c.txt")
    assert "--upgrade" not in cmd and "-U" not in cmd
    assert cmd[-4:] == ["-e", f"{tmp_path}[dev]", "-c", str(tmp_path / "c.txt")]
    assert install.changed({"pandas": "2.2.3", "tornado": "6.5.7"},
                           {"pandas": "3.1.1", "numpy": "2.1.3"}) == {
        "pandas": ("2.2.3", "3.1.1"), "tornado": ("6.5.7", None)}


def test_install_fails_loudly_when_pip_changed_a_package_of_the_image(monkeypatch, capsys):
    states = iter([{"pandas": "2.2.3", "pip": "24.1.2"}, {"pandas": "3.1.1", "pip": "24.1.2"}])
    monkeypatch.setattr(install, "installed", lambda: next(states))
    monkeypatch.setattr(install.subprocess, "run",
                        lambda cmd, check: subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert install.main([str(ROOT)]) == 1
    assert "these packages of the image changed: pandas 2.2.3 -> 3.1.1" in capsys.readouterr().err
