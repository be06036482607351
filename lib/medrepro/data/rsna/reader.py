"""Reading the RSNA cache: its manifest and splits, images by row, and the ``tf.data`` pipeline
training reads (memory-mapped shards, one gather and, for compact shards, one batched decode per
batch). Every compact image carries zstd checksums that :func:`load_images` and
:func:`make_dataset` verify as they decode (a failure marks the shard for rebuilding and raises
:class:`~medrepro.data.rsna.layout.CacheError`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from medrepro.data import compact
from medrepro.data.rsna.labels import N_CLASSES, SPLITS
from medrepro.data.rsna.layout import (IMAGE_SIZE, SPLIT_FILES, CacheError, mark_for_rebuild,
                                       require_complete, shard_data)

MAX_OPEN_SHARDS = 256  # mapped shard files per reader (file descriptors)


def load_manifest(cache: str | os.PathLike):
    """``manifest.csv`` of a complete cache as a DataFrame (one row per selected image, then
    one per DICOM without a label row, skipped)."""
    import pandas as pd

    require_complete(cache)
    return pd.read_csv(Path(cache) / "manifest.csv", dtype={"patient_id": str, "problem": str,
                                                            "detail": str},
                       keep_default_na=False)


def read_summary(cache: str | os.PathLike) -> dict:
    require_complete(cache)
    return json.loads((Path(cache) / "summary.json").read_text(encoding="utf-8"))


def load_split(cache: str | os.PathLike, *, kind: str = "image"):
    """The split of the cached images: ``image_id``, ``label`` (0..5), ``label_name``,
    ``patient_id``, ``split`` (train/val/test), ``shard``, ``row``. ``kind``: image | patient."""
    import pandas as pd

    if kind not in SPLIT_FILES:
        raise ValueError(f"kind must be one of {', '.join(SPLIT_FILES)}, got {kind!r}")
    path = Path(cache) / SPLIT_FILES[kind]
    if not path.is_file():
        raise CacheError(f"{path}: no split file; run rsna.ensure_cache(...) first")
    return pd.read_csv(path, dtype={"patient_id": str}, keep_default_na=False)


def split_notes(cache: str | os.PathLike) -> dict:
    """The notes of :func:`write_splits` (classes too small to split, missing patients...)."""
    path = Path(cache) / "splits.json"
    return json.loads(path.read_text(encoding="utf-8")).get("notes", {}) if path.is_file() else {}


def load_images(cache: str | os.PathLike, rows) -> np.ndarray:
    """uint8 ``(n, S, S, 3)`` of the given rows of a split/manifest DataFrame (``shard``, ``row``)."""
    shards = _Shards(cache)
    return shards.gather(rows["shard"].to_numpy(), rows["row"].to_numpy())


class _Shards:
    """The shards of a cache, memory-mapped on first use: ``.npy`` arrays or compact shards.

    At most ``MAX_OPEN_SHARDS`` stay mapped (least recently used dropped first): each map holds
    a file descriptor, and the full set has ~2,800 shards, more than a default ``ulimit -n``.
    """

    def __init__(self, cache: str | os.PathLike):
        import threading
        from collections import OrderedDict

        self.cache = Path(cache)
        build = json.loads((self.cache / "build.json").read_text(encoding="utf-8"))
        self.format = build.get("format", "raw")
        self.size = int(build["image_size"])
        self._maps: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()  # tf.data calls gather from several threads

    def get(self, k: int):
        with self._lock:
            shard = self._maps.get(k)
            if shard is not None:
                self._maps.move_to_end(k)
                return shard
        if shard is None:
            path = shard_data(self.cache, k, self.format)
            if self.format == "compact":
                try:
                    shard = compact.Shard(path)
                except (compact.CorruptImageError, FileNotFoundError) as exc:
                    mark_for_rebuild(self.cache, k)
                    raise CacheError(f"{exc}; shard {k} is marked for rebuilding: run "
                                     "rsna.ensure_cache(...) / build_cache(...) again") from None
            else:
                shard = np.load(path, mmap_mode="r")
            with self._lock:
                self._maps[k] = shard
                while len(self._maps) > MAX_OPEN_SHARDS:
                    self._maps.popitem(last=False)  # unmapped once no batch uses it
        return shard

    def gather(self, shard: np.ndarray, row: np.ndarray) -> np.ndarray:
        """uint8 ``(n, S, S, 3)``: image ``row[i]`` of shard ``shard[i]``, in the order given."""
        shard = np.asarray(shard, dtype=np.int64)
        row = np.asarray(row, dtype=np.int64)
        out = np.empty((len(shard), self.size, self.size, 3), dtype=np.uint8)
        if self.format == "compact":  # one batched decode over every shard of the batch
            blobs, where = [], []
            for k, r in zip(shard.tolist(), row.tolist()):
                src = self.get(k)
                if not 0 <= r < len(src):
                    raise CacheError(f"{src.path}: row {r} out of range (shard of {len(src)})")
                blobs.append(src.blob(r))
                where.append(f"{src.path} image {r}")
            try:
                return compact.decode_batch(blobs, self.size, out=out, where=where)
            except compact.CorruptImageError as exc:
                bad = int(shard[where.index(str(exc).split(":")[0])]) if str(exc).split(":")[0] \
                    in where else None
                for k in ([bad] if bad is not None else np.unique(shard).tolist()):
                    mark_for_rebuild(self.cache, int(k))
                raise CacheError(f"{exc}; shard {bad if bad is not None else 'of the batch'} "
                                 "is marked for rebuilding: run rsna.ensure_cache(...) / "
                                 "build_cache(...) again") from None
        for k in np.unique(shard):
            sel = np.flatnonzero(shard == k)
            out[sel] = self.get(int(k))[row[sel]]
        return out


def make_dataset(cache: str | os.PathLike, split_df, *, split: str, batch_size: int,
                 image_size: int = IMAGE_SIZE, shuffle: bool = False, seed: int = 0):
    """A ``tf.data.Dataset`` of ``(float32 (B, S, S, 3) in [0, 1], float32 one-hot (B, 6))``.

    Rows of ``split_df`` (from :func:`load_split`, possibly subsampled) whose ``split`` equals
    ``split``; with ``shuffle`` reshuffled each epoch from ``seed``. Each batch is one gather
    from the memory-mapped shards (for compact shards one batched decode, batches decoded in
    parallel threads: zstd and numpy release the GIL); images are resized on the fly only when
    ``image_size`` differs from the cached size. The last batch may be smaller.
    """
    import tensorflow as tf

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rows = split_df[split_df["split"] == split]
    if len(rows) == 0:
        raise ValueError(f"no rows with split == {split!r}")
    stored = int(json.loads((Path(cache) / "build.json").read_text(encoding="utf-8"))
                 ["image_size"])
    shards = _Shards(cache)
    index = np.stack([rows["shard"].to_numpy(np.int64), rows["row"].to_numpy(np.int64),
                      rows["label"].to_numpy(np.int64)], axis=1)  # (N, 3)

    def fetch(batch: np.ndarray) -> np.ndarray:
        return shards.gather(batch[:, 0], batch[:, 1])

    def load(batch):
        images = tf.numpy_function(fetch, [batch], tf.uint8, stateful=False)
        images = tf.ensure_shape(images, [None, stored, stored, 3])
        x = tf.cast(images, tf.float32) / 255.0
        if image_size != stored:
            x = tf.clip_by_value(tf.image.resize(x, [image_size, image_size], antialias=True),
                                 0.0, 1.0)
        y = tf.one_hot(batch[:, 2], N_CLASSES, dtype=tf.float32)
        return x, y

    def batched(items):
        return items.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)

    ds = tf.data.Dataset.from_tensor_slices(index)
    if shuffle:  # epoch e in the order drawn from (seed, e): a resumed fit sees the same order
        from medrepro.data import pipeline

        return pipeline.epoch_shuffled(ds, n_items=len(index), seed=seed, then=batched)
    return batched(ds).prefetch(tf.data.AUTOTUNE)
