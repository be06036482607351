"""Acquisition: resumable verified HTTPS downloads, safe archive extraction, Kaggle.

- :func:`download_url` fetches a URL into ``dest`` through ``dest.part`` (resumed with an HTTP
  ``Range`` request after an interruption), checks the SHA-256, then renames into place and writes
  a JSON sidecar ``dest.json`` (url, size, sha256, whether it was verified against a published
  digest). A re-run with a complete, verified file does nothing. Where no digest is published
  (the MosMed zips) the computed one is recorded in the sidecar with ``sha256_verified: false``.
- :func:`extract_archive` extracts a zip or tar(.gz) into ``dest`` atomically (a temporary
  sibling renamed into place) and refuses, before writing anything, members that would land
  outside ``dest``: ``..`` components, absolute paths, symlinks and hard links pointing out,
  device files (:class:`UnsafeArchiveError` naming the member).
- :func:`acquire_kaggle` finds a dataset among the Kaggle inputs (``$MEDREPRO_KAGGLE_INPUT``,
  default ``/kaggle/input``), else downloads it with ``kagglehub`` and reads the folder kagglehub
  returns (its cache; inside Kaggle a mount). kagglehub finds the credentials itself; they are
  never printed or logged. kagglehub's errors (no credentials, credentials rejected, competition
  rules not accepted, no permission, not found, rate limited, a corrupt download) and an
  unreachable kaggle.com (offline, within ``CONNECT_TIMEOUT_S``) each raise a
  :class:`KaggleError` that says what to do. Inside Kaggle (and Colab) kagglehub attaches a
  dataset that is not an input yet and waits for its mount without a limit; here the wait ends
  after ``$MEDREPRO_KAGGLE_MOUNT_TIMEOUT_S`` (default ``MOUNT_WAIT_S``) with
  :class:`KaggleMountTimeout`, which says why.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import importlib
import json
import logging
import os
import posixpath
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from medrepro.core import paths, progress
from medrepro.core.fileio import sha256_file, write_json
from medrepro.data.registry import find_dataset_root

if TYPE_CHECKING:
    from medrepro.data.registry import DatasetSpec

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
CONNECT_TIMEOUT_S = 20.0  # per socket operation: an offline machine fails fast instead of hanging
DEFAULT_RETRIES = 3  # resumed attempts after an interrupted transfer
KAGGLE_HOST = "www.kaggle.com"
KAGGLE_INPUT = Path("/kaggle/input")
# Kaggle mounts inputs as /kaggle/input/<slug>/ (or <owner>/<slug>/ on a name clash) and, newer,
# /kaggle/input/datasets/<owner>/<slug>/ and /kaggle/input/competitions/<slug>/; the MosMed
# mirror's root is two folders further down (<release top>/studies/): five levels.
KAGGLE_INPUT_DEPTH = 5
# competition_download and Colab-secret API tokens; the folder it returns is what we read.
KAGGLEHUB_MIN_VERSION = "0.4.1"
MARKER = ".complete.json"
# How long kagglehub may wait for Kaggle (or Colab) to mount a dataset it asked to attach; the
# mount of an attached input appears within seconds, so minutes mean it is not coming.
MOUNT_WAIT_S = 300.0
MOUNT_WAIT_ENV = "MEDREPRO_KAGGLE_MOUNT_TIMEOUT_S"
# kagglehub's modules whose resolvers wait for a mount (``while not exists: time.sleep(5)``).
KAGGLEHUB_MOUNT_MODULES = ("kagglehub.kaggle_cache_resolver", "kagglehub.colab_cache_resolver")
USER_AGENT = "medrepro/0.1 (+reproduction kit)"


class DownloadError(RuntimeError):
    """An acquisition that failed (the message names the URL or file and what went wrong)."""


class ChecksumError(DownloadError):
    """A downloaded file whose SHA-256 differs from the published one."""


class DownloadInterrupted(DownloadError):
    """A transfer that broke off; the ``.part`` file is kept and the next call resumes it."""


class UnsafeArchiveError(DownloadError):
    """An archive member that would be written outside the destination folder."""


class KaggleError(DownloadError):
    """Kaggle acquisition failed: credentials, connectivity or competition rules."""


class KaggleMountTimeout(KaggleError):
    """kagglehub asked the platform to mount a dataset, and the mount did not appear in time."""


# --------------------------------------------------------------------------------------------
# sidecars

def sidecar_path(dest: str | os.PathLike) -> Path:
    """``<dest>.json``: the record of a completed download."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".json")


def read_sidecar(dest: str | os.PathLike) -> dict | None:
    try:
        return json.loads(sidecar_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(dest: str | os.PathLike, *, sha256: str | None = None) -> bool:
    """True if ``dest`` exists and matches its sidecar (size, mtime, and ``sha256`` if given).

    Trusts the sidecar's digest when size and mtime are unchanged, so a re-run does not re-hash
    multi-gigabyte files.
    """
    dest = Path(dest)
    meta = read_sidecar(dest)
    if meta is None or not dest.is_file():
        return False
    st = dest.stat()
    if st.st_size != meta.get("size") or st.st_mtime_ns != meta.get("mtime_ns"):
        return False
    return sha256 is None or meta.get("sha256") == sha256.lower()


# --------------------------------------------------------------------------------------------
# HTTP(S) downloads

def download_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                 retries: int = DEFAULT_RETRIES, timeout: float = CONNECT_TIMEOUT_S,
                 chunk: int = CHUNK_BYTES) -> Path:
    """Download ``url`` to ``dest``, resumable and verified; return ``dest``.

    Writes ``dest.part`` (resumed with ``Range: bytes=<n>-`` after an interruption, here up to
    ``retries`` times, or on the next call), then checks the size against ``Content-Length`` and
    the SHA-256 against ``sha256`` (when given), renames ``.part`` to ``dest`` and writes the
    sidecar. Skips the transfer when ``dest`` is already complete and verified.
    Raises :class:`DownloadError` (HTTP errors, unreachable host), :class:`ChecksumError` (the
    ``.part`` is deleted: its bytes are wrong) or :class:`DownloadInterrupted` (``.part`` kept).
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if is_complete(dest, sha256=expected):
        log.info("%s: complete and verified, skipped", dest.name)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _transfer(url, part, timeout=timeout, chunk=chunk)
            break
        except DownloadInterrupted:
            attempt += 1
            if attempt > retries:
                raise
            log.warning("%s: interrupted at %d bytes, resuming (attempt %d of %d)", url,
                        part.stat().st_size if part.exists() else 0, attempt, retries)
    digest = sha256_file(part, chunk=chunk)
    if expected is not None and digest != expected:
        part.unlink()
        raise ChecksumError(f"{url}: SHA-256 mismatch for {dest.name}: expected {expected}, got "
                            f"{digest} (partial file deleted; run again to re-download)")
    os.replace(part, dest)
    st = dest.stat()
    record = {"url": url, "file": dest.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
              "sha256": digest, "sha256_verified": expected is not None,
              "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if expected is None:
        record["note"] = ("no published SHA-256: this is the digest of the bytes received, "
                          "recorded so that later copies can be compared with it")
        log.warning("%s: no published SHA-256; computed %s recorded in %s", dest.name, digest,
                    sidecar_path(dest).name)
    write_json(sidecar_path(dest), record, indent=2)
    return dest


def _transfer(url: str, part: Path, *, timeout: float, chunk: int) -> None:
    """Append the rest of ``url`` to ``part``; DownloadInterrupted if the stream breaks off."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch, or the .part is bad: start over
            total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total == have:
                return
            part.unlink()
            return _transfer(url, part, timeout=timeout, chunk=chunk)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot connect ({exc.reason}); offline or host "
                            f"unreachable?") from None
    except (TimeoutError, ConnectionError) as exc:
        raise DownloadInterrupted(f"{url}: connection failed ({exc})") from None
    with response:
        if have and response.status == 206:
            mode = "ab"
            total = _total_from_content_range(response.headers.get("Content-Range"))
        else:  # 200: the server ignored the Range header; start over
            mode, have = "wb", 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        got = have
        bar = progress.byte_bar(total, desc=part.name.removesuffix(".part"), initial=have)
        with open(part, mode) as f, bar:
            while True:
                try:
                    block = response.read(chunk)
                except (http.client.HTTPException, OSError) as exc:  # reset, timeout, short read
                    raise DownloadInterrupted(
                        f"{url}: transfer broke off after {got} bytes ({type(exc).__name__}); "
                        f"{part.name} kept for resuming") from None
                if not block:
                    break
                f.write(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got != total:
        raise DownloadInterrupted(f"{url}: got {got} of {total} bytes; {part.name} kept for "
                                  "resuming")


def _total_from_content_range(value: str | None) -> int | None:
    # "bytes 100-199/200" or "bytes */200"
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


# --------------------------------------------------------------------------------------------
# archives

def _member_target(name: str) -> PurePosixPath:
    """The normalised relative path of an archive member; UnsafeArchiveError if it escapes."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeArchiveError(f"archive member {name!r}: absolute path")
    norm = posixpath.normpath(raw)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        raise UnsafeArchiveError(f"archive member {name!r}: '..' leads outside the destination")
    return PurePosixPath(norm)


def _link_inside(member: PurePosixPath, target: str, *, hard: bool) -> bool:
    """Whether a link at ``member`` pointing to ``target`` stays inside the destination.

    Symlink targets are relative to the link's folder; tar hard-link targets to the archive root.
    """
    t = target.replace("\\", "/")
    if t.startswith("/") or (len(t) > 1 and t[1] == ":"):
        return False
    base = "" if hard else str(member.parent)
    norm = posixpath.normpath(posixpath.join(base, t)) if base not in ("", ".") else \
        posixpath.normpath(t)
    return not (norm == ".." or norm.startswith("../"))


def _plan_zip(zf: zipfile.ZipFile) -> list[tuple[str, zipfile.ZipInfo, PurePosixPath, str]]:
    plan = []
    for info in zf.infolist():
        target = _member_target(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            link = zf.read(info).decode("utf-8", "surrogateescape")
            if not _link_inside(target, link, hard=False):
                raise UnsafeArchiveError(f"archive member {info.filename!r}: symlink to {link!r} "
                                         "points outside the destination")
            plan.append(("symlink", info, target, link))
        elif info.is_dir():
            plan.append(("dir", info, target, ""))
        else:
            plan.append(("file", info, target, ""))
    return plan


def _plan_tar(tf: tarfile.TarFile) -> list[tuple[str, tarfile.TarInfo, PurePosixPath, str]]:
    plan = []
    for m in tf.getmembers():
        target = _member_target(m.name)
        if m.issym():
            if not _link_inside(target, m.linkname, hard=False):
                raise UnsafeArchiveError(f"archive member {m.name!r}: symlink to {m.linkname!r} "
                                         "points outside the destination")
            plan.append(("symlink", m, target, m.linkname))
        elif m.islnk():
            if not _link_inside(target, m.linkname, hard=True):
                raise UnsafeArchiveError(f"archive member {m.name!r}: hard link to "
                                         f"{m.linkname!r} points outside the destination")
            plan.append(("hardlink", m, target, str(_member_target(m.linkname))))
        elif m.isdir():
            plan.append(("dir", m, target, ""))
        elif m.isfile():
            plan.append(("file", m, target, ""))
        else:
            raise UnsafeArchiveError(f"archive member {m.name!r}: device, FIFO or other special "
                                     "file refused")
    return plan


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a ``.zip``/``.tar``/``.tar.gz``/``.tgz`` into the new folder ``dest``; return it.

    Every member is checked before anything is written (:class:`UnsafeArchiveError` names the
    first bad one). Extraction goes into a temporary sibling of ``dest``, renamed to ``dest`` at
    the end, so ``dest`` either does not exist or is complete. Symlinks are created last, and
    every write is checked to resolve inside the temporary folder. ``dest`` must not exist.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise DownloadError(f"{dest}: already exists; refusing to extract {archive.name} over it")
    if zipfile.is_zipfile(archive):
        opener, kind = zipfile.ZipFile, "zip"
    elif tarfile.is_tarfile(archive):
        opener, kind = tarfile.open, "tar"
    else:
        raise DownloadError(f"{archive}: not a zip or tar archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with opener(archive) as arc:
        plan = _plan_zip(arc) if kind == "zip" else _plan_tar(arc)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extract", dir=dest.parent))
        try:
            _write_plan(arc, kind, plan, tmp)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _write_plan(arc, kind: str, plan: list, tmp: Path) -> None:
    top = os.path.realpath(tmp)

    def inside(path: Path) -> Path:
        real = os.path.realpath(path.parent)
        if real != top and not real.startswith(top + os.sep):
            raise UnsafeArchiveError(f"archive member {str(path.relative_to(tmp))!r}: its folder "
                                     "resolves outside the destination")
        return path

    order = {"dir": 0, "file": 1, "hardlink": 2, "symlink": 3}
    for what, member, target, link in sorted(plan, key=lambda p: order[p[0]]):
        out = tmp / target
        if what == "dir":
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        inside(out)
        if what == "file":
            src = arc.open(member) if kind == "zip" else arc.extractfile(member)
            with src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, CHUNK_BYTES)
        elif what == "hardlink":
            source = tmp / link
            if not source.is_file():
                raise UnsafeArchiveError(f"archive member {member.name!r}: hard link to missing "
                                         f"{link!r}")
            shutil.copyfile(source, out)  # a copy: no link shares an inode with anything
        else:
            os.symlink(link, out)


# --------------------------------------------------------------------------------------------
# Kaggle

def kaggle_input_dir() -> Path:
    """``$MEDREPRO_KAGGLE_INPUT`` or ``/kaggle/input`` (the inputs of a Kaggle notebook)."""
    env = os.environ.get("MEDREPRO_KAGGLE_INPUT")
    return Path(env) if env else KAGGLE_INPUT


def on_kaggle() -> bool:
    """True inside a Kaggle notebook (``KAGGLE_KERNEL_RUN_TYPE`` is set there)."""
    from medrepro.core import device

    return device.detect_platform() == device.KAGGLE


def check_kaggle_reachable(*, host: str | None = None, port: int = 443,
                           timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`KaggleError` quickly if ``host`` (``KAGGLE_HOST``) cannot be reached.

    ``$MEDREPRO_KAGGLE_HOST`` (``host`` or ``host:port``) replaces it, for tests.
    """
    override = os.environ.get("MEDREPRO_KAGGLE_HOST")
    if host is None and override:
        host, _, port_text = override.partition(":")
        port = int(port_text) if port_text else port
    host = host or KAGGLE_HOST
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise KaggleError(f"cannot reach {host} ({exc.__class__.__name__}: {exc}); this machine "
                          "looks offline. Use data='phantom', a local folder of datasets, or "
                          "run on Kaggle/Colab with internet") from None


def acquire_kaggle(sp: DatasetSpec) -> tuple[Path | None, str]:
    """Find or download dataset ``sp`` for ``data="kaggle"``; return ``(root, origin)``.

    Order: the Kaggle inputs (``$MEDREPRO_KAGGLE_INPUT``, default ``/kaggle/input``; origin
    ``kaggle-input``), under the dataset's id or one of its aliases (Kaggle's folder names,
    MosMed mirrors) or found by its folder layout; for MosMed a completed earlier download in
    ``data/raw/mosmed/`` or a new one from the release URLs (``url``); else kagglehub
    (``kagglehub``), whose returned folder is read in place. Raises
    :class:`KaggleError`/:class:`DownloadError` with the reason (offline, credentials rejected,
    competition rules not accepted).
    """
    found = find_kaggle_input(sp)
    if found is not None:
        return found, "kaggle-input"
    if sp.urls:
        dest = paths.raw_dir(sp.id)
        if (dest / MARKER).is_file():
            found = find_dataset_root(dest, sp)
            if found is not None:
                return found, "url"
        return download_url_dataset(sp), "url"
    return _download_kaggle(sp), "kagglehub"


def kaggle_mounts(sp: DatasetSpec) -> list[str]:
    """The folders under the Kaggle inputs where ``sp`` (or a mirror of it) is mounted when
    attached: ``<slug>``, ``<owner>/<slug>``, ``datasets/<owner>/<slug>`` per dataset, and
    ``<slug>``, ``competitions/<slug>`` for a competition."""
    out = []
    for handle in filter(None, (sp.kaggle_dataset, *sp.kaggle_mirrors)):
        slug = handle.split("/")[-1]
        out += [slug, handle, f"datasets/{handle}"]
    if sp.kaggle_competition:
        out += [sp.kaggle_competition, f"competitions/{sp.kaggle_competition}"]
    return out


def find_kaggle_input(sp: DatasetSpec, inputs: Path | None = None) -> Path | None:
    """The root of ``sp`` among the Kaggle inputs (``$MEDREPRO_KAGGLE_INPUT``, default
    ``/kaggle/input``): under its mount folders (:func:`kaggle_mounts`), else found by its
    layout up to ``KAGGLE_INPUT_DEPTH`` levels down. None when it is not attached."""
    inputs = kaggle_input_dir() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return None
    for mount in kaggle_mounts(sp):
        if (inputs / mount).is_dir():
            found = find_dataset_root(inputs / mount, sp)
            if found is not None:
                return found
    return find_dataset_root(inputs, sp, depth=KAGGLE_INPUT_DEPTH)


def download_url_dataset(sp: DatasetSpec) -> Path:
    """Download and extract every URL of ``sp`` (MosMed) into ``data/raw/<id>/<split>/``."""
    dest = paths.raw_dir(sp.id)
    for src in sp.urls:
        if (dest / src.split).is_dir():
            continue
        archive = download_url(src.url, paths.downloads_dir() / src.filename, sha256=src.sha256)
        staging = dest / f".extract-{src.split}"
        shutil.rmtree(staging, ignore_errors=True)
        extract_archive(archive, staging)
        inner = next((p for p in [staging / src.split, *staging.rglob(src.split)]
                      if p.is_dir()), None)
        if inner is None:
            raise DownloadError(f"{archive}: no folder {src.split}/ inside the archive")
        os.replace(inner, dest / src.split)
        shutil.rmtree(staging, ignore_errors=True)
    _write_marker(dest, {"dataset_id": sp.id, "urls": [u.url for u in sp.urls]})
    return dest


def _write_marker(dest: Path, record: dict) -> None:
    record = {**record, "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_json(dest / MARKER, record, indent=2)


def _download_kaggle(sp: DatasetSpec) -> Path:
    """Fetch ``sp`` with kagglehub and return the dataset root inside the folder it returns.

    kagglehub finds the credentials itself (a Kaggle notebook's own token, ``KAGGLE_API_TOKEN``,
    ``KAGGLE_USERNAME``/``KAGGLE_KEY``, ``kaggle.json``, Colab secrets in the Colab UI's kernel)
    and caches the files (``$KAGGLEHUB_CACHE``, default ``~/.cache/kagglehub``; inside Kaggle a
    mount under ``/kaggle/input``), so a re-run does not download again. Nothing is copied.
    """
    what = (f"competition {sp.kaggle_competition}" if sp.kaggle_competition
            else f"dataset {sp.kaggle_dataset}")
    if not on_kaggle():  # in a Kaggle notebook kagglehub attaches data without the public API
        check_kaggle_reachable()
    limit = float(os.environ.get(MOUNT_WAIT_ENV) or MOUNT_WAIT_S)
    try:
        with bounded_mount_wait(limit):
            returned = Path(_kaggle_fetch(sp))
    except KaggleMountTimeout as exc:
        raise KaggleMountTimeout(f"{sp.id}: {exc} for the {what}: attach it with 'Add input' "
                                 "(it is then read in place), check that the notebook has "
                                 "Internet on, or set DISABLE_KAGGLE_CACHE=1 to download it "
                                 "over HTTP instead (it then needs the disk space)") from None
    except KaggleError:
        raise
    except Exception as exc:  # kagglehub raises many types; classify, never echo its text
        raise _classify_kaggle_error(sp, what, exc) from None
    found = find_dataset_root(returned, sp)
    if found is None:
        raise DownloadError(f"{sp.id}: kagglehub returned {returned} for the {what}, but no "
                            f"folder with the layout {sp.layout} was found in it")
    log.info("%s: kagglehub %s -> %s", sp.id, what, found)
    return found


class _BoundedSleep:
    """Stands in for the ``time`` module of kagglehub's mount resolvers: the same module, but its
    ``sleep`` raises :class:`KaggleMountTimeout` once ``limit`` seconds have been slept."""

    def __init__(self, limit: float):
        self.limit, self.slept = float(limit), 0.0

    def sleep(self, seconds: float) -> None:
        if self.slept >= self.limit:
            mount = os.environ.get("KAGGLE_CACHE_MOUNT_FOLDER", str(KAGGLE_INPUT))
            raise KaggleMountTimeout(f"kagglehub waited {self.slept:.0f} s for the platform to "
                                     f"mount it under {mount} and it did not appear "
                                     f"({MOUNT_WAIT_ENV}={self.limit:g})")
        step = max(0.0, min(float(seconds), self.limit - self.slept))
        time.sleep(step)
        self.slept += max(step, 1e-3)

    def __getattr__(self, name: str):
        return getattr(time, name)


@contextlib.contextmanager
def bounded_mount_wait(limit: float):
    """Within the block, kagglehub's wait for a mount (``KAGGLEHUB_MOUNT_MODULES``) ends after
    ``limit`` seconds with :class:`KaggleMountTimeout`; downloads over HTTP are not bounded."""
    patched = []
    for name in KAGGLEHUB_MOUNT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # another kagglehub: its wait cannot be bounded from here
            continue
        if getattr(module, "time", None) is time:
            patched.append(module)
    shim = _BoundedSleep(limit)
    for module in patched:
        module.time = shim
    try:
        yield shim
    finally:
        for module in patched:
            module.time = time


def _kaggle_fetch(sp: DatasetSpec) -> str:
    """``kagglehub.competition_download`` / ``dataset_download`` of ``sp``: the folder returned."""
    kagglehub = require_kagglehub()
    if sp.kaggle_competition:
        return kagglehub.competition_download(sp.kaggle_competition)
    return kagglehub.dataset_download(sp.kaggle_dataset)


def require_kagglehub():
    """Import kagglehub, checking it is at least ``KAGGLEHUB_MIN_VERSION`` (KaggleError else)."""
    try:
        import kagglehub
    except ImportError:
        raise KaggleError(f"kagglehub is not installed: pip install 'kagglehub>="
                          f"{KAGGLEHUB_MIN_VERSION}'") from None
    have = getattr(kagglehub, "__version__", "0")
    if _version_tuple(have) < _version_tuple(KAGGLEHUB_MIN_VERSION):
        raise KaggleError(f"kagglehub {have} is too old (competition downloads and Colab-secret "
                          f"API tokens need >= {KAGGLEHUB_MIN_VERSION}): pip install -U kagglehub")
    return kagglehub


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of a ``requests.HTTPError`` (kagglehub's ``KaggleApiHTTPError`` and
    ``ColabHTTPError`` are ones), else None."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _classify_kaggle_error(sp: DatasetSpec, what: str, exc: Exception) -> KaggleError:
    """A :class:`KaggleError` for kagglehub's exception ``exc`` saying what to do. By class and
    HTTP status (kagglehub >= 0.4 raises ``KaggleApiHTTPError`` for every HTTP error, 401, 403,
    404 and 429 alike), else by its text; never with its text (it may quote a URL with a key)."""
    name = type(exc).__name__
    status = _http_status(exc)
    text = str(exc).lower() if status is None else ""
    credentials_help = ("On Colab start the run with medrepro.run.hosted.run_all(...) in a "
                        "notebook cell (it hands your Colab secrets KAGGLE_API_TOKEN, or "
                        "KAGGLE_USERNAME and KAGGLE_KEY, to the run); elsewhere set "
                        "KAGGLE_API_TOKEN or put kaggle.json in ~/.kaggle/; inside a Kaggle "
                        "notebook attach the data with 'Add input'")
    if name == "UnauthenticatedError":
        return KaggleError(f"{sp.id}: no Kaggle credentials reached this run, and the {what} "
                           f"needs them. {credentials_help}")
    if status == 429 or "429" in text or "too many requests" in text:
        return KaggleError(f"{sp.id}: Kaggle is rate-limiting these requests (HTTP 429) for the "
                           f"{what}: wait a few minutes and run again (finished work is kept); "
                           "an attached input needs no requests")
    if status == 403 or "403" in text or "forbidden" in text or "rules" in text:
        if sp.kaggle_competition:
            return KaggleError(
                f"{sp.id}: Kaggle refused the {what} (HTTP 403): accept the competition rules "
                f"first at https://www.kaggle.com/competitions/{sp.kaggle_competition}/rules "
                "while signed in with the account of your credentials, then run again")
        return KaggleError(f"{sp.id}: Kaggle refused the {what} (HTTP 403: no permission; it "
                           "is private or asks for consent on its page): open "
                           f"https://www.kaggle.com/datasets/{sp.kaggle_dataset} signed in with "
                           "the account of your credentials, then run again")
    if status == 401 or "401" in text or "unauthorized" in text or "credentials" in text:
        return KaggleError(f"{sp.id}: Kaggle refused the {what} (HTTP 401: no or invalid "
                           f"credentials). {credentials_help}; a token that was revoked or "
                           "expired must be created again (kaggle.com → Settings → API)")
    if status == 404 or name == "NotFoundError" or "404" in text or "not found" in text:
        return KaggleError(f"{sp.id}: Kaggle has no {what} (HTTP 404): it was renamed, made "
                           "private or removed; attach a copy with 'Add input', or pass --data "
                           "PATH with a folder that holds it")
    if name == "DataCorruptionError":
        return KaggleError(f"{sp.id}: the download of the {what} was corrupt (checksum): delete "
                           "its folder in kagglehub's cache ($KAGGLEHUB_CACHE, default "
                           "~/.cache/kagglehub) and run again")
    if name in ("ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout"):
        return KaggleError(f"{sp.id}: the connection to Kaggle failed for the {what} "
                           f"({name}): check that this machine (the notebook's Internet "
                           "setting) is online, then run again")
    return KaggleError(f"{sp.id}: downloading the {what} failed ({name}"
                       + (f", HTTP {status}" if status else "") + ")")
