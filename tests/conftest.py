"""Fixtures shared by the test files: a small brain-MRI folder in Sartaj's layout."""

import shutil

import numpy as np
import pytest
from medrepro import mri
from PIL import Image

SARTAJ = mri.CLASS_DIRS["brain_tumor_sartaj"]


def write_image(path, rng, *, gray=False, size=(30, 40)):
    """A random JPEG at ``path`` (grey or RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if gray else (*size, 3)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path, quality=95)


@pytest.fixture
def sartaj(tmp_path):
    """Sartaj layout: 10 Training + 5 Testing images per class; one Testing image is a
    byte-identical copy of a Training image; names with spaces and parentheses."""
    rng = np.random.default_rng(0)
    root = tmp_path / "brain_tumor_sartaj"
    for split, n in (("Training", 10), ("Testing", 5)):
        for k, cls in enumerate(SARTAJ):
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
