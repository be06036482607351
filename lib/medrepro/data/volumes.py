"""CT volumes of study D (MosMedData): reading NIfTI, HU normalisation, the study's resize, the
"lung-only" slice replacement, the on-disk cache of preprocessed volumes, the two split protocols
(the thesis' 160/40 train/validation set-up and the prose's 70/20/10 with a held-out test set) and
the tf.data pipeline with volume-wise augmentation.

Axis convention: every array here is ``(H, W, D)`` = ``(rows, columns, slices)``, exactly as
``nib.load(path).get_fdata()`` returns it (the Keras 3-D example the study follows). We do NOT
reorient to canonical RAS: the study's ``resize_volume`` (rotate 90° in-plane, then zoom) was
designed on the stored voxel order, and reorienting would change which way its rotation turns the
image. MosMed files are all stored the same way, so no per-file reorientation is needed.

The resize (:func:`resize_volume`) reproduces ``scipy.ndimage.rotate(vol, 90, reshape=False)``
followed by ``scipy.ndimage.zoom(vol, target / current, order=1)`` to within 1e-4, an order of
magnitude faster (see ``benchmarks/bench_volumes.py``):

- A 90° rotation with ``reshape=False`` maps integer voxels onto integer voxels whenever
  ``H - W`` is even (always for square slices such as MosMed's 512×512): the spline is then
  evaluated on its knots, where an interpolating spline returns the input values, so the rotation
  is an exact index permutation (``np.rot90`` for square slices, a rotation about the centre with
  zero padding where the rectangle does not fit otherwise). For odd ``H - W`` the rotation needs
  real cubic-spline interpolation; we call scipy there (slow but exact).
- Zoom with ``order=1`` and ``grid_mode=False`` maps output index ``i`` to input coordinate
  ``i * (n_in - 1) / (n_out - 1)`` and interpolates linearly, separably per axis: three small
  interpolation matrices applied as matrix products (float32).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medrepro.core import locks, paths, progress
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.core.fileio import CorruptFileError, atomic_path, read_json, write_json
from medrepro.data.augment import Augment

log = logging.getLogger(__name__)

HU_MIN = -1000.0  # air; below it nothing of interest (study: clip to [-1000, 400])
HU_MAX = 400.0  # above it bone
TARGET_SHAPE = (128, 128, 64)  # (H, W, D) of the study
PAPER_DEPTH = 64  # the slice count the lung-only rule was written for
LUNG_HEAD = 12  # slices 0-11 replaced by slices 12-23 (no lung tissue at the top)
LUNG_TAIL = 8  # the last 8 slices replaced by the 8 before them
CLASS_DIRS = {"CT-0": 0, "CT-23": 1}  # normal, abnormal (CT-2 + CT-3)
CLASS_NAMES = ("normal", "abnormal")
SPLIT_FRACTIONS = {"train": 0.7, "test": 0.2, "val": 0.1}  # per class, in this order
# The two split protocols of study D (per class, in sorted file order):
# - "thesis" (the `paper` variant): 80% train / 20% validation, i.e. 160/40 of 200 volumes, the
#   set-up the thesis' chapter-4 code prints and its numbers fit (Table 4.1: 0.7125 = 114/160,
#   0.7188 = 115/160; the appendix matrices: 20 volumes per class). The thesis evaluates on that
#   validation set (what its code calls the test set): there is no held-out test set.
# - "heldout": the prose's 70/20/10 train/test/validation, with a test set never used in training.
THESIS_FRACTIONS = {"train": 0.8, "val": 0.2}
SPLIT_PROTOCOLS = {"thesis": THESIS_FRACTIONS, "heldout": SPLIT_FRACTIONS}
GZIP_MAGIC = b"\x1f\x8b"
# Largest volume read_volume accepts: 512×512×1024 voxels (1 GiB as float32). MosMed volumes
# are 512×512×~40-70; a header declaring more is a corrupt (or hostile) file, refused before
# anything is allocated. Override with MEDREPRO_MAX_VOXELS.
MAX_VOXELS = int(os.environ.get("MEDREPRO_MAX_VOXELS", str(512 * 512 * 1024)))
# DEFLATE cannot compress better than about 1032:1, so a .nii.gz of S bytes holds at most
# ~1032 S bytes of voxels: a header declaring more lies about the data.
MAX_DEFLATE_RATIO = 1032


class VolumeError(ValueError):
    """A volume file that cannot be used; the message names the file and what was wrong."""


# ---------------------------------------------------------------------------------------------
# Reading and intensity


def read_volume(path: str | os.PathLike) -> np.ndarray:
    """Read a NIfTI CT volume as float32 HU, shape ``(H, W, D)``, in stored voxel order.

    Trailing singleton axes beyond the third (``(H, W, D, 1)``) are dropped. Raises
    :class:`VolumeError` naming the file for: a missing or empty file, a ``.gz`` name that is not
    gzip, a header that declares more voxels than :data:`MAX_VOXELS` or than the file can hold
    (checked from the header alone, before any voxel is allocated), a truncated or corrupt file,
    an array that is not 3-D, non-finite voxels.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise VolumeError(f"{path}: not a regular file (a directory?)" if path.exists()
                          else f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VolumeError(f"{path}: empty file")
    if path.name.endswith(".gz"):
        with open(path, "rb") as fh:
            if fh.read(2) != GZIP_MAGIC:
                raise VolumeError(f"{path}: named .gz but not gzip-compressed")
    try:
        img = nib.load(str(path))
        check_scan(path, img)
        check_header(path, img.header, offset=int(getattr(img.dataobj, "offset", 0)))
        arr = np.asarray(img.get_fdata(dtype=np.float32))
    except VolumeError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip, zlib: many kinds when damaged
        raise VolumeError(f"{path}: unreadable or truncated NIfTI ({type(exc).__name__}: "
                          f"{exc})") from exc
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise VolumeError(f"{path}: expected a 3-D volume (H, W, D), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise VolumeError(f"{path}: {bad} non-finite voxel(s) (NaN or inf)")
    return arr


# NIfTI intent codes 3000-3099 are CIFTI-2 (surface and grayordinate data, not a volume).
CIFTI_INTENTS = range(3000, 3100)


def check_scan(path: str | os.PathLike, img) -> None:
    """Refuse, from the header alone, a NIfTI that nibabel opens but that is not one 3-D scan:
    another image class (CIFTI-2, ...), a CIFTI intent, a complex, RGB or other non-real data
    type, fewer than 3 axes, or more than 3 that are not singletons (a 4-D series). Raises
    :class:`VolumeError` naming the file and what it is."""
    import nibabel as nib

    path = Path(path)
    if type(img) not in (nib.Nifti1Image, nib.Nifti2Image):
        raise VolumeError(f"{path}: a {type(img).__name__}, not a NIfTI-1/2 scan volume")
    intent = int(img.header.get("intent_code", 0))
    if intent in CIFTI_INTENTS:
        raise VolumeError(f"{path}: a CIFTI-2 file (intent code {intent}), not a scan volume")
    dtype = np.dtype(img.header.get_data_dtype())
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise VolumeError(f"{path}: voxel data type {dtype} (complex, RGB or other non-real "
                          "values); expected integer or floating-point HU")
    shape = tuple(int(n) for n in img.header.get_data_shape())
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        kind = f"a {len(shape)}-D series" if len(shape) > 3 else f"a {len(shape)}-D image"
        raise VolumeError(f"{path}: {kind} of shape {shape}; expected a 3-D volume (H, W, D)")


def check_header(path: str | os.PathLike, header, *, offset: int = 0) -> None:
    """Refuse a NIfTI header whose declared volume is over :data:`MAX_VOXELS` voxels or larger
    than the file ``path`` can hold (uncompressed: offset + voxels × bytes per voxel > file
    size; ``.gz``: more than :data:`MAX_DEFLATE_RATIO` × the compressed size). Raises
    :class:`VolumeError` naming the file, the declared shape and the limit. ``offset``: where
    the voxels start (nibabel's loaded header no longer holds it: pass ``img.dataobj.offset``)."""
    path = Path(path)
    shape = tuple(int(n) for n in header.get_data_shape())
    n_voxels = int(np.prod(shape, dtype=np.float64)) if shape else 0
    if n_voxels > MAX_VOXELS:
        raise VolumeError(f"{path}: header declares shape {shape} = {n_voxels:,} voxels, over the "
                          f"cap of {MAX_VOXELS:,} (MEDREPRO_MAX_VOXELS); refusing to allocate it")
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    needed = offset + n_voxels * itemsize
    size = path.stat().st_size
    if path.name.endswith(".gz"):
        if needed > MAX_DEFLATE_RATIO * size:
            raise VolumeError(f"{path}: header declares shape {shape} ({needed:,} bytes), more "
                              f"than a {size:,}-byte gzip file can hold")
    elif path.suffix == ".nii" and needed > size:
        raise VolumeError(f"{path}: header declares shape {shape} ({needed:,} bytes with the "
                          f"header), the file has only {size:,} bytes (truncated or lying header)")


def normalize_hu(vol: np.ndarray, *, lo: float = HU_MIN, hi: float = HU_MAX) -> np.ndarray:
    """Clip HU to ``[lo, hi]`` and scale linearly to ``[0, 1]``; float32, same shape."""
    if hi <= lo:
        raise ValueError(f"normalize_hu: need hi > lo, got lo={lo}, hi={hi}")
    vol = np.clip(np.asarray(vol, dtype=np.float32), lo, hi)
    return ((vol - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32, copy=False)


def lung_slices(depth: int) -> tuple[int, int]:
    """``(head, tail)`` slice counts of the lung-only rule, scaled from 12/8 of 64 slices."""
    head = round(LUNG_HEAD * depth / PAPER_DEPTH)
    tail = round(LUNG_TAIL * depth / PAPER_DEPTH)
    if 2 * head + 2 * tail > depth:
        raise ValueError(f"lung_only: depth {depth} too small for head {head} and tail {tail}")
    return head, tail


def lung_only(vol: np.ndarray) -> np.ndarray:
    """The study's "lung-only" volume: drop slices without lung tissue by duplicating neighbours.

    Works on the last axis (slices) of ``(H, W, D)`` or a batch ``(N, H, W, D)``. Defined on the
    resized volume (64 slices in the study): slices 0-11 are replaced by slices 12-23 and the last
    8 by the 8 before them. For other depths ``D`` the counts scale to ``round(12 D / 64)`` and
    ``round(8 D / 64)`` (e.g. 9 and 6 for 48 slices). Returns a copy, same shape and dtype.
    """
    vol = np.asarray(vol)
    if vol.ndim < 3:
        raise ValueError(f"lung_only: expected (H, W, D) or (N, H, W, D), got shape {vol.shape}")
    depth = vol.shape[-1]
    head, tail = lung_slices(depth)
    out = vol.copy()
    out[..., :head] = vol[..., head:2 * head]
    if tail:
        out[..., depth - tail:] = vol[..., depth - 2 * tail:depth - tail]
    return out


# ---------------------------------------------------------------------------------------------
# The study's resize: rotate 90° (reshape=False), then linear zoom


def resize_volume_reference(vol: np.ndarray, shape: Sequence[int] = TARGET_SHAPE) -> np.ndarray:
    """The study's ``resize_volume`` verbatim with scipy (slow; the reference for tests)."""
    from scipy import ndimage

    vol = np.asarray(vol)
    factors = [t / c for t, c in zip(shape, vol.shape)]
    vol = ndimage.rotate(vol, 90, reshape=False)
    return ndimage.zoom(vol, factors, order=1)


def rotate90(vol: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.rotate(vol, 90, reshape=False)`` (axes 0, 1), same shape and dtype.

    Exact index mapping ``out[i, j] = vol[j + c0 - c1, c0 + c1 - i]`` with centres
    ``c0 = (H - 1) / 2``, ``c1 = (W - 1) / 2`` and zeros outside; equals ``np.rot90(vol)`` for
    square slices. Falls back to scipy when ``H - W`` is odd (half-voxel centres: real spline
    interpolation).
    """
    vol = np.asarray(vol)
    h, w = vol.shape[:2]
    if h == w:
        return np.ascontiguousarray(np.rot90(vol, 1, axes=(0, 1)))
    if (h - w) % 2:
        from scipy import ndimage

        log.info("rotate90: H - W = %d is odd; using scipy.ndimage.rotate", h - w)
        return ndimage.rotate(vol, 90, reshape=False)
    shift = (h - w) // 2  # c0 - c1, an integer here
    total = (h + w - 2) // 2  # c0 + c1
    i = np.arange(h)
    j = np.arange(w)
    rows = j + shift  # input row read by output column j
    cols = total - i  # input column read by output row i
    out = np.zeros_like(vol)
    oi = (cols >= 0) & (cols < w)
    oj = (rows >= 0) & (rows < h)
    # out[i, j] = vol[rows[j], cols[i]] = vol.transpose(1, 0, ...)[cols[i], rows[j]]
    src = np.swapaxes(vol, 0, 1)
    out[np.ix_(oi, oj)] = src[np.ix_(cols[oi], rows[oj])]
    return out


def linear_zoom_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float32 matrix of ``scipy.ndimage.zoom(order=1, grid_mode=False)``.

    Output index ``i`` samples input coordinate ``x = i * (n_in - 1) / (n_out - 1)`` (0 when
    ``n_out == 1``) by linear interpolation between ``floor(x)`` and ``floor(x) + 1``.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"linear_zoom_matrix: sizes must be >= 1, got {n_in} -> {n_out}")
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    if n_in == 1:
        mat[:, 0] = 1.0
        return mat.astype(np.float32)
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    x = np.arange(n_out) * scale
    lo = np.minimum(np.floor(x).astype(int), n_in - 2)
    frac = x - lo
    rows = np.arange(n_out)
    mat[rows, lo] = 1.0 - frac
    mat[rows, lo + 1] += frac
    return mat.astype(np.float32)


def zoom_shape(in_shape: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Output shape of ``scipy.ndimage.zoom`` with factors ``shape / in_shape`` (rounded)."""
    return tuple(round(c * (t / c)) for c, t in zip(in_shape, shape))


def resize_volume(vol: np.ndarray, shape: Sequence[int] = TARGET_SHAPE) -> np.ndarray:
    """The study's resize: rotate 90° in-plane (``reshape=False``), then linear zoom to ``shape``.

    ``vol``: ``(H, W, D)`` (normalised to [0, 1] in the study; any real values work).
    Returns float32 ``shape``. Matches :func:`resize_volume_reference` to within 1e-4 (float32
    rounding only).
    """
    vol = np.asarray(vol, dtype=np.float32)
    if vol.ndim != 3 or len(shape) != 3:
        raise ValueError(f"resize_volume: expected (H, W, D) and a 3-tuple shape, got "
                         f"{vol.shape} -> {tuple(shape)}")
    out_shape = zoom_shape(vol.shape, shape)
    h, w = vol.shape[:2]
    mh, mw, md = (linear_zoom_matrix(n, m) for n, m in zip(vol.shape, out_shape))
    if h == w:
        # Square slices: rotated[i, j] = vol[j, h-1-i]. Fold the permutation into the matrices
        # (rotated axis 0 = vol axis 1 reversed, rotated axis 1 = vol axis 0) instead of copying.
        t = np.tensordot(mw, vol, axes=([1], [0]))  # (w', W, D): out axis 1 from vol axis 0
        t = np.tensordot(mh[:, ::-1], t, axes=([1], [1]))  # (h', w', D)
    else:
        rotated = rotate90(vol)
        t = np.tensordot(mh, rotated, axes=([1], [0]))  # (h', W, D)
        t = np.tensordot(mw, t, axes=([1], [1])).swapaxes(0, 1)  # (h', w', D)
    t = np.tensordot(t, md, axes=([2], [1]))  # (h', w', d')
    return np.ascontiguousarray(t, dtype=np.float32)


def process_scan(path: str | os.PathLike, *, shape: Sequence[int] = TARGET_SHAPE) -> np.ndarray:
    """The study's ``process_scan``: read → :func:`normalize_hu` → :func:`resize_volume`."""
    return resize_volume(normalize_hu(read_volume(path)), shape)


# ---------------------------------------------------------------------------------------------
# The MosMed file list and the study's split


def list_scans(root: str | os.PathLike, *, max_per_class: int | None = None):
    """The MosMed volumes under ``root/CT-0`` (label 0, normal) and ``root/CT-23`` (label 1).

    ``max_per_class`` keeps the first that many of each class (reduced profiles on real data).

    Returns a ``pandas.DataFrame`` with columns ``path``, ``name``, ``label``, ``class_name``,
    sorted by class then file name (the study used ``os.listdir`` order, which is arbitrary; a
    sorted order makes the split reproducible).
    """
    import pandas as pd

    root = Path(root)
    rows = []
    for folder, label in CLASS_DIRS.items():
        for path in sorted((root / folder).glob("*.nii*"))[:max_per_class]:
            rows.append({"path": path, "name": path.name.split(".")[0], "label": label,
                         "class_name": CLASS_NAMES[label]})
    if not rows:
        raise VolumeError(f"{root}: no NIfTI volumes in {' or '.join(CLASS_DIRS)}")
    return pd.DataFrame(rows)


def split_counts(n: int, protocol: str = "heldout") -> dict[str, int]:
    """Per-class split counts for ``n`` volumes under ``protocol`` (:data:`SPLIT_PROTOCOLS`).

    ``"heldout"``: ``{"train", "test", "val"}`` 70/20/10 (the study's 100 per class gives
    70/20/10); rounded, validation takes the remainder, each split >= 1 when ``n >= 3``.
    ``"thesis"``: ``{"train", "val"}`` 80/20 (100 per class: 80/20), each >= 1 when ``n >= 2``.
    """
    fractions = _protocol(protocol)
    if protocol == "thesis":
        if n < 2:
            raise ValueError(f"split_counts: need >= 2 volumes per class, got {n}")
        n_train = min(max(1, round(fractions["train"] * n)), n - 1)
        return {"train": n_train, "val": n - n_train}
    if n < 3:
        raise ValueError(f"split_counts: need >= 3 volumes per class, got {n}")
    n_train = max(1, round(fractions["train"] * n))
    n_test = max(1, round(fractions["test"] * n))
    n_train = min(n_train, n - n_test - 1)
    return {"train": n_train, "test": n_test, "val": n - n_train - n_test}


def _protocol(protocol: str) -> dict[str, float]:
    try:
        return SPLIT_PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown split protocol {protocol!r}; expected one of "
                         f"{', '.join(SPLIT_PROTOCOLS)}") from None


def assign_split(scans, protocol: str = "heldout"):
    """Add a ``split`` column per class, in the order of ``scans`` (:func:`split_counts`).

    ``"heldout"``: the first 70% train, the next 20% test, the last 10% validation, as the
    study's prose and appendix code do with 100 volumes per class. ``"thesis"``: the first 80%
    train, the last 20% validation (the 160/40 set-up its results fit).
    """
    scans = scans.copy()
    scans["split"] = ""
    for idx in scans.groupby("label", sort=True).groups.values():
        counts = split_counts(len(idx), protocol)
        labels = [name for name in _protocol(protocol) for _ in range(counts[name])]
        scans.loc[idx, "split"] = labels
    return scans


# ---------------------------------------------------------------------------------------------
# Cache of preprocessed volumes


def cache_dir(source: str, profile: str, shape: Sequence[int] | None = None) -> Path:
    """``data/processed/mosmed/<source>-<profile>[-HxWxD]/``: one ``<name>.npy`` per preprocessed
    volume. With ``shape`` the folder names it, so a profile whose volume shape changed gets a
    new folder instead of :func:`build_cache`'s shape error."""
    name = f"{source}-{profile}"
    if shape is not None:
        name += "-" + "x".join(str(int(s)) for s in shape)
    return paths.processed_dir("mosmed") / name


@dataclass
class CacheSummary:
    """What :func:`build_cache` did: counts, the volumes skipped with their reasons, wall time."""

    folder: Path
    shape: tuple[int, int, int]
    built: int = 0
    reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    seconds: float = 0.0

    def skipped_frame(self):
        """The skipped volumes as rows ``path``, ``problem`` ("unusable volume"), ``detail``."""
        import pandas as pd

        return pd.DataFrame([(f, "unusable volume", why) for f, why in self.skipped],
                            columns=["path", "problem", "detail"])

    def as_frame(self):
        import pandas as pd

        return pd.DataFrame([{"folder": str(self.folder), "shape": "×".join(map(str, self.shape)),
                              "built": self.built, "reused": self.reused,
                              "skipped": len(self.skipped), "seconds": round(self.seconds, 2)}])


def build_cache(files: Iterable[str | os.PathLike], *, folder: str | os.PathLike,
                shape: Sequence[int] = TARGET_SHAPE) -> CacheSummary:
    """Preprocess each volume (:func:`process_scan`) into ``folder/<name>.npy`` (float32 ``shape``).

    Resumable: a ``.npy`` already there with the right shape and not older than its source file
    is reused (a regenerated phantom, or a replaced volume, is preprocessed again); writes are
    atomic, so an interrupted build leaves only complete files. A file that fails (:class:`VolumeError`) is
    skipped, logged with its reason and listed in the summary. ``folder/cache.json`` records the
    shape; a different shape in the same folder is an error (use another folder).
    """
    folder = Path(folder)
    shape = tuple(int(s) for s in shape)
    with locks.hold(folder, what="the volume cache"):  # a second process waits, then reuses
        return _build_cache(list(files), folder=folder, shape=shape)


def _build_cache(files: list, *, folder: Path, shape: tuple[int, int, int]) -> CacheSummary:
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "cache.json"
    try:
        meta = read_json(meta_path)
    except FileNotFoundError:
        meta = None
    except CorruptFileError as exc:  # every volume's shape is checked below: safe to rewrite
        log.warning("%s; rewritten", exc)
        meta = None
    if meta is not None and tuple(meta.get("shape", ())) != shape:
        raise VolumeError(f"{folder}: cache holds shape {tuple(meta.get('shape', ()))}, "
                          f"asked for {shape}; use another folder")
    if meta is None:
        write_json(meta_path, {"shape": list(shape)}, indent=None)
    summary = CacheSummary(folder=folder, shape=shape)
    start = time.perf_counter()
    for path in progress.bar(files, desc="volume cache", unit="volume"):
        path = Path(path)
        out = cached_path(folder, path)
        if out.is_file():
            try:
                fresh = out.stat().st_mtime_ns >= path.stat().st_mtime_ns
                if fresh and np.load(out, mmap_mode="r").shape == shape:
                    summary.reused += 1
                    continue
            except (ValueError, OSError):
                pass  # unreadable leftover (or source): rebuild it
        try:
            vol = process_scan(path, shape=shape)
        except VolumeError as exc:
            log.warning("skipping %s: %s", path, exc)
            summary.skipped.append((str(path), str(exc)))
            continue
        with atomic_path(out, suffix=".npy", needed=vol.nbytes) as tmp:
            np.save(tmp, vol)
        summary.built += 1
    summary.seconds = time.perf_counter() - start
    return summary


def cached_path(folder: str | os.PathLike, scan: str | os.PathLike) -> Path:
    """``folder/<name>.npy`` for the scan file ``scan`` (``study_0001.nii.gz`` → ``study_0001``)."""
    return Path(folder) / f"{Path(scan).name.split('.')[0]}.npy"


def load_cached(scans, *, folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Stack the cached volumes of the rows of ``scans`` that exist in ``folder``.

    Returns ``(x, y)``: float32 ``(N, H, W, D)`` in [0, 1] and int ``(N,)`` labels. Rows whose
    cache file is missing (skipped by :func:`build_cache`) are left out.
    """
    vols, labels = [], []
    for row in scans.itertuples():
        path = cached_path(folder, row.path)
        if path.is_file():
            try:
                vols.append(np.load(path))
            except (OSError, ValueError, EOFError) as exc:  # damaged after build_cache checked it
                raise VolumeError(f"{path}: unreadable cached volume ({type(exc).__name__}: "
                                  f"{exc}); delete it and run again to rebuild it") from None
            labels.append(int(row.label))
    if not vols:
        raise VolumeError(f"{folder}: none of the {len(scans)} requested volumes is cached")
    return np.stack(vols).astype(np.float32, copy=False), np.asarray(labels, dtype=np.int64)


def load_splits(scans, *, folder: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split name → ``(x, y)`` from the cache (see :func:`load_cached`), for the splits in the
    ``split`` column of :func:`assign_split` (``train``, ``test``, ``val`` or ``train``,
    ``val``), in that order."""
    names = [n for n in ("train", "test", "val") if (scans.split == n).any()]
    return {name: load_cached(scans[scans.split == name], folder=folder) for name in names}


# ---------------------------------------------------------------------------------------------
# tf.data with volume-wise augmentation

# keras RandomRotation factor: ±0.2 of a full turn (±72°), as the prose and the chapter-4 code
# listing (whose 160/40 set-up the results fit) say; the appendix code has 0.5 (any angle).
ROTATION_FACTOR = 0.2
CONTRAST_FACTOR = (0.5, 1.0)  # keras RandomContrast: contrast factor drawn from [0.5, 2.0]


def make_augmenter(*, seed: int = DEFAULT_SEED) -> Augment:
    """The study's augmentation (:class:`medrepro.data.augment.Augment`) of volumes
    ``(B, H, W, D, 1)``: Keras' RandomFlip("horizontal_and_vertical") (both flips together, with
    probability 0.5), RandomRotation(0.2) (reflected at the border) and RandomContrast([0.5, 1.0])
    with the depth axis as the image channels, so every slice gets the same flip, rotation and
    contrast factor (contrast is adjusted around each slice's own mean, as Keras does per
    channel; values are clipped to [0, 1], the range of the normalised volume).
    """
    return Augment(flip="horizontal_and_vertical", rotation=ROTATION_FACTOR,
                   contrast=CONTRAST_FACTOR, fill_mode="reflect", seed=seed)


def augment_volume(vol, augmenter: Augment, *, step: int = 0) -> np.ndarray:
    """One ``(H, W, D)`` volume as ``augmenter`` (:func:`make_augmenter`) changes it at training
    step ``step`` (as the first item of that step's batch)."""
    return np.asarray(augmenter(np.asarray(vol, np.float32)[None, ..., None], step=step))[0, ..., 0]


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch: int, augment: bool = False,
                 shuffle: bool = False, seed: int = DEFAULT_SEED):
    """A ``tf.data.Dataset`` of ``((B, H, W, D, 1) float32, (B,) float32)`` batches.

    ``x``: ``(N, H, W, D)`` in [0, 1]; ``y``: ``(N,)`` 0/1. With ``augment`` the dataset
    carries :func:`make_augmenter`'s augmentation, which ``train.fit`` applies to every training
    batch on the device (a fresh flip/rotation/contrast per volume, one transform for all its
    slices); the batches themselves come out unchanged.
    """
    import tensorflow as tf

    from medrepro.data import pipeline

    def prepare(items):
        return items.map(lambda v, t: (tf.expand_dims(v, -1), t)).batch(batch)

    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y.astype(np.float32)))
    if shuffle:  # epoch e in the order drawn from (seed, e): a resumed fit sees the same order
        out = pipeline.epoch_shuffled(ds, n_items=len(x), seed=seed, then=prepare)
    else:
        out = prepare(ds).prefetch(2)
    return pipeline.with_augment(out, make_augmenter(seed=seed) if augment else None)
