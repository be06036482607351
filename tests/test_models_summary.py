"""medrepro.models.summary: the one summary table, in each study's printed form."""

from __future__ import annotations

import pytest

from medrepro.models import chest_ct
from medrepro.models.summary import param_counts, summary_frame


def _tiny():
    import keras

    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x), name="tiny")


def test_total_row_and_shapes_with_the_batch_dimension():
    df = summary_frame(_tiny())
    assert list(df["layer"]) == ["conv", "bn", "flat", "out"] + ["Total"]
    assert df["output_shape"].iloc[0] == "(None, 6, 6, 2)"
    assert df["params"].iloc[-1] == 20 + 8 + 219 and df["type"].iloc[-1] == "trainable 243"


def test_input_row_batchless_shapes_and_no_totals():
    df = summary_frame(_tiny(), input_layer=True, batch_dim=False, totals=None,
                       shape_column="output shape")
    assert list(df.columns) == ["layer", "type", "output shape", "params"]
    assert list(df["layer"]) == ["image", "conv", "bn", "flat", "out"]
    assert df["output shape"].iloc[1] == "(6, 6, 2)"


def test_count_rows_and_the_3d_cnn():
    model = chest_ct.cnn3d()
    df = summary_frame(model, input_layer=True, totals="counts")
    assert df.loc[df.layer == "total params", "params"].item() == 214_817
    assert df[df.type == "Conv3D"].params.tolist() == [448, 13_856, 55_360, 110_656]
    assert param_counts(model) == {"total": 214_817, "trainable": 214_465, "non_trainable": 352}
    with pytest.raises(ValueError, match="totals must be"):
        summary_frame(model, totals="all")
