"""The RSNA cache's on-disk layout, shared by its builder (:mod:`.cache`) and reader (:mod:`.reader`).

Under ``paths.cache_root()`` (``data/processed``, or ``$MEDREPRO_CACHE_DIR``)::

    <cache root>/rsna_ich/<source>-<profile>-<key>/
        build.json                 what the cache was built from (root, size, format, ...)
        shard-00000.mrz            format "compact" (default): the shard's readable images,
                                   losslessly coded by ``medrepro.data.compact`` (~29 KiB/image)
        shard-00000.npy            format "raw": uint8 (n, 224, 224, 3) (147 KiB/image)
        shard-00000.csv            image_id, shard, row, patient_id, status, problem, detail
        manifest.csv               all shard CSVs, in order, then a skipped row per DICOM
                                   without a label row (written when every shard is done)
        summary.json               build statistics; its presence marks the cache complete
        split_image.csv            image_id, label, label_name, patient_id, split, shard, row
        split_patient.csv          the same, split by patient
        splits.json                the seed and notes of the splits
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np

from medrepro.core import paths
from medrepro.data import compact, dicom
from medrepro.data.rsna.labels import DATASET_ID

IMAGE_SIZE = dicom.DEFAULT_SIZE
CACHE_VERSION = 2
CACHE_FORMATS = ("compact", "raw")
DEFAULT_FORMAT = "compact"
SHARD_SUFFIX = {"compact": ".mrz", "raw": ".npy"}
RAW_IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3  # 150,528 B = 147 KiB
MANIFEST_FIELDS = ("image_id", "shard", "row", "patient_id", "status", "problem", "detail")
SPLIT_FILES = {"image": "split_image.csv", "patient": "split_patient.csv"}


class CacheError(RuntimeError):
    """A cache folder that is missing, incomplete or inconsistent (the message names it)."""


def cache_dir(ds, *, profile: str, image_size: int = IMAGE_SIZE,
              max_images: int | None = None, format: str = DEFAULT_FORMAT) -> Path:
    """The cache folder of a resolved dataset: ``<source>-<profile>-<key>``.

    ``key`` hashes the dataset root, image size, image limit and format, so phantom and real
    caches, and caches of different phantoms, never mix.
    """
    root = str(Path(ds.root).resolve())
    fmt = "" if format == "compact" else f"|{format}"
    key = hashlib.sha1(f"{root}|{image_size}|{max_images}|v{CACHE_VERSION}{fmt}".encode()
                       ).hexdigest()
    return paths.processed_dir(DATASET_ID) / f"{ds.source}-{profile}-{key[:8]}"


def shard_data(out: Path, k: int, format: str) -> Path:
    return out / f"shard-{k:05d}{SHARD_SUFFIX[format]}"


def shard_csv(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.csv"


def is_complete(cache: str | os.PathLike) -> bool:
    return (Path(cache) / "summary.json").is_file()


def require_complete(cache: str | os.PathLike) -> None:
    if not is_complete(cache):
        raise CacheError(f"{cache}: not a complete RSNA cache (no summary.json); run "
                         "rsna.ensure_cache(...)")


def check_shard_files(out: str | os.PathLike, k: int, format: str = DEFAULT_FORMAT, *,
                      full: bool = False) -> str:
    """``""`` if shard ``k`` of the cache ``out`` holds the images its CSV lists, else why not.

    Checks that the images file exists, parses, and holds as many images as the CSV has
    ``ok`` rows; ``full`` (compact) also verifies its SHA-1 trailer.
    """
    out = Path(out)
    try:
        with open(shard_csv(out, k), newline="", encoding="utf-8") as fh:
            n_ok = sum(row["status"] == "ok" for row in csv.DictReader(fh))
    except (OSError, KeyError, csv.Error) as exc:
        return f"{shard_csv(out, k)}: unreadable ({exc})"
    path = shard_data(out, k, format)
    if format == "compact":
        return compact.check_shard(path, n=n_ok, full=full)
    try:
        arr = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, ValueError) as exc:
        return f"{path}: unreadable ({exc})"
    if arr.shape[0] != n_ok:
        return f"{path}: holds {arr.shape[0]} images, its CSV lists {n_ok}"
    return ""


def mark_for_rebuild(cache: Path, k: int) -> None:
    """Make the next :func:`build_cache` redo shard ``k`` (its CSV and the completion files go)."""
    for path in (shard_csv(cache, k), cache / "summary.json", cache / "manifest.csv"):
        path.unlink(missing_ok=True)
