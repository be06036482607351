"""The one rule for the image files of a brain-MRI folder: which are read, and why the others
are skipped.

Every reader of a user's MRI folder goes through :func:`scan` (the studies' listing
``brain_mri.list_images``, the inventory, the leakage audit, the sample figure), so a file is
either used everywhere or skipped everywhere with the same reason, before any training starts,
and ``tf.data`` never sees a file it cannot decode (``brain_mri.decode_files`` checks again).

A file is **used** when it is a regular file that Pillow identifies as JPEG, PNG, GIF, BMP or
WebP (the formats ``tf.io.decode_image`` decodes, whatever the name says: a PNG named ``.jpg``
is read as the PNG it is), declares at most ``PIL.Image.MAX_IMAGE_PIXELS`` pixels and decodes
completely (JPEGs draft-decoded at 1/8 scale, which still reads every byte). CMYK and 16-bit
images, alpha channels and animations are read as ``tf.io.decode_image(channels=3,
expand_animations=False)`` reads them: converted to RGB, 16-bit values scaled to 8 bits, the
alpha channel dropped, the first frame. Everything else is **skipped**, with a problem (one of
:data:`PROBLEMS`) and a detail: a directory or other non-file named like an image, a broken
link or link loop, an unreadable, empty, truncated or corrupt file, a file that is not an image,
an image in a format the pipeline cannot decode (TIFF, ...), a decompression bomb, a name that
is not an image's. Names starting with ``.`` are not looked at.

Checks are remembered in ``<cache root>/image_checks.csv`` by path, size and modification time,
so each file is decoded once, not once per study.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medrepro.core import paths
from medrepro.core.fileio import atomic_path
from medrepro.data import registry

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # the names a class folder's images have
DECODABLE = ("JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP")  # Pillow's names of tf's formats
RULE_VERSION = 1  # bump when the rule changes: remembered checks are then redone
CHECKS_CSV = "image_checks.csv"
PROBLEMS = ("not a file", "broken link", "unreadable", "empty file", "not an image",
            "unsupported format", "too large", "truncated or corrupt", "not an image name")
SCAN_COLUMNS = ["path", "split", "class_dir", "label"]
SKIP_COLUMNS = [*SCAN_COLUMNS, "problem", "detail"]

_memo: dict[tuple[str, int, int, str], tuple[str, str]] = {}  # this process's checks
_logged: set[str] = set()  # skipped files already logged by this process


@dataclass(frozen=True)
class ImageScan:
    """What :func:`scan` found: ``images`` (usable; columns path, split, class_dir, label) and
    ``skipped`` (the same columns plus problem and detail), both in split, class, name order."""

    images: pd.DataFrame
    skipped: pd.DataFrame

    def skips_by(self, *keys: str) -> pd.Series:
        """Skipped files counted by ``keys`` (e.g. ``"split", "class_dir"``)."""
        return self.skipped.groupby(list(keys)).size() if len(self.skipped) else pd.Series(
            dtype=int)


# ---------------------------------------------------------------------------- one file
def check_image(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(problem, detail)`` when the file at ``path`` must be skipped, None when it is used."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return ("broken link", "a link to nothing") if path.is_symlink() else (
            "not a file", "no longer there")
    except OSError as exc:  # ELOOP: a link loop; EACCES: a folder above it
        problem = "broken link" if path.is_symlink() else "unreadable"
        return problem, f"{type(exc).__name__}: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, "\
            "socket or device)"
        return "not a file", f"{kind} named like an image"
    if st.st_size == 0:
        return "empty file", "0 bytes"
    return _decode_check(path)


def _decode_check(path: Path) -> tuple[str, str] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, (w, h) = im.format or "?", im.size
                limit = Image.MAX_IMAGE_PIXELS
                if w < 1 or h < 1:
                    return "truncated or corrupt", f"declares a {w}×{h} image"
                if limit and w * h > limit:
                    return "too large", (f"declares {w}×{h} = {w * h:,} pixels, over Pillow's "
                                         f"MAX_IMAGE_PIXELS ({limit:,}): a decompression bomb?")
                if fmt not in DECODABLE:
                    return "unsupported format", (
                        f"a {fmt} image named {path.suffix or 'without suffix'}; the pipeline "
                        "decodes JPEG, PNG, GIF, BMP and WebP (convert it to one of them)")
                if fmt == "BMP" and im.info.get("compression", 0) not in (0, 3):
                    return "unsupported format", "a run-length-encoded BMP"
                if fmt in ("JPEG", "MPO"):
                    im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
                im.load()
    except PermissionError as exc:
        return "unreadable", f"PermissionError: {exc.strerror}"
    except Image.DecompressionBombError as exc:
        return "too large", str(exc)
    except UnidentifiedImageError:
        return "not an image", "Pillow does not recognise its content as any image format"
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
        # what Pillow's decoders raise for truncated and damaged data
        return "truncated or corrupt", f"{type(exc).__name__}: {exc}"
    return None


# ---------------------------------------------------------------------------- many files
def check_files(files: Iterable[str | os.PathLike], *, remember: bool = True) -> pd.DataFrame:
    """:func:`check_image` of each file: columns path (str), problem, detail ("" when used).

    Checks are remembered (in this process and in ``<cache root>/image_checks.csv``) by path,
    size and modification time; ``remember=False`` neither reads nor writes that file.
    """
    files = [str(f) for f in files]
    keys = [_key(f) for f in files]
    stored = _read_checks() if remember and any(k not in _memo for k in keys if k) else {}
    rows, new = [], 0
    for f, k in zip(files, keys):
        if k is None:  # no stat: checked every time (cheap: it fails at once)
            result = check_image(f) or ("", "")
        elif k in _memo:
            result = _memo[k]
        elif k in stored:
            result = _memo[k] = stored[k]
        else:
            result = _memo[k] = check_image(f) or ("", "")
            new += 1
        rows.append((f, *result))
    if remember and new:
        _write_checks({**stored, **{k: _memo[k] for k in keys if k in _memo}})
    return pd.DataFrame(rows, columns=["path", "problem", "detail"])


def unusable(files: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The rows of :func:`check_files` that must be skipped (empty when every file is usable)."""
    checked = check_files(files)
    return checked[checked["problem"] != ""]


def _key(path: str) -> tuple[str, int, int, str] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (path, int(st.st_size), int(st.st_mtime_ns), _rule())


def _rule() -> str:
    from PIL import Image

    return f"{RULE_VERSION}|{Image.MAX_IMAGE_PIXELS}"


def checks_path() -> Path:
    """``<cache root>/image_checks.csv``: the remembered checks."""
    return paths.cache_root() / CHECKS_CSV


def _read_checks() -> dict:
    path = checks_path()
    try:
        df = pd.read_csv(path, dtype={"path": str, "rule": str, "problem": str, "detail": str},
                         keep_default_na=False)
        return {(p, int(s), int(m), r): (pr, d) for p, s, m, r, pr, d in
                df[["path", "size", "mtime_ns", "rule", "problem", "detail"]].itertuples(
                    index=False)}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:  # damaged: redo all
        log.warning("%s: unreadable (%s); the images are checked again", path, exc)
        return {}


def _write_checks(checks: dict) -> None:
    rows = [(*k, *v) for k, v in checks.items() if os.path.exists(k[0])]
    df = pd.DataFrame(rows, columns=["path", "size", "mtime_ns", "rule", "problem", "detail"])
    with atomic_path(checks_path(), suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------- a dataset
def scan(root: str | os.PathLike, dataset_id: str, *,
         splits: Sequence[str] | None = None) -> ImageScan:
    """Every entry of ``root/<split>/<class>/`` of an MRI dataset (``registry`` layout), checked.

    ``label`` is the class folder's index in ``registry.spec(dataset_id).classes``. Skipped
    files are logged. A class folder that cannot be listed raises ``PermissionError`` /
    ``OSError`` naming it (a whole class would be missing).
    """
    sp = registry.spec(dataset_id)
    if sp.kind != "mri":
        raise registry.DatasetError(f"{dataset_id!r} is not an MRI dataset")
    root = Path(root)
    entries = []
    for split in (sp.splits if splits is None else splits):
        for label, cls in enumerate(sp.classes):
            for path in _entries(root / split / cls):
                entries.append({"path": path, "split": split, "class_dir": cls, "label": label})
    wanted = [e for e in entries if e["path"].suffix.lower() in IMAGE_SUFFIXES]
    checked = check_files([e["path"] for e in wanted])
    results = dict(zip(checked["path"], zip(checked["problem"], checked["detail"])))
    images, skipped = [], []
    for e in entries:
        if e["path"].suffix.lower() not in IMAGE_SUFFIXES:
            kind = "a folder" if e["path"].is_dir() else f"suffix {e['path'].suffix or '(none)'}"
            skipped.append({**e, "problem": "not an image name",
                            "detail": f"{kind}: not read (images are named {', '.join(IMAGE_SUFFIXES)})"})
            continue
        problem, detail = results[str(e["path"])]
        if problem:
            skipped.append({**e, "problem": problem, "detail": detail})
        else:
            images.append(e)
    for s in skipped:
        if str(s["path"]) not in _logged:  # once per process, not once per reader
            _logged.add(str(s["path"]))
            log.warning("skipped %s: %s (%s)", s["path"], s["problem"], s["detail"])
    return ImageScan(pd.DataFrame(images, columns=SCAN_COLUMNS),
                     pd.DataFrame(skipped, columns=SKIP_COLUMNS))


def _entries(folder: Path) -> list[Path]:
    """The entries of a class folder (not its hidden ones), sorted; [] when it is absent."""
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith("."))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    except OSError as exc:
        raise type(exc)(exc.errno, f"{folder}: cannot list the class folder ({exc.strerror})"
                        ) from None


def skips_table(skipped: pd.DataFrame, *, n_files: int | None = None) -> pd.DataFrame:
    """Skipped files per problem with up to three example names and one detail (as ``B.skips``),
    and a ``total`` row (0 when nothing was skipped); ``n_files``: how many were looked at."""
    rows = [{"problem": problem, "files": len(g),
             "examples": ", ".join(Path(p).name for p in g["path"][:3]),
             "detail": str(g["detail"].iloc[0])}
            for problem, g in skipped.groupby("problem", sort=True)] if len(skipped) else []
    rows.append({"problem": "total", "files": len(skipped), "examples": "",
                 "detail": "" if n_files is None else f"of {n_files} files"})
    return pd.DataFrame(rows, columns=["problem", "files", "examples", "detail"])


def as_rgb(path: str | os.PathLike) -> np.ndarray:
    """A checked image as uint8 ``(H, W, 3)`` through Pillow (figures; training reads with tf)."""
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            return np.repeat((arr / 257.0).clip(0, 255).astype(np.uint8)[..., None], 3, -1)
        return np.asarray(im.convert("RGB"))
