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


def test_a_dataset_carries_its_augmentation_and_yields_plain_batches():
    import pytest

    from medrepro.data import brain_mri

    x = np.random.default_rng(0).random((8, 12, 12, 3), dtype=np.float32)
    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=1)
    ds = pipeline.from_arrays(x, np.arange(8), batch_size=4, augment=aug)
    assert pipeline.augment_of(ds) is aug
    np.testing.assert_array_equal(np.concatenate([b[0] for b in ds.as_numpy_iterator()]), x)
    shuffled = pipeline.from_arrays(x, np.arange(8), batch_size=4, shuffle=True, augment=aug)
    assert pipeline.augment_of(shuffled) is aug
    assert pipeline.augment_of(pipeline.from_arrays(x, batch_size=4)) is None
    with pytest.raises(TypeError, match="expected a medrepro.data.augment.Augment or None, "
                                        "got Sequential"):
        import keras

        pipeline.from_arrays(x, batch_size=4, augment=keras.Sequential([]))


def test_fit_augments_in_the_training_step_and_every_fit_draws_the_same(tmp_path):
    # C's trials share one augmented dataset: a fit's draws come from its own optimizer's
    # steps, so a trial does not depend on the fits run before it in this process
    import keras

    from medrepro.data import brain_mri
    from medrepro.training import train

    rng = np.random.default_rng(2)
    x = rng.random((32, 12, 12, 3), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]
    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=0)

    def fitted(run, augment):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(),
                                  keras.layers.Dense(4, activation="softmax")])
        model.compile(optimizer="sgd", loss="mse")
        ds = pipeline.from_arrays(x, y, batch_size=8, shuffle=True, seed=0, augment=augment)
        train.fit(model, ds, None,
                  train.FitConfig(epochs=2, monitor="loss", checkpoint=None, backup=False),
                  run_dir=tmp_path / run, verbose=0, progress=False)
        assert "train_step" not in vars(model)  # the plain step is back after the fit
        return model.get_weights()

    first = fitted("first", aug)
    for a, b in zip(first, fitted("second", aug)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], fitted("plain", None)[0])  # the fit was augmented
