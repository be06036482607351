"""Dataset resolution: :func:`resolve`, one call that hands a notebook its dataset folder.

Four datasets (their specs: :mod:`medrepro.data.registry`), each in its official on-disk layout (the
``root`` a notebook reads):

- ``brain_tumor_sartaj``  ``root/{Training,Testing}/{glioma_tumor,meningioma_tumor,no_tumor,
  pituitary_tumor}/*.jpg`` (Kaggle ``sartajbhuvaji/brain-tumor-classification-mri``)
- ``brain_tumor_masoud``  ``root/{Training,Testing}/{glioma,meningioma,notumor,pituitary}/*.jpg``
  (Kaggle ``masoudnickparvar/brain-tumor-mri-dataset``)
- ``rsna_ich``            ``root/stage_2_train.csv`` + ``root/stage_2_train/ID_*.dcm`` (Kaggle
  competition ``rsna-intracranial-hemorrhage-detection``)
- ``mosmed``              ``root/CT-0/study_*.nii.gz`` + ``root/CT-23/study_*.nii.gz`` (the two
  release zips of the Keras 3D-classification example)

``resolve(dataset_id, data=...)`` takes the notebooks' ``data`` parameter:

- ``"phantom"``: the built-in synthetic dataset (``medrepro.data.phantoms``), sized by
  ``profiles.settings("phantoms", profile)``, generated once into
  ``data/raw/phantom/<profile>/<dataset_id>/`` (a temporary sibling renamed into place; its
  ``.phantom.json`` completion marker records the arguments; a non-default seed gets its own
  folder).
- ``"kaggle"``: the Kaggle inputs (``$MEDREPRO_KAGGLE_INPUT``, default ``/kaggle/input``), else
  kagglehub (which finds the credentials itself; the folder it returns is read in place); MosMed
  from an attached mirror or its release URLs. A dataset that cannot be acquired raises a clear
  :class:`~medrepro.data.download.DownloadError`; :func:`resolve_available` records it instead.
- a folder: holds dataset folders named by id (``<folder>/brain_tumor_sartaj/``...), or Kaggle's
  own folder names (``brain-tumor-classification-mri``...), or is itself one dataset's root. The
  folder is read in place, never copied or modified.
- an archive (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``): extracted once, safely, into
  ``data/raw/archives/<name>/``, then read like a folder.

**Missing data falls back to the phantom.** A dataset absent from the folder, or present with a
split missing (``../shared/data/brain_tumor_masoud`` has only ``Testing/``), resolves to its
phantom, because every study needs a training split; ``ResolvedDataset.notes`` says why and
``.found_root`` / ``.found_splits`` keep what was found, so :func:`inventory` reports the partial
real data beside the phantom and the leakage audit can still run on it
(``resolve(..., allow_partial=True)`` returns the partial real dataset itself). ``.source`` is
``"phantom"`` or the dataset id; every artifact records it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medrepro.data import download, identity, images
from medrepro.core import locks, paths, profiles
from medrepro.core.fileio import disk_full_guard, write_json
from medrepro.data.phantoms import _common as phantom_marker
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.data.registry import (DATASET_IDS, MOSMED_CT23_PARTS, PHANTOM, RSNA_LABELS_CSV,
                               RSNA_SELECTED_COUNTS, DatasetError, DatasetSpec, find_dataset_root,
                               spec, splits_present)

KAGGLE = "kaggle"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_SETTINGS_ROW = "phantoms"  # the profile row of the phantoms' sizes (notebook 01)


@dataclass(frozen=True)
class ResolvedDataset:
    """Where a notebook reads a dataset from, and what it is.

    ``root`` is the dataset folder in its official layout; ``source`` is ``"phantom"`` or the
    dataset id (what artifacts record); ``splits_present`` the splits found under ``root``.
    ``found_root``/``found_splits``: real data that was found but not used (a missing split);
    ``notes``: human-readable reasons (fallbacks, missing splits); ``spec``: the registry's
    :class:`~medrepro.data.registry.DatasetSpec`, looked up once.
    """

    dataset_id: str
    root: Path
    source: str
    is_phantom: bool
    origin: str  # "phantom" | "folder" | "archive" | "kaggle-input" | "kagglehub" | "url" | ...
    splits_present: tuple[str, ...] = ()
    found_root: Path | None = None
    found_splits: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    copy: str = ""  # which copy was read: how it was found and its folder (the inventory shows it)
    spec: DatasetSpec | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.spec is None and self.dataset_id in DATASET_IDS:
            object.__setattr__(self, "spec", spec(self.dataset_id))

    @property
    def label(self) -> str:
        """``"brain_tumor_sartaj (phantom)"`` style text for titles."""
        return f"{self.dataset_id} ({'phantom' if self.is_phantom else 'real'})"


# --------------------------------------------------------------------------------------------
# resolve

def resolve(dataset_id: str, *, data: str | os.PathLike | None, profile: str | None,
            seed: int = DEFAULT_SEED, allow_partial: bool = False) -> ResolvedDataset:
    """Find or make ``dataset_id`` for the source ``data``; see the module docstring.

    ``data``: ``"phantom"`` | ``"kaggle"`` | a folder | an archive (None: phantom). ``profile``
    sizes the phantom (None: ``$MEDREPRO_PROFILE`` or demo). ``allow_partial``: return real data
    with a split missing instead of falling back to the phantom (for audits and inventories).
    Raises :class:`DatasetError` for an unknown id or a ``data`` path that does not exist, and
    :class:`medrepro.data.download.DownloadError` (subclasses) when ``"kaggle"`` cannot acquire.
    """
    sp = spec(dataset_id)
    profile = profiles.check_profile(profile or os.environ.get("MEDREPRO_PROFILE")
                                     or profiles.DEFAULT_PROFILE)
    data = PHANTOM if data is None else str(data)
    if data == PHANTOM:
        return _noted(_make_phantom(sp, profile=profile, seed=seed))
    if data == KAGGLE:
        root, origin = download.acquire_kaggle(sp)
        return _noted(_real_or_fallback(sp, root, origin=origin, profile=profile, seed=seed,
                                        allow_partial=allow_partial, where="kaggle"))
    path = source_path(data)
    check_source(path, data)
    origin = "folder"
    if path.is_file():
        path = extract_source_archive(path)
        origin = "archive"
    root = find_dataset_root(path, sp)
    return _noted(_real_or_fallback(sp, root, origin=origin, profile=profile, seed=seed,
                                    allow_partial=allow_partial, where=str(data)))


def _noted(rd: ResolvedDataset) -> ResolvedDataset:
    """``rd``, noted for the sidecars' dataset identity (:func:`medrepro.data.identity.remember`)."""
    identity.remember(rd.dataset_id, rd.source, rd.root)
    return rd


def source_path(data: str | os.PathLike) -> Path:
    """The folder or archive a ``data`` path names; relative to the project root when it is not
    relative to the working folder (notebooks run in ``notebooks/``, ``./run_all.sh`` in the
    root)."""
    path = Path(data).expanduser()
    if not path.is_absolute() and not os.path.lexists(path):
        path = paths.project_root() / path
    return path


def check_source(path: Path, data: str) -> None:
    """Raise :class:`DatasetError` naming a ``--data`` folder or archive that cannot be read:
    absent, a link that loops or points nowhere, unreadable, an empty folder."""
    if not path.exists():
        if path.is_symlink():
            raise DatasetError(f"data source {data!r}: a symbolic link that loops or points "
                               f"nowhere ({path} -> {os.readlink(path)})")
        raise DatasetError(f"data source {data!r}: no such folder or archive (expected "
                           f"'phantom', 'kaggle', a folder of datasets or an archive)")
    try:
        if path.is_dir():
            with os.scandir(path) as it:
                empty = next(it, None) is None
            if empty:
                raise DatasetError(f"data source {data!r}: {path} is an empty folder (expected "
                                   "dataset folders such as brain_tumor_sartaj/ in it)")
        else:
            with open(path, "rb") as fh:
                fh.read(1)
    except PermissionError as exc:
        raise DatasetError(f"data source {data!r}: cannot read {path} ({exc.strerror}); give "
                           "this user read access to it") from None
    except OSError as exc:
        raise DatasetError(f"data source {data!r}: cannot read {path} "
                           f"({type(exc).__name__}: {exc.strerror or exc})") from None


def resolve_all(*, data: str | None, profile: str | None, seed: int = DEFAULT_SEED,
                ids: Iterable[str] = DATASET_IDS) -> dict[str, ResolvedDataset]:
    """:func:`resolve` for several datasets: ``{dataset_id: ResolvedDataset}``."""
    return {d: resolve(d, data=data, profile=profile, seed=seed) for d in ids}


def resolve_available(*, data: str | None, profile: str | None, seed: int = DEFAULT_SEED,
                      ids: Iterable[str] = DATASET_IDS
                      ) -> tuple[dict[str, ResolvedDataset], dict[str, str]]:
    """:func:`resolve` for several datasets, keeping going past one that cannot be acquired.

    Returns ``(resolved, unavailable)``. A dataset whose acquisition raised a
    :class:`~medrepro.data.download.DownloadError` (offline, credentials refused, rules not accepted)
    is resolved to its phantom with the reason in ``notes``, and ``unavailable`` maps its id to
    the reason (for :func:`inventory`). Notebook 01 uses this, so one unavailable dataset does not
    stop the overview of the others; the notebooks that train on it call :func:`resolve`, which
    raises.
    """
    resolved, unavailable = {}, {}
    for d in ids:
        try:
            resolved[d] = resolve(d, data=data, profile=profile, seed=seed)
        except download.DownloadError as exc:
            unavailable[d] = str(exc)
            note = f"{d} unavailable from {data}: {exc}; its phantom is shown instead"
            resolved[d] = _with(make_phantom(d, profile=profiles.check_profile(
                profile or os.environ.get("MEDREPRO_PROFILE") or profiles.DEFAULT_PROFILE),
                seed=seed), notes=(note,))
    return resolved, unavailable


def compose_ct23(root: Path) -> Path:
    """A MosMed root with ``CT-23/``: ``root`` itself, or a view of the full MosMedData release.

    The full release (and its Kaggle mirror) has ``CT-0/ ... CT-4/``; the studies' CT-23 is
    CT-2 + CT-3. The view ``data/raw/mosmed_views/<key>/`` holds symlinks ``CT-0/`` (to the
    folder) and ``CT-23/<file>`` (to each CT-2 and CT-3 file), so nothing is copied and a
    read-only input (``/kaggle/input``) is never written to.
    """
    root = Path(root)
    if (root / "CT-23").is_dir() or not any((root / p).is_dir() for p in MOSMED_CT23_PARTS):
        return root
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    view = paths.data_dir() / "raw" / "mosmed_views" / key
    if (view / download.MARKER).is_file():
        return view
    with locks.hold(view, what="a MosMed CT-23 view"):
        if not (view / download.MARKER).is_file():
            _compose_view(root, view, key)
    return view


def _compose_view(root: Path, view: Path, key: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=_mkdir(view.parent)))
    try:
        if (root / "CT-0").is_dir():
            os.symlink((root / "CT-0").resolve(), staging / "CT-0")
        (staging / "CT-23").mkdir()
        for part in MOSMED_CT23_PARTS:
            for f in sorted((root / part).glob("*.nii*")) if (root / part).is_dir() else []:
                os.symlink(f.resolve(), staging / "CT-23" / f.name)
        write_json(staging / download.MARKER,
                   {"composed_from": str(root), "ct23": list(MOSMED_CT23_PARTS)}, indent=None)
        _swap_into_place(staging, view)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# How each origin is named in ResolvedDataset.copy (and so in the inventory).
ORIGIN_TEXT = {"kaggle-input": "attached Kaggle input", "kagglehub": "kagglehub's folder",
               "url": "release URLs, extracted in", "folder": "folder", "archive":
               "archive, extracted in", PHANTOM: "phantom in"}


def describe_copy(origin: str, root: Path, *, composed: Path | None = None) -> str:
    """``"attached Kaggle input /kaggle/input/.../studies (CT-23 = CT-2 + CT-3, linked in
    data/raw/mosmed_views/...)"``: the copy of a dataset a run read."""
    text = f"{ORIGIN_TEXT.get(origin, origin)} {root}"
    if composed is not None:
        text += f" (CT-23 = {' + '.join(MOSMED_CT23_PARTS)}, linked in {composed})"
    return text


def _real_or_fallback(sp: DatasetSpec, root: Path | None, *, origin: str, profile: str,
                      seed: int, allow_partial: bool, where: str) -> ResolvedDataset:
    copy = ""
    if root is not None:
        found = root
        if sp.kind == "mosmed":
            root = compose_ct23(root)
        copy = describe_copy(origin, found, composed=root if root != found else None)
    if root is None:
        ph = _make_phantom(sp, profile=profile, seed=seed)
        note = f"{sp.id} not found in {where}; using its phantom"
        return _with(ph, notes=(note,))
    present = splits_present(root, sp)
    missing = tuple(s for s in sp.splits if s not in present)
    if not missing or allow_partial:
        notes = (f"{sp.id}: split(s) {', '.join(missing)} missing in {root}",) if missing else ()
        return ResolvedDataset(sp.id, root, source=sp.id, is_phantom=False, origin=origin,
                               splits_present=present, found_root=root, found_splits=present,
                               notes=notes, copy=copy, spec=sp)
    ph = _make_phantom(sp, profile=profile, seed=seed)
    note = (f"{sp.id} in {root} has only {', '.join(present) or 'no split'} (missing "
            f"{', '.join(missing)}); the studies need every split, so the phantom is used")
    return _with(ph, found_root=root, found_splits=present, notes=(note,))


def _with(rd: ResolvedDataset, **changes) -> ResolvedDataset:
    from dataclasses import replace

    return replace(rd, **changes)


# --------------------------------------------------------------------------------------------
# phantoms

def phantom_root(dataset_id: str, *, profile: str, seed: int = DEFAULT_SEED) -> Path:
    """``data/raw/phantom/<profile>/<dataset_id>`` (``<dataset_id>_seed<N>`` for other seeds)."""
    name = dataset_id if int(seed) == DEFAULT_SEED else f"{dataset_id}_seed{int(seed)}"
    return paths.data_dir() / "raw" / PHANTOM / profile / name


def phantom_arguments(dataset: str | DatasetSpec, *, profile: str) -> dict:
    """The generator keyword arguments for ``dataset`` (an id or its spec) under ``profile``
    (without seed)."""
    s = profiles.settings(_SETTINGS_ROW, profile)
    sp = spec(dataset) if isinstance(dataset, str) else dataset
    if sp.kind == "mri":
        return {"layout": "sartaj" if sp.id == "brain_tumor_sartaj" else "masoud",
                "n_per_class": int(s.mri_train_per_class),
                "n_test_per_class": int(s.mri_test_per_class), "size": int(s.mri_size)}
    if sp.kind == "rsna":
        return {"n_images": int(s.rsna_images)}
    return {"n_per_class": int(s.mosmed_per_class), "size": int(s.mosmed_size)}


def make_phantom(dataset_id: str, *, profile: str, seed: int = DEFAULT_SEED) -> ResolvedDataset:
    """Generate (once) and return the phantom of ``dataset_id`` for ``profile`` and ``seed``.

    Generated into a temporary sibling folder and renamed into place, so a crash never leaves a
    folder that looks complete; the phantom's completion marker (``.phantom.json``) records
    these arguments too (:func:`phantom_record`), and a folder whose record differs (other
    sizes, a newer generator) is regenerated.
    """
    return _make_phantom(spec(dataset_id), profile=profile, seed=seed)


def _make_phantom(sp: DatasetSpec, *, profile: str, seed: int) -> ResolvedDataset:
    from medrepro.data import phantoms

    dataset_id = sp.id
    root = phantom_root(dataset_id, profile=profile, seed=seed)
    kwargs = phantom_arguments(sp, profile=profile)
    record = {"dataset_id": dataset_id, "profile": profile, "seed": int(seed), **kwargs,
              "generator": generator_fingerprint(phantoms)}
    if _marker_matches(root, record):
        return _phantom_result(sp, root)
    # one generator at a time; a second process waits, then finds the phantom made
    with locks.hold(root, what=f"the {dataset_id} phantom"):
        if not _marker_matches(root, record):
            with disk_full_guard(root.parent, what=f"the {dataset_id} phantom"):
                _generate(phantoms, sp, root, record, seed=int(seed), kwargs=kwargs)
    return _phantom_result(sp, root)


def _generate(phantoms, sp: DatasetSpec, root: Path, record: dict, *, seed: int,
              kwargs: dict) -> None:
    maker = {"mri": "make_mri", "rsna": "make_rsna", "mosmed": "make_mosmed"}[sp.kind]
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        target = staging / "out"
        getattr(phantoms, maker)(target, seed=seed, **kwargs)
        phantom_marker.write_marker(target, {**(phantom_marker.read_marker(target) or {}),
                                             phantom_marker.DATASET_ENTRY: record})
        _swap_into_place(target, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def generator_fingerprint(module) -> str:
    """``__version__`` of the phantom package, else a hash of its source files.

    Stored in the completion marker, so a changed generator regenerates cached phantoms.
    """
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    init = getattr(module, "__file__", None)
    if not init:
        return "unknown"
    h = hashlib.sha256()
    for src in sorted(Path(init).parent.glob("*.py")):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()[:16]


def _phantom_result(sp: DatasetSpec, root: Path) -> ResolvedDataset:
    return ResolvedDataset(sp.id, root, source=PHANTOM, is_phantom=True, origin=PHANTOM,
                           splits_present=splits_present(root, sp),
                           copy=describe_copy(PHANTOM, root), spec=sp)


def phantom_record(root: str | os.PathLike) -> dict | None:
    """The arguments :func:`make_phantom` recorded in the phantom folder ``root`` (None: no
    complete phantom made by it there)."""
    return (phantom_marker.read_marker(root) or {}).get(phantom_marker.DATASET_ENTRY)


def _marker_matches(root: Path, record: dict) -> bool:
    return phantom_record(root) == record


def _swap_into_place(new: Path, root: Path) -> None:
    """Rename ``new`` to ``root``; an existing ``root`` is moved aside first, then deleted."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(root, old)
    os.replace(new, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# archives given as the data source

def extract_source_archive(archive: Path) -> Path:
    """Extract a user's archive once into ``data/raw/archives/<name>-<key>/``; return that folder.

    The key hashes the archive's absolute path, size and modification time, so a changed archive
    is extracted afresh; an existing complete extraction is reused.
    """
    archive = Path(archive).resolve()
    if not archive.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise DatasetError(f"{archive}: not a folder or a supported archive "
                           f"({', '.join(ARCHIVE_SUFFIXES)})")
    st = archive.stat()
    key = hashlib.sha256(f"{archive}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    stem = archive.name
    for suffix in ARCHIVE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    dest = paths.data_dir() / "raw" / "archives" / f"{stem}-{key}"
    if not dest.is_dir():
        with locks.hold(dest, what=f"the extraction of {archive.name}"):
            if not dest.is_dir():
                with disk_full_guard(dest.parent, what=f"the extraction of {archive.name}",
                                     needed=_unpacked_bytes(archive)):
                    try:
                        download.extract_archive(archive, dest)
                    except (EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as exc:
                        raise DatasetError(f"{archive}: a damaged archive ({type(exc).__name__}"
                                           f": {exc})") from None
    if not any(dest.iterdir()):
        raise DatasetError(f"{archive}: an empty archive (no file in it)")
    return dest


def _unpacked_bytes(archive: Path) -> int | None:
    """The bytes an archive's members unpack to (None when its index does not say)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return sum(i.file_size for i in zf.infolist())
        with tarfile.open(archive) as tf:
            return sum(m.size for m in tf.getmembers())
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile):
        return None  # a damaged archive: extract_archive says so


# --------------------------------------------------------------------------------------------
# inventory

def count_files(root: Path, sp: DatasetSpec) -> list[dict]:
    """Files and bytes per (split, class) under ``root``: a list of row dicts.

    For the MRI sets ``files`` and ``bytes`` count the images the studies use
    (:mod:`medrepro.data.images`' rule), ``skipped`` the files they skip and ``skipped_why``
    their problems with counts."""
    root = Path(root)
    rows = []
    if sp.kind == "mri":  # the one image rule: usable files, and those skipped with why
        found = images.scan(root, sp.id)
        for split in sp.splits:
            for cls in sp.classes:
                used = found.images[(found.images["split"] == split)
                                    & (found.images["class_dir"] == cls)]
                bad = found.skipped[(found.skipped["split"] == split)
                                    & (found.skipped["class_dir"] == cls)]
                why = "; ".join(f"{k} {n}" for k, n in bad["problem"].value_counts().items())
                rows.append({"split": split, "class": cls, "files": len(used),
                             "bytes": sum(os.path.getsize(f) for f in used["path"]),
                             "skipped": len(bad), "skipped_why": why})
    elif sp.kind == "mosmed":
        for split, cls in zip(sp.splits, sp.classes):
            n, size = _count_folder(root / split, sp.suffixes)
            rows.append({"split": split, "class": cls, "files": n, "bytes": size})
    else:
        split = sp.splits[0]
        names, size = _list_folder(root / split, ".dcm")
        rows.append({"split": split, "class": "all", "files": len(names), "bytes": size})
        for cls, n in _rsna_selected_counts(root / RSNA_LABELS_CSV, names).items():
            rows.append({"split": split, "class": cls, "files": n, "bytes": None})
    return rows


def _list_folder(folder: Path, suffix: str | tuple[str, ...]) -> tuple[list[str], int]:
    if not folder.is_dir():
        return [], 0
    names, size = [], 0
    with os.scandir(folder) as it:
        for e in it:
            if e.is_file() and e.name.lower().endswith(suffix):
                names.append(e.name)
                size += e.stat().st_size
    return names, size


def _count_folder(folder: Path, suffix: str | tuple[str, ...]) -> tuple[int, int]:
    names, size = _list_folder(folder, suffix)
    return len(names), size


def _rsna_selected_counts(csv_path: Path, dcm_names: list[str]) -> dict[str, int]:
    """Images per class of the single-type selection (:func:`medrepro.data.rsna.select_single_type`),
    among the DICOMs present on disk."""
    from medrepro.data import rsna

    counts = {c: 0 for c in RSNA_SELECTED_COUNTS}
    if not csv_path.is_file():
        return counts
    labels = rsna.read_labels(csv_path)
    labels = labels[labels["image_id"].isin({n[:-4] for n in dcm_names})]
    for name, n in rsna.select_single_type(labels)["label_name"].value_counts().items():
        counts[name] = int(n)
    return counts


def inventory(resolved: Iterable[ResolvedDataset] | Mapping[str, ResolvedDataset], *,
              unavailable: Mapping[str, str] | None = None):
    """Files and bytes per dataset, split and class, beside the official counts.

    ``unavailable`` (from :func:`resolve_available`): datasets that could not be acquired get
    one row per split with ``files`` 0, ``source`` "none" and ``status`` "unavailable: <why>".

    Columns: dataset, split, class, files, bytes, official_count, skipped, skipped_why (the
    MRI sets' files skipped by :mod:`medrepro.data.images`' rule, and why), source, status, copy
    (which copy was read: :attr:`ResolvedDataset.copy`; for real data found but not used its
    folder), and the dataset's identity (:mod:`medrepro.data.identity`): ``split_sha256`` (the
    split's content hash), ``dataset_sha256`` (all splits present), ``hash_kind`` and
    ``version`` (the known published version it matches, or that it matches none). A resolved
    dataset that fell back to its phantom while real data with a missing split was found gets
    rows for both: the real partial data (``source`` the dataset id, ``files`` 0 and
    ``status`` "missing" for the missing split) and the phantom actually used.
    """
    import pandas as pd

    items = resolved.values() if isinstance(resolved, Mapping) else resolved
    rows = []
    for rd in items:
        sp = rd.spec
        blocks = []
        if rd.found_root is not None and rd.is_phantom:
            blocks.append((rd.found_root, rd.dataset_id, "found, not used", str(rd.found_root)))
        blocks.append((rd.root, rd.source, "used", rd.copy))
        for root, source, status, copy in blocks:
            present = splits_present(root, sp)
            ident = _identity_or_none(root, sp.id, source)
            for r in count_files(root, sp):
                official = sp.official_counts.get(r["split"], {}).get(r["class"])
                split_status = status if r["split"] in present else "missing"
                rows.append({"dataset": sp.id, **r, "official_count": official,
                             "source": source, "status": split_status, "copy": copy,
                             **_identity_columns(ident, r["split"])})
    for dataset_id, reason in (unavailable or {}).items():
        sp = spec(dataset_id)
        for split in sp.splits:
            rows.append({"dataset": sp.id, "split": split, "class": "all", "files": 0,
                         "bytes": None, "official_count": None, "source": "none",
                         "status": f"unavailable: {reason}", "copy": ""})
    df = pd.DataFrame(rows, columns=["dataset", "split", "class", "files", "bytes",
                                     "official_count", "skipped", "skipped_why", "source",
                                     "status", "copy", *IDENTITY_COLUMNS])
    df["skipped_why"] = df["skipped_why"].fillna("")
    return df.astype({"official_count": "Int64", "bytes": "Int64", "skipped": "Int64"})


IDENTITY_COLUMNS = ("split_sha256", "dataset_sha256", "hash_kind", "version")


def _identity_or_none(root: Path, dataset_id: str, source: str) -> dict | None:
    try:
        return identity.dataset_identity(root, dataset_id, source=source)
    except (identity.IdentityError, OSError):
        return None


def _identity_columns(ident: dict | None, split: str) -> dict:
    """The inventory's identity columns of one split (:mod:`medrepro.data.identity`)."""
    if ident is None:
        return dict.fromkeys(IDENTITY_COLUMNS, "")
    return {"split_sha256": ident["split_sha256"].get(split, ""),
            "dataset_sha256": ident["content_sha256"], "hash_kind": ident["hash_kind"],
            "version": ident["version"]}


def image_files(root: Path, dataset: str | DatasetSpec, *,
                splits: Iterable[str] | None = None) -> list[Path]:
    """Every data file of a resolved dataset (an id or its spec; sorted), optionally of some
    splits only."""
    sp = spec(dataset) if isinstance(dataset, str) else dataset
    wanted = tuple(splits) if splits is not None else sp.splits
    out: list[Path] = []
    for split in wanted:
        base = Path(root) / split
        if base.is_dir():
            out += [p for p in base.rglob("*") if sp.is_data_file(p.name) and p.is_file()]
    return sorted(out)


def acquired_table(resolved: Mapping[str, ResolvedDataset]):
    """One row per resolved dataset (:func:`resolve_available`): id, source, origin, the splits
    present (comma separated) and its notes (space separated)."""
    import pandas as pd

    return pd.DataFrame([{"dataset": rd.dataset_id, "source": rd.source, "origin": rd.origin,
                          "splits": ", ".join(rd.splits_present), "notes": " ".join(rd.notes)}
                         for rd in resolved.values()])


def plan(settings, ctx):
    """Notebook 01's part of a run's plan (``settings``: :class:`~medrepro.core.profiles.
    PhantomSizes`): its phantoms and downloads are the datasets' own writes, planned with every
    notebook's datasets; its time is network and disk bound, not projected."""
    from medrepro.core.planning import RowPlan

    return RowPlan(note="acquisition and audit are network and disk bound")
