"""Small file helpers shared by every writer: atomic writes so nothing half-written survives, a
full disk reported as :class:`DiskFullError` (the folder, the bytes needed, the bytes free), and
JSON read back with :class:`CorruptFileError` naming a damaged file."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# errno values of "the disk (or the quota) is full"
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# how libraries that wrap the OS error (h5py, zipfile, papermill) still say it
_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "errno = 28")


class DiskFullError(OSError):
    """No space left while writing: the message names the folder, the bytes needed and free.

    Raised instead of the library's own error (OSError ENOSPC, h5py's, ...), so a notebook stops
    with a message a user can act on; every file written before is intact (atomic writes), and
    the next run, with space, continues where this one stopped.
    """

    def __init__(self, folder: str | os.PathLike, *, what: str = "", needed: int | None = None,
                 written: int | None = None):
        self.folder = Path(folder)
        self.needed, self.written = needed, written
        self.free = free_bytes(self.folder)
        need = (f"needs {needed:,} bytes" if needed else
                f"needs more than {written:,} bytes" if written else "needs more space")
        super().__init__(errno.ENOSPC, (
            f"disk full in {self.folder}: writing {what or 'a file'} {need}; {self.free:,} "
            "bytes free there. Every file written before is intact: free some space (or point "
            "MEDREPRO_DATA, MEDREPRO_CACHE_DIR or MEDREPRO_REPORTS to a bigger disk) and run "
            "again to continue where this run stopped"))

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # picklable across worker processes, with its message
        return (_rebuild_disk_full, (str(self.folder), self.strerror, self.needed, self.written))


def _rebuild_disk_full(folder: str, message: str, needed, written) -> DiskFullError:
    err = DiskFullError.__new__(DiskFullError)
    OSError.__init__(err, errno.ENOSPC, message)
    err.folder, err.needed, err.written, err.free = Path(folder), needed, written, 0
    return err


class CorruptFileError(ValueError):
    """A file the project wrote that cannot be read back (truncated, garbled): named."""


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes on the file system of ``folder`` (of its nearest existing parent); 0 if none."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return 0


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or quota is full."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if any(t in str(exc).lower() for t in _FULL_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_guard(folder: str | os.PathLike, *, what: str = "",
                    needed: int | None = None) -> Iterator[None]:
    """Turn a full-disk error raised inside the block into :class:`DiskFullError` for ``folder``
    (for writers that do not go through :class:`atomic_path`: phantoms, extraction)."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(folder, what=what, needed=needed) from exc
        raise


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed over it on success.

    On an exception (or a kill) the target is untouched: either the old file or the complete
    new one is there, never a partial write. A full disk raises :class:`DiskFullError` naming
    the folder and ``needed`` (bytes, when the caller knows them) or what was written. Usage::

        with atomic_path(out) as tmp:
            np.save(tmp, array)
    """

    def __init__(self, path: str | os.PathLike, *, suffix: str = ".tmp",
                 needed: int | None = None):
        self.path = Path(path)
        self.suffix = suffix
        self.needed = needed

    def __enter__(self) -> str:
        with disk_full_guard(self.path.parent, what=self.path.name, needed=self.needed):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.suffix,
                                            dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                os.replace(self.tmp, self.path)
                return
            except OSError as err:
                exc = err
        written = os.path.getsize(self.tmp) if os.path.exists(self.tmp) else 0
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
        if self.path.is_file():  # the new version needs at least about the old one's size
            written = max(written, self.path.stat().st_size)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(self.path.parent, what=self.path.name, needed=self.needed,
                                written=written) from exc
        if exc_type is None:
            raise exc


def write_json(path: str | os.PathLike, obj, *, indent: int | None = 2, sort_keys: bool = False,
               default=None) -> Path:
    """Write ``obj`` as JSON (plus a final newline) to ``path`` atomically; returns the path.

    The one JSON writer of the project: sidecars, run summaries, markers and caches' metadata.
    """
    import json

    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default)
                             + "\n", encoding="utf-8")
    return path


def read_json(path: str | os.PathLike, *, expect: type | None = dict):
    """The JSON value in ``path`` (of type ``expect``, when given).

    Raises ``FileNotFoundError`` when it is absent and :class:`CorruptFileError` naming the file
    when it is empty, truncated, garbled or of another type: a file the project wrote is never
    trusted half-read.
    """
    import json

    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: unreadable JSON ({type(exc).__name__}: {exc})") from None
    if expect is not None and not isinstance(value, expect):
        raise CorruptFileError(f"{path}: expected a JSON {expect.__name__}, found "
                               f"{type(value).__name__}")
    return value


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte pieces."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
