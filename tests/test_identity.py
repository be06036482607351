"""medrepro.data.identity: counts, the content hash over sorted per-file digests, versions."""

from __future__ import annotations

import hashlib
from types import MappingProxyType

import pytest
from medrepro.core import fileio, paths
from medrepro.data import identity, registry
from medrepro.data.registry import PublishedVersion

from conftest import mri_folder


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(identity, "_memory", {})
    monkeypatch.setattr(identity, "_resolved", {})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_counts_and_the_hash_over_sorted_file_digests(tmp_path):
    root = mri_folder(tmp_path / "m", "brain_tumor_masoud", n=2)
    (root / "Testing" / "glioma" / "extra.jpg").write_bytes(b"another")
    ident = identity.dataset_identity(root, "brain_tumor_masoud")
    assert ident["counts"]["Testing"] == {"glioma": 3, "meningioma": 2, "notumor": 2,
                                          "pituitary": 2}
    assert ident["files"] == 17 and ident["hash_kind"] == "content"
    test_files = identity.data_files(root, "brain_tumor_masoud")["Testing"]
    digests = sorted(_sha(p.read_bytes()) for p in test_files)
    expected = _sha("".join(d + "\n" for d in digests).encode())
    assert ident["split_sha256"]["Testing"] == expected
    assert ident["version"].startswith("matches NO known published version")


def test_names_do_not_change_the_hash_bytes_do(tmp_path):
    root = mri_folder(tmp_path / "m", "brain_tumor_sartaj", n=2)
    before = identity.dataset_identity(root, "brain_tumor_sartaj", use_cache=False)
    f = next((root / "Training" / "no_tumor").iterdir())
    f.rename(f.with_name("renamed.jpg"))
    renamed = identity.dataset_identity(root, "brain_tumor_sartaj", use_cache=False)
    assert renamed["content_sha256"] == before["content_sha256"]
    (root / "Training" / "no_tumor" / "renamed.jpg").write_bytes(b"changed")
    changed = identity.dataset_identity(root, "brain_tumor_sartaj", use_cache=False)
    assert changed["content_sha256"] != before["content_sha256"]
    assert changed["split_sha256"]["Testing"] == before["split_sha256"]["Testing"]


def test_the_cache_skips_rehashing_until_a_file_changes(tmp_path, monkeypatch):
    root = mri_folder(tmp_path / "m", "brain_tumor_sartaj", n=1)
    first = identity.dataset_identity(root, "brain_tumor_sartaj")
    assert (paths.processed_dir("brain_tumor_sartaj") / identity.IDENTITY_FILE).is_file()
    monkeypatch.setattr(identity, "_memory", {})  # a new process: only the disk cache

    def no_hashing(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(identity, "sha256_file", no_hashing)
    assert identity.dataset_identity(root, "brain_tumor_sartaj") == first
    (root / "Testing" / "glioma_tumor" / "new.jpg").write_bytes(b"new")
    monkeypatch.setattr(identity, "sha256_file", fileio.sha256_file)
    again = identity.dataset_identity(root, "brain_tumor_sartaj")
    assert again["files"] == first["files"] + 1
    assert again["content_sha256"] != first["content_sha256"]


def test_above_the_size_limit_a_listing_hash_is_taken_and_said(tmp_path, monkeypatch):
    root = mri_folder(tmp_path / "m", "brain_tumor_sartaj", n=1)
    monkeypatch.setattr(identity, "CONTENT_HASH_MAX_BYTES", 0)
    monkeypatch.setattr(identity, "sha256_file", lambda p: pytest.fail("read a file"))
    ident = identity.dataset_identity(root, "brain_tumor_sartaj", use_cache=False)
    assert ident["hash_kind"] == "listing"
    assert "listing sha256" in identity.summary(ident)


def test_a_folder_without_data_files_is_a_named_error(tmp_path):
    (tmp_path / "empty" / "Training").mkdir(parents=True)
    with pytest.raises(identity.IdentityError, match=r"empty: no data file of brain_tumor_sartaj"):
        identity.dataset_identity(tmp_path / "empty", "brain_tumor_sartaj")


def test_versions_match_by_counts_and_recorded_hashes(tmp_path, monkeypatch):
    root = mri_folder(tmp_path / "m", "brain_tumor_masoud", splits=("Testing",), n=2)
    ident = identity.dataset_identity(root, "brain_tumor_masoud", use_cache=False)
    counts = MappingProxyType({"Testing": MappingProxyType(ident["counts"]["Testing"])})
    good = PublishedVersion("v2", counts, {"Testing": ident["split_sha256"]["Testing"]})
    other_hash = PublishedVersion("v2-other", counts, {"Testing": "0" * 64})
    total_only = PublishedVersion("v1", MappingProxyType({"Testing": {"all": 8}}))
    wrong_total = PublishedVersion("v0", MappingProxyType({"Testing": {"all": 1294}}))
    versions = {"brain_tumor_masoud": (other_hash, good)}
    monkeypatch.setattr(identity, "PUBLISHED_VERSIONS", versions)
    assert identity.match_version(ident) == ("matches v2 (counts of Testing; content hash of "
                                             "Testing)")
    versions["brain_tumor_masoud"] = (wrong_total, total_only)
    assert identity.match_version(ident) == ("matches v1 (counts of Testing; no content hash "
                                             "recorded)")
    versions["brain_tumor_masoud"] = (other_hash, wrong_total)
    text = identity.match_version(ident)
    assert text.startswith("matches NO known published version")
    assert "v2-other: Testing content hash differs" in text
    assert "v0: Testing has 8 files, not 1,294" in text
    assert identity.match_version({**ident, "source": "phantom"}).startswith("phantom")


def test_for_source_returns_what_this_process_resolved(tmp_path):
    sartaj = mri_folder(tmp_path / "s", "brain_tumor_sartaj", n=1)
    masoud = mri_folder(tmp_path / "p", "brain_tumor_masoud", n=1)
    identity.remember("brain_tumor_sartaj", "brain_tumor_sartaj", sartaj)
    identity.remember("brain_tumor_masoud", "phantom", masoud)
    assert set(identity.for_source("brain_tumor_sartaj")) == {"brain_tumor_sartaj"}
    assert set(identity.for_source("phantom")) == {"brain_tumor_masoud"}
    assert set(identity.for_source("brain_tumor_sartaj+phantom")) == {"brain_tumor_sartaj",
                                                                      "brain_tumor_masoud"}
    assert identity.for_source("rsna_ich") == {}
    identity.remember("mosmed", "mosmed", tmp_path / "gone")
    assert "no data file" in identity.for_source("mosmed")["mosmed"]["error"]


@pytest.mark.parametrize("dataset_id", registry.MRI_DATASETS)
def test_the_shared_copies_match_their_published_versions(dataset_id):
    shared = paths.shared_data_dir()
    if shared is None or not (shared / dataset_id).is_dir():
        pytest.skip("../shared/data is not present")
    ident = identity.dataset_identity(shared / dataset_id, dataset_id)
    assert ident["version"].startswith("matches ") and "NO known" not in ident["version"]
    assert "content hash of" in ident["version"] and "Testing" in ident["version"]
