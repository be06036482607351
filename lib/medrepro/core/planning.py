"""What a run's plan is made of, so that each part of the kit plans its own writes.

:mod:`medrepro.run.plan` surveys the datasets (:class:`DatasetFound`) and asks the owner of every
profile row of a notebook (the RSNA cache, each study) for its :class:`RowPlan`: the bytes it will
write where (:class:`Write`), its projected time and what is already done. Plain data, no
imports: any layer can plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINT_BYTES_PER_PARAM = 12  # float32 weights + Adam's two moments


@dataclass
class Write:
    """Bytes a run will write under ``path`` (``done``: already there, nothing to write)."""

    what: str
    path: Path
    bytes: int
    done: bool = False
    checked: bool = True  # False: an estimate kept out of the disk check (downloads)


@dataclass
class DatasetFound:
    """What a run would read for ``dataset_id``: ``source`` "real", "phantom" or "download",
    the files and bytes found (or estimated), where."""

    dataset_id: str
    source: str
    root: Path | None
    files: int
    bytes: int
    note: str = ""


@dataclass(frozen=True)
class PlanContext:
    """What a row's planner may look at: the profile, the datasets found (id -> found), the
    measured rates of this machine (``rates.json``'s entry), the device
    (:func:`medrepro.core.device.machine`) and the RSNA cache format."""

    profile: str
    found: Mapping[str, DatasetFound]
    rates: Mapping[str, Any]
    device: Mapping[str, Any]
    cache_format: str = "compact"


@dataclass
class RowPlan:
    """One row's part of a notebook's plan: its writes, projected seconds (None: not
    projected), a note on the time, and what is skipped as done."""

    writes: list[Write] = field(default_factory=list)
    seconds: float | None = None
    note: str = ""
    done: list[str] = field(default_factory=list)
