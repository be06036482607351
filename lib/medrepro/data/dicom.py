"""Reading CT DICOM slices as Hounsfield units, and the three-window RGB of study B.

- :func:`read_hu` — one slice as float32 HU ``(rows, cols)``.
- :func:`window` / :func:`window_rgb` — HU to uint8, one window or the RSNA brain/subdural/bone
  windows as R, G, B, windowed at full resolution and then resized to ``(size, size, 3)``.
- :func:`read_slice` + :func:`slice_rgb` — the fast path of the cache build: every stored value
  is mapped to HU and to the three windows through one lookup table, so a slice costs one table
  gather instead of float arithmetic at full resolution. ``slice_rgb(read_slice(p))`` equals
  ``window_rgb(read_hu(p))`` exactly.

Every failure raises :class:`DicomReadError` naming the file and the problem (``.problem`` is a
short category a batch job counts its skips by).

Oddities of the real RSNA files handled here: 12-bit unsigned slices whose RescaleIntercept is
> -100 (the known RSNA correction below), multi-valued zero-padded WindowCenter (never needed for
HU), decimal-string intercepts (``'-1024.000000'``), and ``ID_...`` UIDs that pydicom warns about
(read with validation off, so no warning spam). Compressed transfer syntaxes decode when the
optional decoders are installed (``pip install 'medrepro[dicom-codecs]'``).
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from medrepro.data import _rgb_lanes as lanes

CODECS_EXTRA = "pip install 'medrepro[dicom-codecs]'"
RSNA_QUIRK_OFFSET = 1000  # the 12-bit RSNA correction: add 1000, wrap at 4096, intercept -1000
RSNA_QUIRK_WRAP = 4096
RSNA_QUIRK_INTERCEPT = -1000.0
RSNA_QUIRK_MIN_INTERCEPT = -100.0
DEFAULT_SIZE = 224
_N_CODES = 1 << 16  # every 16-bit stored value


class Window(NamedTuple):
    """A display window in HU: ``level`` (centre) and ``width``."""

    level: float
    width: float


BRAIN_WINDOW = Window(level=40, width=80)
SUBDURAL_WINDOW = Window(level=80, width=200)
BONE_WINDOW = Window(level=600, width=2800)
RSNA_WINDOWS = (BRAIN_WINDOW, SUBDURAL_WINDOW, BONE_WINDOW)  # R, G, B
RSNA_WINDOW_NAMES = ("brain", "subdural", "bone")
OVERVIEW_WINDOW = Window(level=500, width=3000)  # -1000..2000 HU: air to dense bone


class DicomReadError(ValueError):
    """A DICOM file that cannot be read as a CT slice; the message names the file and problem."""

    def __init__(self, path: str | os.PathLike, problem: str, detail: str = ""):
        self.path = str(path)
        self.problem = problem
        self.detail = detail
        super().__init__(f"{path}: {problem}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class Slice:
    """One slice as stored: raw codes plus what is needed to turn them into HU.

    ``codes`` is uint16 ``(rows, cols)``: the stored values' bit patterns (signed values viewed
    as unsigned), so a 65,536-entry table maps every code to HU or to a window.
    ``monochrome1`` is recorded for information only: it changes the display, not the HU.
    """

    path: str
    codes: np.ndarray
    slope: float
    intercept: float
    bits_stored: int
    signed: bool
    monochrome1: bool
    rsna_quirk: bool
    patient_id: str

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)


# ---------------------------------------------------------------------------- reading

def read_slice(path: str | os.PathLike) -> Slice:
    """Read one single-frame grayscale DICOM slice without converting it (see :class:`Slice`).

    Raises :class:`DicomReadError` for a missing, empty, truncated or non-DICOM file, a file
    without PixelData, an unexpected shape (colour, multi-frame, missing Rows/Columns) or a
    compressed transfer syntax whose decoder is not installed.
    """
    path = str(path)
    try:
        return _read_slice(path)
    except DicomReadError:
        raise
    except Exception as exc:  # pydicom and numpy raise many types on malformed files
        raise DicomReadError(path, "unreadable", f"{type(exc).__name__}: {exc}") from None


def _read_slice(path: str) -> Slice:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DicomReadError(path, "missing file", exc.strerror or str(exc)) from None
    if size == 0:
        raise DicomReadError(path, "empty file", "0 bytes")
    fast = _parse_native(path)
    if fast is not None:
        head, data = fast
        _check_frame(path, head)
        pixels = _native_pixels(path, data, head)
    else:
        ds = _dcmread(path)
        with _quiet():
            if "PixelData" not in ds:
                raise DicomReadError(path, "no PixelData",
                                     f"the data set ends after {size} bytes without one")
            head = _header_of(ds, path)
            _check_frame(path, head)
            pixels = _pixels(ds, path, head)
    if pixels.itemsize > 2 or not 1 <= head["bits_stored"] <= 16:
        raise DicomReadError(path, "unexpected shape",
                             f"{8 * pixels.itemsize}-bit pixels, BitsStored="
                             f"{head['bits_stored']}; expected 8 or 16 bits")
    signed, bits_stored, intercept = head["signed"], head["bits_stored"], head["intercept"]
    quirk = bits_stored == 12 and not signed and intercept > RSNA_QUIRK_MIN_INTERCEPT
    codes = pixels.view(np.uint16) if pixels.itemsize == 2 else pixels.astype(np.uint16)
    return Slice(path=path, codes=codes, slope=head["slope"], intercept=intercept,
                 bits_stored=bits_stored, signed=signed,
                 monochrome1=head["photometric"] == "MONOCHROME1", rsna_quirk=quirk,
                 patient_id=head["patient_id"])


def _header_of(ds, path: str) -> dict:
    """The fields :func:`read_slice` needs, from a pydicom dataset."""
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows is None or cols is None:
        raise DicomReadError(path, "unexpected shape", "Rows or Columns missing")
    bits_allocated = int(ds.get("BitsAllocated", 16) or 16)
    return {
        "rows": int(rows), "cols": int(cols),
        "spp": int(ds.get("SamplesPerPixel", 1) or 1),
        "frames": int(_first(ds.get("NumberOfFrames", 1)) or 1),
        "signed": int(ds.get("PixelRepresentation", 0) or 0) == 1,
        "bits_allocated": bits_allocated,
        "bits_stored": int(ds.get("BitsStored", bits_allocated) or bits_allocated),
        "slope": _to_float(ds.get("RescaleSlope"), 1.0, path, "RescaleSlope"),
        "intercept": _to_float(ds.get("RescaleIntercept"), 0.0, path, "RescaleIntercept"),
        "photometric": str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper(),
        "patient_id": str(ds.get("PatientID", "") or ""),
    }


def _check_frame(path: str, head: dict) -> None:
    if head["spp"] != 1 or head["frames"] != 1:
        raise DicomReadError(path, "unexpected shape",
                             f"expected one grayscale frame, got SamplesPerPixel={head['spp']}, "
                             f"NumberOfFrames={head['frames']}")
    if head["rows"] < 1 or head["cols"] < 1:
        raise DicomReadError(path, "unexpected shape",
                             f"Rows={head['rows']}, Columns={head['cols']}")


def read_hu(path: str | os.PathLike) -> np.ndarray:
    """One CT slice in Hounsfield units: float32 ``(rows, cols)``.

    HU = stored value × RescaleSlope + RescaleIntercept (missing tags: slope 1, intercept 0),
    after the RSNA 12-bit correction (12-bit unsigned with intercept > -100: add 1000, wrap values
    >= 4096, intercept -1000). The photometric interpretation does not enter: the modality LUT
    (RescaleSlope/Intercept) gives HU for MONOCHROME1 and MONOCHROME2 alike, and MONOCHROME1
    only says that the minimum is *displayed* white after the VOI (window) transform, so its HU
    are not inverted and its windowed RGB is the same as MONOCHROME2's (brighter = denser).
    Raises :class:`DicomReadError`.
    """
    return slice_hu(read_slice(path))


def slice_hu(sl: Slice) -> np.ndarray:
    """HU of a :class:`Slice`: float32 ``(rows, cols)``."""
    table = _hu_table(sl.slope, sl.intercept, sl.bits_stored, sl.signed, sl.rsna_quirk)
    return np.take(table, sl.codes)


def read_rgb(path: str | os.PathLike, *, windows: Sequence[Window] = RSNA_WINDOWS,
             size: int = DEFAULT_SIZE) -> np.ndarray:
    """``window_rgb(read_hu(path))`` by the fast table path: uint8 ``(size, size, 3)``."""
    return slice_rgb(read_slice(path), windows=windows, size=size)


def write_slice(path: str | os.PathLike, stored: np.ndarray, *, slope: float = 1.0,
                intercept: float | None = -1024.0, patient_id: str = "ID_00000000",
                bits_stored: int | None = None, photometric: str = "MONOCHROME2",
                image_id: str | None = None, transfer_syntax: str | None = None) -> Path:
    """Write a CT slice of stored values (int16 or uint16 ``(rows, cols)``) as a DICOM file,
    in the shape of the RSNA files (``ID_...`` UIDs included). For tests, benchmarks, phantoms.

    ``intercept=None`` leaves out both rescale tags. ``bits_stored`` defaults to the dtype's
    bits. ``transfer_syntax`` (a UID) defaults to Explicit VR Little Endian.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

    stored = np.asarray(stored)
    if stored.ndim != 2 or stored.dtype not in (np.int16, np.uint16):
        raise ValueError(f"write_slice expects int16/uint16 (rows, cols), got {stored.dtype} "
                         f"{stored.shape}")
    path = Path(path)
    image_id = image_id or path.stem
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID("1.2.826.0.1.3680043.8.498.1")
    meta.TransferSyntaxUID = UID(transfer_syntax or ExplicitVRLittleEndian)
    with _quiet():
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = image_id  # not a valid UID, like the RSNA files
        ds.Modality = "CT"
        ds.PatientID = patient_id
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored or 16
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(stored.dtype == np.int16)
        ds.WindowCenter = ["00040", "00040"]  # multi-valued and zero-padded, as in RSNA
        ds.WindowWidth = ["00080", "00080"]
        if intercept is not None:
            ds.RescaleIntercept = f"{intercept:.6f}"  # a decimal string, as in some RSNA files
            ds.RescaleSlope = f"{slope:.6f}"
        ds.PixelData = np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("<")).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------- windowing

def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """HU to uint8 through one window: ``level ± width/2`` maps to 0..255 (rounded, clipped).

    Any shape in, the same shape out; computed in float32.
    """
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}")
    hu = np.asarray(hu, dtype=np.float32)
    lo = np.float32(level - width / 2)
    x = np.empty(hu.shape, dtype=np.float32)  # also for 0-d input, where ufuncs return scalars
    np.subtract(hu, lo, out=x)
    x *= np.float32(255.0 / width)
    np.clip(x, 0, 255, out=x)
    np.rint(x, out=x)
    return x.astype(np.uint8)


def window_rgb(hu: np.ndarray, *, windows: Sequence[Window] = RSNA_WINDOWS,
               size: int = DEFAULT_SIZE) -> np.ndarray:
    """Three windows of a 2-D HU image as R, G, B: uint8 ``(size, size, 3)``.

    Windowed at full resolution, then resized (see :func:`resize_rgb`).
    """
    hu = np.asarray(hu)
    if hu.ndim != 2:
        raise ValueError(f"window_rgb expects a 2-D HU image, got shape {hu.shape}")
    _check_windows(windows)
    rgb = np.stack([window(hu, *w) for w in windows], axis=-1)  # (H, W, 3)
    return resize_rgb(rgb, size=size)


def resize_rgb(rgb: np.ndarray, *, size: int) -> np.ndarray:
    """uint8 ``(H, W, 3)`` to uint8 ``(size, size, 3)`` in integer arithmetic.

    While both sides are even and at least ``2 * size``: 2×2 block sums (the anti-aliasing
    step), then linear interpolation with weights in eighths along each axis; one rounding at
    the end of each step (a halving followed by the interpolation shares the interpolation's).
    512 -> 224 is one halving and a mild 256 -> 224 interpolation.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"resize_rgb expects uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    packed = lanes.pack(rgb[..., 0], rgb[..., 1], rgb[..., 2])  # (H, W): R, G, B in 16-bit lanes
    if not lanes.can_halve(packed.shape, size):
        return lanes.unpack(lanes.interpolate(packed, size, shift=0))
    return lanes.after_halving(lanes.halve_sums(packed), size)


def slice_rgb(sl: Slice, *, windows: Sequence[Window] = RSNA_WINDOWS,
              size: int = DEFAULT_SIZE, out: np.ndarray | None = None) -> np.ndarray:
    """``window_rgb(slice_hu(sl))`` through one table: uint8 ``(size, size, 3)``, equal bytes.

    The table maps each 16-bit stored code to its three windowed bytes, packed in 16-bit lanes
    of a uint64, so the 2×2 sums of the first halving are sums of four table gathers at
    quarter resolution, and the rest of :func:`resize_rgb` runs on the packed values.
    ``out``: a uint8 ``(size, size, 3)`` array to write into (a row of a shard).
    """
    _check_windows(windows)
    table = _rgb_table(sl.slope, sl.intercept, sl.bits_stored, sl.signed, sl.rsna_quirk,
                       tuple(Window(*w) for w in windows))
    codes = sl.codes
    if not lanes.can_halve(codes.shape, size):
        return lanes.unpack(lanes.interpolate(table[codes], size, shift=0), out=out)
    # Each quarter's codes are copied to a contiguous buffer and gathered into preallocated
    # arrays: fresh half-megabyte temporaries would cost page faults on every slice.
    quarter = (codes.shape[0] // 2, codes.shape[1] // 2)
    q = lanes.buffer("codes", quarter, np.intp)  # take() would convert narrower indices each time
    sums = lanes.buffer("sums", quarter, np.uint64)
    part = lanes.buffer("part", quarter, np.uint64)
    np.copyto(q, codes[0::2, 0::2])
    np.take(table, q, out=sums, mode="clip")  # indices are < 65536: clip never clips
    for i, j in ((0, 1), (1, 0), (1, 1)):
        np.copyto(q, codes[i::2, j::2])
        np.take(table, q, out=part, mode="clip")
        sums += part
    return lanes.after_halving(sums, size, out=out)


# ---------------------------------------------------------------------------- internals

@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pydicom with value validation off: the RSNA ``ID_...`` UIDs are not valid UIDs."""
    from pydicom import config

    old = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        config.settings.reading_validation_mode = old


def _dcmread(path: str, *, stop_before_pixels: bool = False):
    import pydicom
    from pydicom.errors import InvalidDicomError

    with _quiet():
        try:
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            pass  # no preamble/'DICM': maybe a bare data set; try once more below
        except (EOFError, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise DicomReadError(path, "truncated or corrupt header",
                                 f"{type(exc).__name__}: {exc}") from None
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels)
            if "Rows" not in ds or "Columns" not in ds:
                raise ValueError("no image tags")
            return ds
        except Exception:
            raise DicomReadError(path, "not a DICOM file",
                                 f"{os.path.getsize(path)} bytes, no 'DICM' prefix and no "
                                 "readable image tags") from None


def _pixels(ds, path: str, head: dict) -> np.ndarray:
    """The stored values ``(rows, cols)`` of a pydicom dataset."""
    from pydicom.uid import ImplicitVRLittleEndian

    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    tsyntax = tsyntax or ImplicitVRLittleEndian
    if tsyntax.is_compressed:
        return _decode(ds, path, tsyntax, head["rows"], head["cols"])
    return _native_pixels(path, ds.PixelData, head, little_endian=tsyntax.is_little_endian)


def _native_pixels(path: str, data, head: dict, *, little_endian: bool = True) -> np.ndarray:
    """Uncompressed pixel bytes as ``(rows, cols)``: a zero-copy view where the byte order is
    native."""
    rows, cols, bits = head["rows"], head["cols"], head["bits_allocated"]
    if bits not in (8, 16):
        raise DicomReadError(path, "unexpected shape",
                             f"{bits}-bit pixels; expected 8 or 16 bits")
    dtype = np.dtype(("i" if head["signed"] else "u") + str(bits // 8))
    dtype = dtype.newbyteorder("<" if little_endian else ">")
    need = rows * cols * dtype.itemsize
    if len(data) < need:
        raise DicomReadError(path, "truncated",
                             f"pixel data has {len(data)} of {need} bytes for {rows}×{cols}")
    pixels = np.frombuffer(data, dtype=dtype, count=rows * cols).reshape(rows, cols)
    return pixels if dtype.isnative else pixels.astype(dtype.newbyteorder("="))


def _decode(ds, path: str, tsyntax, rows: int, cols: int) -> np.ndarray:
    from pydicom.pixels.decoders.base import get_decoder

    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise DicomReadError(path, "unsupported transfer syntax", str(tsyntax.name)) from None
    if not decoder.is_available:
        raise DicomReadError(path, "needs a decoder",
                             f"{tsyntax.name} pixel data; install the optional decoders: "
                             f"{CODECS_EXTRA}")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # any decoder failure is a bad file, whatever the plugin raises
        raise DicomReadError(path, "decode failed",
                             f"{tsyntax.name}: {type(exc).__name__}: {exc}") from None
    if pixels.shape != (rows, cols):
        raise DicomReadError(path, "unexpected shape",
                             f"decoded {pixels.shape}, header says ({rows}, {cols})")
    return pixels


# The common case (an uncompressed little-endian slice without sequences, like every RSNA file)
# is parsed here directly: pydicom builds a full Dataset, which costs more than all the
# windowing. Anything else returns None and goes through pydicom.
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR",
                       b"UT"))
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_US_TAGS = {0x00280002: "spp", 0x00280010: "rows", 0x00280011: "cols",
            0x00280100: "bits_allocated", 0x00280101: "bits_stored", 0x00280103: "signed"}
_TEXT_TAGS = {0x00100020: "patient_id", 0x00280004: "photometric", 0x00280008: "frames",
              0x00281052: "intercept", 0x00281053: "slope"}


def _parse_native(path: str) -> tuple[dict, memoryview] | None:
    """``(header, pixel bytes)`` of a simple uncompressed little-endian file, else None."""
    with open(path, "rb") as fh:
        buf = fh.read()
    if len(buf) < 132 or buf[128:132] != b"DICM":
        return None
    pos, end = 132, len(buf)
    tsyntax = None
    while pos + 8 <= end:  # the file meta group is always explicit VR little endian
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            break
        if buf[pos + 4:pos + 6] in _LONG_VRS:
            (length,), start = struct.unpack_from("<I", buf, pos + 8), pos + 12
        else:
            (length,), start = struct.unpack_from("<H", buf, pos + 6), pos + 8
        if elem == 0x0010:
            tsyntax = buf[start:start + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = start + length
    if tsyntax not in (_EXPLICIT_LE, _IMPLICIT_LE):
        return None
    explicit = tsyntax == _EXPLICIT_LE
    head = {"spp": 1, "frames": 1, "signed": 0, "bits_allocated": 16, "bits_stored": None,
            "slope": None, "intercept": None, "photometric": "MONOCHROME2", "patient_id": ""}
    while pos + 8 <= end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = group << 16 | elem
        if not explicit:
            (length,), start = struct.unpack_from("<I", buf, pos + 4), pos + 8
        elif buf[pos + 4:pos + 6] in _LONG_VRS:
            if pos + 12 > end:
                return None
            (length,), start = struct.unpack_from("<I", buf, pos + 8), pos + 12
        else:
            (length,), start = struct.unpack_from("<H", buf, pos + 6), pos + 8
        if length == _UNDEFINED or start + length > end:
            return None  # a sequence, encapsulated pixels, or a truncated file: pydicom decides
        if tag == _PIXEL_DATA:
            if "rows" not in head or "cols" not in head:
                return None
            return _finish_head(head, path), memoryview(buf)[start:start + length]
        if tag in _US_TAGS:
            if length != 2:
                return None
            head[_US_TAGS[tag]] = struct.unpack_from("<H", buf, start)[0]
        elif tag in _TEXT_TAGS:
            text = buf[start:start + length].decode("latin-1").strip("\0 ")
            head[_TEXT_TAGS[tag]] = text.split("\\")[0].strip()
        pos = start + length
    return None


def _finish_head(head: dict, path: str) -> dict:
    """Typed header values from the raw parse (the same rules as :func:`_header_of`)."""
    out = dict(head)
    out["signed"] = int(head["signed"]) == 1
    out["bits_stored"] = int(head["bits_stored"] or head["bits_allocated"])
    out["frames"] = int(head["frames"] or 1)
    out["photometric"] = str(head["photometric"]).strip().upper()
    out["slope"] = _to_float(head["slope"], 1.0, path, "RescaleSlope")
    out["intercept"] = _to_float(head["intercept"], 0.0, path, "RescaleIntercept")
    return out


def _first(value):
    """First item of a multi-valued element (``[00040, 00040]`` -> ``00040``)."""
    if value is not None and not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        return value[0] if len(value) else None
    return value


def _to_float(value, default: float, path, tag: str) -> float:
    value = _first(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DicomReadError(path, f"bad {tag}", repr(value)) from None


def _check_windows(windows: Sequence[Window]) -> None:
    if len(windows) != 3:
        raise ValueError(f"an RGB image needs exactly 3 windows, got {len(windows)}")


def _stored_values(codes: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """int64 stored values of uint16 codes: bits above BitsStored dropped, sign extended."""
    v = codes.astype(np.int64) & ((1 << bits_stored) - 1)
    if signed:
        v = np.where(v >= 1 << (bits_stored - 1), v - (1 << bits_stored), v)
    return v


@lru_cache(maxsize=64)
def _hu_table(slope: float, intercept: float, bits_stored: int, signed: bool,
              rsna_quirk: bool) -> np.ndarray:
    """float32 HU of every 16-bit code: ``(65536,)``; stored × slope + intercept (the modality
    LUT), whatever the photometric interpretation."""
    v = _stored_values(np.arange(_N_CODES, dtype=np.uint16), bits_stored, signed)
    if rsna_quirk:
        v = (v + RSNA_QUIRK_OFFSET) & 0xFFFF  # uint16 arithmetic, as in the published fix
        v = np.where(v >= RSNA_QUIRK_WRAP, v - RSNA_QUIRK_WRAP, v)
        intercept = RSNA_QUIRK_INTERCEPT
    table = (v * slope + intercept).astype(np.float32)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=64)
def _rgb_table(slope: float, intercept: float, bits_stored: int, signed: bool,
               rsna_quirk: bool,
               windows: tuple[Window, ...]) -> np.ndarray:
    """uint64 ``(65536,)``: the windowed R, G, B bytes of every code in 16-bit lanes 0, 1, 2."""
    hu = _hu_table(slope, intercept, bits_stored, signed, rsna_quirk)
    table = lanes.pack(*(window(hu, *w) for w in windows))
    table.flags.writeable = False
    return table
