"""Tests of medrepro.data.compact: lossless round trips, size on the real samples, damage detection."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.data import compact, dicom
from medrepro.core import paths

MAX_KIB_PER_IMAGE = 30  # issue 12: <= 30 KB (KiB, as its 147 KB raw anchor) per real image


def _ct_like(rng: np.random.Generator, side: int) -> np.ndarray:
    """A seeded RGB with flat regions, a bright rim and noise: all byte values occur."""
    yy, xx = np.mgrid[:side, :side] / side - 0.5
    r2 = xx**2 + yy**2
    base = np.where(r2 < 0.16, 110, 0) + np.where((r2 > 0.14) & (r2 < 0.18), 140, 0)
    img = base[..., None] + rng.normal(0, 12, (side, side, 3))
    img[::7, ::5] = rng.integers(0, 256, img[::7, ::5].shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _real_samples() -> list:
    shared = paths.shared_data_dir()
    folder = shared / "rsna_ich_samples" if shared else None
    if folder is None or not folder.is_dir():
        pytest.skip("../shared/data/rsna_ich_samples not present")
    return sorted(folder.glob("*.dcm"))


@pytest.mark.parametrize("side", [8, 64, 224])
def test_round_trip_is_exact(side):
    rng = np.random.default_rng(side)
    images = [_ct_like(rng, side), rng.integers(0, 256, (side, side, 3), dtype=np.uint8),
              np.zeros((side, side, 3), np.uint8), np.full((side, side, 3), 255, np.uint8)]
    blobs = [compact.encode(im) for im in images]
    for im, blob in zip(images, blobs):
        np.testing.assert_array_equal(compact.decode(blob, side), im)
    np.testing.assert_array_equal(compact.decode_batch(blobs, side), np.stack(images))
    assert len(blobs[2]) < 200  # a flat image costs next to nothing


def test_real_samples_round_trip_to_read_rgb_within_the_size_budget():
    files = _real_samples()
    images = [dicom.read_rgb(f) for f in files]
    blobs = [compact.encode(im) for im in images]
    np.testing.assert_array_equal(compact.decode_batch(blobs, dicom.DEFAULT_SIZE),
                                  np.stack(images))
    kib = np.mean([len(b) for b in blobs]) / 1024
    raw_kib = images[0].nbytes / 1024
    assert kib <= MAX_KIB_PER_IMAGE, f"{kib:.1f} KiB per image"
    assert raw_kib / kib > 4.5  # 147 KiB raw


def test_encode_refuses_what_is_not_a_square_rgb_uint8():
    with pytest.raises(ValueError, match="expected a uint8 \\(S, S, 3\\) image, got float32"):
        compact.encode(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"got uint8 \(4, 6, 3\)"):
        compact.encode(np.zeros((4, 6, 3), np.uint8))


def test_damaged_blob_fails_to_decode_instead_of_returning_pixels():
    img = _ct_like(np.random.default_rng(0), 32)
    blob = bytearray(compact.encode(img))
    blob[len(blob) // 2] ^= 0x40
    with pytest.raises(compact.CorruptImageError, match="slice-7"):
        compact.decode(bytes(blob), 32, where="slice-7")
    with pytest.raises(compact.CorruptImageError, match="does not decode"):
        compact.decode(compact.encode(img)[:-9], 32)
    with pytest.raises(compact.CorruptImageError, match="decoded to"):
        compact.decode(compact.encode(img), 16)  # a blob of another size


def test_shard_file_reads_rows_and_recognises_truncation_and_damage(tmp_path):
    rng = np.random.default_rng(1)
    images = [_ct_like(rng, 24) for _ in range(5)]
    path = tmp_path / "s.mrz"
    size = compact.write_shard(path, [compact.encode(im) for im in images], 24)
    assert size == path.stat().st_size
    shard = compact.Shard(path)
    assert len(shard) == 5 and shard.side == 24
    np.testing.assert_array_equal(shard.read([3, 0, 3]), np.stack([images[3], images[0],
                                                                   images[3]]))
    with pytest.raises(IndexError, match="out of range"):
        shard.read([5])
    assert compact.check_shard(path, n=5, full=True) == ""
    assert "CSV lists 4" in compact.check_shard(path, n=4)
    assert "missing" in compact.check_shard(tmp_path / "none.mrz")
    data = path.read_bytes()
    (tmp_path / "t.mrz").write_bytes(data[:-100])
    assert "truncated or overwritten" in compact.check_shard(tmp_path / "t.mrz")
    (tmp_path / "short.mrz").write_bytes(data[:10])
    assert "too short" in compact.check_shard(tmp_path / "short.mrz")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    (tmp_path / "f.mrz").write_bytes(bytes(flipped))
    assert compact.check_shard(tmp_path / "f.mrz") == ""  # the cheap check cannot see it...
    assert "checksum mismatch" in compact.check_shard(tmp_path / "f.mrz", full=True)  # this can
    (tmp_path / "x.mrz").write_bytes(b"NOPE" + data[4:])
    assert "not a medrepro shard" in compact.check_shard(tmp_path / "x.mrz")
    compact.write_shard(tmp_path / "empty.mrz", [], 24)
    assert len(compact.Shard(tmp_path / "empty.mrz")) == 0
