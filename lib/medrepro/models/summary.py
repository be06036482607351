"""The model summary table of the three studies that print one (A Table 1, B Fig 4, D Fig 4.5).

One function, :func:`summary_frame`; the studies differ only in which rows and columns their
papers print (the input layer or not, the batch dimension or not, which total rows).
"""

from __future__ import annotations

import numpy as np


def param_counts(model) -> dict[str, int]:
    """``{"total", "trainable", "non_trainable"}`` parameter counts of a keras model."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": trainable + non_trainable, "trainable": trainable,
            "non_trainable": non_trainable}


def summary_frame(model, *, input_layer: bool = False, batch_dim: bool = True,
                  totals: str | None = "total", shape_column: str = "output_shape"):
    """A model's summary as a frame: ``layer``, ``type``, output shape, ``params`` per layer.

    ``input_layer``: include the ``InputLayer`` row. ``batch_dim``: shapes with the leading
    ``None``. ``totals``: ``"total"`` appends one ``Total`` row (its type cell gives the
    trainable count), ``"counts"`` three rows (total / trainable / non-trainable params),
    ``None`` none. ``shape_column``: the name of the shape column.
    """
    import pandas as pd

    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer" and not input_layer:
            continue
        shape = tuple(layer.output.shape)
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     shape_column: str(shape if batch_dim else shape[1:]),
                     "params": int(layer.count_params())})
    counts = param_counts(model)
    if totals == "total":
        rows.append({"layer": "Total", "type": f"trainable {counts['trainable']:,}",
                     shape_column: "", "params": int(model.count_params())})
    elif totals == "counts":
        rows += [{"layer": f"{k.replace('_', '-')} params", "type": "", shape_column: "",
                  "params": v} for k, v in counts.items()]
    elif totals is not None:
        raise ValueError(f"totals must be 'total', 'counts' or None, not {totals!r}")
    return pd.DataFrame(rows, columns=["layer", "type", shape_column, "params"])
