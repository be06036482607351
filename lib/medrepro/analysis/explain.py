"""Visual explanations: Grad-CAM, Eigen-CAM and Integrated Gradients for Keras models.

Works for any Keras model with convolutional layers, 2-D (``(H, W, C)`` inputs) and 3-D
(``(D, H, W, C)`` / ``(H, W, D, C)`` inputs, i.e. any number of spatial axes before the channel
axis), including nested backbones (a ``keras.applications`` model used as a layer inside a
``Sequential`` or functional wrapper): the chosen layer is found at any depth, and its
activation is captured during an eager forward pass of the whole model, so the wrapper's own
head is part of the gradient.

Maps are float32 in [0, 1] with the input's spatial shape; a map with no signal stays exactly
zero (never NaN). A layer's coarse map is put back on the input grid at its cells' receptive-field
centres (:func:`feature_grid`): for "same"-padded networks that is the usual resize, for
"valid"-padded ones (study D's 3-D CNN) it keeps the map from being stretched to the input's
edges, where a plain resize would put a maximum of an edge cell up to half a receptive field off.
``x`` is one input without the batch axis (``(H, W, C)``) or a batch (``(B, H, W, C)``, then
maps come back with the batch axis).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

# What Grad-CAM differentiates: the class score before the output's softmax/sigmoid (Selvaraju
# et al. 2017: "the score for class c, before the softmax"), or the probability after it, which
# saturates (a confident softmax has almost no gradient left).
GRADCAM_TARGETS = ("logit", "probability")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")
CONV_TYPES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D",
              "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "DepthwiseConv1D")
IG_BATCH = 16  # interpolation steps evaluated per forward pass


class ExplainError(ValueError):
    """A model/layer/input combination that cannot be explained."""


# ---------------------------------------------------------------------------- public API
def gradcam(model, x, *, layer: str | None = None, class_index: int | None = None,
            target: str = "logit", batch_size: int | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of ``class_index`` (default: the predicted class).

    Channel weights are the gradients of the class score w.r.t. the layer's activation,
    averaged over all spatial axes; the map is ReLU(sum_c w_c A_c), resized (linear) to the
    input's spatial shape and divided by its maximum. ``target``: ``"logit"`` (the standard)
    differentiates the class score before the output layer's softmax or sigmoid
    (:func:`output_logits`); ``"probability"`` the output itself, which saturates. A model
    whose output has no softmax/sigmoid gives the same map either way. ``layer``: a layer name
    at any nesting depth (default: the last convolution). ``batch_size``: items per gradient
    pass (default: all at once; a 3-D CNN's activations for many volumes exceed a GPU's
    memory). Returns ``(*spatial)`` or ``(B, *spatial)`` float32.
    """
    if target not in GRADCAM_TARGETS:
        raise ExplainError(f"target={target!r}: expected one of {', '.join(GRADCAM_TARGETS)}")
    batch, single = _as_batch(model, x)
    if batch_size and len(batch) > batch_size:
        return np.concatenate([gradcam(model, batch[i:i + batch_size], layer=layer,
                                       class_index=class_index, target=target)
                               for i in range(0, len(batch), batch_size)])
    conv = find_layer(model, layer)
    import tensorflow as tf

    scores_of = output_logits if target == "logit" else _unchanged
    with tf.GradientTape() as tape:
        with _capture(conv, tape=tape) as store, scores_of(model):
            preds = _as_float32(model(batch, training=False))
        acts = store["out"]
        scores = _class_scores(preds, class_index)  # argmax of logits = argmax of softmax
    grads = tape.gradient(scores, acts)
    if grads is None:
        raise ExplainError(f"layer {conv.name!r} does not feed the model's output")
    acts, grads = _np32(acts), _np32(grads)
    spatial_axes = tuple(range(1, acts.ndim - 1))
    weights = grads.mean(axis=spatial_axes, keepdims=True)           # (B, 1.., C)
    cams = np.maximum((weights * acts).sum(axis=-1), 0.0)            # (B, *spatial')
    grid = feature_grid(model, conv)
    maps = np.stack([_normalise(_resize(c, batch.shape[1:-1], grid)) for c in cams])
    return maps[0] if single else maps


def eigencam(model, x, *, layer: str | None = None) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin 2020): the activation projected on its first principal axis.

    The layer's activation ``(*spatial, C)`` is reshaped to ``(N, C)``, centred per channel, and
    projected on the first right singular vector. An SVD's sign is arbitrary; it is fixed so that
    the map correlates positively with the channel-mean activation, which makes the result
    stable across runs and platforms. Then ReLU, resize and division by the maximum, as Grad-CAM.
    """
    batch, single = _as_batch(model, x)
    target = find_layer(model, layer)
    with _capture(target) as store:
        model(batch, training=False)
        acts = _np32(store["out"]).astype(np.float64)
    grid = feature_grid(model, target)
    maps = []
    for a in acts:                                                   # (*spatial', C)
        flat = a.reshape(-1, a.shape[-1])
        centred = flat - flat.mean(axis=0, keepdims=True)
        if not np.any(centred):
            proj = np.zeros(flat.shape[0])
        else:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            proj = centred @ vt[0]
            mean_act = flat.mean(axis=1)
            if np.dot(proj - proj.mean(), mean_act - mean_act.mean()) < 0:
                proj = -proj
        cam = np.maximum(proj.reshape(a.shape[:-1]), 0.0).astype(np.float32)
        maps.append(_normalise(_resize(cam, batch.shape[1:-1], grid)))
    maps = np.stack(maps)
    return maps[0] if single else maps


def integrated_gradients(model, x, *, baseline=None, steps: int = 50,
                         class_index: int | None = None) -> np.ndarray:
    """Integrated Gradients (Sundararajan et al. 2017) of ``class_index`` w.r.t. the input.

    Attribution ``(x - baseline) * mean of grad(score)`` along the straight path from
    ``baseline`` (default: zeros, i.e. a black image) to ``x``, trapezoidal rule with ``steps``
    intervals. Returns raw attributions with ``x``'s shape (float32; they sum approximately to
    ``score(x) - score(baseline)``); :func:`attribution_map` turns them into a [0, 1] map.
    """
    import tensorflow as tf

    if steps < 1:
        raise ExplainError(f"steps must be >= 1, got {steps}")
    batch, single = _as_batch(model, x)
    base = np.zeros_like(batch) if baseline is None else np.broadcast_to(
        np.asarray(baseline, dtype=np.float32), batch.shape)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    trapezoid = np.full(steps + 1, 1.0 / steps, dtype=np.float32)
    trapezoid[[0, -1]] *= 0.5
    out = np.empty_like(batch)
    for i in range(batch.shape[0]):
        cls = class_index
        if cls is None:
            cls = int(np.argmax(_np32(_as_float32(model(batch[i:i + 1], training=False)))[0]))
        delta = batch[i] - base[i]
        total = np.zeros_like(batch[i])
        for start in range(0, steps + 1, IG_BATCH):
            a = alphas[start:start + IG_BATCH]
            path = tf.constant(base[i][None] + a.reshape(-1, *[1] * delta.ndim) * delta[None])
            with tf.GradientTape() as tape:
                tape.watch(path)
                scores = _class_scores(_as_float32(model(path, training=False)), cls)
            grads = _np32(tape.gradient(scores, path))
            w = trapezoid[start:start + IG_BATCH].reshape(-1, *[1] * delta.ndim)
            total += (grads * w).sum(axis=0)
        out[i] = delta * total
    return out[0] if single else out


def attribution_map(attributions: np.ndarray, *, channel_axis: int = -1,
                    percentile: float = 99.0) -> np.ndarray:
    """|attributions| summed over channels, clipped at ``percentile`` and scaled to [0, 1]."""
    mag = np.abs(np.asarray(attributions, dtype=np.float32)).sum(axis=channel_axis)
    top = np.percentile(mag, percentile) if mag.size else 0.0
    if top <= 0:
        return np.zeros_like(mag)
    return np.clip(mag / top, 0.0, 1.0).astype(np.float32)


def output_layer(model):
    """The layer that makes ``model``'s (single) output, inside nested models too."""
    layer = model
    while hasattr(layer, "layers") and layer.layers:
        outputs = getattr(layer, "outputs", None) or []
        if len(outputs) > 1:
            raise ExplainError(f"model {layer.name!r} has {len(outputs)} outputs; Grad-CAM "
                               "explains a model with one")
        history = getattr(outputs[0], "_keras_history", None) if outputs else None
        layer = history[0] if history else layer.layers[-1]  # shared layers: the op's history
    return layer


@contextlib.contextmanager
def output_logits(model):
    """While active, ``model`` returns the scores before its output softmax or sigmoid.

    The output layer (:func:`output_layer`) is a layer with ``activation`` softmax/sigmoid
    (``Dense(..., activation="softmax")``): its activation is made linear; or an ``Activation``
    / ``Softmax`` layer: it passes its input through. An output without either is already a
    score and stays as it is. Eager calls only (a traced function keeps what it traced)."""
    import keras

    layer = output_layer(model)
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    if name in OUTPUT_ACTIVATIONS and type(layer).__name__ != "Activation":
        attr, original, patched = "activation", layer.activation, keras.activations.linear
    elif type(layer).__name__ == "Softmax" or (type(layer).__name__ == "Activation"
                                               and name in OUTPUT_ACTIVATIONS):
        attr, original, patched = "call", None, lambda inputs, *a, **k: inputs
    else:
        yield
        return
    if attr == "activation":
        object.__setattr__(layer, attr, patched)
    else:
        object.__setattr__(layer, "call", patched)  # shadows the class's call for this layer
    try:
        yield
    finally:
        if attr == "activation":
            object.__setattr__(layer, attr, original)
        else:
            object.__delattr__(layer, "call")


@contextlib.contextmanager
def _unchanged(model):
    yield


# ---------------------------------------------------------------------------- layers
def iter_layers(model) -> Iterator[object]:
    """Every layer of ``model``, depth first, descending into nested models."""
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from iter_layers(layer)


def conv_layers(model) -> list[str]:
    """Names of the convolution layers of ``model`` (nested ones included), in order."""
    return [layer.name for layer in iter_layers(model) if type(layer).__name__ in CONV_TYPES]


def find_layer(model, name: str | None = None):
    """The layer called ``name`` at any depth (default: the last convolution).

    Raises ``ExplainError`` listing the model's convolution layers when there is no such layer.
    """
    layers = list(iter_layers(model))
    convs = conv_layers(model)
    if name is None:
        if not convs:
            raise ExplainError(f"model {model.name!r} has no convolution layer to explain; "
                               "pass layer=<name of a layer with a spatial output>")
        name = convs[-1]
    for layer in reversed(layers):
        if layer.name == name:
            return layer
    shown = ", ".join(convs) if len(convs) <= 40 else ", ".join(convs[:20] + ["..."] + convs[-20:])
    raise ExplainError(f"model {model.name!r} has no layer {name!r}; its convolution layers "
                       f"are: {shown or '(none)'}")


# Layers that keep the spatial grid as it is (elementwise, per-channel or per-position ops).
GRID_KEEPING = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "Activation",
                "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D",
                "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                "Rescaling", "Normalization", "InputLayer", "RandomFlip", "RandomBrightness",
                "RandomContrast", "Identity")
POOL_TYPES = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
              "AveragePooling2D", "AveragePooling3D")


def feature_grid(model, layer) -> tuple[tuple[float, float], ...] | None:
    """Where ``layer``'s output cells sit on the input grid: per spatial axis ``(start, step)``,
    cell ``i``'s receptive field centred on input index ``start + step * i``; ``None`` when
    that cannot be read off the model (a branching or nested path, an unknown layer that
    changes the grid), and the maps are then simply resized.

    Walks ``model.layers`` from the input to ``layer`` (a ``Sequential``, or a functional
    model whose layers up to ``layer`` form a chain, each fed by the one before); convolutions
    and poolings shift and widen the grid by their kernel, stride, dilation and padding ("same"
    pads as Keras does: the smaller half first).
    """
    layers = list(getattr(model, "layers", []))
    if layer not in layers:
        return None
    shape = tuple(model.inputs[0].shape[1:-1])
    if not shape or any(s is None for s in shape):
        return None
    grid = [(0.0, 1.0)] * len(shape)
    chain = type(model).__name__ == "Sequential"  # a Sequential is a chain by construction
    prev = None
    for lay in layers:
        if prev is not None and not chain and not _fed_by(lay, prev):
            return None
        kind = type(lay).__name__
        if kind in CONV_TYPES and "Transpose" not in kind:
            kernel, stride = lay.kernel_size, lay.strides
            dilation = getattr(lay, "dilation_rate", (1,) * len(shape))
        elif kind in POOL_TYPES:
            kernel, stride, dilation = lay.pool_size, lay.strides, (1,) * len(shape)
        elif kind in GRID_KEEPING:
            kernel = None
        else:
            return None
        if kernel is not None:
            if len(kernel) != len(shape) or lay.padding not in ("same", "valid"):
                return None  # e.g. "causal" padding: not placed, plain resize
            new_grid, new_shape = [], []
            for (start, step), n, k, st, d in zip(grid, shape, kernel, stride, dilation):
                span = d * (k - 1) + 1
                if lay.padding == "same":
                    out = -(-n // st)
                    pad_before = max((out - 1) * st + span - n, 0) // 2
                else:
                    out, pad_before = (n - span) // st + 1, 0
                new_grid.append((start + step * ((span - 1) / 2 - pad_before), step * st))
                new_shape.append(out)
            grid, shape = new_grid, tuple(new_shape)
        if lay is layer:
            return tuple(grid)
        prev = lay
    return None


def _fed_by(layer, prev) -> bool:
    """Whether ``layer``'s one input is ``prev``'s output (a chain, not a branch)."""
    try:
        inputs = layer.input
        return not isinstance(inputs, (list, tuple)) and inputs is prev.output
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _capture(layer, *, tape=None):
    """Record the output of ``layer`` during a forward pass (watched on ``tape``, if given).

    Watching matters for frozen backbones: without trainable variables upstream, the tape
    would not record the path from the activation to the output.
    """
    import tensorflow as tf

    store: dict = {}
    original = layer.call

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        tensor = out[0] if isinstance(out, (list, tuple)) else out
        if tape is not None:
            tape.watch(tensor)
        store["out"] = tensor
        return out

    # An instance attribute shadows the class's ``call`` for this layer only.
    object.__setattr__(layer, "call", call)
    try:
        yield store
    finally:
        object.__delattr__(layer, "call")
    if "out" not in store:
        raise ExplainError(f"layer {layer.name!r} was not called in the forward pass")
    if tf.rank(store["out"]) < 3:
        raise ExplainError(f"layer {layer.name!r} has output shape {tuple(store['out'].shape)}: "
                           "no spatial axes to explain")


def _as_batch(model, x) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=np.float32)
    rank = len(model.inputs[0].shape)  # incl. batch axis
    if arr.ndim == rank - 1:
        return arr[None], True
    if arr.ndim == rank:
        return arr, False
    raise ExplainError(f"input of shape {arr.shape} does not fit model {model.name!r} with "
                       f"input shape {tuple(model.inputs[0].shape)}")


def _class_scores(preds, class_index: int | None):
    import tensorflow as tf

    if class_index is None:
        idx = tf.argmax(preds, axis=-1)
    else:
        if not 0 <= class_index < preds.shape[-1]:
            raise ExplainError(f"class_index {class_index} outside 0..{preds.shape[-1] - 1}")
        idx = tf.fill(tf.shape(preds)[:1], tf.constant(class_index, dtype=tf.int64))
    return tf.gather(preds, idx, axis=-1, batch_dims=1)


def _as_float32(t):
    import tensorflow as tf

    t = t[0] if isinstance(t, (list, tuple)) else t
    return tf.cast(t, tf.float32)


def _np32(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t, dtype=np.float32)


GRID_EDGE_DECAY = 1e-3  # per input pixel beyond the outermost cell centre, relative


def _resize(cam: np.ndarray, shape: tuple[int, ...], grid=None) -> np.ndarray:
    """``cam`` on the input grid ``shape``: linear between the cells' receptive-field centres
    (``grid``, :func:`feature_grid`), the edge cell's value beyond the outermost centres,
    falling off by :data:`GRID_EDGE_DECAY` per pixel so that a maximum on an edge cell stays at
    that cell's centre. Without ``grid`` (or for a grid a plain resize gives anyway), a linear
    zoom with ``grid_mode=True``."""
    from scipy import ndimage

    shape = tuple(int(s) for s in shape)
    if cam.shape == shape:
        return cam
    if grid is not None and len(grid) == cam.ndim and not _zoom_grid(grid, cam.shape, shape):
        coords = [(np.arange(n, dtype=np.float64) - start) / step
                  for (start, step), n in zip(grid, shape)]
        # distance beyond the outermost centres, in input pixels (summed over axes)
        outside = sum(np.meshgrid(*[step * (np.maximum(0.0, -c) + np.maximum(0.0, c - (m - 1)))
                                    for c, m, (_, step) in zip(coords, cam.shape, grid)],
                                  indexing="ij"))
        points = np.meshgrid(*[np.clip(c, 0, m - 1) for c, m in zip(coords, cam.shape)],
                             indexing="ij")
        out = ndimage.map_coordinates(cam.astype(np.float64), points, order=1, mode="nearest")
        return (out * np.maximum(0.0, 1.0 - GRID_EDGE_DECAY * outside)).astype(np.float32)
    factors = [t / s for t, s in zip(shape, cam.shape)]
    out = ndimage.zoom(cam, factors, order=1, mode="nearest", grid_mode=True)
    # zoom may be off by one voxel from rounding; crop/pad to the exact shape
    out = out[tuple(slice(0, s) for s in shape)]
    pad = [(0, s - o) for s, o in zip(shape, out.shape)]
    return np.pad(out, pad, mode="edge") if any(p[1] for p in pad) else out


def _zoom_grid(grid, small: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether ``grid`` is the one a ``grid_mode=True`` zoom from ``small`` to ``shape`` assumes."""
    return all(np.isclose(step, n / m) and np.isclose(start, (step - 1) / 2)
               for (start, step), m, n in zip(grid, small, shape))


def _normalise(cam: np.ndarray) -> np.ndarray:
    cam = np.nan_to_num(np.maximum(cam, 0.0), nan=0.0, posinf=0.0).astype(np.float32)
    top = cam.max() if cam.size else 0.0
    return cam / top if top > 0 else np.zeros_like(cam)
