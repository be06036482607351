"""Study B models: the lightweight CNN for intracranial haemorrhage and its three comparisons.

All builders take ``input_shape=(H, W, 3)`` (channels last, float32 images in [0, 1]) and
``n_classes`` and return an *uncompiled* ``keras.Model`` whose last layer is a float32 softmax
(so a ``mixed_float16`` global policy on a GPU keeps a float32 output). Parameter counts are
defined at 224×224×3 with 6 classes (``PAPER_PARAMS``); smaller inputs (64, 112 px) build too.

- :func:`lightweight_cnn` — the proposed model (PAPERS.md B): 5,434,246 parameters.
- :func:`inception_v1` — GoogLeNet (Szegedy et al. 2015) without auxiliary heads: 5,979,702.
- :func:`densenet121`, :func:`mobilenet` — ``keras.applications`` backbones with a global
  average pool and a 6-class head: 7,043,654 / 3,235,014.

:func:`compile_paper` applies the paper's optimiser (Adam, lr 1e-5, β1 0.95, categorical
cross-entropy); :func:`forward_flops` counts a model's forward FLOPs per image analytically.

TensorFlow/Keras are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

N_CLASSES = 6
PAPER_INPUT = (224, 224, 3)
# Parameter counts at PAPER_INPUT with N_CLASSES outputs (checked by tests/test_models_ct.py).
PAPER_PARAMS = {"proposed": 5_434_246, "densenet121": 7_043_654, "mobilenet": 3_235_014,
                "inception_v1": 5_979_702}
# What the paper's Table 3 reports (millions), for the notebook's tables.
REPORTED_PARAMS_M = {"proposed": 5.434, "densenet121": 7.049, "mobilenet": 3.224,
                     "inception_v1": 5.979}

# Proposed model (PAPERS.md B): stem, then one block per width f: 1×1 f → 3×3 f → BN → 1×1 4f →
# AvgPool 2×2.
STEM_FILTERS = 64
BLOCK_WIDTHS = (64, 128, 256, 512)
BLOCK_EXPANSION = 4

# GoogLeNet inception modules (Szegedy et al. 2015, Table 1): #1×1, #3×3 reduce, #3×3,
# #5×5 reduce, #5×5, pool proj. "pool" marks the stride-2 max pools between stages.
INCEPTION_V1_PLAN: tuple[Any, ...] = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    "pool",
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    "pool",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
INCEPTION_DROPOUT = 0.4  # before the classifier, as in the original
# Keras' default kernel initializer; Inception V1's can be changed (it has no BatchNorm to undo
# a poor start: docs/decisions.md#b10).
KERNEL_INIT = "glorot_uniform"

# The paper's training protocol (PAPERS.md B, "Training").
LEARNING_RATE = 1e-5
BETA_1 = 0.95
# BatchNorm moving-average momentum: the paper is silent, so Keras' default (the layers and
# keras.applications' backbones as built).
BN_MOMENTUM = 0.99


# Initialisation of the comparison models. The paper does not say how DenseNet121 and MobileNet
# were initialised; random ("from scratch") is OUR default, ImageNet a profile option
# (``b_init``) for online machines (Kaggle/Colab). Only these two have published weights.
INITS = ("random", "imagenet")
PRETRAINABLE = ("densenet121", "mobilenet")


class ModelWeightsError(RuntimeError):
    """Pretrained weights were requested but cannot be obtained (offline, unknown name)."""


def lightweight_cnn(input_shape: tuple[int, int, int] = PAPER_INPUT, n_classes: int = N_CLASSES,
                    *, name: str = "lightweight_cnn"):
    """The proposed lightweight CNN of study B.

    Conv 7×7/64 stride 2 ('same') → MaxPool 3×3 stride 2 ('same') → BatchNorm → for f in
    64, 128, 256, 512: [Conv 1×1 f → Conv 3×3 f → BatchNorm → Conv 1×1 4f → AvgPool 2×2 ('same')]
    → Flatten → Dense ``n_classes`` softmax; every convolution has a ReLU. At 224×224 the last
    map is 4×4×2048 and the model has 5,434,246 parameters.

    Where the paper is silent: the 3×3 convolutions use 'same' padding (the count does not
    depend on it) and the ReLU follows each convolution, before the block's BatchNorm.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(STEM_FILTERS, 7, strides=2, padding="same", activation="relu",
                      name="stem_conv")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    for i, f in enumerate(BLOCK_WIDTHS, start=1):
        x = layers.Conv2D(f, 1, activation="relu", name=f"block{i}_reduce")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = layers.Conv2D(BLOCK_EXPANSION * f, 1, activation="relu", name=f"block{i}_expand")(x)
        x = layers.AveragePooling2D(2, padding="same", name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _softmax_head(x, n_classes)
    return keras.Model(inputs, outputs, name=name)


def inception_module(x, filters: tuple[int, int, int, int, int, int], *, name: str,
                     kernel_initializer: str = KERNEL_INIT):
    """One GoogLeNet inception module on ``x`` (B, H, W, C) → (B, H, W, f1 + f3 + f5 + fp).

    ``filters`` = (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj); four branches
    concatenated on the channel axis: 1×1 · 1×1 → 3×3 · 1×1 → 5×5 · MaxPool 3×3/1 → 1×1. Every
    convolution has a bias and a ReLU (no BatchNorm: this is v1, not v2), its kernel drawn by
    ``kernel_initializer``.
    """
    from keras import layers

    f1, f3r, f3, f5r, f5, fp = filters

    def conv(inputs, filters_, kernel, *, name):
        return _conv_relu(inputs, filters_, kernel, name=name,
                          kernel_initializer=kernel_initializer)

    b1 = conv(x, f1, 1, name=f"{name}_1x1")
    b3 = conv(conv(x, f3r, 1, name=f"{name}_3x3_reduce"), f3, 3, name=f"{name}_3x3")
    b5 = conv(conv(x, f5r, 1, name=f"{name}_5x5_reduce"), f5, 5, name=f"{name}_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv(bp, fp, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b3, b5, bp])


def inception_v1(input_shape: tuple[int, int, int] = PAPER_INPUT, n_classes: int = N_CLASSES,
                 *, kernel_initializer: str = KERNEL_INIT, name: str = "inception_v1"):
    """GoogLeNet (Inception V1, Szegedy et al. 2015) without auxiliary classifiers.

    Stem: Conv 7×7/64 stride 2 → MaxPool 3×3/2 → Conv 1×1/64 → Conv 3×3/192 → MaxPool 3×3/2;
    inception modules 3a-5b (:data:`INCEPTION_V1_PLAN`) with max pools 3×3/2 between stages;
    global average pool (= the original's 7×7 average pool at 224) → Dropout 0.4 → Dense softmax.
    Conv biases, true 5×5 branches, 5,979,702 parameters with 6 classes at 224.

    Local response normalisation (after the first pool and after the 3×3/192 conv in the paper)
    is omitted: it has no parameters, later work found it useless, and Keras has no layer for it.
    ``kernel_initializer``: how every convolution's kernel starts (a Keras initializer name;
    Keras' default Glorot uniform unless a profile says otherwise).
    """
    import keras
    from keras import layers

    init = {"kernel_initializer": kernel_initializer}
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_relu(inputs, 64, 7, strides=2, name="conv1_7x7", **init)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv_relu(x, 64, 1, name="conv2_reduce", **init)
    x = _conv_relu(x, 192, 3, name="conv2_3x3", **init)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    n_pool = 2
    for step in INCEPTION_V1_PLAN:
        if step == "pool":
            n_pool += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{n_pool}")(x)
        else:
            module, filters = step
            x = inception_module(x, filters, name=f"inception_{module}", **init)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(INCEPTION_DROPOUT, name="dropout")(x)
    outputs = _softmax_head(x, n_classes)
    return keras.Model(inputs, outputs, name=name)


def densenet121(input_shape: tuple[int, int, int] = PAPER_INPUT, n_classes: int = N_CLASSES,
                *, weights: str | None = None, name: str = "densenet121"):
    """Keras DenseNet121 without its top, global average pool, Dense ``n_classes`` softmax.

    ``weights=None`` (default) initialises randomly (7,043,654 parameters at 224 with 6 classes);
    ``weights="imagenet"`` downloads the ImageNet weights and raises :class:`ModelWeightsError`
    with the reason when that is impossible (offline). Inputs in [0, 1] are rescaled to the
    backbone's expected range by the caller's choice; every model here takes [0, 1]. The paper
    does not say how it initialised the model: random is our default (:func:`build_initialised`).
    """
    import keras

    return _application(keras.applications.DenseNet121, input_shape, n_classes,
                        weights=weights, name=name)


def mobilenet(input_shape: tuple[int, int, int] = PAPER_INPUT, n_classes: int = N_CLASSES,
              *, weights: str | None = None, name: str = "mobilenet"):
    """Keras MobileNet (v1, α = 1) without its top, global average pool, Dense softmax head.

    3,235,014 parameters at 224 with 6 classes. ``weights`` as in :func:`densenet121`.
    """
    import keras

    return _application(keras.applications.MobileNet, input_shape, n_classes,
                        weights=weights, name=name)


# Model key (as in the paper's tables and the manifest) → builder.
BUILDERS: dict[str, Callable[..., Any]] = {
    "proposed": lightweight_cnn,
    "densenet121": densenet121,
    "mobilenet": mobilenet,
    "inception_v1": inception_v1,
}
DISPLAY_NAMES = {"proposed": "Proposed (lightweight CNN)", "densenet121": "DenseNet121",
                 "mobilenet": "MobileNet", "inception_v1": "Inception V1"}


def build(key: str, input_shape: tuple[int, int, int] = PAPER_INPUT,
          n_classes: int = N_CLASSES, **options: Any):
    """Build the model named ``key`` (one of :data:`BUILDERS`)."""
    try:
        builder = BUILDERS[key]
    except KeyError:
        raise ValueError(f"unknown study-B model {key!r}; expected one of "
                         f"{', '.join(BUILDERS)}") from None
    return builder(input_shape, n_classes, **options)


def build_initialised(key: str, input_shape: tuple[int, int, int] = PAPER_INPUT,
                      n_classes: int = N_CLASSES, *, init: str = "random",
                      fallback: bool = True, **options: Any):
    """Build model ``key`` initialised as ``init`` asks; returns ``(model, init_used)``.

    ``init="random"``: every model from random weights (the reduced profiles; the paper is silent).
    ``"imagenet"``: DenseNet121 and MobileNet start from Keras' ImageNet weights (downloaded
    online); the proposed model and Inception V1 have none and stay random. Offline, with
    ``fallback`` the model is built randomly with a warning and ``init_used`` says so; without
    it :class:`ModelWeightsError` is raised. ``init_used`` is what tables record: ``"random"``,
    ``"imagenet"``, ``"random (no ImageNet weights for this model)"`` or ``"random (ImageNet
    weights unavailable: ...)"``. ``options`` go to the builder of a model without ImageNet
    weights (Inception V1's ``kernel_initializer``).
    """
    if init not in INITS:
        raise ValueError(f"init={init!r}: expected one of {', '.join(INITS)}")
    if key not in PRETRAINABLE:
        return (build(key, input_shape, n_classes, **options),
                "random" if init == "random" else "random (no ImageNet weights for this model)")
    if options:
        raise ValueError(f"{key}: no builder options expected, got {', '.join(options)}")
    if init == "random":
        return build(key, input_shape, n_classes), "random"
    try:
        return build(key, input_shape, n_classes, weights="imagenet"), "imagenet"
    except ModelWeightsError as exc:
        if not fallback:
            raise
        warnings.warn(f"{key}: ImageNet weights unavailable, initialised randomly instead "
                      f"({exc})", stacklevel=2)
        reason = str(exc.__cause__ or exc).splitlines()[0][:120]
        return (build(key, input_shape, n_classes),
                f"random (ImageNet weights unavailable: {reason})")


def set_bn_momentum(model, momentum: float):
    """Set the moving-average momentum of every BatchNormalization layer of ``model`` (those
    inside ``keras.applications`` backbones too; before training); returns ``model``.

    With Keras' 0.99 the moving statistics of a short run (a few hundred steps) still hold
    mostly their initial values, and the inference-mode outputs lag the model being trained.
    """
    import keras

    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"BatchNorm momentum must be in [0, 1), got {momentum}")
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
    return model


def compile_paper(model, *, learning_rate: float = LEARNING_RATE, jit_compile: bool | str = False):
    """Compile ``model`` with the paper's protocol: Adam(lr 1e-5, β1 0.95), categorical CE.

    Metrics: accuracy. ``jit_compile=True`` asks for XLA (use it on a GPU). Returns the model.
    """
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, beta_1=BETA_1),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model


def forward_flops(model) -> int:
    """Floating-point operations of one forward pass of ``model`` for ONE image.

    Counted analytically from the layers' built shapes: 2 × multiply-accumulates of every
    ``Conv2D`` (incl. grouped), ``DepthwiseConv2D`` and ``Dense`` layer, plus one op per output
    element for their biases. Batch norm, activations, pooling and concatenation (all O(output
    size), < 1% of the total for these models) are not counted. Nested models are walked. A
    training step costs about 3× this (forward, and two products of the same size backward).
    """
    from keras import layers

    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, layers.DepthwiseConv2D):
            out = layer.output.shape  # (None, H, W, C·multiplier)
            kh, kw = layer.kernel_size
            total += 2 * kh * kw * out[1] * out[2] * out[3]
            total += out[1] * out[2] * out[3] if layer.use_bias else 0
        elif isinstance(layer, layers.Conv2D):
            out = layer.output.shape
            cin = layer.input.shape[-1] // layer.groups
            kh, kw = layer.kernel_size
            total += 2 * kh * kw * cin * out[1] * out[2] * out[3]
            total += out[1] * out[2] * out[3] if layer.use_bias else 0
        elif isinstance(layer, layers.Dense):
            cin, cout = layer.input.shape[-1], layer.units
            total += 2 * cin * cout + (cout if layer.use_bias else 0)
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


def _conv_relu(x, filters: int, kernel: int, *, strides: int = 1, name: str,
               kernel_initializer: str = KERNEL_INIT):
    from keras import layers

    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu",
                         kernel_initializer=kernel_initializer, name=name)(x)


def _softmax_head(x, n_classes: int):
    from keras import layers

    # float32 even under a mixed_float16 policy: softmax and the loss stay numerically stable.
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)


def _application(app, input_shape, n_classes, *, weights, name):
    import keras

    if weights not in (None, "imagenet"):
        raise ModelWeightsError(f"{name}: weights must be None or 'imagenet', got {weights!r}")
    try:
        base = app(include_top=False, weights=weights, input_shape=tuple(input_shape),
                   pooling="avg")
    except Exception as exc:  # urllib/HTTP/SSL errors differ by platform; re-raise as one type
        if weights is None:
            raise
        raise ModelWeightsError(
            f"{name}: could not obtain the ImageNet weights ({type(exc).__name__}: {exc}). "
            "They are downloaded from storage.googleapis.com on first use; offline, pass "
            "weights=None (random initialisation, our default) or copy the .h5 file into "
            "~/.keras/models/.") from exc
    outputs = _softmax_head(base.output, n_classes)
    return keras.Model(base.input, outputs, name=name)
