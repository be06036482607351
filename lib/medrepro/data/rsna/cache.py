"""Building the RSNA image cache: every kept image as the three-window RGB at 224×224, in shards
written by worker processes (the layout: :mod:`medrepro.data.rsna.layout`).

Each shard is written by a worker process, its images first, then its ``.csv`` (both atomic),
so a shard whose CSV exists is complete: a build killed at any moment resumes by doing the
shards without a CSV, and ends byte-identical to an uninterrupted one. A shard whose images
file is missing, truncated, damaged (compact: SHA-1 trailer) or holds another number of images
than its CSV lists is rebuilt, never read: checked in full when a build resumes, by header and
size when a complete cache is opened. Unreadable files are skipped with their reason
(``status == "skipped"``), a labelled ID whose DICOM is absent as ``"no image"``, and a DICOM of
the folder whose ID has no label row as ``"no label"`` (listed after the shards' rows). Memory
stays flat in the number of files: a bounded number of shards is in flight, and no image list
is held.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from medrepro.core import device
from medrepro.core.planning import PlanContext, RowPlan, Write
from medrepro.core.fileio import atomic_path, write_json
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.data import compact, dicom
from medrepro.data import registry
from medrepro.data.registry import RSNA_LABELS_CSV
from medrepro.data.rsna.labels import (DATASET_ID, IMAGES_DIR, NO_IMAGE, NO_LABEL, check_usable,
                                       read_labels, select_single_type, split_by_patient,
                                       split_stratified)
from medrepro.data.rsna.layout import (CACHE_FORMATS, CACHE_VERSION, DEFAULT_FORMAT, IMAGE_SIZE,
                                       MANIFEST_FIELDS, RAW_IMAGE_BYTES, SHARD_SUFFIX,
                                       SPLIT_FILES, cache_dir, check_shard_files, is_complete,
                                       shard_csv, shard_data)
from medrepro.data.rsna.reader import load_manifest

SELECTED_FRACTION = registry.RSNA_SELECTED_IMAGES / registry.RSNA_ALL_IMAGES  # 0.957
COMPACT_BYTES_DEFAULT = 30_100  # bytes per compact image where nothing is measured (bench_cache)
MAX_SHARD_SIZE = 256  # 256 × 224 × 224 × 3 B = 38.5 MB per shard
MIN_SHARD_SIZE = 8
TARGET_SHARDS = 16  # small sets still get enough shards to spread over workers
LOGGED_NAMES = 3  # skipped files named per problem in the build's log line (all are counted)

log = logging.getLogger(__name__)


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
    labels = read_labels(labels_csv)
    images = _select(labels, max_images=max_images)
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
    todo = [k for k in range(n_shards) if not shard_csv(out, k).is_file()]
    done_before = n - sum(len(images[k * shard_size:(k + 1) * shard_size]) for k in todo)
    workers = max(1, int(workers or device.cpu_count()))
    jobs = (_job(root, out, k, images[k * shard_size:(k + 1) * shard_size], image_size, format)
            for k in todo)
    t0 = time.perf_counter()
    _run_jobs(jobs, workers=min(workers, max(len(todo), 1)), total=n, initial=done_before,
              progress=progress)
    wall = time.perf_counter() - t0
    _write_manifest(out, n_shards, unlabelled_images(root, labels["image_id"]))
    _write_summary(out, n_shards=n_shards, wall=wall, workers=workers,
                   built=n - done_before, resumed=done_before > 0, format=format)
    _log_skips(out)
    return out


def selected_images(root: str | os.PathLike, *, max_images: int | None = None) -> np.ndarray:
    """Image ids of the six-class selection of ``root/stage_2_train.csv``, sorted (``<U``)."""
    return _select(read_labels(Path(root) / RSNA_LABELS_CSV), max_images=max_images)


def _select(labels, *, max_images: int | None) -> np.ndarray:
    ids = select_single_type(labels)["image_id"].to_numpy(str)
    if max_images is not None and max_images < len(ids):
        keep = np.random.default_rng(0).permutation(len(ids))[:max_images]
        ids = ids[np.sort(keep)]
    return ids


def unlabelled_images(root: str | os.PathLike, label_ids) -> list[str]:
    """IDs of the DICOMs in ``root/stage_2_train`` (``<ID>.dcm``, hidden names left out) that have
    no row in the label file (``label_ids``: every labelled ID, selected or not), sorted."""
    folder = Path(root) / IMAGES_DIR
    if not folder.is_dir():
        return []
    known = set(label_ids)
    with os.scandir(folder) as entries:  # 752,803 names in the real folder: no stat per file
        stems = (e.name[:-4] for e in entries
                 if e.name.endswith(".dcm") and not e.name.startswith("."))
        return sorted(s for s in stems if s not in known)


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
            shard_data(out, k, format).unlink(missing_ok=True)
            csv_path.unlink(missing_ok=True)
            bad.append(k)
    if bad:
        for name in ("summary.json", "manifest.csv"):
            (out / name).unlink(missing_ok=True)
    return bad


def _job(root: Path, out: Path, k: int, ids: np.ndarray, image_size: int,
         format: str = DEFAULT_FORMAT) -> tuple:
    images_dir = root / IMAGES_DIR
    return (str(out), k, [(str(i), str(images_dir / f"{i}.dcm")) for i in ids], int(image_size),
            format)


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
            if exc.problem == "missing file" and not os.path.lexists(path):
                rows.append((image_id, -1, -1, "", "skipped", NO_IMAGE,
                             f"labelled in {RSNA_LABELS_CSV}, no {IMAGES_DIR}/{image_id}.dcm"))
            else:
                rows.append((image_id, -1, -1, "", "skipped", exc.problem, exc.detail))
            continue
        rows.append((image_id, k, n_ok, sl.patient_id, "ok", "", ""))
        n_ok += 1
    with atomic_path(shard_data(out, k, format)) as tmp:
        if format == "compact":
            compact.write_shard(tmp, [compact.encode(im) for im in images[:n_ok]], size)
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, images[:n_ok])
    with atomic_path(shard_csv(out, k)) as tmp, open(tmp, "w", newline="",
                                                        encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(rows)
    return {"shard": k, "n": len(items), "ok": n_ok}


def _write_manifest(out: Path, n_shards: int, unlabelled: list[str]) -> None:
    """Concatenate the shard CSVs in order into ``manifest.csv``, then one skipped row per
    ``unlabelled`` DICOM (streamed, atomic)."""
    with atomic_path(out / "manifest.csv") as tmp, open(tmp, "w", newline="",
                                                         encoding="utf-8") as dst:
        dst.write(",".join(MANIFEST_FIELDS) + "\n")
        for k in range(n_shards):
            with open(shard_csv(out, k), encoding="utf-8") as src:
                next(src)  # header
                shutil.copyfileobj(src, dst)
        csv.writer(dst).writerows(
            (i, -1, -1, "", "skipped", NO_LABEL,
             f"{IMAGES_DIR}/{i}.dcm has no row in {RSNA_LABELS_CSV}") for i in unlabelled)


def _log_skips(out: Path) -> None:
    """One warning per skip problem of the cache ``out``: the count and the first IDs."""
    man = load_manifest(out)
    bad = man[man["status"] == "skipped"]
    for problem, g in bad.groupby("problem", sort=True):
        more = f" and {len(g) - LOGGED_NAMES} more" if len(g) > LOGGED_NAMES else ""
        log.warning("RSNA cache %s: %d file(s) skipped, %s: %s%s", out.name, len(g), problem,
                    ", ".join(g["image_id"][:LOGGED_NAMES]), more)


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
    selected = labels.merge(man[["image_id", "status"]], on="image_id", how="inner")
    check_usable(selected["label"], selected.loc[selected["status"] == "ok", "label"],
                 examples=selected.loc[selected["status"] != "ok", "image_id"].tolist())
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


# ---------------------------------------------------------------------------- the plan
def plan(settings, ctx: PlanContext) -> RowPlan:
    """Notebook 02's part of a run's plan (``settings``: a
    :class:`~medrepro.core.profiles.RsnaCacheSettings`): the cache's bytes and folder, and its
    build time from the measured rates (``ctx.rates["cache"]``); nothing when it is complete."""
    from types import SimpleNamespace

    found = ctx.found[DATASET_ID]
    rates, fmt = ctx.rates.get("cache", {}), ctx.cache_format
    n = round(found.files * SELECTED_FRACTION)
    if settings.max_images is not None:
        n = min(n, int(settings.max_images))
    per_image = (rates.get(f"{fmt}_bytes_per_image")
                 or (COMPACT_BYTES_DEFAULT if fmt == "compact" else RAW_IMAGE_BYTES))
    source = registry.PHANTOM if found.source == registry.PHANTOM else DATASET_ID
    root = found.root if found.root is not None else _download_root()
    path = cache_dir(SimpleNamespace(root=root, source=source), profile=ctx.profile,
                     image_size=int(settings.image_size), max_images=settings.max_images,
                     format=fmt)
    done = is_complete(path)
    out = RowPlan([Write(f"RSNA cache, {fmt}, {n:,} images x {per_image / 1024:.1f} KiB", path,
                         round(n * per_image), done=done)])
    if done:
        out.done.append(f"RSNA cache complete in {path} (build skipped)")
        out.seconds, out.note = 5.0, "cache complete: tables only"
        return out
    rate = rates.get(f"{fmt}_build_img_s_per_worker")
    if not rate:
        out.note = "no measured cache build rate (benchmarks/bench_cache.py)"
        return out
    workers = int(settings.workers or ctx.device["cpus"])
    eff = min(1.0, float(rates.get("build_efficiency", 1.0)))
    scale = ctx.device["cpus"] / rates["cpus"] if rates.get("cpus") else 1.0
    out.seconds = n / (rate * workers * eff)
    out.note = (f"build {n:,} images at {rate:.0f} img/s/worker x {workers} workers x "
                f"{eff:.2f} efficiency" + ("" if scale == 1 else
                                           f" (rates from {rates['cpus']} cores)"))
    return out


def _download_root() -> Path:
    """Where a download of the RSNA set would land (the plan's cache key before it exists)."""
    from medrepro.core import paths

    return paths.raw_dir(DATASET_ID)
