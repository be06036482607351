"""medrepro.models.chest_ct: the 3-D CNN of Fig 4.5 and its optimiser."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.models import chest_ct
from medrepro.models.summary import param_counts


def test_cnn3d_has_the_papers_parameter_counts():
    model = chest_ct.cnn3d()
    assert param_counts(model) == chest_ct.PAPER_PARAMS == {
        "total": 214_817, "trainable": 214_465, "non_trainable": 352}
    assert tuple(model.output.shape) == (None, 1)
    shapes = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    assert (None, 6, 6, 2, 64) in shapes.values()  # last block of Fig 4.5
    assert model.name == "3dcnn"


def test_cnn3d_smaller_input_builds_with_the_same_parameters():
    model = chest_ct.cnn3d((48, 48, 48, 1))
    assert param_counts(model)["total"] == 214_817
    out = model(np.zeros((2, 48, 48, 48, 1), np.float32), training=False)
    assert out.shape == (2, 1) and np.all((out.numpy() > 0) & (out.numpy() < 1))


def test_cnn3d_batchnorm_momentum_is_the_thesis_and_settable():
    assert chest_ct.BN_MOMENTUM == 0.99  # layers.BatchNormalization(): Keras' default
    for momentum, model in ((0.99, chest_ct.cnn3d((48, 48, 48, 1))),
                            (0.9, chest_ct.cnn3d((48, 48, 48, 1), bn_momentum=0.9))):
        bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
        assert len(bns) == 4 and all(b.momentum == pytest.approx(momentum) for b in bns)
        assert param_counts(model) == chest_ct.PAPER_PARAMS  # the momentum adds no parameter


def test_cnn3d_rejects_too_small_inputs():
    assert chest_ct.min_side_ok(46) and not chest_ct.min_side_ok(45)
    with pytest.raises(ValueError, match="too small.*>= 46"):
        chest_ct.cnn3d((64, 64, 32, 1))


def test_compile_follows_the_chapter_4_listing_sgd_and_the_decay_schedule():
    import keras

    model = chest_ct.compile_cnn3d(chest_ct.cnn3d((48, 48, 48, 1)))
    opt = model.optimizer
    # the listing's momentum went to compile(), not to SGD: Keras' SGD ran without it
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == 0.0
    assert chest_ct.INITIAL_LR == 0.1
    other = chest_ct.compile_cnn3d(chest_ct.cnn3d((48, 48, 48, 1)), initial_lr=0.001, momentum=0.9)
    assert other.optimizer.momentum == pytest.approx(0.9)
    sched = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    assert float(sched(0)) == pytest.approx(chest_ct.INITIAL_LR)
    assert float(sched(99_999)) == pytest.approx(chest_ct.INITIAL_LR)  # staircase
    assert float(sched(100_000)) == pytest.approx(chest_ct.INITIAL_LR * 0.96)
