"""medrepro.data.download against a real HTTP server on 127.0.0.1, and crafted malicious archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from medrepro.data import download, registry
from medrepro.data.download import (ChecksumError, DownloadError, DownloadInterrupted, KaggleError,
                               UnsafeArchiveError)

SERVER_LIFETIME_S = 30.0  # the server shuts itself down after this, whatever the test does
PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """GET with Range support; ``server.drop_after`` makes the next response break off."""

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if srv.drop_after is not None:
            cut, srv.drop_after = srv.drop_after, None
            self.wfile.write(chunk[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the transfer breaks off midway
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files = {"/data.bin": PAYLOAD}
    srv.requests = []
    srv.drop_after = None
    srv.honour_range = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stopper = threading.Timer(SERVER_LIFETIME_S, srv.shutdown)
    stopper.daemon = True
    stopper.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    stopper.cancel()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def test_download_verifies_writes_sidecar_and_skips_when_complete(server, tmp_path):
    dest = tmp_path / "d" / "data.bin"
    out = download.download_url(server.url + "/data.bin", dest, sha256=PAYLOAD_SHA)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("data.bin.part").exists()
    meta = json.loads((tmp_path / "d" / "data.bin.json").read_text())
    assert meta["sha256"] == PAYLOAD_SHA and meta["sha256_verified"] is True
    assert meta["size"] == len(PAYLOAD)
    n = len(server.requests)
    download.download_url(server.url + "/data.bin", dest, sha256=PAYLOAD_SHA)
    assert len(server.requests) == n, "a complete, verified file was downloaded again"


def test_unknown_digest_is_computed_and_recorded_not_verified(server, tmp_path):
    dest = download.download_url(server.url + "/data.bin", tmp_path / "x.bin", sha256=None)
    meta = download.read_sidecar(dest)
    assert meta["sha256"] == PAYLOAD_SHA
    assert meta["sha256_verified"] is False and "no published SHA-256" in meta["note"]


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError, match=r"SHA-256 mismatch for data\.bin: expected 0{64}"):
        download.download_url(server.url + "/data.bin", dest, sha256="0" * 64)
    assert sorted(os.listdir(tmp_path)) == []


def test_interrupted_transfer_keeps_part_and_resumes_with_range(server, tmp_path):
    dest = tmp_path / "data.bin"
    cut = 120_000
    server.drop_after = cut
    with pytest.raises(DownloadInterrupted, match="kept for resuming"):
        download.download_url(server.url + "/data.bin", dest, sha256=PAYLOAD_SHA, retries=0)
    part = tmp_path / "data.bin.part"
    assert part.stat().st_size == cut and not dest.exists()
    download.download_url(server.url + "/data.bin", dest, sha256=PAYLOAD_SHA, retries=0)
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests[-1]["range"] == f"bytes={cut}-"


def test_interruption_is_retried_within_one_call(server, tmp_path):
    server.drop_after = 50_000
    dest = download.download_url(server.url + "/data.bin", tmp_path / "d.bin",
                                 sha256=PAYLOAD_SHA, retries=2)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [None, "bytes=50000-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    (tmp_path / "d.bin.part").write_bytes(PAYLOAD[:1000])
    server.honour_range = False
    dest = download.download_url(server.url + "/data.bin", tmp_path / "d.bin", sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_finished(server, tmp_path):
    (tmp_path / "d.bin.part").write_bytes(PAYLOAD)
    dest = download.download_url(server.url + "/data.bin", tmp_path / "d.bin", sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD and server.requests[-1]["range"] == f"bytes={len(PAYLOAD)}-"


def test_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.zip: HTTP 404"):
        download.download_url(server.url + "/missing.zip", tmp_path / "m.zip")
    assert not any(tmp_path.iterdir())


def test_unreachable_host_fails_fast(tmp_path):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot connect"):
        download.download_url(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", timeout=5)


# --------------------------------------------------------------------------------------------
# archives

def _zip(path: Path, members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    symlinks = symlinks or {}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    data = data or {}
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
            tf.addfile(m, io.BytesIO(payload) if payload is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = linkname
    return m


def test_extract_zip_and_tar_with_inside_links(tmp_path):
    z = _zip(tmp_path / "ok.zip", {"a/b.txt": b"hello", "top.txt": b"t"},
             symlinks={"a/link": "b.txt"})
    out = download.extract_archive(z, tmp_path / "zout")
    assert (out / "a" / "b.txt").read_bytes() == b"hello"
    assert os.readlink(out / "a" / "link") == "b.txt" and (out / "a" / "link").read_bytes() == b"hello"
    t = _tar(tmp_path / "ok.tar.gz",
             [_info("d", tarfile.DIRTYPE), _info("d/f.txt"), _info("d/hard", tarfile.LNKTYPE, "d/f.txt"),
              _info("d/soft", tarfile.SYMTYPE, "f.txt")], {"d/f.txt": b"xyz"})
    out = download.extract_archive(t, tmp_path / "tout")
    assert (out / "d" / "hard").read_bytes() == b"xyz" and (out / "d" / "soft").read_bytes() == b"xyz"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary left behind"


def test_extract_refuses_existing_destination(tmp_path):
    z = _zip(tmp_path / "ok.zip", {"x.txt": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match="already exists"):
        download.extract_archive(z, tmp_path / "out")


@pytest.mark.parametrize("members, symlinks, bad, why", [
    ({"ok.txt": b"1", "../evil.txt": b"x"}, {}, "../evil.txt", "'..'"),
    ({"a/../../evil.txt": b"x"}, {}, "a/../../evil.txt", "'..'"),
    ({"/tmp/evil.txt": b"x"}, {}, "/tmp/evil.txt", "absolute"),
    ({"ok.txt": b"1"}, {"link": "../outside"}, "link", "symlink"),
    ({"ok.txt": b"1"}, {"d/link": "/etc"}, "d/link", "symlink"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-absolute"])
def test_malicious_zip_is_refused_before_writing(tmp_path, members, symlinks, bad, why):
    arc = _zip(tmp_path / "bad.zip", members, symlinks=symlinks)
    with pytest.raises(UnsafeArchiveError, match=f"{bad!r}.*{why}" if why != "symlink" else
                       f"{bad!r}: symlink"):
        download.extract_archive(arc, tmp_path / "box" / "out")
    assert not (tmp_path / "box" / "out").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["bad.zip", "box"])


@pytest.mark.parametrize("members, bad, why", [
    ([_info("ok.txt"), _info("../evil.txt")], "../evil.txt", "'..'"),
    ([_info("/abs/evil.txt")], "/abs/evil.txt", "absolute"),
    ([_info("link", tarfile.SYMTYPE, "../../etc/passwd")], "link", "symlink"),
    ([_info("link", tarfile.SYMTYPE, "/etc/passwd")], "link", "symlink"),
    ([_info("hard", tarfile.LNKTYPE, "../outside.txt")], "hard", "hard link"),
    ([_info("hard", tarfile.LNKTYPE, "/etc/passwd")], "hard", "hard link"),
    ([_info("dev", tarfile.CHRTYPE)], "dev", "special file"),
], ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out",
        "hardlink-absolute", "device"])
def test_malicious_tar_is_refused_before_writing(tmp_path, members, bad, why):
    arc = _tar(tmp_path / "bad.tar.gz", members,
               {m.name: b"x" for m in members if m.type == tarfile.REGTYPE})
    with pytest.raises(UnsafeArchiveError, match=f"{bad!r}.*{why}"):
        download.extract_archive(arc, tmp_path / "box" / "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["bad.tar.gz", "box"])


def test_not_an_archive(tmp_path):
    f = tmp_path / "x.zip"
    f.write_bytes(b"not an archive")
    with pytest.raises(DownloadError, match="not a zip or tar"):
        download.extract_archive(f, tmp_path / "out")


# --------------------------------------------------------------------------------------------
# Kaggle

@pytest.fixture
def no_kaggle(monkeypatch, tmp_path):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR",
                "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "COLAB_RELEASE_TAG", "COLAB_GPU"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))


class StubKagglehub:
    """Stands in for kagglehub: records calls, returns its own cache folder (never output_dir)."""

    __version__ = "1.0.3"

    def __init__(self, cache: Path, *, error: Exception | None = None):
        self.cache, self.error, self.calls = cache, error, []

    def _fetch(self, kind: str, handle: str, kwargs: dict) -> str:
        self.calls.append((kind, handle, kwargs))
        if self.error is not None:
            raise self.error
        sp = next(s for s in registry.REGISTRY.values()
                  if handle in (s.kaggle_dataset, s.kaggle_competition))
        folder = self.cache / kind / handle / "versions" / "3"
        for split in sp.splits:
            for cls in sp.classes:
                (folder / split / cls).mkdir(parents=True, exist_ok=True)
                (folder / split / cls / "x.jpg").write_bytes(b"jpg")
        return str(folder)

    def dataset_download(self, handle, path=None, **kwargs):
        return self._fetch("datasets", handle, kwargs)

    def competition_download(self, handle, path=None, **kwargs):
        return self._fetch("competitions", handle, kwargs)


@pytest.fixture
def stub_hub(monkeypatch, tmp_path):
    hub = StubKagglehub(tmp_path / "kagglehub-cache")
    monkeypatch.setitem(__import__("sys").modules, "kagglehub", hub)
    monkeypatch.setattr(download, "check_kaggle_reachable", lambda **k: None)
    return hub


def test_kagglehub_returned_path_is_read_in_place(no_kaggle, stub_hub, tmp_path):
    from medrepro.data import datasets

    rd = datasets.resolve("brain_tumor_masoud", data="kaggle", profile="smoke")
    assert rd.origin == "kagglehub" and not rd.is_phantom
    assert rd.root == (stub_hub.cache / "datasets" / "masoudnickparvar/brain-tumor-mri-dataset"
                       / "versions" / "3").resolve()
    _, handle, kwargs = stub_hub.calls[0]
    assert handle == "masoudnickparvar/brain-tumor-mri-dataset" and "output_dir" not in kwargs
    assert not (tmp_path / "data" / "raw" / "brain_tumor_masoud").exists()  # nothing copied


def test_no_credentials_precheck_refuses_what_kagglehub_accepts(no_kaggle, stub_hub):
    """No env vars, no kaggle.json (e.g. Colab secrets): kagglehub decides, not us."""
    from medrepro.data import datasets

    rd = datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")
    assert not rd.is_phantom and stub_hub.calls[0][1] == "sartajbhuvaji/brain-tumor-classification-mri"


def test_rejected_credentials_are_explained_never_echoed(no_kaggle, stub_hub, monkeypatch):
    from medrepro.data import datasets

    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-k3y")
    stub_hub.error = RuntimeError("401 Client Error: Unauthorized (user someone, key s3cr3t-k3y)")
    with pytest.raises(KaggleError, match="no or invalid credentials.*KAGGLE_API_TOKEN") as err:
        datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")
    assert "s3cr3t" not in str(err.value) and "someone" not in str(err.value)


def test_kaggle_offline_fails_fast_with_clear_message(no_kaggle, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-k3y")

    def refuse(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(download.socket, "create_connection", refuse)
    with pytest.raises(KaggleError, match="looks offline") as err:
        download.acquire_kaggle(registry.spec("rsna_ich"))
    assert "s3cr3t" not in str(err.value)


def test_inside_kaggle_kagglehub_attaches_without_a_reachability_check(no_kaggle, monkeypatch,
                                                                       tmp_path):
    from medrepro.data import datasets

    hub = StubKagglehub(tmp_path / "kaggle" / "input")  # what kagglehub mounts inside Kaggle
    monkeypatch.setitem(__import__("sys").modules, "kagglehub", hub)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")

    def offline(**k):
        raise AssertionError("no reachability check inside a Kaggle notebook")

    monkeypatch.setattr(download, "check_kaggle_reachable", offline)
    rd = datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")
    assert rd.origin == "kagglehub" and rd.root.is_relative_to(tmp_path / "kaggle" / "input")


def test_competition_rules_not_accepted_is_explained(no_kaggle, stub_hub):
    stub_hub.error = RuntimeError("403 Client Error: Forbidden for url: https://www.kaggle.com/api/")
    with pytest.raises(KaggleError, match="accept the competition rules.*rsna-intracranial"):
        download.acquire_kaggle(registry.spec("rsna_ich"))
    assert stub_hub.calls[0][:2] == ("competitions", "rsna-intracranial-hemorrhage-detection")


def test_too_old_kagglehub_is_refused_with_the_version_needed(no_kaggle, stub_hub):
    from medrepro.data import datasets

    stub_hub.__version__ = "0.3.0"
    with pytest.raises(KaggleError, match=r"kagglehub 0\.3\.0 is too old.*>= 0\.4\.1"):
        datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")
    assert stub_hub.calls == []


def test_kagglehub_folder_without_the_layout_is_an_error(no_kaggle, stub_hub, monkeypatch,
                                                         tmp_path):
    from medrepro.data import datasets

    empty = tmp_path / "empty-download"
    empty.mkdir()
    monkeypatch.setattr(stub_hub, "dataset_download", lambda handle, **k: str(empty))
    with pytest.raises(DownloadError, match="kagglehub returned .*empty-download.*no folder"):
        datasets.resolve("brain_tumor_sartaj", data="kaggle", profile="smoke")


def test_url_dataset_downloads_extracts_and_skips_next_time(server, monkeypatch, tmp_path):
    """The MosMed path end to end: two zips over HTTP -> data/raw/mosmed/CT-0, CT-23."""
    import dataclasses

    from medrepro.data import datasets

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))
    for split in ("CT-0", "CT-23"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for k in range(3):
                zf.writestr(f"{split}/study_{k:04d}.nii.gz", f"{split}-{k}".encode())
        server.files[f"/{split}.zip"] = buf.getvalue()
    digest0 = hashlib.sha256(server.files["/CT-0.zip"]).hexdigest()
    sp = registry.spec("mosmed")
    local = dataclasses.replace(sp, urls=(
        registry.UrlSource(server.url + "/CT-0.zip", "CT-0.zip", digest0, split="CT-0"),
        registry.UrlSource(server.url + "/CT-23.zip", "CT-23.zip", None, split="CT-23")))
    monkeypatch.setattr(registry, "REGISTRY", {**registry.REGISTRY, "mosmed": local})
    rd = datasets.resolve("mosmed", data="kaggle", profile="smoke")
    assert not rd.is_phantom and rd.origin == "url" and rd.splits_present == ("CT-0", "CT-23")
    assert (rd.root / "CT-23" / "study_0002.nii.gz").read_bytes() == b"CT-23-2"
    meta0 = download.read_sidecar(tmp_path / "data" / "downloads" / "CT-0.zip")
    meta23 = download.read_sidecar(tmp_path / "data" / "downloads" / "CT-23.zip")
    assert meta0["sha256_verified"] is True and meta23["sha256_verified"] is False
    assert not list((tmp_path / "data" / "raw" / "mosmed").glob(".extract-*"))
    n = len(server.requests)
    again = datasets.resolve("mosmed", data="kaggle", profile="smoke")
    assert again.root == rd.root and len(server.requests) == n


# --------------------------------------------------------------------------------------------
# kagglehub's own exception classes and messages (the installed kagglehub), and its mount wait

# imported before any test puts a stub in sys.modules["kagglehub"]
khx = pytest.importorskip("kagglehub.exceptions")
khh = pytest.importorskip("kagglehub.handle")

def _kagglehub_http_error(status: int, handle):
    """What kagglehub raises for an HTTP ``status``: its ``handle_call`` wraps the
    ``requests.HTTPError`` into ``KaggleApiHTTPError`` with its own message."""
    import requests

    response = requests.Response()
    response.status_code, response.url = status, "https://www.kaggle.com/api/v1/x"

    def call():
        raise requests.HTTPError(f"{status} Client Error", response=response)

    try:
        khx.handle_call(call, handle)
    except khx.KaggleApiHTTPError as exc:
        return exc
    raise AssertionError("handle_call did not raise")


@pytest.mark.parametrize("dataset_id, status, expected", [
    ("rsna_ich", 403, (r"accept the competition rules first at https://www\.kaggle\.com/"
                       r"competitions/rsna-intracranial-hemorrhage-detection/rules")),
    ("brain_tumor_masoud", 403, (r"no permission.*open https://www\.kaggle\.com/datasets/"
                                 r"masoudnickparvar/brain-tumor-mri-dataset signed in")),
    ("brain_tumor_sartaj", 401, (r"HTTP 401: no or invalid credentials.*hosted\.run_all.*"
                                 r"created again")),
    ("brain_tumor_sartaj", 404, r"Kaggle has no dataset sartajbhuvaji/.*HTTP 404.*Add input"),
    ("rsna_ich", 429, r"rate-limiting.*HTTP 429.*wait a few minutes and run again"),
])
def test_kagglehub_http_errors_say_what_to_do(no_kaggle, stub_hub, dataset_id, status, expected):
    sp = registry.spec(dataset_id)
    handle = (khh.parse_competition_handle(sp.kaggle_competition) if sp.kaggle_competition
              else khh.parse_dataset_handle(sp.kaggle_dataset))
    stub_hub.error = _kagglehub_http_error(status, handle)
    assert type(stub_hub.error).__name__ == "KaggleApiHTTPError"  # one class for every status
    with pytest.raises(KaggleError, match=expected):
        download.acquire_kaggle(sp)


def test_kagglehub_unauthenticated_and_not_found_and_corrupt(no_kaggle, stub_hub):
    sp = registry.spec("rsna_ich")
    stub_hub.error = khx.UnauthenticatedError()
    with pytest.raises(KaggleError, match=r"no Kaggle credentials reached this run.*Colab.*"
                                          r"hosted\.run_all.*KAGGLE_API_TOKEN"):
        download.acquire_kaggle(sp)
    stub_hub.error = khx.NotFoundError("no such competition")
    with pytest.raises(KaggleError, match="Kaggle has no competition rsna-intracranial"):
        download.acquire_kaggle(sp)
    stub_hub.error = khx.DataCorruptionError("checksum mismatch")
    with pytest.raises(KaggleError, match=r"corrupt.*delete its folder in kagglehub's cache"):
        download.acquire_kaggle(sp)


@pytest.fixture
def kaggle_jwt_server(monkeypatch, tmp_path):
    """Kaggle's data proxy as kagglehub inside a notebook sees it: it answers the attach request
    with a mount slug; ``srv.mount`` (if set) is created when asked, as Kaggle mounts it."""
    import json as _json
    from http.server import BaseHTTPRequestHandler

    mounts = tmp_path / "mounts"
    mounts.mkdir()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.server.make_mount is not None:
                self.server.make_mount(mounts / "rsna-intracranial-hemorrhage-detection")
            body = _json.dumps({"wasSuccessful": True, "result": {
                "mountSlug": "rsna-intracranial-hemorrhage-detection"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.make_mount = None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    for var, value in {"KAGGLE_KERNEL_RUN_TYPE": "Batch",
                       "KAGGLE_DATA_PROXY_URL": f"http://127.0.0.1:{srv.server_address[1]}",
                       "KAGGLE_USER_SECRETS_TOKEN": "jwt", "KAGGLE_DATA_PROXY_TOKEN": "proxy",
                       "KAGGLE_CACHE_MOUNT_FOLDER": str(mounts)}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("DISABLE_KAGGLE_CACHE", raising=False)
    yield srv
    srv.shutdown()
    srv.server_close()


def test_the_wait_for_a_kaggle_mount_is_bounded_and_says_why_it_ended(no_kaggle, kaggle_jwt_server,
                                                                      monkeypatch):
    """kagglehub's own resolver (no stub): the mount never appears; the wait ends at the limit."""
    import time as _time

    import kagglehub  # noqa: F401  (the real one)
    from kagglehub import kaggle_cache_resolver

    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv(download.MOUNT_WAIT_ENV, "1.5")
    start = _time.perf_counter()
    with pytest.raises(download.KaggleMountTimeout,
                       match=r"rsna_ich: kagglehub waited 2 s for the platform to mount it under "
                             r".*mounts and it did not appear .*competition rsna-intracranial.*"
                             r"'Add input'.*DISABLE_KAGGLE_CACHE=1"):
        download.acquire_kaggle(registry.spec("rsna_ich"))
    assert _time.perf_counter() - start < 10
    assert kaggle_cache_resolver.time is _time  # the module is left as it was


def test_a_kaggle_mount_that_appears_is_read(no_kaggle, kaggle_jwt_server, monkeypatch):
    def mount(folder):  # what Kaggle mounts: the competition's files
        (folder / "stage_2_train").mkdir(parents=True)
        (folder / "stage_2_train" / "ID_000000001.dcm").write_bytes(b"dcm")
        (folder / "stage_2_train.csv").write_text("ID,Label\n")

    kaggle_jwt_server.make_mount = mount
    monkeypatch.setenv(download.MOUNT_WAIT_ENV, "5")
    root, origin = download.acquire_kaggle(registry.spec("rsna_ich"))
    assert origin == "kagglehub" and (root / "stage_2_train.csv").is_file()
