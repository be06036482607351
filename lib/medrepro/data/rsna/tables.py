"""What notebooks 02 and 04 show of the RSNA data: ``B.table1`` (images per class and split beside
the paper's), ``B.skips`` (and its record for the run summary), ``B.cache``, the patients note
and the DICOM of ``B.fig3``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from medrepro.core import manifest, paths
from medrepro.data import dicom
from medrepro.data.rsna.labels import CLASSES, DATASET_ID, IMAGES_DIR, NO_LABEL, SPLITS
from medrepro.data.rsna.layout import CacheError
from medrepro.data.rsna.reader import load_manifest, read_summary


def table1(split_df, *, with_paper: bool = True):
    """Images per class and split beside the paper's counts and proportions (``B.table1``).

    Rows in the paper's order (epidural ... subdural, none) plus ``total``; columns ``S``,
    ``class``, ``train``, ``val``, ``test``, ``total``, ``share_pct``, and with ``with_paper``
    ``paper_train`` ... ``paper_total``, ``paper_share_pct``.
    """
    import pandas as pd

    counts = (split_df.groupby(["label_name", "split"]).size().unstack(fill_value=0)
              .reindex(index=list(CLASSES), columns=list(SPLITS), fill_value=0))
    paper = manifest.reported_frame("B.table1").set_index("class")
    rows = []
    for name in paper.index:  # the paper's row order
        r = {"S": f"S{CLASSES.index(name) + 1}", "class": name,
             **{s: int(counts.loc[name, s]) for s in SPLITS}}
        r["total"] = sum(r[s] for s in SPLITS)
        if with_paper:
            r.update({f"paper_{s}": int(paper.loc[name, s]) for s in SPLITS})
            r["paper_total"] = int(paper.loc[name, "total"])
        rows.append(r)
    df = pd.DataFrame(rows)
    total = {"S": "", "class": "total", **{c: int(df[c].sum()) for c in df.columns[2:]}}
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df["share_pct"] = (100 * df["total"] / max(total["total"], 1)).round(3)
    if with_paper:
        df["paper_share_pct"] = (100 * df["paper_total"] / total["paper_total"]).round(3)
    return df


def skips_table(cache: str | os.PathLike):
    """Skipped files per problem, with up to three example ids and one detail (``B.skips``):
    unreadable DICOMs, labelled IDs without a DICOM (``no image``) and DICOMs without a label
    row (``no label``).

    Always has a ``total`` row, so a clean build shows ``0`` rather than nothing.
    """
    import pandas as pd

    man = load_manifest(cache)
    bad = man[man["status"] == "skipped"]
    rows = [{"problem": problem, "files": len(g), "examples": ", ".join(g["image_id"][:3]),
             "detail": g["detail"].iloc[0]}
            for problem, g in bad.groupby("problem", sort=True)]
    n_unlabelled = int((bad["problem"] == NO_LABEL).sum())
    rows.append({"problem": "total", "files": len(bad), "examples": "",
                 "detail": f"of {len(man) - n_unlabelled} selected images"
                 + (f" and {n_unlabelled} DICOM(s) without a label" if n_unlabelled else "")})
    return pd.DataFrame(rows)


def skip_record(cache: str | os.PathLike) -> dict:
    """What ``report.record_skips`` takes of the cache's skips: ``skipped`` (``path`` of each
    skipped DICOM, ``problem``, ``detail``) and ``n_files`` (the labelled IDs and DICOMs looked
    at)."""
    man = load_manifest(cache)
    root = Path(json.loads((Path(cache) / "build.json").read_text(encoding="utf-8"))["root"])
    bad = man[man["status"] == "skipped"]
    skipped = bad.assign(path=[str(root / IMAGES_DIR / f"{i}.dcm") for i in bad["image_id"]])
    return {"skipped": skipped[["path", "problem", "detail"]].reset_index(drop=True),
            "n_files": len(man)}


def cache_table(cache: str | os.PathLike):
    """One row of cache statistics (``B.cache``): images, cached, skipped, shards, format,
    bytes, MB, KiB per image, wall time and images/s of the last build session, workers,
    whether it resumed."""
    import pandas as pd

    s = read_summary(cache)
    build = json.loads((Path(cache) / "build.json").read_text(encoding="utf-8"))
    row = {"images": s["images"], "cached": s["cached"], "skipped": s["skipped"],
           "shards": s["shards"], "shard_size": build["shard_size"],
           "image_size": build["image_size"], "format": build.get("format", "raw"),
           "bytes": s["bytes"], "MB": round(s["bytes"] / 2**20, 1),
           "KiB_per_image": round(s["bytes"] / max(s["cached"], 1) / 1024, 1),
           "wall_s": s["wall_s"],
           "images_per_s": s["images_per_s"], "workers": s["workers"], "resumed": s["resumed"],
           "cache": Path(cache).name}
    return pd.DataFrame([row])


def figure_sample(ds) -> tuple[Path, str, str]:
    """The DICOM that ``B.fig3`` shows: ``(path, source, note)``.

    A real slice from ``../shared/data/rsna_ich_samples`` when that folder exists (``source``
    ``"rsna_ich"``), else the first readable file of ``ds`` (its own source).
    """
    shared = paths.shared_data_dir()
    candidates = []
    if shared is not None and (shared / "rsna_ich_samples").is_dir():
        candidates = [(p, DATASET_ID, "real slice from ../shared/data/rsna_ich_samples")
                      for p in sorted((shared / "rsna_ich_samples").glob("*.dcm"))]
    candidates += [(p, ds.source, f"from the {ds.source} dataset")
                   for p in sorted((Path(ds.root) / IMAGES_DIR).glob("*.dcm"))[:50]]
    for path, source, note in candidates:
        try:
            dicom.read_slice(path)
        except dicom.DicomReadError:
            continue
        return path, source, note
    raise CacheError(f"{ds.root}: no readable DICOM to show")


def patients_note(split, notes: Sequence[str] = (), *, splits: Sequence[str] = SPLITS) -> str:
    """B.table1_patient's note: the patients per split (``split``: one row per image with
    ``split`` and ``patient_id`` columns, in the order of ``splits``), then the split's ``notes``."""
    patients = split.groupby("split")["patient_id"].nunique()
    return ("patients per split: " + ", ".join(f"{s} {patients.get(s, 0)}" for s in splits)
            + ("; " + "; ".join(notes) if notes else ""))
