"""A lossless, compact and fast codec for the three-window RSNA images (study B's cache).

An image is uint8 ``(S, S, 3)``: the brain, subdural and bone windows of one CT slice
(``medrepro.data.dicom.RSNA_WINDOWS``). The windows are three views of the same HU values, so each
channel is coded as the residual of a prediction that a few vectorised numpy operations undo:

- brain (R): minus the pixel above (``up``), inverted by a cumulative sum down the columns;
- subdural (G): minus a per-image table of the brain value (``T[R]``, the mean subdural byte
  for each brain byte, 256 bytes stored with the image), inverted by one table look-up;
- bone (B): minus the pixel above, like the brain window. (The gradient predictor
  ``left + up - up_left`` saves ~0.4 KiB more but its inverse needs a running sum along the
  rows, a strided loop that doubles the decoding time.)

Each residual plane is a zstd frame with its content checksum (the table travels in the
subdural frame), so a damaged image fails to decode (:class:`CorruptImageError`) instead of
returning wrong pixels. On the 20 real RSNA samples this takes ~29.4 KiB per image (raw:
147 KiB), encodes in ~1.7 ms and decodes in ~0.7 ms per core in batches
(``benchmarks/bench_cache.py`` measures it on the machine at hand).

A shard file (:func:`write_shard`) holds many images: a header (magic, count, side), the end
offset of every image, the images, and a SHA-1 of everything before it, so a truncated or
damaged shard is recognised (:func:`check_shard`) without trusting its companion files.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ZSTD_LEVEL = 1  # levels 1-5 differ by < 0.5 % in size here; 3 costs 1.8x the time of 1
MAGIC = b"MRZ1"
HEADER = struct.Struct("<4sIH")  # magic, number of images, image side S
LENGTHS = struct.Struct("<II")  # bytes of the first two frames of an image
DIGEST_BYTES = 20  # SHA-1 trailer
TABLE_BYTES = 256
CHANNELS = 3


class CorruptImageError(ValueError):
    """An encoded image or shard that does not decode (the message names the file and why)."""


def _zstd():
    import zstandard

    return zstandard


def encode(image: np.ndarray, *, level: int = ZSTD_LEVEL) -> bytes:
    """Encode uint8 ``(S, S, 3)`` losslessly; :func:`decode` returns equal bytes.

    The blob is two uint32 lengths and three zstd frames (brain residual; table + subdural
    residual; bone residual): a frame per plane lets zstd fit its entropy tables to each.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != CHANNELS \
            or image.shape[0] != image.shape[1]:
        raise ValueError(f"expected a uint8 (S, S, 3) image, got {image.dtype} {image.shape}")
    r, g, b = (np.ascontiguousarray(image[..., c]) for c in range(CHANNELS))
    table = _mean_table(r, g)
    up_r = r.copy()
    up_r[1:] -= r[:-1]
    res_g = g - table[r]
    up_b = b.copy()
    up_b[1:] -= b[:-1]
    comp = _zstd().ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    frames = [comp.compress(up_r.tobytes()), comp.compress(table.tobytes() + res_g.tobytes()),
              comp.compress(up_b.tobytes())]
    return LENGTHS.pack(len(frames[0]), len(frames[1])) + b"".join(frames)


def decode(blob: bytes | memoryview, side: int, *, where: str = "image") -> np.ndarray:
    """Decode one :func:`encode` blob: uint8 ``(side, side, 3)``."""
    return decode_batch([blob], side, where=[where])[0]


def decode_batch(blobs: Sequence[bytes | memoryview], side: int, *,
                 out: np.ndarray | None = None,
                 where: Sequence[str] | None = None) -> np.ndarray:
    """Decode :func:`encode` blobs into uint8 ``(n, side, side, 3)`` (``out`` if given).

    The inverse predictions run over the whole batch at once, a row at a time: ``S``
    vectorised adds instead of a per-image ``np.cumsum`` (which numpy does not vectorise for
    uint8, ~4x slower). Raises :class:`CorruptImageError` naming ``where[i]`` when a frame's
    checksum or size is off.
    """
    n, px = len(blobs), side * side
    # Brain and bone residuals as (row, plane, image, column): each row of the whole batch is
    # one contiguous block, so undoing "up" is S contiguous adds.
    rb = np.empty((side, 2, n, side), dtype=np.uint8)
    g = np.empty((n, side, side), dtype=np.uint8)
    tables = np.empty((n, TABLE_BYTES), dtype=np.uint8)
    dec = _zstd().ZstdDecompressor()
    for i, blob in enumerate(blobs):
        label = where[i] if where is not None else f"image {i}"
        raw = _decode_frames(dec, blob, px, label)
        rb[:, 0, i] = raw[0].reshape(side, side)
        tables[i] = raw[1][:TABLE_BYTES]
        g[i] = raw[1][TABLE_BYTES:].reshape(side, side)
        rb[:, 1, i] = raw[2].reshape(side, side)
    for y in range(1, side):  # undo "up" on brain and bone: running sums down the columns
        np.add(rb[y], rb[y - 1], out=rb[y])
    if out is None:
        out = np.empty((n, side, side, CHANNELS), dtype=np.uint8)
    r = rb[:, 0].transpose(1, 0, 2)  # (n, S, S) view
    out[..., 0] = r
    out[..., 2] = rb[:, 1].transpose(1, 0, 2)
    for i in range(n):
        np.add(g[i], tables[i].take(r[i]), out=out[i, ..., 1])
    return out


def _decode_frames(dec, blob, px: int, where: str) -> list[np.ndarray]:
    blob = memoryview(blob)
    try:
        n0, n1 = LENGTHS.unpack_from(blob, 0)
        start = LENGTHS.size
        spans = [(start, start + n0), (start + n0, start + n0 + n1), (start + n0 + n1, len(blob))]
        sizes = (px, TABLE_BYTES + px, px)
        raw = [dec.decompress(blob[a:b], max_output_size=s) for (a, b), s in zip(spans, sizes)]
    except (struct.error, _zstd().ZstdError) as exc:
        raise CorruptImageError(f"{where}: does not decode ({exc})") from None
    if [len(x) for x in raw] != list(sizes):
        raise CorruptImageError(f"{where}: decoded to {[len(x) for x in raw]} bytes, "
                                f"expected {list(sizes)}")
    return [np.frombuffer(x, dtype=np.uint8) for x in raw]


def _mean_table(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """uint8 (256,): the rounded mean of ``dst`` where ``src == v``, for each byte ``v``."""
    count = np.bincount(src.ravel(), minlength=256)
    total = np.bincount(src.ravel(), weights=dst.ravel(), minlength=256)
    return np.rint(total / np.maximum(count, 1)).astype(np.uint8)


# ---------------------------------------------------------------------------- shard files

def write_shard(path: str | os.PathLike, blobs: Sequence[bytes], side: int) -> int:
    """Write encoded images as one shard file at ``path`` (not atomic: write to a temporary
    path and rename). Returns the bytes written."""
    ends = np.cumsum([len(b) for b in blobs], dtype=np.uint64) if blobs else np.zeros(0, np.uint64)
    h = hashlib.sha1()
    with open(path, "wb") as fh:
        for part in (HEADER.pack(MAGIC, len(blobs), side), ends.astype("<u8").tobytes(), *blobs):
            fh.write(part)
            h.update(part)
        fh.write(h.digest())
        return fh.tell()


class Shard:
    """A shard file opened for reading (memory-mapped): ``len``, :meth:`read`, ``side``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < HEADER.size + DIGEST_BYTES:
                raise CorruptImageError(f"{self.path}: {size} bytes, too short for a shard")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        magic, self.n, self.side = HEADER.unpack_from(self._map, 0)
        if magic != MAGIC:
            raise CorruptImageError(f"{self.path}: not a medrepro shard (magic {magic!r})")
        self._base = HEADER.size + 8 * self.n
        if self._base + DIGEST_BYTES > size:
            raise CorruptImageError(f"{self.path}: truncated ({size} bytes for {self.n} images)")
        self.ends = np.frombuffer(self._map, dtype="<u8", count=self.n, offset=HEADER.size)
        expected = self._base + (int(self.ends[-1]) if self.n else 0) + DIGEST_BYTES
        if expected != size:
            raise CorruptImageError(f"{self.path}: {size} bytes, the header says {expected} "
                                    "(truncated or overwritten)")

    def __len__(self) -> int:
        return self.n

    def blob(self, i: int) -> memoryview:
        start = int(self.ends[i - 1]) if i else 0
        return memoryview(self._map)[self._base + start:self._base + int(self.ends[i])]

    def read(self, rows: Sequence[int], *, out: np.ndarray | None = None) -> np.ndarray:
        """Images ``rows`` as uint8 ``(len(rows), side, side, 3)`` (into ``out`` if given)."""
        rows = [int(i) for i in rows]
        bad = [i for i in rows if not 0 <= i < self.n]
        if bad:
            raise IndexError(f"{self.path}: rows {bad[:5]} out of range (shard of {self.n})")
        return decode_batch([self.blob(i) for i in rows], self.side, out=out,
                            where=[f"{self.path} image {i}" for i in rows])

    def verify(self) -> None:
        """Check the SHA-1 trailer over the whole file (reads it all)."""
        body = memoryview(self._map)[:len(self._map) - DIGEST_BYTES]
        if hashlib.sha1(body).digest() != bytes(self._map[len(self._map) - DIGEST_BYTES:]):
            raise CorruptImageError(f"{self.path}: checksum mismatch (damaged shard)")


def check_shard(path: str | os.PathLike, *, n: int | None = None, full: bool = False) -> str:
    """``""`` if ``path`` is an intact shard (of ``n`` images), else what is wrong with it.

    ``full``: also verify the SHA-1 of the whole file (reads it); otherwise only the header,
    the offsets and the file size (catches truncation, cheap enough for thousands of shards).
    """
    try:
        shard = Shard(path)
        if n is not None and len(shard) != n:
            return f"{path}: holds {len(shard)} images, its CSV lists {n}"
        if full:
            shard.verify()
    except FileNotFoundError:
        return f"{path}: missing"
    except (CorruptImageError, OSError, ValueError) as exc:
        return str(exc)
    return ""
