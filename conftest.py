"""Test-session setup shared by the unit tests and the nbval notebook runs.

- Everything the suite writes goes to ``.test-work/`` (or ``$MEDREPRO_TEST_WORK``): data and
  reports, emptied at the start of a session (unless ``MEDREPRO_KEEP_TEST_WORK=1``), so a run never
  touches the user's ``data/`` or ``reports/``.
- The stored notebooks run under nbval with ``MEDREPRO_PROFILE=smoke``.
- The per-notebook nbval outcomes and ``image/png`` output counts are recorded so that ``tests/test_artifacts.py`` (moved to the
  end of the run) can check the artifacts of the notebooks that ran, and run the others itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
WORK = Path(os.environ.get("MEDREPRO_TEST_WORK") or ROOT / ".test-work").resolve()
NOTEBOOK_OUTCOMES = pytest.StashKey[dict]()
NOTEBOOK_IMAGES = pytest.StashKey[dict]()  # notebook stem -> image/png outputs under nbval


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("MEDREPRO_KEEP_TEST_WORK"):
        shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True, exist_ok=True)
    (WORK / "reports").mkdir(parents=True, exist_ok=True)
    os.environ["MEDREPRO_PROFILE"] = "smoke"
    os.environ["MEDREPRO_DATA"] = str(WORK / "data")
    os.environ["MEDREPRO_REPORTS"] = str(WORK / "reports")
    os.environ.setdefault("MEDREPRO_DATA_SOURCE", "phantom")
    os.environ.pop("MEDREPRO_CACHE_DIR", None)  # caches under the test data folder
    os.environ["MEDREPRO_KAGGLE_ROOT"] = str(WORK / "kaggle")  # a Kaggle emulation's /kaggle
    for var in ("MEDREPRO_STATE", "MEDREPRO_RESUME_FROM", "MEDREPRO_XLA"):
        os.environ.pop(var, None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config.stash[NOTEBOOK_OUTCOMES] = {}
    config.stash[NOTEBOOK_IMAGES] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Checks that need the notebooks' artifacts run last.
    late = [i for i in items if i.get_closest_marker("after_notebooks")]
    early = [i for i in items if not i.get_closest_marker("after_notebooks")]
    items[:] = early + late


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb") or report.when != "call":
        return
    outcomes = _config.stash[NOTEBOOK_OUTCOMES]
    stem = Path(path).stem
    outcomes[stem] = "failed" if report.failed or outcomes.get(stem) == "failed" else "passed"


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    # nbval keeps each cell's outputs on the item: count the images a notebook displayed
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or outputs is None or not item.nodeid.split("::")[0].endswith(".ipynb"):
        return
    stem = Path(item.nodeid.split("::")[0]).stem
    images = item.config.stash[NOTEBOOK_IMAGES]
    images[stem] = images.get(stem, 0) + sum("image/png" in (o.get("data") or {})
                                             for o in outputs)


_config: pytest.Config


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _config
    _config = session.config


# ---------------------------------------------------------------------------- shared fixtures
def write_image(path, rng, *, gray=False, size=(30, 40)):
    """A random JPEG at ``path`` (grey or RGB)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if gray else (*size, 3)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path, quality=95)


@pytest.fixture
def sartaj(tmp_path):
    """Sartaj layout: 10 Training + 5 Testing images per class; one Testing image is a
    byte-identical copy of a Training image; names with spaces and parentheses."""
    import numpy as np
    from medrepro.data import brain_mri

    rng = np.random.default_rng(0)
    root = tmp_path / "brain_tumor_sartaj"
    for split, n in (("Training", 10), ("Testing", 5)):
        for k, cls in enumerate(brain_mri.CLASS_DIRS["brain_tumor_sartaj"]):
            for i in range(n):
                write_image(root / split / cls / f"im ({i}).jpg", rng, gray=(i + k) % 2 == 0)
    shutil.copy(root / "Training" / "glioma_tumor" / "im (0).jpg",
                root / "Testing" / "glioma_tumor" / "im (0).jpg")
    (root / "Training" / "no_tumor" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def image_writer():
    """:func:`write_image`, for tests that add images to a layout."""
    return write_image


def tiny_jpeg(value: int) -> bytes:
    """The bytes of an 8×8 grey JPEG of one ``value`` (a real image, a few hundred bytes)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), int(value) % 256).save(buf, format="JPEG")
    return buf.getvalue()


def mri_folder(root: Path, dataset_id: str, splits=("Training", "Testing"), n=2) -> Path:
    """A brain-MRI folder in ``dataset_id``'s layout with ``n`` tiny JPEGs per class."""
    from medrepro.data import registry

    sp = registry.spec(dataset_id)
    for split in splits:
        for cls in sp.classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                (root / split / cls / f"{split[:2]}-{cls}_{i}.jpg").write_bytes(tiny_jpeg(i))
    return root


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cached weights and a download that fails at once (as on this offline machine)."""
    from medrepro.models import brain_mri as mm

    monkeypatch.setattr(mm, "WEIGHTS_TIMEOUT", 2.0)
    monkeypatch.setattr(mm, "RESNET_WEIGHTS_URL", "http://127.0.0.1:9/none.h5")
    monkeypatch.setattr(mm, "RESNET_WEIGHTS_FILE", "medrepro_test_missing_weights.h5")
    monkeypatch.setattr(mm, "keras_models_dir", lambda: tmp_path / "no-weights-here")
