"""medrepro.data.pipeline: tf.data datasets whose epoch order depends on (seed, epoch) only."""

import numpy as np

from medrepro.data import pipeline


def test_epoch_order_depends_on_the_epoch_only():
    x = np.arange(20, dtype="float32")[:, None]
    ds = pipeline.from_arrays(x, np.arange(20), batch_size=6, shuffle=True, seed=3)
    stream = getattr(ds, pipeline.EPOCH_STREAM)
    assert stream.batches == 4
    from_zero = [np.concatenate([b[1] for b in stream.build(0).take(4 * 3).as_numpy_iterator()
                                 ][4 * e:4 * e + 4]) for e in range(3)]
    from_two = np.concatenate([b[1] for b in stream.build(2).take(4).as_numpy_iterator()])
    for order in from_zero:
        assert sorted(order) == list(range(20))  # each epoch is a permutation
    assert not np.array_equal(from_zero[0], from_zero[1])  # reshuffled every epoch
    np.testing.assert_array_equal(from_two, from_zero[2])  # epoch 2 is epoch 2, from any start
    # pairs stay together, and plain iteration still reshuffles
    for xb, yb in stream.build(0).take(4).as_numpy_iterator():
        np.testing.assert_array_equal(xb[:, 0], yb)
    plain = [np.concatenate([y for _, y in ds.as_numpy_iterator()]) for _ in range(2)]
    assert sorted(plain[0]) == list(range(20)) and not np.array_equal(*plain)


def test_epoch_stream_reads_a_cache_once():
    import tensorflow as tf

    calls = []

    def count(v):
        calls.append(1)
        return v

    base = tf.data.Dataset.range(10).map(
        lambda v: tf.numpy_function(count, [v], tf.int64, stateful=True))
    ds = pipeline.finish(base, batch_size=5, shuffle=True, seed=0, n_items=10)
    list(getattr(ds, pipeline.EPOCH_STREAM).build(0).take(2 * 3).as_numpy_iterator())
    assert len(calls) == 10  # three epochs, one pass over the source


def _augmented_batches(build, n):
    from medrepro.core import seeds

    seeds.seed_everything(5)
    return [np.asarray(b[0]) for b in getattr(build(), pipeline.EPOCH_STREAM).build(0).take(n)
            .as_numpy_iterator()]


def test_seeded_augmentation_repeats_exactly():
    # Keras' random layers draw from a SeedGenerator variable; mapped in parallel, the calls
    # race for it and the same seeded dataset augments differently from one build to the next
    from medrepro.data import brain_mri, volumes

    rng = np.random.default_rng(0)
    x = rng.random((64, 24, 24, 3), dtype=np.float32)

    def images():
        return pipeline.from_arrays(x, np.arange(64), batch_size=4, shuffle=True, seed=1,
                                    augment=brain_mri.augmenter(**brain_mri.C_AUGMENT, seed=1))

    first, again = _augmented_batches(images, 32), _augmented_batches(images, 32)
    assert not np.array_equal(first[0], x[:4])  # augmented at all
    for i, (a, b) in enumerate(zip(first, again)):
        np.testing.assert_array_equal(a, b, err_msg=f"batch {i}")
    v = rng.random((16, 16, 16, 8), dtype=np.float32)

    def vols():
        return volumes.make_dataset(v, np.arange(16) % 2, batch=2, augment=True, shuffle=True,
                                    seed=1)

    first, again = _augmented_batches(vols, 16), _augmented_batches(vols, 16)
    for i, (a, b) in enumerate(zip(first, again)):
        np.testing.assert_array_equal(a, b, err_msg=f"volume batch {i}")


def test_every_fit_on_a_dataset_restarts_its_augmentation(tmp_path):
    # C's trials share one augmented dataset: the second fit must draw what the first drew,
    # else a trial depends on whether the trials before it were trained in this process
    import keras

    from medrepro.data import brain_mri
    from medrepro.training import train

    rng = np.random.default_rng(2)
    x = rng.random((32, 12, 12, 3), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]
    ds = pipeline.from_arrays(x, y, batch_size=8, shuffle=True, seed=0,
                              augment=brain_mri.augmenter(**brain_mri.C_AUGMENT, seed=0))
    assert callable(getattr(ds, pipeline.AUGMENT_RESTART))

    def fitted(run):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(),
                                  keras.layers.Dense(4, activation="softmax")])
        model.compile(optimizer="sgd", loss="mse")
        train.fit(model, ds, None,
                  train.FitConfig(epochs=2, monitor="loss", checkpoint=None, backup=False),
                  run_dir=tmp_path / run, verbose=0, progress=False)
        return model.get_weights()

    for a, b in zip(fitted("first"), fitted("second")):
        np.testing.assert_array_equal(a, b)
    assert not hasattr(pipeline.from_arrays(x, y, batch_size=8), pipeline.AUGMENT_RESTART)
