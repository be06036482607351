"""One writer at a time: a lock per folder a run writes (a training run, a cache, a phantom, a
report folder), so a notebook open interactively while ``./run_all.sh`` runs never writes the
same cache or checkpoint as the run.

:func:`hold` takes the target's lock file (``filelock``: ``fcntl`` locks, released by the OS
when the holder dies, so a killed run leaves no stale lock) and notes who holds it beside it,
both in one folder, ``<data>/.locks/`` (:func:`lock_path`). The second process waits (caches:
it then finds the first one's result) or stops at once with :class:`LockedError` (training
runs: it names the holder), as the caller chooses. Locks live in the data folder, never beside
the input data, which may be read-only; processes that share a data folder see each other's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from medrepro.core import paths
from medrepro.core.fileio import read_json, write_json

# How long a process waits for a cache another process is building ($MEDREPRO_LOCK_WAIT, s).
DEFAULT_WAIT_S = float(os.environ.get("MEDREPRO_LOCK_WAIT", "3600"))
NOTICE_AFTER_S = 2.0  # say that we wait when the lock is not free within this time
LOCKS_DIR = ".locks"  # under the data folder


class LockedError(RuntimeError):
    """The folder is being written by another process (the message names it and the holder)."""


def lock_path(target: str | os.PathLike) -> Path:
    """``<data>/.locks/<name>-<key>.lock`` for the folder or file ``target`` (``key`` hashes
    its absolute path): one folder of lock files, none among a run's outputs."""
    target = Path(target).expanduser().absolute()
    key = hashlib.sha1(str(target).encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in target.name)[:60]
    return paths.data_dir() / LOCKS_DIR / f"{safe}-{key}.lock"


def holder(target: str | os.PathLike) -> str:
    """Who holds ``target``'s lock, as noted when it was taken ("pid 12 on host since ...")."""
    try:
        info = read_json(lock_path(target).with_suffix(".lock.json"))
    except (OSError, ValueError):
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
            + (f" ({info['what']})" if info.get("what") else ""))


@contextlib.contextmanager
def hold(target: str | os.PathLike, *, what: str, wait: float | None = None) -> Iterator[Path]:
    """Hold the lock of ``target`` for the block; yields the lock file's path.

    ``wait``: seconds to wait for another holder (None: :data:`DEFAULT_WAIT_S`; 0: stop at
    once); then :class:`LockedError` names ``target``, ``what`` it guards and the holder.
    Re-entrant within a process (a nested ``hold`` of the same target returns at once).
    """
    import filelock

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), is_singleton=True)
    wait = DEFAULT_WAIT_S if wait is None else float(wait)
    outer = not lock.is_locked
    try:
        lock.acquire(timeout=min(wait, NOTICE_AFTER_S) if wait > 0 else 0)
    except filelock.Timeout:
        if wait <= NOTICE_AFTER_S:
            raise LockedError(_busy(target, what, wait)) from None
        print(f"waiting for {target} ({what}): in use by {holder(target)}", file=sys.stderr,
              flush=True)
        try:
            lock.acquire(timeout=wait - NOTICE_AFTER_S)
        except filelock.Timeout:
            raise LockedError(_busy(target, what, wait)) from None
    info = path.with_suffix(".lock.json")
    try:
        if outer:
            write_json(info, {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                              "since": dt.datetime.now().isoformat(timespec="seconds")})
        yield path
    finally:
        if outer:
            info.unlink(missing_ok=True)
        lock.release()


def _busy(target, what: str, wait: float) -> str:
    waited = f" (waited {wait:.0f} s)" if wait > 0 else ""
    return (f"{target} is in use by {holder(target)}{waited}: {what} is being written by another "
            "run (a notebook open while ./run_all.sh runs?). Wait for it to finish or stop it, "
            "then run this again; nothing was written here by this process")


def holding(target_arg: str, *, what: str, wait: float | None = None):
    """Decorator: run the function while holding the lock of its keyword ``target_arg`` (a
    path), e.g. ``@holding("run_dir", what="training run", wait=0)``."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with hold(kwargs[target_arg], what=what, wait=wait):
                return fn(*args, **kwargs)
        return wrapper
    return decorate
