"""What a recipe may be tuned on: a dataset's fit and validation images, never its test split.

A tuning script (``benchmarks/tune_*.py``: it compares augmentations, batch sizes, framings...)
gets its images only from :func:`view`. The view holds the fit and validation frames of the
training part of one split protocol, drawn exactly as the study draws them (same functions,
same seed); the test part is dropped inside :func:`view` before anything is returned. The
view holds no dataset root, no split function and no test frame, so nothing in it leads to a
test file; with the official protocol the Testing folder is not even listed.
``tests/test_tuning.py`` checks every path a view holds, and that the tuning scripts name no
other way to the images. A test number, where one is wanted at all, comes afterwards from a
separate script that reads the choice already written down (``benchmarks/report_tuned_test.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from medrepro.data import brain_mri

PROTOCOLS = ("official", "paper")
VALIDATION_FRACTION = 0.1  # of the training part, as the studies hold out (brain_mri.validation_split)


class TuningViewError(ValueError):
    """A tuning view that would hold a test image, or an unknown protocol."""


@dataclass(frozen=True)
class TuningView:
    """A dataset's fit and validation images for one split protocol and seed.

    ``fit``, ``val``: ``brain_mri.list_images`` rows (``path``, ``split``, ``class_name``,
    ``label``, ...); ``protocol``: ``"official"`` (Training only) or ``"paper"`` (the pooled
    80/20 split's training part). Building one with a test row raises :class:`TuningViewError`.
    """

    dataset_id: str
    protocol: str
    seed: int
    fit: pd.DataFrame
    val: pd.DataFrame

    def __post_init__(self):
        for name, frame in (("fit", self.fit), ("val", self.val)):
            bad = _test_rows(frame, self.protocol)
            if bad:
                raise TuningViewError(f"tuning view {self.dataset_id}/{self.protocol}: its {name} "
                                      f"part holds {bad} test image(s), e.g. "
                                      f"{_first_test_path(frame, self.protocol)}")

    def describe(self) -> str:
        return (f"{self.dataset_id}, {self.protocol} protocol, seed {self.seed}: "
                f"{len(self.fit)} fit + {len(self.val)} validation images (no test image)")


def _test_mask(frame: pd.DataFrame, protocol: str) -> pd.Series:
    mask = frame.get("role", pd.Series("", index=frame.index)).eq("test")
    if protocol == "official":
        mask |= frame["split"].ne("Training")
    return mask


def _test_rows(frame: pd.DataFrame, protocol: str) -> int:
    return int(_test_mask(frame, protocol).sum())


def _first_test_path(frame: pd.DataFrame, protocol: str) -> str:
    return str(frame.loc[_test_mask(frame, protocol), "path"].iloc[0])


def view(root: str | os.PathLike, dataset_id: str, *, protocol: str = "official",
         seed: int, test_counts: Mapping[int, int] | None = None) -> TuningView:
    """The fit/validation view of ``dataset_id`` under ``root`` for ``protocol`` and ``seed``.

    ``"official"``: only ``root/Training`` is listed; ``"paper"``: every image is listed and
    pooled, split 80/20 as :func:`brain_mri.paper_split` does for the study (``test_counts``:
    the paper's test count per class, as study A draws them), and the test part dropped here. Then :func:`brain_mri.validation_split` holds out 10% for validation, as the
    studies do.
    """
    if protocol not in PROTOCOLS:
        raise TuningViewError(f"protocol={protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if protocol == "official":
        train = brain_mri.list_images(root, dataset_id, splits=("Training",)).assign(role="train")
    else:
        train, _ = brain_mri.paper_split(brain_mri.list_images(root, dataset_id), seed=seed,
                                         test_counts=test_counts)
    fit, val = brain_mri.validation_split(train, fraction=VALIDATION_FRACTION, seed=seed)
    return TuningView(dataset_id, protocol, int(seed), fit, val)


def pipelines(v: TuningView, *, image_size: int, batch_size: int,
              augment: Mapping[str, Any] | None, framing: str = "stretch") -> tuple:
    """``(fit, val)`` tf.data pipelines of a view (``brain_mri.image_dataset``): ``fit``
    shuffled and augmented (``brain_mri.augmenter(**augment)``, none when ``augment`` is
    empty), both seeded with the view's seed, at ``image_size`` px with ``framing``."""
    frame = {"image_size": image_size, "batch_size": batch_size, "framing": framing}
    aug = brain_mri.augmenter(**augment, seed=v.seed) if augment else None
    fit = brain_mri.image_dataset(v.fit, shuffle=True, seed=v.seed, augment=aug, **frame)
    return fit, brain_mri.image_dataset(v.val, **frame)
