"""Study B data: RSNA labels, the 6-class selection, the splits, and the windowed-image cache.

Labels: ``stage_2_train.csv`` (rows ``ID_<image>_<subtype>,Label``) becomes one row per image
with six binary labels (:func:`read_labels`); images with exactly one subtype or none are kept as
six classes in the paper's order ``manifest.RSNA_CLASSES`` (:func:`select_single_type`).

The cache (:func:`ensure_cache`) holds each kept image as the three-window RGB
(``medrepro.data.dicom``) at 224×224, in fixed-size shards, under ``paths.cache_root()``
(``data/processed``, or ``$MEDREPRO_CACHE_DIR``)::

    <cache root>/rsna_ich/<source>-<profile>-<key>/
        build.json                 what the cache was built from (root, size, format, ...)
        shard-00000.mrz            format "compact" (default): the shard's readable images,
                                   losslessly coded by ``medrepro.data.compact`` (~29 KiB/image)
        shard-00000.npy            format "raw": uint8 (n, 224, 224, 3) (147 KiB/image)
        shard-00000.csv            image_id, shard, row, patient_id, status, problem, detail
        manifest.csv               all shard CSVs, in order (written when every shard is done)
        summary.json               build statistics; its presence marks the cache complete
        split_image.csv            image_id, label, label_name, patient_id, split, shard, row
        split_patient.csv          the same, split by patient
        splits.json                the seed and notes of the splits

Each shard is written by a worker process, its images first, then its ``.csv`` (both atomic),
so a shard whose CSV exists is complete: a build killed at any moment resumes by doing the
shards without a CSV, and ends byte-identical to an uninterrupted one. A shard whose images
file is missing, truncated, damaged (compact: SHA-1 trailer) or holds another number of images
than its CSV lists is rebuilt, never read: checked in full when a build resumes, by header and
size when a complete cache is opened, and every compact image carries zstd checksums that
:func:`load_images` and :func:`make_dataset` verify as they decode (a failure marks the shard
for rebuilding and raises :class:`CacheError`). Unreadable files are skipped with their reason
(``status == "skipped"``) and counted in :func:`skips_table`. Memory stays flat in
the number of files: a bounded number of shards is in flight, and no image list is held.

Training reads the cache through :func:`load_split` and :func:`make_dataset` (memory-mapped
shards, one gather and, for compact shards, one batched decode per batch).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from medrepro.data import compact, dicom
from medrepro.core import manifest, paths
from medrepro.data.registry import RSNA_LABELS_CSV
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.core.fileio import atomic_path, write_json

DATASET_ID = "rsna_ich"
LABELS_CSV = RSNA_LABELS_CSV  # the name benchmarks/ use
IMAGES_DIR = "stage_2_train"
SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
CLASSES = manifest.RSNA_CLASSES  # S1 none, S2 epidural, ..., S6 subdural
N_CLASSES = len(CLASSES)
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.5, 0.25, 0.25)
MIN_PER_CLASS_TO_SPLIT = 4  # fewer images of a class: all of them go to train
IMAGE_SIZE = dicom.DEFAULT_SIZE
MAX_SHARD_SIZE = 256  # 256 × 224 × 224 × 3 B = 38.5 MB per shard
MIN_SHARD_SIZE = 8
TARGET_SHARDS = 16  # small sets still get enough shards to spread over workers
CACHE_VERSION = 2
MAX_OPEN_SHARDS = 256  # mapped shard files per reader (file descriptors)
CACHE_FORMATS = ("compact", "raw")
DEFAULT_FORMAT = "compact"
SHARD_SUFFIX = {"compact": ".mrz", "raw": ".npy"}
RAW_IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3  # 150,528 B = 147 KiB
MANIFEST_FIELDS = ("image_id", "shard", "row", "patient_id", "status", "problem", "detail")
SPLIT_FILES = {"image": "split_image.csv", "patient": "split_patient.csv"}


class CacheError(RuntimeError):
    """A cache folder that is missing, incomplete or inconsistent (the message names it)."""


# ---------------------------------------------------------------------------- labels

def read_labels(csv_path: str | os.PathLike):
    """``stage_2_train.csv`` as one row per image: ``image_id`` + the five subtypes + ``any``.

    Duplicate rows (the published file has some) are dropped, the first one kept; a subtype
    missing for an image counts as 0. Returns a ``pandas.DataFrame`` sorted by ``image_id``,
    labels as int8. The 4.5 million rows are streamed into one small bit mask per image, which
    needs a tenth of the memory of a pandas pivot.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: RSNA label file not found")
    columns = (*SUBTYPES, "any")
    bit = {name: 1 << i for i, name in enumerate(columns)}
    seen: dict[str, int] = {}  # image id -> subtypes with a row
    positive: dict[str, int] = {}  # image id -> subtypes labelled 1
    with open(csv_path, encoding="utf-8", newline="") as fh:
        header = fh.readline().strip().split(",")
        if header[:2] != ["ID", "Label"]:
            raise ValueError(f"{csv_path}: expected columns ID,Label, got {header}")
        for n, line in enumerate(fh, start=2):
            key, _, value = line.rstrip("\r\n").partition(",")
            image_id, _, subtype = key.rpartition("_")
            b = bit.get(subtype)
            if b is None or value.strip() not in ("0", "1"):
                if not line.strip():
                    continue
                raise ValueError(f"{csv_path}:{n}: expected ID_<image>_<subtype>,<0|1>, got "
                                 f"{line.strip()!r}")
            s = seen.get(image_id, 0)
            if s & b:
                continue  # a duplicate row
            seen[image_id] = s | b
            if value.strip() == "1":
                positive[image_id] = positive.get(image_id, 0) | b
    ids = np.array(sorted(seen), dtype=object)
    mask = np.array([positive.get(i, 0) for i in ids], dtype=np.int64)
    df = pd.DataFrame({"image_id": ids})
    for name in columns:
        df[name] = ((mask & bit[name]) > 0).astype("int8")
    return df


def select_single_type(labels):
    """Images with exactly one subtype, or none, as the six classes of the paper.

    Returns ``image_id``, ``label`` (int 0..5 in ``CLASSES`` order) and ``label_name``.
    """
    subtypes = labels[list(SUBTYPES)].to_numpy()
    n_pos = subtypes.sum(axis=1)
    keep = n_pos <= 1
    label = np.where(n_pos[keep] == 0, 0, subtypes[keep].argmax(axis=1) + 1)
    out = labels.loc[keep, ["image_id"]].reset_index(drop=True)
    out["label"] = label.astype(np.int64)
    out["label_name"] = np.asarray(CLASSES, dtype=object)[label]
    return out


# ---------------------------------------------------------------------------- splits

def split_stratified(labels: Sequence[int], *, seed: int,
                     fractions: Sequence[float] = SPLIT_FRACTIONS) -> tuple[np.ndarray, list[str]]:
    """A seeded per-class split: ``(split names array, notes)``.

    Within each class (in the order given) a seeded permutation; ``floor(n × f)`` images go to
    val and to test, the rest to train (the paper's 50/25/25 counts for five of its six
    classes). A class with fewer than ``MIN_PER_CLASS_TO_SPLIT`` images goes wholly to train,
    so that every present class is trained on; the notes say which.
    """
    labels = np.asarray(labels)
    _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), SPLITS[0], dtype=object)
    notes = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < MIN_PER_CLASS_TO_SPLIT:
            notes.append(f"class {_class_name(c)}: {len(idx)} image(s) < "
                         f"{MIN_PER_CLASS_TO_SPLIT}, all in train")
            continue
        idx = rng.permutation(idx)
        n_val = int(len(idx) * fractions[1])
        n_test = int(len(idx) * fractions[2])
        out[idx[:n_val]] = SPLITS[1]
        out[idx[n_val:n_val + n_test]] = SPLITS[2]
    return out, notes


def split_by_patient(labels: Sequence[int], patient_ids: Sequence[str], *, seed: int,
                     fractions: Sequence[float] = SPLIT_FRACTIONS) -> tuple[np.ndarray, list[str]]:
    """A seeded split that keeps each patient in one split, stratified by class where it can.

    ``StratifiedGroupKFold`` with 4 folds: one fold to val, one to test, two to train (the 50/25/25
    of the paper, by patients). Images without a PatientID count as patients of their own. With
    fewer than 4 patients, shuffled patients are dealt out in turn (train first); notes say so.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    groups = np.asarray(patient_ids, dtype=object)
    _check_fractions(fractions)
    notes = []
    missing = np.array([not isinstance(g, str) or not g for g in groups], dtype=bool)
    if missing.any():
        groups = groups.copy()
        groups[missing] = [f"unknown-{i}" for i in np.flatnonzero(missing)]
        notes.append(f"{int(missing.sum())} image(s) without PatientID: each its own patient")
    n_folds = round(1 / min(fractions))
    uniq = np.unique(groups)
    out = np.full(len(labels), SPLITS[0], dtype=object)
    if len(uniq) < n_folds:
        order = np.random.default_rng(seed).permutation(uniq)
        for i, g in enumerate(order):
            out[groups == g] = SPLITS[i % len(SPLITS)]
        notes.append(f"only {len(uniq)} patient(s): dealt out in turn, not stratified")
        return out, notes
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    with warnings.catch_warnings():  # "least populated class has only N members": handled below
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test_idx) in enumerate(folds.split(np.zeros(len(labels)), labels, groups)):
            fold_of[test_idx] = k
    out[fold_of == 0] = SPLITS[1]
    out[fold_of == 1] = SPLITS[2]
    for c in np.unique(labels):
        if (out[labels == c] == SPLITS[0]).any():
            continue
        # Move the smallest patient with this class into train, so every class is trained on.
        with_c = np.unique(groups[labels == c])
        sizes = [(int((groups == g).sum()), g) for g in with_c]
        _, g = min(sizes)
        out[groups == g] = SPLITS[0]
        notes.append(f"class {_class_name(c)}: no patient in train; moved patient {g} "
                     f"({min(sizes)[0]} image(s)) from val/test to train")
    return out, notes


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")


def _class_name(c: int) -> str:
    return f"S{int(c) + 1} {CLASSES[int(c)]}"


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


# ---------------------------------------------------------------------------- the cache

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


def ensure_cache(ds, *, profile: str, workers: int | None = None,
                 image_size: int = IMAGE_SIZE, seed: int | None = None,
                 max_images: int | None = None,
                 progress: bool = True, format: str = DEFAULT_FORMAT) -> Path:
    """Build, resume, or (when complete) just return the cache of ``ds``; then its splits.

    ``ds`` is a ``medrepro.data.datasets.ResolvedDataset`` of ``rsna_ich``. ``workers``: worker
    processes (None: the CPU count). ``seed`` seeds both splits (rewritten when it changes;
    None keeps the splits already there, so a later notebook reads the images notebook 02
    split, else uses ``DEFAULT_SEED``). ``format``: ``"compact"`` (lossless, ~29 KiB/image)
    or ``"raw"`` (147 KiB/image).
    Returns the cache folder for :func:`load_split` and :func:`make_dataset`.
    """
    out = cache_dir(ds, profile=profile, image_size=image_size, max_images=max_images,
                    format=format)
    build_cache(ds.root, out, workers=workers, image_size=image_size, max_images=max_images,
                progress=progress, source=ds.source, format=format)
    write_splits(out, Path(ds.root) / RSNA_LABELS_CSV, seed=seed)
    return out


def build_cache(root: str | os.PathLike, out: str | os.PathLike, *, workers: int | None = None,
                image_size: int = IMAGE_SIZE, shard_size: int | None = None,
                max_images: int | None = None, progress: bool = True,
                source: str = "", format: str = DEFAULT_FORMAT) -> Path:
    """Build or resume the image cache of the RSNA folder ``root`` into ``out``.

    ``format``: ``"compact"`` (default; ``medrepro.data.compact``, lossless) or ``"raw"`` (``.npy``).
    No-op when ``out/summary.json`` exists for the same inputs and every shard passes the
    header/size check. A folder built from other inputs (``build.json`` differs) is emptied
    first. Returns ``out``.
    """
    if format not in CACHE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(CACHE_FORMATS)}, got {format!r}")
    root, out = Path(root), Path(out)
    labels_csv = root / RSNA_LABELS_CSV
    stat = labels_csv.stat() if labels_csv.is_file() else None
    inputs = {"version": CACHE_VERSION, "root": str(root.resolve()), "source": source,
              "image_size": int(image_size), "max_images": max_images, "format": format,
              "windows": [list(w) for w in dicom.RSNA_WINDOWS],
              "labels_csv": [stat.st_size, stat.st_mtime_ns] if stat else None}
    if _complete_for(out, inputs, shard_size) and not _drop_bad_shards(out, format, full=False):
        return out  # without parsing the label file again (seconds on the real one)
    images = selected_images(root, max_images=max_images)
    n = len(images)
    if shard_size is None:
        shard_size = int(np.clip(math.ceil(n / TARGET_SHARDS), MIN_SHARD_SIZE, MAX_SHARD_SIZE))
    ids_sha1 = hashlib.sha1("\n".join(images.tolist()).encode()).hexdigest()
    config = {**inputs, "shard_size": int(shard_size), "n_images": n, "ids_sha1": ids_sha1}
    _prepare(out, config)
    if (out / "summary.json").is_file():
        return out
    for stale in out.glob(".shard-*.tmp"):  # half-written files of a killed run
        stale.unlink(missing_ok=True)
    _drop_bad_shards(out, format, full=True)
    n_shards = math.ceil(n / shard_size)
    todo = [k for k in range(n_shards) if not _shard_csv(out, k).is_file()]
    done_before = n - sum(len(images[k * shard_size:(k + 1) * shard_size]) for k in todo)
    workers = max(1, int(workers or _cpu_count()))
    jobs = (_job(root, out, k, images[k * shard_size:(k + 1) * shard_size], image_size, format)
            for k in todo)
    t0 = time.perf_counter()
    _run_jobs(jobs, workers=min(workers, max(len(todo), 1)), total=n, initial=done_before,
              progress=progress)
    wall = time.perf_counter() - t0
    _write_manifest(out, n_shards)
    _write_summary(out, n_shards=n_shards, wall=wall, workers=workers,
                   built=n - done_before, resumed=done_before > 0, format=format)
    return out


def selected_images(root: str | os.PathLike, *, max_images: int | None = None) -> np.ndarray:
    """Image ids of the six-class selection of ``root/stage_2_train.csv``, sorted (``<U``)."""
    ids = select_single_type(read_labels(Path(root) / RSNA_LABELS_CSV))["image_id"].to_numpy(str)
    if max_images is not None and max_images < len(ids):
        keep = np.random.default_rng(0).permutation(len(ids))[:max_images]
        ids = ids[np.sort(keep)]
    return ids


def _complete_for(out: Path, inputs: dict, shard_size: int | None) -> bool:
    """True when ``out`` is a complete cache built from ``inputs`` (and ``shard_size``)."""
    try:
        built = json.loads((out / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same = all(built.get(k) == v for k, v in inputs.items())
    same = same and (shard_size is None or built.get("shard_size") == shard_size)
    return same and (out / "summary.json").is_file()


def _prepare(out: Path, config: dict) -> None:
    """Make ``out`` hold a cache of ``config``: keep it when ``build.json`` matches (a label file
    that was only touched, same selection, just updates the record), else empty it."""
    build = out / "build.json"
    if build.is_file():
        try:
            old = json.loads(build.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old == config:
            return
        if {**old, "labels_csv": None} == {**config, "labels_csv": None}:
            _write_json(build, config)
            return
        print(f"{out}: built from other inputs; rebuilding")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(build, config)


def _write_json(path: Path, obj: dict) -> None:
    write_json(path, obj, indent=2)


def _shard_data(out: Path, k: int, format: str) -> Path:
    return out / f"shard-{k:05d}{SHARD_SUFFIX[format]}"


def _shard_csv(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.csv"


def _drop_bad_shards(out: Path, format: str, *, full: bool) -> list[int]:
    """Delete every done shard (one with a CSV) whose images file fails the check, with its CSV
    and the completion files, so the build redoes it. ``full``: compact shards' SHA-1 too.
    Returns the indices dropped (each printed with its reason)."""
    bad = []
    for csv_path in sorted(out.glob("shard-*.csv")):
        k = int(csv_path.stem.split("-")[1])
        problem = check_shard_files(out, k, format, full=full)
        if problem:
            print(f"RSNA cache: rebuilding shard {k}: {problem}")
            _shard_data(out, k, format).unlink(missing_ok=True)
            csv_path.unlink(missing_ok=True)
            bad.append(k)
    if bad:
        for name in ("summary.json", "manifest.csv"):
            (out / name).unlink(missing_ok=True)
    return bad


def check_shard_files(out: str | os.PathLike, k: int, format: str = DEFAULT_FORMAT, *,
                      full: bool = False) -> str:
    """``""`` if shard ``k`` of the cache ``out`` holds the images its CSV lists, else why not.

    Checks that the images file exists, parses, and holds as many images as the CSV has
    ``ok`` rows; ``full`` (compact) also verifies its SHA-1 trailer.
    """
    out = Path(out)
    try:
        with open(_shard_csv(out, k), newline="", encoding="utf-8") as fh:
            n_ok = sum(row["status"] == "ok" for row in csv.DictReader(fh))
    except (OSError, KeyError, csv.Error) as exc:
        return f"{_shard_csv(out, k)}: unreadable ({exc})"
    path = _shard_data(out, k, format)
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


def _job(root: Path, out: Path, k: int, ids: np.ndarray, image_size: int,
         format: str = DEFAULT_FORMAT) -> tuple:
    images_dir = root / IMAGES_DIR
    return (str(out), k, [(str(i), str(images_dir / f"{i}.dcm")) for i in ids], int(image_size),
            format)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _run_jobs(jobs: Iterator[tuple], *, workers: int, total: int, initial: int,
              progress: bool) -> None:
    """Run shard jobs in ``workers`` processes (inline for 1), at most ``2 × workers`` queued."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="img", desc="RSNA cache", disable=not progress,
               mininterval=1.0, smoothing=0.1)
    try:
        if workers == 1:
            for job in jobs:
                bar.update(build_shard(job)["n"])
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            pending: set[Future] = set()
            for job in jobs:
                pending.add(pool.submit(build_shard, job))
                if len(pending) >= 2 * workers:
                    pending = _drain(pending, bar, FIRST_COMPLETED)
            _drain(pending, bar, ALL_COMPLETED)
    finally:
        bar.close()


def _mp_context():
    """fork where it is safe (fast, no re-import of ``__main__``); spawn once TensorFlow is
    loaded, whose threads a fork would copy half-alive, and off Linux."""
    import multiprocessing as mp
    import sys

    safe = sys.platform.startswith("linux") and "tensorflow" not in sys.modules
    return mp.get_context("fork" if safe else "spawn")


def _drain(pending: set[Future], bar, return_when: str) -> set[Future]:
    done, rest = wait(pending, return_when=return_when)
    for f in done:
        bar.update(f.result()["n"])  # re-raises a worker's unexpected error
    return rest


def build_shard(job: tuple) -> dict:
    """Worker: read, window and resize one shard's files; write its images then its ``.csv``.

    ``job`` is ``(out, shard index, [(image_id, path), ...], image_size[, format])``. A file
    that cannot be read is recorded as skipped with its reason; any other error stops the build.
    """
    out, k, items, size = job[:4]
    format = job[4] if len(job) > 4 else DEFAULT_FORMAT
    out = Path(out)
    images = np.empty((len(items), size, size, 3), dtype=np.uint8)
    rows = []
    n_ok = 0
    for image_id, path in items:
        try:
            sl = dicom.read_slice(path)
            dicom.slice_rgb(sl, size=size, out=images[n_ok])
        except dicom.DicomReadError as exc:
            rows.append((image_id, -1, -1, "", "skipped", exc.problem, exc.detail))
            continue
        rows.append((image_id, k, n_ok, sl.patient_id, "ok", "", ""))
        n_ok += 1
    with atomic_path(_shard_data(out, k, format)) as tmp:
        if format == "compact":
            compact.write_shard(tmp, [compact.encode(im) for im in images[:n_ok]], size)
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, images[:n_ok])
    with atomic_path(_shard_csv(out, k)) as tmp, open(tmp, "w", newline="",
                                                        encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(rows)
    return {"shard": k, "n": len(items), "ok": n_ok}


def _write_manifest(out: Path, n_shards: int) -> None:
    """Concatenate the shard CSVs in order into ``manifest.csv`` (streamed, atomic)."""
    with atomic_path(out / "manifest.csv") as tmp, open(tmp, "w", newline="",
                                                         encoding="utf-8") as dst:
        dst.write(",".join(MANIFEST_FIELDS) + "\n")
        for k in range(n_shards):
            with open(_shard_csv(out, k), encoding="utf-8") as src:
                next(src)  # header
                shutil.copyfileobj(src, dst)


def _write_summary(out: Path, *, n_shards: int, wall: float, workers: int, built: int,
                   resumed: bool, format: str = DEFAULT_FORMAT) -> None:
    status = Counter()
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            status[row["status"]] += 1
    n_bytes = sum(p.stat().st_size for p in out.glob(f"shard-*{SHARD_SUFFIX[format]}"))
    summary = {"images": sum(status.values()), "cached": status["ok"],
               "skipped": status["skipped"], "shards": n_shards, "bytes": n_bytes,
               "format": format,
               "bytes_per_image": round(n_bytes / status["ok"]) if status["ok"] else None,
               "wall_s": round(wall, 3), "built_this_run": built,
               "images_per_s": round(built / wall, 2) if wall > 0 and built else None,
               "workers": workers, "resumed": resumed}
    write_json(out / "summary.json", summary, indent=2)


# ---------------------------------------------------------------------------- reading the cache

def is_complete(cache: str | os.PathLike) -> bool:
    return (Path(cache) / "summary.json").is_file()


def load_manifest(cache: str | os.PathLike):
    """``manifest.csv`` of a complete cache as a DataFrame (one row per selected image)."""
    import pandas as pd

    _require_complete(cache)
    return pd.read_csv(Path(cache) / "manifest.csv", dtype={"patient_id": str, "problem": str,
                                                            "detail": str},
                       keep_default_na=False)


def read_summary(cache: str | os.PathLike) -> dict:
    _require_complete(cache)
    return json.loads((Path(cache) / "summary.json").read_text(encoding="utf-8"))


def write_splits(cache: str | os.PathLike, labels_csv: str | os.PathLike, *,
                 seed: int | None) -> None:
    """Write ``split_image.csv`` and ``split_patient.csv`` for the cached images (atomic).

    Kept as they are when ``splits.json`` records the same seed, or any seed for ``None``
    (with no splits yet, ``None`` means ``DEFAULT_SEED``).
    """
    cache = Path(cache)
    meta_path = cache / "splits.json"
    if meta_path.is_file() and all((cache / f).is_file() for f in SPLIT_FILES.values()):
        old = json.loads(meta_path.read_text(encoding="utf-8")).get("seed")
        if seed is None or old == int(seed):
            return
    seed = DEFAULT_SEED if seed is None else int(seed)
    labels = select_single_type(read_labels(labels_csv))
    man = load_manifest(cache)
    df = (man[man["status"] == "ok"][["image_id", "patient_id", "shard", "row"]]
          .merge(labels, on="image_id", how="inner", validate="one_to_one")
          .sort_values("image_id", ignore_index=True))
    notes = {}
    for kind, filename in SPLIT_FILES.items():
        if kind == "image":
            split, notes[kind] = split_stratified(df["label"].to_numpy(), seed=seed)
        else:
            split, notes[kind] = split_by_patient(df["label"].to_numpy(),
                                                  df["patient_id"].to_numpy(), seed=seed)
        out = df.assign(split=split)[["image_id", "label", "label_name", "patient_id", "split",
                                      "shard", "row"]]
        with atomic_path(cache / filename) as tmp:
            out.to_csv(tmp, index=False)
    write_json(meta_path, {"seed": int(seed), "notes": notes}, indent=2)


def load_split(cache: str | os.PathLike, *, kind: str = "image"):
    """The split of the cached images: ``image_id``, ``label`` (0..5), ``label_name``,
    ``patient_id``, ``split`` (train/val/test), ``shard``, ``row``. ``kind``: image | patient."""
    import pandas as pd

    if kind not in SPLIT_FILES:
        raise ValueError(f"kind must be one of {', '.join(SPLIT_FILES)}, got {kind!r}")
    path = Path(cache) / SPLIT_FILES[kind]
    if not path.is_file():
        raise CacheError(f"{path}: no split file; run rsna.ensure_cache(...) first")
    return pd.read_csv(path, dtype={"patient_id": str}, keep_default_na=False)


def split_notes(cache: str | os.PathLike) -> dict:
    """The notes of :func:`write_splits` (classes too small to split, missing patients...)."""
    path = Path(cache) / "splits.json"
    return json.loads(path.read_text(encoding="utf-8")).get("notes", {}) if path.is_file() else {}


def load_images(cache: str | os.PathLike, rows) -> np.ndarray:
    """uint8 ``(n, S, S, 3)`` of the given rows of a split/manifest DataFrame (``shard``, ``row``)."""
    shards = _Shards(cache)
    return shards.gather(rows["shard"].to_numpy(), rows["row"].to_numpy())


class _Shards:
    """The shards of a cache, memory-mapped on first use: ``.npy`` arrays or compact shards.

    At most ``MAX_OPEN_SHARDS`` stay mapped (least recently used dropped first): each map holds
    a file descriptor, and the full set has ~2,800 shards, more than a default ``ulimit -n``.
    """

    def __init__(self, cache: str | os.PathLike):
        import threading
        from collections import OrderedDict

        self.cache = Path(cache)
        build = json.loads((self.cache / "build.json").read_text(encoding="utf-8"))
        self.format = build.get("format", "raw")
        self.size = int(build["image_size"])
        self._maps: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()  # tf.data calls gather from several threads

    def get(self, k: int):
        with self._lock:
            shard = self._maps.get(k)
            if shard is not None:
                self._maps.move_to_end(k)
                return shard
        if shard is None:
            path = _shard_data(self.cache, k, self.format)
            if self.format == "compact":
                try:
                    shard = compact.Shard(path)
                except (compact.CorruptImageError, FileNotFoundError) as exc:
                    _mark_for_rebuild(self.cache, k)
                    raise CacheError(f"{exc}; shard {k} is marked for rebuilding: run "
                                     "rsna.ensure_cache(...) / build_cache(...) again") from None
            else:
                shard = np.load(path, mmap_mode="r")
            with self._lock:
                self._maps[k] = shard
                while len(self._maps) > MAX_OPEN_SHARDS:
                    self._maps.popitem(last=False)  # unmapped once no batch uses it
        return shard

    def gather(self, shard: np.ndarray, row: np.ndarray) -> np.ndarray:
        """uint8 ``(n, S, S, 3)``: image ``row[i]`` of shard ``shard[i]``, in the order given."""
        shard = np.asarray(shard, dtype=np.int64)
        row = np.asarray(row, dtype=np.int64)
        out = np.empty((len(shard), self.size, self.size, 3), dtype=np.uint8)
        if self.format == "compact":  # one batched decode over every shard of the batch
            blobs, where = [], []
            for k, r in zip(shard.tolist(), row.tolist()):
                src = self.get(k)
                if not 0 <= r < len(src):
                    raise CacheError(f"{src.path}: row {r} out of range (shard of {len(src)})")
                blobs.append(src.blob(r))
                where.append(f"{src.path} image {r}")
            try:
                return compact.decode_batch(blobs, self.size, out=out, where=where)
            except compact.CorruptImageError as exc:
                bad = int(shard[where.index(str(exc).split(":")[0])]) if str(exc).split(":")[0] \
                    in where else None
                for k in ([bad] if bad is not None else np.unique(shard).tolist()):
                    _mark_for_rebuild(self.cache, int(k))
                raise CacheError(f"{exc}; shard {bad if bad is not None else 'of the batch'} "
                                 "is marked for rebuilding: run rsna.ensure_cache(...) / "
                                 "build_cache(...) again") from None
        for k in np.unique(shard):
            sel = np.flatnonzero(shard == k)
            out[sel] = self.get(int(k))[row[sel]]
        return out


def _mark_for_rebuild(cache: Path, k: int) -> None:
    """Make the next :func:`build_cache` redo shard ``k`` (its CSV and the completion files go)."""
    for path in (_shard_csv(cache, k), cache / "summary.json", cache / "manifest.csv"):
        path.unlink(missing_ok=True)


def make_dataset(cache: str | os.PathLike, split_df, *, split: str, batch_size: int,
                 image_size: int = IMAGE_SIZE, shuffle: bool = False, seed: int = 0):
    """A ``tf.data.Dataset`` of ``(float32 (B, S, S, 3) in [0, 1], float32 one-hot (B, 6))``.

    Rows of ``split_df`` (from :func:`load_split`, possibly subsampled) whose ``split`` equals
    ``split``; with ``shuffle`` reshuffled each epoch from ``seed``. Each batch is one gather
    from the memory-mapped shards (for compact shards one batched decode, batches decoded in
    parallel threads: zstd and numpy release the GIL); images are resized on the fly only when
    ``image_size`` differs from the cached size. The last batch may be smaller.
    """
    import tensorflow as tf

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rows = split_df[split_df["split"] == split]
    if len(rows) == 0:
        raise ValueError(f"no rows with split == {split!r}")
    stored = int(json.loads((Path(cache) / "build.json").read_text(encoding="utf-8"))
                 ["image_size"])
    shards = _Shards(cache)
    index = np.stack([rows["shard"].to_numpy(np.int64), rows["row"].to_numpy(np.int64),
                      rows["label"].to_numpy(np.int64)], axis=1)  # (N, 3)

    def fetch(batch: np.ndarray) -> np.ndarray:
        return shards.gather(batch[:, 0], batch[:, 1])

    def load(batch):
        images = tf.numpy_function(fetch, [batch], tf.uint8, stateful=False)
        images = tf.ensure_shape(images, [None, stored, stored, 3])
        x = tf.cast(images, tf.float32) / 255.0
        if image_size != stored:
            x = tf.clip_by_value(tf.image.resize(x, [image_size, image_size], antialias=True),
                                 0.0, 1.0)
        y = tf.one_hot(batch[:, 2], N_CLASSES, dtype=tf.float32)
        return x, y

    def batched(items):
        return items.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)

    ds = tf.data.Dataset.from_tensor_slices(index)
    if shuffle:  # epoch e in the order drawn from (seed, e): a resumed fit sees the same order
        from medrepro.data import pipeline

        return pipeline.epoch_shuffled(ds, n_items=len(index), seed=seed, then=batched)
    return batched(ds).prefetch(tf.data.AUTOTUNE)


def _require_complete(cache: str | os.PathLike) -> None:
    if not is_complete(cache):
        raise CacheError(f"{cache}: not a complete RSNA cache (no summary.json); run "
                         "rsna.ensure_cache(...)")


# ---------------------------------------------------------------------------- summaries

def skips_table(cache: str | os.PathLike):
    """Skipped files per problem, with up to three example ids and one detail (``B.skips``).

    Always has a ``total`` row, so a clean build shows ``0`` rather than nothing.
    """
    import pandas as pd

    man = load_manifest(cache)
    bad = man[man["status"] == "skipped"]
    rows = [{"problem": problem, "files": len(g), "examples": ", ".join(g["image_id"][:3]),
             "detail": g["detail"].iloc[0]}
            for problem, g in bad.groupby("problem", sort=True)]
    rows.append({"problem": "total", "files": len(bad), "examples": "",
                 "detail": f"of {len(man)} selected images"})
    return pd.DataFrame(rows)


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
