"""The exact data named: a dataset's identity, and which published version it is.

Kaggle datasets change silently (Masoud's Testing split had 1,294 images in an earlier version
and has 1,311 now), so a number is only meaningful beside the files it was computed on. The
identity of a dataset folder (:func:`dataset_identity`) is:

- ``counts``: files per split and class (``{split: {class: n}}``; RSNA: ``{"stage_2_train":
  {"all": n}}``, MosMed: one class per split folder);
- ``content_sha256``: one SHA-256 over the sorted list of the per-file SHA-256 digests (hex, one
  per line, each line ending in ``\\n``) of every data file of every split present, the same
  digests the leakage audit computes (:func:`medrepro.core.fileio.sha256_file`); it names the
  bytes, whatever the file names; ``split_sha256`` the same per split (a source that has only one
  split, as ``shared/data``'s Masoud, can still be matched);
- ``hash_kind``: ``"content"``; above :data:`CONTENT_HASH_MAX_BYTES` (the full RSNA set,
  ~450 GB) the files are not read and ``"listing"`` hashes are taken over the sorted
  ``<relative path>\\t<size>`` lines instead, which is said wherever the identity is shown;
- ``version``: which of the known published versions (:data:`medrepro.data.registry.PUBLISHED_VERSIONS`)
  it matches, or that it matches none (:func:`match_version`).

Identities are cached in memory per folder and on disk under
``<cache root>/<dataset>/identity.json``, keyed by a listing fingerprint (paths, sizes, mtimes), so
a sidecar costs a directory listing once the files were hashed. :func:`remember` (called by
:func:`medrepro.data.datasets.resolve`) notes which folder each dataset of this process came
from; :func:`for_source` returns the identities behind an artifact's data source.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medrepro.core import paths
from medrepro.core.fileio import sha256_file, write_json
from medrepro.data.registry import PHANTOM, PUBLISHED_VERSIONS, PublishedVersion, spec

CONTENT_HASH_MAX_BYTES = 20 * 2**30  # 20 GiB: MRI sets, MosMed, RSNA samples; not full RSNA
IDENTITY_FILE = "identity.json"

_memory: dict[tuple[str, str], dict[str, Any]] = {}
_resolved: dict[str, tuple[str, Path]] = {}  # dataset id -> (source, root), this process


class IdentityError(RuntimeError):
    """A dataset folder whose identity cannot be computed (the message names the folder)."""


# ---------------------------------------------------------------------------- files
def data_files(root: str | os.PathLike, dataset_id: str) -> dict[str, list[Path]]:
    """``{split: sorted data files}`` of every split folder of ``dataset_id`` under ``root``
    (MRI: ``split/class/*.jpg``; RSNA: ``stage_2_train/*.dcm``; MosMed: ``split/*.nii.gz``)."""
    sp = spec(dataset_id)
    root = Path(root)
    out: dict[str, list[Path]] = {}
    for split in sp.splits:
        folders = [root / split / c for c in sp.classes] if sp.kind == "mri" else [root / split]
        files = [Path(e.path) for f in folders if f.is_dir() for e in os.scandir(f)
                 if e.is_file() and sp.is_data_file(e.name)]
        if files:
            out[split] = sorted(files)
    return out


def digest_of_lines(lines) -> str:
    """SHA-256 (hex) of ``lines`` sorted, each followed by ``\\n`` (ASCII)."""
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


def counts_of(by_split: Mapping[str, list[Path]], dataset_id: str) -> dict[str, dict[str, int]]:
    """Files per split and class, ``{split: {class: n}}``, of :func:`data_files`' listing (MRI:
    the class folders; MosMed: each split folder's class; RSNA: ``{"all": n}``)."""
    sp = spec(dataset_id)
    out: dict[str, dict[str, int]] = {}
    for split, files in by_split.items():
        if sp.kind == "mri":
            out[split] = {c: n for c in sp.classes
                          if (n := sum(1 for p in files if p.parent.name == c))}
        elif sp.kind == "mosmed":
            out[split] = {dict(zip(sp.splits, sp.classes))[split]: len(files)}
        else:
            out[split] = {"all": len(files)}
    return out


# ---------------------------------------------------------------------------- identity
def dataset_identity(root: str | os.PathLike, dataset_id: str, *, source: str | None = None,
                     use_cache: bool = True) -> dict[str, Any]:
    """The identity of the dataset folder ``root`` (see the module docstring).

    Returns ``{"dataset", "source", "root", "counts", "files", "bytes", "hash_kind",
    "content_sha256", "split_sha256", "version"}``. ``source``: ``"phantom"`` or the dataset id
    (default: the id). Raises :class:`IdentityError` for a folder without any data file.
    """
    root = Path(root).resolve()
    source = source or dataset_id
    key = (dataset_id, str(root))
    by_split = data_files(root, dataset_id)
    if not by_split:
        raise IdentityError(f"{root}: no data file of {dataset_id} "
                            f"({spec(dataset_id).layout})")
    stats = {s: [(p, p.stat()) for p in files] for s, files in by_split.items()}
    fingerprint = digest_of_lines(f"{p.relative_to(root).as_posix()}\t{st.st_size}\t"
                                  f"{st.st_mtime_ns}" for v in stats.values() for p, st in v)
    cached = _memory.get(key) if use_cache else None
    if cached is None and use_cache:
        cached = _read_cache(dataset_id, str(root))
    if cached is not None and cached.get("fingerprint") == fingerprint:
        return _public({**cached, "source": source})
    total = sum(st.st_size for v in stats.values() for _, st in v)
    kind = "content" if total <= CONTENT_HASH_MAX_BYTES else "listing"
    split_lines: dict[str, list[str]] = {}
    for split, items in stats.items():
        if kind == "content":
            split_lines[split] = [sha256_file(p) for p, _ in items]
        else:
            split_lines[split] = [f"{p.relative_to(root).as_posix()}\t{st.st_size}"
                                  for p, st in items]
    ident = {"dataset": dataset_id, "source": source, "root": str(root),
             "counts": counts_of(by_split, dataset_id),
             "files": sum(len(v) for v in stats.values()), "bytes": total, "hash_kind": kind,
             "content_sha256": digest_of_lines(x for v in split_lines.values() for x in v),
             "split_sha256": {s: digest_of_lines(v) for s, v in split_lines.items()},
             "fingerprint": fingerprint}
    ident["version"] = match_version(ident)
    _memory[key] = ident
    if use_cache:
        _write_cache(ident)
    return _public(ident)


def _public(ident: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ident.items() if k != "fingerprint"}


def _cache_path(dataset_id: str) -> Path:
    return paths.processed_dir(dataset_id) / IDENTITY_FILE


def _read_cache(dataset_id: str, root: str) -> dict[str, Any] | None:
    try:
        entries = json.loads(_cache_path(dataset_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = entries.get(root) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) else None


def _write_cache(ident: dict[str, Any]) -> None:
    path = _cache_path(ident["dataset"])
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = {}
    entries[ident["root"]] = ident
    try:
        write_json(path, entries, indent=1, sort_keys=True)
    except OSError:  # a read-only cache folder costs a re-hash next time, nothing more
        pass


# ---------------------------------------------------------------------------- versions
def match_version(ident: Mapping[str, Any]) -> str:
    """Which known published version ``ident`` is, as one sentence.

    A version matches when every split the dataset and the version both record has the
    version's counts (per class where the version gives them, else the split's total) and, where
    the version records one, its content hash. The sentence says what was compared; a phantom
    says it is one; a dataset that matches none says so, with the counts that differ.
    """
    if ident.get("source") == PHANTOM:
        return "phantom: generated by medrepro, not a published dataset"
    versions = PUBLISHED_VERSIONS.get(ident["dataset"], ())
    if not versions:
        return "no published version recorded for this dataset"
    misses = []
    for v in versions:
        ok, compared, why = _compare(ident, v)
        if ok:
            return f"matches {v.name} ({compared})"
        misses.append(f"{v.name}: {why}")
    return "matches NO known published version (" + "; ".join(misses) + ")"


def _compare(ident: Mapping[str, Any], v: PublishedVersion) -> tuple[bool, str, str]:
    counts, hashes = ident["counts"], ident.get("split_sha256", {})
    shared = [s for s in counts if s in v.counts]
    if not shared:
        return False, "", f"no split in common ({', '.join(counts)} vs {', '.join(v.counts)})"
    hashed = []
    for split in shared:
        want, have = v.counts[split], counts[split]
        if "all" in want and set(want) == {"all"}:
            if sum(have.values()) != want["all"]:
                return False, "", f"{split} has {sum(have.values()):,} files, not {want['all']:,}"
        elif dict(want) != {c: have.get(c, 0) for c in want} or set(have) - set(want):
            return False, "", f"{split} counts {dict(have)} differ from {dict(want)}"
        expected = v.split_sha256.get(split)
        if expected and ident.get("hash_kind") == "content":
            if hashes.get(split) != expected:
                return False, "", f"{split} content hash differs"
            hashed.append(split)
    what = f"counts of {', '.join(shared)}"
    what += f"; content hash of {', '.join(hashed)}" if hashed else "; no content hash recorded"
    return True, what, ""


# ---------------------------------------------------------------------------- this process
def remember(dataset_id: str, source: str, root: str | os.PathLike) -> None:
    """Note that this process reads ``dataset_id`` (as ``source``) from ``root``."""
    _resolved[dataset_id] = (source, Path(root))


def for_source(source: str) -> dict[str, dict[str, Any]]:
    """``{dataset id: identity}`` of the datasets this process resolved whose source is a part
    of ``source`` (``"brain_tumor_sartaj"``, ``"phantom"``, ``"a+b"``); a folder whose identity
    cannot be computed gets ``{"error": why}``."""
    parts = set(str(source).split("+"))
    out: dict[str, dict[str, Any]] = {}
    for dataset_id, (src, root) in sorted(_resolved.items()):
        if src in parts or (src == PHANTOM and any(p.startswith(PHANTOM) for p in parts)):
            try:
                out[dataset_id] = dataset_identity(root, dataset_id, source=src)
            except (IdentityError, OSError) as exc:
                out[dataset_id] = {"dataset": dataset_id, "source": src, "error": str(exc)}
    return out


def summary(ident: Mapping[str, Any]) -> str:
    """One line: ``"brain_tumor_sartaj: Training 2,870 + Testing 394 files, content sha256
    1a2b3c4d5e6f…; matches …"``."""
    if "error" in ident:
        return f"{ident['dataset']}: identity unavailable ({ident['error']})"
    splits = " + ".join(f"{s} {sum(c.values()):,}" for s, c in ident["counts"].items())
    return (f"{ident['dataset']}: {splits} files, {ident['hash_kind']} sha256 "
            f"{ident['content_sha256'][:12]}…; {ident['version']}")
