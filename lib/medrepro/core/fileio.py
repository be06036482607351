"""Small file helpers shared by every writer: atomic writes so nothing half-written survives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed over it on success.

    On an exception (or a kill) the target is untouched: either the old file or the complete
    new one is there, never a partial write. Usage::

        with atomic_path(out) as tmp:
            np.save(tmp, array)
    """

    def __init__(self, path: str | os.PathLike, *, suffix: str = ".tmp"):
        self.path = Path(path)
        self.suffix = suffix

    def __enter__(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.suffix,
                                        dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


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


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte pieces."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
