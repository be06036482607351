"""tf.data pipelines: datasets of arrays or files, batched, shuffled per epoch.

The dataset-building half of training, used by the data modules (:mod:`medrepro.data.brain_mri`,
:mod:`medrepro.data.volumes`, :mod:`medrepro.data.rsna`) and by :mod:`medrepro.training.train`:

- :func:`from_arrays` / :func:`finish`: cache → seeded shuffle → batch → prefetch, with the
  random augmentation that ``fit`` applies on the device attached (:func:`with_augment`);
- :func:`epoch_shuffled`: epoch ``e`` shuffled by ``(seed, e)``, so a resumed run sees the same
  data order (:func:`medrepro.training.train.fit` iterates its :class:`EpochStream`);
- :func:`even_batches` / :func:`pad_to_multiple`: batches padded to split evenly over the
  replicas of a ``MirroredStrategy``.

TensorFlow is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np

from medrepro.data.augment import Augment


def from_arrays(x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int,
                shuffle: bool = False, seed: int = 0, augment: Augment | None = None,
                cache: bool = True):
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` (or ``x``) from arrays.

    ``augment``: the random augmentation :func:`medrepro.training.train.fit` applies to each
    training batch on the device (:func:`finish`). Shuffling is seeded and reshuffled each
    epoch.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    return finish(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, augment=augment,
                  cache=cache, n_items=len(x))


def finish(ds, *, batch_size: int, shuffle: bool = False, seed: int = 0,
           augment: Augment | None = None, cache: bool = True, n_items: int | None = None,
           batch_fn=None):
    """Cache → shuffle (seeded) → batch → ``batch_fn`` (on the fly) → prefetch.

    ``ds`` yields single items ``x`` or ``(x, y)``; ``batch_fn`` maps a whole batch (e.g.
    indices → images). With ``shuffle`` the dataset is :func:`epoch_shuffled` (``n_items``
    items): reshuffled every iteration, and :func:`medrepro.training.train.fit` trains epoch
    ``e`` on the permutation drawn from ``(seed, e)``, the same after a resume. ``augment``
    (:class:`medrepro.data.augment.Augment`) is attached, not mapped (:func:`with_augment`):
    the batches come out unaugmented, and ``fit`` augments them inside its training step.
    """
    import tensorflow as tf

    if cache:
        ds = ds.cache()

    def after_shuffle(items):
        items = items.batch(batch_size)
        if batch_fn is not None:
            items = items.map(batch_fn, num_parallel_calls=tf.data.AUTOTUNE)
        return items

    if shuffle:
        out = epoch_shuffled(ds, n_items=n_items, seed=seed, then=after_shuffle)
    else:
        out = after_shuffle(ds).prefetch(tf.data.AUTOTUNE)
    return with_augment(out, augment)


AUGMENT = "medrepro_augment"  # attribute of a dataset: the Augment fit applies to its batches


def with_augment(ds, augment: Augment | None):
    """``ds`` carrying ``augment`` (attribute :data:`AUGMENT`; read it with :func:`augment_of`)
    for :func:`medrepro.training.train.fit` to apply to its batches' images in the training
    step: on the device, every draw a function of (seed, step, item), so parallel input
    pipelines, replicas and a resume change no draw."""
    if augment is not None and not isinstance(augment, Augment):
        raise TypeError(f"augment: expected a medrepro.data.augment.Augment or None, got "
                        f"{type(augment).__name__}")
    if augment is not None:
        setattr(ds, AUGMENT, augment)
    return ds


def augment_of(ds) -> Augment | None:
    """The :class:`medrepro.data.augment.Augment` attached to ``ds`` (None if none)."""
    return getattr(ds, AUGMENT, None)


class EpochStream:
    """How :func:`medrepro.training.train.fit` iterates an :func:`epoch_shuffled` dataset: ``build(start)`` is an
    endless dataset of epochs ``start, start + 1, ...`` (epoch ``e`` permuted by ``(seed, e)``),
    ``batches`` its batches per epoch (``steps_per_epoch``)."""

    def __init__(self, build, batches: int):
        self.build, self.batches = build, int(batches)


EPOCH_STREAM = "medrepro_epoch_stream"  # attribute of a dataset made by epoch_shuffled


def epoch_shuffled(ds, *, n_items: int | None, seed: int, then=None):
    """``ds`` (``n_items`` items, finite) shuffled each epoch, then ``then(ds)`` (batching,
    mapping; no prefetch), prefetched.

    Iterated directly it reshuffles every iteration (``Dataset.shuffle``). It also carries an
    :class:`EpochStream` (attribute ``EPOCH_STREAM``) that :func:`medrepro.training.train.fit` uses instead: epoch ``e``
    is ``ds`` in the order of ``stateless_shuffle(range(n), seed=(seed, e))``, so the data order
    of every epoch depends on the epoch number only, not on how many epochs this process ran.
    The permutation holds one epoch of items in memory, like a full shuffle buffer.
    """
    import tensorflow as tf

    then = then or (lambda items: items)
    n = int(n_items if n_items is not None else ds.cardinality().numpy())
    if n < 1:
        raise ValueError(f"epoch_shuffled: need a finite, non-empty dataset, got n_items={n}")
    plain = then(ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)).prefetch(
        tf.data.AUTOTUNE)
    batches = int(then(ds).cardinality().numpy())
    if batches < 1:  # unknown cardinality: fit cannot set steps_per_epoch; plain shuffle only
        return plain

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))

        def permute(*items):
            items = items[0] if len(items) == 1 else items
            return tf.nest.map_structure(lambda t: tf.gather(t, order), items)

        return then(ds.batch(n).map(permute).unbatch())

    def build(start: int):
        return (tf.data.Dataset.range(int(start), 2**62).flat_map(one_epoch)
                .prefetch(tf.data.AUTOTUNE))

    setattr(plain, EPOCH_STREAM, EpochStream(build, batches))
    return plain


def even_batches(ds, replicas: int):
    """``ds`` (batches of ``x``, ``(x, y)`` or ``(x, y, w)``) with every batch padded to a
    multiple of ``replicas`` by repeating its first items.

    Why: Keras 3 under ``MirroredStrategy`` fails (AddN shape error, keras-team/keras#19246) or
    gives a replica no items (NaN BatchNorm statistics) when a batch, in practice an epoch's last,
    does not split evenly over the replicas. The number of batches is unchanged, so
    ``steps_per_epoch`` and the epoch-seeded order (exact resume) stay as they are; the cost is
    at most ``replicas - 1`` repeated items per padded batch.
    """
    import tensorflow as tf

    def pad(*items):
        index = _even_index(tf.shape(tf.nest.flatten(items)[0])[0], replicas)
        out = tf.nest.map_structure(lambda t: tf.gather(t, index), items)
        return out[0] if len(items) == 1 else out

    return ds.map(pad, num_parallel_calls=tf.data.AUTOTUNE)


def pad_to_multiple(x, replicas: int):
    """A batch tensor ``x`` padded to a multiple of ``replicas`` rows (its first rows again)."""
    import tensorflow as tf

    return tf.gather(x, _even_index(tf.shape(x)[0], replicas))


def _even_index(n, replicas: int):
    """Indices ``0..n-1`` followed by the first items again up to a multiple of ``replicas``."""
    import tensorflow as tf

    return tf.concat([tf.range(n), tf.range((-n) % replicas) % n], axis=0)
