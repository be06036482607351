"""The packed-lane kernels behind :func:`medrepro.data.dicom.slice_rgb` and ``resize_rgb``.

Three windowed bytes (R, G, B) live in 16-bit lanes of one uint64, so a 2×2 box sum or an
interpolation step costs one integer operation for all three channels. Bit-exact with the plain
float path (``tests/test_dicom.py`` checks equal bytes); ``benchmarks/bench_dicom.py`` measures
the speed. Private: only :mod:`medrepro.data.dicom` calls these.
"""

from __future__ import annotations

import sys
import threading
from functools import lru_cache

import numpy as np

_LANE_LOW_BYTES = np.uint64(0x00FF_00FF_00FF_00FF)
_EIGHTHS = 8  # interpolation weights are multiples of 1/8


def lanes(value: int) -> np.uint64:
    """``value`` in each of the four 16-bit lanes of a uint64."""
    return np.uint64(value * 0x0001_0001_0001_0001)


def can_halve(shape: tuple[int, ...], size: int) -> bool:
    h, w = shape[:2]
    return h >= 2 * size and w >= 2 * size and h % 2 == 0 and w % 2 == 0


def halve_sums(packed: np.ndarray) -> np.ndarray:
    """Sums of 2×2 blocks of packed values (lanes <= 4 × 255), a new array."""
    acc = packed[0::2, 0::2] + packed[0::2, 1::2]
    acc += packed[1::2, 0::2]
    acc += packed[1::2, 1::2]
    return acc


def round_lanes(packed: np.ndarray, *, shift: int) -> np.ndarray:
    """In place: each lane divided by ``2**shift``, rounded half up, kept to its low byte.

    Shifting the whole word lets a lane's low bits fall into the top of the lane below; those
    bits lie above the low byte, and the mask drops them.
    """
    packed += lanes(1 << (shift - 1))
    packed >>= np.uint64(shift)
    packed &= _LANE_LOW_BYTES
    return packed


_work = threading.local()


def buffer(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable work array of this thread (contents undefined)."""
    bufs = getattr(_work, "buffers", None)
    if bufs is None:
        bufs = _work.buffers = {}
    key = (name, shape, np.dtype(dtype).str)
    arr = bufs.get(key)
    if arr is None:
        arr = bufs[key] = np.empty(shape, dtype=dtype)
    return arr


@lru_cache(maxsize=32)
def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from ``n_in`` to ``n_out`` samples (pixel centres aligned):
    indices ``i0, i1`` and integer weights ``w0 + w1 == 8``."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    w1 = np.rint((src - i0) * _EIGHTHS).astype(np.uint64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w0 = np.uint64(_EIGHTHS) - w1
    for a in (i0, i1, w0, w1):
        a.flags.writeable = False
    return i0, i1, w0, w1


def after_halving(sums: np.ndarray, size: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """2×2 sums (lanes <= 4 × 255; overwritten) to the final uint8 image: more halvings, then
    interpolation."""
    while can_halve(sums.shape, size):
        sums = halve_sums(round_lanes(sums, shift=2))
    if sums.shape == (size, size):
        return unpack(to_high_byte(sums, shift=2), out=out)
    return unpack(interpolate(sums, size, shift=2), out=out)


def interpolate(packed: np.ndarray, size: int, *, shift: int) -> np.ndarray:
    """Packed ``(h, w)`` with lanes <= 255 × 2**shift to packed ``(size, size)`` whose lanes
    hold the rounded result in their high byte (see :func:`_to_high_byte`).

    The weights of the two passes multiply to 64, so lanes stay below 64 × 1020 < 2**16. The
    result is a work buffer (or ``packed`` itself, rounded in place, when already at size).
    """
    h, w = packed.shape
    if (h, w) == (size, size):
        return to_high_byte(packed, shift=shift)
    i0, i1, w0, w1 = taps(w, size)
    across = buffer("across", (h, size), np.uint64)  # lanes <= 8 × 255 × 2**shift
    other = buffer("across1", (h, size), np.uint64)
    np.take(packed, i0, axis=1, out=across, mode="clip")
    across *= w0
    np.take(packed, i1, axis=1, out=other, mode="clip")
    other *= w1
    across += other
    i0, i1, w0, w1 = taps(h, size)
    both = buffer("both", (size, size), np.uint64)  # lanes <= 64 × 255 × 2**shift
    other = buffer("both1", (size, size), np.uint64)
    np.take(across, i0, axis=0, out=both, mode="clip")
    both *= w0[:, None]
    np.take(across, i1, axis=0, out=other, mode="clip")
    other *= w1[:, None]
    both += other
    return to_high_byte(both, shift=6 + shift)


def pack(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Three uint8 arrays as one uint64 array: lane c = bits 16c..16c+15."""
    packed = r.astype(np.uint64)
    packed |= g.astype(np.uint64) << np.uint64(16)
    packed |= b.astype(np.uint64) << np.uint64(32)
    return packed


def to_high_byte(packed: np.ndarray, *, shift: int) -> np.ndarray:
    """In place: each lane divided by ``2**shift`` (rounded half up) into the lane's high byte
    (bits 8..15; the low byte is left as junk). Needs lanes < 2**(shift + 8) and shift <= 8."""
    if shift:
        packed += lanes(1 << (shift - 1))
    if shift < 8:
        packed <<= np.uint64(8 - shift)  # lanes stay < 2**16: nothing crosses into the next
    return packed


def unpack(packed: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Packed ``(h, w)`` (values in the lanes' high bytes) to uint8 ``(h, w, 3)``: a new array,
    or ``out``. Pillow's ``RGBX;16L`` unpacker takes exactly those bytes, several times faster
    than a strided numpy copy."""
    h, w = packed.shape
    if sys.byteorder == "little":
        from PIL import Image

        image = Image.frombuffer("RGB", (w, h), np.ascontiguousarray(packed), "raw",
                                 "RGBX;16L", 0, 1)
        rgb = np.asarray(image)
    else:
        rgb = np.stack([(packed >> np.uint64(16 * c + 8)) & np.uint64(0xFF) for c in range(3)],
                       axis=-1).astype(np.uint8)
    if out is None:
        return rgb if rgb.flags.writeable else rgb.copy()
    np.copyto(out, rgb)
    return out
