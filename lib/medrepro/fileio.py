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
