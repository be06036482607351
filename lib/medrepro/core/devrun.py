"""The fast dev run: a profile's code at its sizes on a few hundred items, in minutes.

``./run_all.sh --profile paper --fast-dev-run`` runs every notebook with the paper profile's
input sizes, architectures, batch sizes, optimizers, callbacks, caches and report code, on a few
hundred items per dataset, every fit cut to :data:`EPOCHS` epochs of :data:`STEPS` steps, and
kills one training once mid-epoch (SIGKILL, as a session end would) so that the continued run
goes through the resume path (Lightning calls this ``fast_dev_run``: find the bugs before the
GPU hours).

The runner (:mod:`medrepro.run.runner`) sets :data:`ENV` (and :data:`KILL_ENV`, the path of the
kill marker) in its environment, which the notebooks' kernels inherit; the library reads them
here. Everything a dev run writes goes under its own folders (:data:`FOLDER` inside the reports
and data roots), and every artifact, metric and run summary carries ``"fast_dev_run": true``
(:func:`stamp`): its numbers mean nothing and never enter the README results or a verdict.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

ENV = "MEDREPRO_FAST_DEV_RUN"
KILL_ENV = "MEDREPRO_FAST_DEV_KILL"
EPOCHS = 2  # every fit: at most this many epochs ...
STEPS = 2  # ... of at most this many training (and validation) batches
FOLDER = "fast-dev-run"  # the dev run's reports and data live in <root>/fast-dev-run/
LABEL = ("FAST DEV RUN: the code at the paper's sizes on a few items, 2 epochs of 2 steps; "
         "the numbers mean nothing")


# A dev run's items: the profile rows' counts capped here (a real source is capped too), so
# that every split keeps a few items of each class, and the explanations' step counts (their
# loops run, a few times); sizes in pixels and voxels stay the profile's.
CAPS: dict[str, dict[str, int]] = {
    "phantoms": {"mri_train_per_class": 40, "mri_test_per_class": 10, "rsna_images": 400,
                 "mosmed_per_class": 10},
    "rsna_cache": {"max_images": 400},
    "A": {"max_images": 200},
    "B": {"max_train": 160},
    "C": {"max_images": 200},
    "D": {"max_per_class": 10, "xai_sanity": 1, "xai_faith": 2, "xai_steps": 8},
    "E": {"max_images": 200, "ig_steps": 8, "xai_sanity": 1, "xai_faith": 2, "xai_steps": 8,
          "gallery_wrong": 2, "gallery_unsure": 1},
}


def active() -> bool:
    """Whether this process runs inside a fast dev run (:data:`ENV` set to ``1``)."""
    return os.environ.get(ENV, "") == "1"


def stamp() -> dict[str, Any]:
    """The field every record of a run carries: ``{"fast_dev_run": bool}``."""
    return {"fast_dev_run": active()}


def capped(name: str, row: Any) -> Any:
    """``row`` (a frozen settings row named ``name``) with its item counts capped at
    :data:`CAPS` (a field of None, meaning all items, gets the cap); ``row`` itself outside a
    dev run."""
    caps = CAPS.get(name, {}) if active() else {}
    changes = {field: cap if getattr(row, field) is None else min(getattr(row, field), cap)
               for field, cap in caps.items()}
    return dataclasses.replace(row, **changes) if changes else row


def kill_marker() -> Path | None:
    """The kill marker of this dev run (:data:`KILL_ENV`), or None outside one."""
    path = os.environ.get(KILL_ENV)
    return Path(path) if active() and path else None


def read_marker(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The kill marker's record (``{}`` when no training was killed yet)."""
    path = Path(path) if path else kill_marker()
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def write_marker(record: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Replace the kill marker's record (atomically)."""
    from medrepro.core.fileio import write_json

    path = Path(path) if path else kill_marker()
    if path is not None:
        write_json(path, record, indent=2)
