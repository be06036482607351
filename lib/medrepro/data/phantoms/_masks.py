"""Lesion masks of the phantom datasets, kept out of the training data path.

The MRI and MosMed generators know where they drew each lesion. They save, per phantom folder,
one file ``<root>/.masks/lesion_masks.npz`` (a hidden folder: no lister of images or volumes
reads it) holding, for every generated file, keyed by its path relative to ``root``
(``Training/glioma/Tr-gl_0010.jpg``, ``CT-23/study_0939.nii.gz``):

- ``lesion``: bool, the lesion drawn (posed like the image / in the volume's stored voxel order);
  all False for the classes without one (``notumor``, ``CT-0``);
- ``region``: bool, the organ the lesion lies in (the brain for MRI, the lungs for CT), for
  chance rates restricted to it.

A planted duplicate gets its source's masks. Real datasets have no such file:
:func:`lesion_masks` raises :class:`NoLesionMasksError` there (test with
:func:`has_lesion_masks`). Each mask is stored bit-packed and zlib-compressed, and the zip is
written with fixed timestamps, so equal masks give byte-identical files (the phantoms'
determinism by seed holds for this file too).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from medrepro.data.phantoms._common import PhantomError

MASKS_DIR = ".masks"
MASKS_FILE = "lesion_masks.npz"
KINDS = ("lesion", "region")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class NoLesionMasksError(PhantomError):
    """A dataset folder without lesion masks (real data, or a phantom made before they were saved)."""


class MaskCollector:
    """Collects the masks of one phantom while it is written; :meth:`save` writes the file.

    Masks are packed and compressed as they come, so a paper-size phantom stays small in memory.
    """

    def __init__(self) -> None:
        self._items: dict[str, tuple[tuple[int, ...], dict[str, bytes]]] = {}

    def add(self, rel_path: str, **masks: np.ndarray) -> None:
        """The masks of the file ``rel_path`` (posix, relative to the phantom root): ``lesion``
        and ``region``, bool arrays of one shape."""
        if set(masks) != set(KINDS):
            raise PhantomError(f"{rel_path}: expected masks {KINDS}, got {tuple(masks)}")
        shapes = {np.shape(m) for m in masks.values()}
        if len(shapes) != 1:
            raise PhantomError(f"{rel_path}: masks of different shapes {sorted(shapes)}")
        packed = {k: zlib.compress(np.packbits(np.asarray(m, dtype=bool).ravel()).tobytes(), 6)
                  for k, m in masks.items()}
        self._items[rel_path] = (shapes.pop(), packed)

    def copy(self, rel_path: str, source: str) -> None:
        """``rel_path`` is a byte copy of ``source``: it gets ``source``'s masks."""
        self._items[rel_path] = self._items[source]

    def save(self, root: str | os.PathLike) -> Path:
        """Write ``root/.masks/lesion_masks.npz`` (deterministic bytes); returns its path."""
        names = sorted(self._items)
        arrays: dict[str, np.ndarray] = {
            "paths": np.asarray(names, dtype=str),
            "shapes": np.asarray([self._items[n][0] for n in names], dtype=np.int64)
            .reshape(len(names), -1)}
        for kind in KINDS:
            blobs = [self._items[n][1][kind] for n in names]
            arrays[f"{kind}_offsets"] = np.cumsum([0] + [len(b) for b in blobs], dtype=np.int64)
            arrays[f"{kind}_bytes"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        path = Path(root) / MASKS_DIR / MASKS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME), buf.getvalue())
        return path


class LesionMasks(Mapping):
    """The masks of one phantom folder: ``masks[rel_path]`` -> ``{"lesion", "region"}`` bool
    arrays (decoded on access). Keys: file paths relative to the root, posix style."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        self.path = path
        self._index = {str(p): i for i, p in enumerate(data["paths"])}
        self._shapes = data["shapes"]
        self._data = data

    def __getitem__(self, rel_path: str) -> dict[str, np.ndarray]:
        try:
            i = self._index[str(rel_path)]
        except KeyError:
            raise KeyError(f"{self.path}: no masks for {rel_path!r}") from None
        shape = tuple(int(s) for s in self._shapes[i])
        out = {}
        for kind in KINDS:
            lo, hi = self._data[f"{kind}_offsets"][i:i + 2]
            bits = np.frombuffer(zlib.decompress(self._data[f"{kind}_bytes"][lo:hi].tobytes()),
                                 dtype=np.uint8)
            out[kind] = np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)



def mask_key(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """The key of the file ``path`` under the dataset folder ``root`` (posix, relative)."""
    return Path(path).relative_to(Path(root)).as_posix()


def masks_path(root: str | os.PathLike) -> Path:
    """Where a phantom folder keeps its lesion masks."""
    return Path(root) / MASKS_DIR / MASKS_FILE


def has_lesion_masks(root: str | os.PathLike) -> bool:
    """True when ``root`` is a phantom folder with saved lesion masks."""
    return masks_path(root).is_file()


def lesion_masks(root: str | os.PathLike) -> LesionMasks:
    """The lesion masks of the phantom folder ``root``.

    Raises :class:`NoLesionMasksError` naming the folder when there are none (real data has no
    lesion masks; a phantom made before masks were saved is regenerated by
    :func:`medrepro.data.datasets.make_phantom`, whose generator fingerprint changed).
    """
    path = masks_path(root)
    if not path.is_file():
        raise NoLesionMasksError(f"{root}: no lesion masks (expected {MASKS_DIR}/{MASKS_FILE}, "
                                 "which only the phantom generators write; real data has none)")
    return LesionMasks(path)
