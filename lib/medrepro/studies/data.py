"""The data notebooks' small helpers: acquisition (01), RSNA preprocessing (02), comparison (06).

What notebooks 01, 02 and 06 show beside their artifacts: the table of acquired datasets, the
lines for datasets that could not be had, the saved duplicate groups of the leakage audit
(``X.audit``), the notes of a resolved dataset or a split and the patients-per-split note of
``B.table1_patient``. Kept apart from :mod:`medrepro.datasets`, :mod:`medrepro.audit` and
:mod:`medrepro.rsna`, whose rules they only present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


# ---------------------------------------------------------------------------- 01: acquisition
def acquired_table(resolved: Mapping[str, Any]):
    """One row per resolved dataset (``datasets.resolve_available``): id, source, origin, the
    splits present (comma separated) and its notes (space separated)."""
    import pandas as pd

    return pd.DataFrame([{"dataset": rd.dataset_id, "source": rd.source, "origin": rd.origin,
                          "splits": ", ".join(rd.splits_present), "notes": " ".join(rd.notes)}
                         for rd in resolved.values()])


def print_unavailable(unavailable: Mapping[str, str]) -> None:
    """One ``UNAVAILABLE <dataset>: <reason>`` line per dataset that could not be resolved."""
    for dataset_id, reason in unavailable.items():
        print(f"UNAVAILABLE {dataset_id}: {reason}")


def combined_source(resolved: Mapping[str, Any]) -> str:
    """The data source label of several resolved datasets (:func:`medrepro.report.combine_sources`)."""
    from medrepro import report

    return report.combine_sources(rd.source for rd in resolved.values())


def audit_table(resolved: Mapping[str, Any], dataset_ids: Sequence[str] | None = None):
    """X.audit: the leakage audit (:func:`medrepro.audit.audit_resolved`) of each of
    ``dataset_ids`` (default: the brain-tumour MRI sets), one frame."""
    import pandas as pd

    from medrepro import audit, datasets

    ids = datasets.MRI_DATASETS if dataset_ids is None else dataset_ids
    return pd.concat([audit.audit_resolved(resolved[d]) for d in ids], ignore_index=True)


def saved_duplicates(resolved: Mapping[str, Any],
                     dataset_ids: Sequence[str] | None = None) -> dict[str, str]:
    """``{dataset: "<n> groups"}``: the duplicate groups the audit saved for each of
    ``dataset_ids`` (default: the MRI sets); raises ``FileNotFoundError`` naming the missing
    files when the audit did not save them."""
    from medrepro import audit, datasets

    ids = datasets.MRI_DATASETS if dataset_ids is None else dataset_ids
    saved = {d: audit.duplicates_path(d) for d in ids}
    missing = {d: str(p) for d, p in saved.items() if not p.is_file()}
    if missing:
        raise FileNotFoundError(f"duplicate groups not saved by the audit: {missing}")
    return {d: f"{len(audit.load_duplicates(d, root=resolved[d].root, source=resolved[d].source))}"
               " groups" for d in saved}


# ---------------------------------------------------------------------------- 02: RSNA
def print_notes(notes: Iterable[str]) -> None:
    """One ``note: ...`` line per note (of a resolved dataset or a split)."""
    for note in notes:
        print("note:", note)


def patients_note(split, notes: Sequence[str] = (), *, splits: Sequence[str] | None = None) -> str:
    """B.table1_patient's note: the patients per split (``split``: one row per image with
    ``split`` and ``patient_id`` columns, in the order of ``splits``, default
    :data:`medrepro.rsna.SPLITS`), then the split's ``notes``."""
    from medrepro import rsna

    patients = split.groupby("split")["patient_id"].nunique()
    names = rsna.SPLITS if splits is None else splits
    return ("patients per split: " + ", ".join(f"{s} {patients.get(s, 0)}" for s in names)
            + ("; " + "; ".join(notes) if notes else ""))


# ---------------------------------------------------------------------------- 06: comparison
def recorded_by(metrics: Iterable[Mapping[str, Any]]) -> list[str]:
    """The notebooks that recorded ``metrics`` (:func:`medrepro.report.read_metrics`), sorted."""
    return sorted({m["notebook"] for m in metrics})
