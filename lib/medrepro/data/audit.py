"""Leakage audit: byte-identical and near-identical images within and across splits.

Both Kaggle brain-tumour sets hold copies of the same image, some in Training and Testing at once,
so a test score can partly measure memorisation. :func:`find_duplicates` finds them:

- **exact**: files with the same bytes (SHA-256 of the file).
- **near** (``near=True``): additionally, pairs of images whose 64-bit perceptual hash
  (``imagehash.phash`` of the grayscale image: 32×32 DCT, 8×8 low frequencies against their
  median) differ in at most ``NEAR_HAMMING`` bits AND whose 64-bit difference hash
  (``imagehash.dhash``: signs of horizontal gradients on 9×8) differ in at most ``NEAR_DHASH``
  bits — re-encoded, rescaled, slightly shifted or converted (RGB vs gray) copies of one picture,
  and adjacent slices of one series. The second hash removes the false matches pHash alone makes
  between dark, low-contrast slices of different patients. Pairs are joined by union-find, so a
  group is a connected component (A~B and B~C puts A, B, C together even if A and C differ
  more). Both thresholds were chosen on ``../shared/data/brain_tumor_sartaj`` by looking at the
  pairs on either side of them (see the constants).

Helpers tabulate the groups per split and class (:func:`describe`, :func:`summarise`), save them
to ``data/processed/<dataset>/duplicates.csv`` (:func:`save_duplicates`, read back with
:func:`load_duplicates`), and build duplicate-free evaluation sets:

- :func:`duplicate_free` (**the policy used for a duplicate-free test set**): drop every
  candidate test image that has an exact or near duplicate in the training files. Duplicates
  inside the test set itself are kept (they do not leak training data).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medrepro.core import paths as _paths
from medrepro.core import progress
from medrepro.core.fileio import atomic_path, sha256_file
from medrepro.data.registry import MRI_DATASETS

log = logging.getLogger(__name__)

HASH_SIZE = 8  # phash: 8×8 = 64 bits
# Hamming distance (of 64 bits) up to which two images count as near-duplicates (pHash has 32
# ones in 64 bits, so distances are even): 4 keeps copies and near-adjacent slices of one series,
# and different patients begin to appear at 8 (docs/decisions.md#x1).
NEAR_HAMMING = 4
# dHash distance (of 64 bits) also required of a near pair: it separates the true copies that
# pHash joins across classes from different images it also joins (docs/decisions.md#x1).
NEAR_DHASH = 6
# JPEG draft decoding at >= this size (DCT scaling): phash resizes to 32×32 anyway, and draft
# decoding is ~10× faster than a full decode of a 512×512 image.
DRAFT_SIZE = (128, 128)
CHUNK_ROWS = 2048  # rows of the pairwise-distance matrix computed at once (memory bound)
DUPLICATES_CSV = "duplicates.csv"


class AuditError(RuntimeError):
    """A duplicate list that cannot be read or does not match the dataset."""


@dataclass
class AuditResult:
    """Groups (sorted lists of ≥ 2 paths, sorted by first path) and the files skipped."""

    groups: list[list[Path]]
    exact_groups: list[list[Path]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    n_files: int = 0


# --------------------------------------------------------------------------------------------
# hashing

def perceptual_bits(path: str | os.PathLike) -> np.ndarray:
    """pHash and dHash (64 bits each) of an image as a bool array of shape (128,).

    Computed on the grayscale image; JPEGs are draft-decoded at ``DRAFT_SIZE`` or more.
    """
    import imagehash
    from PIL import Image

    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("L", DRAFT_SIZE)
        gray = im.convert("L")
    p = np.asarray(imagehash.phash(gray, hash_size=HASH_SIZE).hash, dtype=bool).ravel()
    d = np.asarray(imagehash.dhash(gray, hash_size=HASH_SIZE).hash, dtype=bool).ravel()
    return np.concatenate([p, d])


def hamming_pairs(bits: np.ndarray, *, max_distance: int) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of rows of ``bits`` (N, B) within ``max_distance``.

    Vectorised: distance = ones_i·zeros_j + zeros_i·ones_j as float32 matrix products, in chunks
    of ``CHUNK_ROWS`` rows. Returns an int64 array of shape (P, 2).
    """
    b = bits.astype(np.float32)
    nb = 1.0 - b
    out = []
    for start in range(0, len(b), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(b))
        dist = b[start:stop] @ nb.T + nb[start:stop] @ b.T  # (chunk, N)
        i, j = np.nonzero(dist <= max_distance + 0.5)
        i = i + start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


# --------------------------------------------------------------------------------------------
# grouping

class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _groups_from(files: Sequence[Path], pairs: Iterable[tuple[int, int]]) -> list[list[Path]]:
    uf = _UnionFind(len(files))
    for i, j in pairs:
        uf.union(int(i), int(j))
    members: dict[int, list[Path]] = {}
    for k in range(len(files)):
        members.setdefault(uf.find(k), []).append(files[k])
    groups = [sorted(g) for g in members.values() if len(g) >= 2]
    return sorted(groups, key=lambda g: str(g[0]))


def near_pairs(bits: np.ndarray, *, max_distance: int = NEAR_HAMMING,
               max_dhash: int = NEAR_DHASH) -> np.ndarray:
    """Pairs ``(i, j)`` of rows of ``bits`` (N, 128) = [pHash | dHash] that are near-duplicates:
    pHash distance ≤ ``max_distance`` and dHash distance ≤ ``max_dhash``. Shape (P, 2)."""
    n = HASH_SIZE * HASH_SIZE
    cand = hamming_pairs(bits[:, :n], max_distance=max_distance)
    if len(cand) == 0:
        return cand
    d = np.count_nonzero(bits[cand[:, 0], n:] != bits[cand[:, 1], n:], axis=1)
    return cand[d <= max_dhash]


def audit_files(paths: Iterable[str | os.PathLike], *, near: bool = False,
                max_distance: int = NEAR_HAMMING, max_dhash: int = NEAR_DHASH) -> AuditResult:
    """Exact (and with ``near``, perceptual) duplicate groups among ``paths``, with skips.

    A file that cannot be read or decoded is skipped, logged with its reason, and listed in
    ``AuditResult.skipped``.
    """
    files = sorted({Path(p) for p in paths})
    skipped: list[tuple[Path, str]] = []
    digests: dict[str, list[int]] = {}
    readable: list[int] = []
    for k, f in enumerate(progress.bar(files, desc="audit: SHA-256", unit="file")):
        try:
            digests.setdefault(sha256_file(f), []).append(k)
            readable.append(k)
        except OSError as exc:
            skipped.append((f, f"unreadable: {exc}"))
    exact_pairs = [(g[0], other) for g in digests.values() for other in g[1:]]
    exact = _groups_from(files, exact_pairs)
    pairs = list(exact_pairs)
    if near:
        rows, bits = [], []
        # one representative per byte-identical set: its copies hash the same
        for g in progress.bar(list(digests.values()), desc="audit: pHash+dHash", unit="image"):
            try:
                bits.append(perceptual_bits(files[g[0]]))
                rows.append(g[0])
            except Exception as exc:  # PIL raises many types for a broken image
                skipped.append((files[g[0]], f"cannot decode image: {type(exc).__name__}: {exc}"))
        if bits:
            close = near_pairs(np.stack(bits), max_distance=max_distance, max_dhash=max_dhash)
            pairs += [(rows[i], rows[j]) for i, j in close]
    for f, why in skipped:
        log.warning("audit: skipped %s (%s)", f, why)
    return AuditResult(groups=_groups_from(files, pairs), exact_groups=exact, skipped=skipped,
                       n_files=len(files))


def find_duplicates(paths: Iterable[str | os.PathLike], *, near: bool = False,
                    max_distance: int = NEAR_HAMMING,
                    max_dhash: int = NEAR_DHASH) -> list[list[Path]]:
    """Groups (each ≥ 2 files, sorted) of byte-identical images; with ``near`` also of images
    whose pHash differ in ≤ ``max_distance`` and dHash in ≤ ``max_dhash`` of 64 bits each
    (union-find over the pairs).

    Groups are sorted by their first path. Unreadable files are skipped and logged
    (:func:`audit_files` also returns them).
    """
    return audit_files(paths, near=near, max_distance=max_distance, max_dhash=max_dhash).groups


# --------------------------------------------------------------------------------------------
# tables

def _split_class(path: Path, root: Path | None) -> tuple[str, str]:
    try:
        rel = path.relative_to(root) if root is not None else path
    except ValueError:
        rel = path
    parts = rel.parts
    if root is not None and len(parts) >= 3:
        return parts[0], parts[1]
    return (parts[-3] if len(parts) >= 3 else ""), (parts[-2] if len(parts) >= 2 else "")


def describe(groups: Sequence[Sequence[Path]], *, root: str | os.PathLike | None = None,
             exact_groups: Sequence[Sequence[Path]] | None = None):
    """One row per file of every group: group, kind, split, class, path (relative to ``root``).

    ``kind`` is ``exact`` when the group consists of byte-identical files (it appears in
    ``exact_groups``), else ``near``. Split and class are the first two folders below ``root``
    (``Training/glioma_tumor/x.jpg``).
    """
    import pandas as pd

    root = Path(root) if root is not None else None
    exact_sets = {frozenset(g) for g in (exact_groups or [])}
    rows = []
    for gid, g in enumerate(groups):
        kind = "exact" if frozenset(g) in exact_sets else "near"
        for p in g:
            split, cls = _split_class(Path(p), root)
            rel = Path(p).relative_to(root) if root is not None and Path(p).is_relative_to(root) \
                else Path(p)
            rows.append({"group": gid, "kind": kind, "split": split, "class": cls,
                         "path": rel.as_posix()})
    return pd.DataFrame(rows, columns=["group", "kind", "split", "class", "path"])


def summarise(groups: Sequence[Sequence[Path]], *, root: str | os.PathLike,
              splits: Sequence[str] = ("Training", "Testing"), label: str = ""):
    """Counts of duplicate groups by scope, as a ``DataFrame`` with one row per scope.

    Scopes: ``within <split>`` (every file of the group in that split), ``across splits`` (files
    in more than one split), ``spanning classes`` (files under more than one class folder: label
    noise, whatever the splits). Columns: scope, groups, files (in those groups), and
    ``test_files_with_train_duplicate`` on the ``across splits`` row (what the duplicate-free test
    set drops). ``label`` goes into a ``duplicates`` column (e.g. "exact", "exact+near").
    """
    import pandas as pd

    root = Path(root)
    info = [[_split_class(Path(p), root) for p in g] for g in groups]
    rows = []
    for split in splits:
        sel = [g for g, i in zip(groups, info) if {s for s, _ in i} == {split}]
        rows.append({"scope": f"within {split}", "groups": len(sel),
                     "files": sum(len(g) for g in sel)})
    across = [(g, i) for g, i in zip(groups, info) if len({s for s, _ in i}) > 1]
    test_split = splits[-1] if len(splits) > 1 else None
    leaked = (sum(1 for _, i in across for s, _ in i if s == test_split)
              if test_split is not None else None)
    rows.append({"scope": "across splits", "groups": len(across),
                 "files": sum(len(g) for g, _ in across),
                 "test_files_with_train_duplicate": leaked})
    spanning = [g for g, i in zip(groups, info) if len({c for _, c in i}) > 1]
    rows.append({"scope": "spanning classes", "groups": len(spanning),
                 "files": sum(len(g) for g in spanning)})
    df = pd.DataFrame(rows, columns=["scope", "groups", "files",
                                     "test_files_with_train_duplicate"])
    df["test_files_with_train_duplicate"] = df["test_files_with_train_duplicate"].astype("Int64")
    if label:
        df.insert(0, "duplicates", label)
    return df


# --------------------------------------------------------------------------------------------
# duplicate-free sets

def duplicate_free(paths: Iterable[str | os.PathLike], groups: Sequence[Sequence[Path]], *,
                   reference: Iterable[str | os.PathLike]) -> list[Path]:
    """``paths`` (e.g. the test files) without every file that has a duplicate in ``reference``
    (e.g. the training files), in the input order.

    A file is dropped if its group (exact or near, as ``groups`` holds) contains any reference
    file. Duplicates inside ``paths`` itself are kept.
    """
    ref = {Path(p) for p in reference}
    tainted = {p for g in groups if any(Path(q) in ref for q in g) for p in map(Path, g)}
    return [Path(p) for p in paths if Path(p) not in tainted or Path(p) in ref]


# --------------------------------------------------------------------------------------------
# saving

def duplicates_path(dataset: str) -> Path:
    """``data/processed/<dataset>/duplicates.csv``."""
    return _paths.processed_dir(dataset) / DUPLICATES_CSV


def save_duplicates(groups: Sequence[Sequence[Path]], dataset: str, *,
                    root: str | os.PathLike, source: str,
                    exact_groups: Sequence[Sequence[Path]] | None = None) -> Path:
    """Write the groups to ``data/processed/<dataset>/duplicates.csv`` (atomic); return the path.

    Columns: group, kind, split, class, path (relative to ``root``), source, near_phash,
    near_dhash (the thresholds used).
    ``source`` ("phantom" or the dataset id) says which data the list belongs to: a list made on
    the phantom must not be applied to the real set.
    """
    df = describe(groups, root=root, exact_groups=exact_groups)
    df = df.assign(source=source, near_phash=NEAR_HAMMING, near_dhash=NEAR_DHASH)
    out = duplicates_path(dataset)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return out


def load_duplicates(dataset: str, *, root: str | os.PathLike,
                    source: str | None = None) -> list[list[Path]]:
    """The groups saved by :func:`save_duplicates` as absolute paths under ``root``.

    Raises :class:`AuditError` if the list is missing, or was made on another ``source``.
    """
    import pandas as pd

    path = duplicates_path(dataset)
    if not path.is_file():
        raise AuditError(f"{path}: no duplicate list; run 01_download (or audit.save_duplicates)")
    df = pd.read_csv(path)
    if source is not None and len(df) and set(df["source"]) != {source}:
        raise AuditError(f"{path}: made on {sorted(set(df['source']))}, not on {source!r}")
    root = Path(root)
    return [sorted(root / p for p in g["path"]) for _, g in df.groupby("group", sort=True)]


# --------------------------------------------------------------------------------------------
# one dataset

def audit_dataset(root: str | os.PathLike, dataset_id: str, *,
                  splits: Sequence[str] | None = None, near: bool = True) -> AuditResult:
    """:func:`audit_files` over every usable image of ``splits`` (default: all) of a dataset
    root; the files the one image rule skips (:func:`medrepro.data.images.scan`) are listed in
    ``skipped`` with their problem and counted in ``n_files``."""
    from medrepro.data import images

    found = images.scan(root, dataset_id, splits=splits)
    result = audit_files(found.images["path"], near=near)
    result.skipped[:0] = [(Path(p), f"{problem}: {detail}") for p, problem, detail in
                          found.skipped[["path", "problem", "detail"]].itertuples(index=False)]
    result.n_files += len(found.skipped)
    return result


def audit_table(result: AuditResult, *, root: str | os.PathLike, dataset: str, source: str,
                splits: Sequence[str]):
    """The ``X.audit`` rows of one dataset, one row per scope of :func:`summarise`.

    Columns: dataset, source, scope, exact_groups, exact_files, near_groups, near_files (the
    exact+near groups, which contain the exact ones), test_with_train_copy_exact /
    test_with_train_copy_near (testing files with a copy in training; on the ``across splits``
    row, blank elsewhere), files_audited, files_skipped.
    """
    import pandas as pd

    ex = summarise(result.exact_groups, root=root, splits=splits).set_index("scope")
    nr = summarise(result.groups, root=root, splits=splits).set_index("scope")
    df = pd.DataFrame({
        "exact_groups": ex["groups"], "exact_files": ex["files"],
        "near_groups": nr["groups"], "near_files": nr["files"],
        "test_with_train_copy_exact": ex["test_files_with_train_duplicate"],
        "test_with_train_copy_near": nr["test_files_with_train_duplicate"],
    }).reset_index()
    for col in ("test_with_train_copy_exact", "test_with_train_copy_near"):  # blank, not <NA>
        df[col] = df[col].astype(object).where(df[col].notna(), "")
    df.insert(0, "source", source)
    df.insert(0, "dataset", dataset)
    df["files_audited"] = result.n_files
    df["files_skipped"] = len(result.skipped)
    return df


def audit_resolved(rd, *, near: bool = True, save: bool = True):
    """Audit a :class:`medrepro.data.datasets.ResolvedDataset`; return its ``X.audit`` rows.

    Audits the data the notebooks use (``rd.root``) and saves its groups to
    ``data/processed/<dataset>/duplicates.csv`` (``save``); when real data with a missing split
    was found but not used (``rd.found_root``), audits that too (table rows only, nothing saved:
    the studies do not use it). A ``seconds`` column holds each audit's wall time.
    """
    import time

    import pandas as pd

    targets = [(rd.root, rd.source, rd.splits_present, True)]
    if rd.is_phantom and rd.found_root is not None:
        targets.append((rd.found_root, rd.dataset_id, rd.found_splits, False))
    frames = []
    for root, source, splits, used in targets:
        start = time.perf_counter()
        result = audit_dataset(root, rd.dataset_id, splits=splits, near=near)
        seconds = time.perf_counter() - start
        if save and used:
            save_duplicates(result.groups, rd.dataset_id, root=root, source=source,
                            exact_groups=result.exact_groups)
        table = audit_table(result, root=root, dataset=rd.dataset_id, source=source,
                            splits=splits)
        frames.append(table.assign(used_by_studies=used, seconds=round(seconds, 2)))
    return pd.concat(frames, ignore_index=True)


def audit_all(resolved, dataset_ids: Sequence[str] = MRI_DATASETS):
    """X.audit: :func:`audit_resolved` of each of ``dataset_ids`` (default: the brain-tumour MRI
    sets) in one frame; ``resolved``: ``{dataset_id: ResolvedDataset}``."""
    import pandas as pd

    return pd.concat([audit_resolved(resolved[d]) for d in dataset_ids], ignore_index=True)


def saved_duplicates(resolved, dataset_ids: Sequence[str] = MRI_DATASETS) -> dict[str, str]:
    """``{dataset: "<n> groups"}``: the duplicate groups the audit saved for each of
    ``dataset_ids``; raises ``FileNotFoundError`` naming the files the audit did not save."""
    saved = {d: duplicates_path(d) for d in dataset_ids}
    missing = {d: str(p) for d, p in saved.items() if not p.is_file()}
    if missing:
        raise FileNotFoundError(f"duplicate groups not saved by the audit: {missing}")
    return {d: f"{len(load_duplicates(d, root=resolved[d].root, source=resolved[d].source))}"
               " groups" for d in saved}
