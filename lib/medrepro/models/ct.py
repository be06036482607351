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

# The paper's training protocol (PAPERS.md B, "Training").
LEARNING_RATE = 1e-5
BETA_1 = 0.95


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


def inception_module(x, filters: tuple[int, int, int, int, int, int], *, name: str):
    """One GoogLeNet inception module on ``x`` (B, H, W, C) → (B, H, W, f1 + f3 + f5 + fp).

    ``filters`` = (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj); four branches
    concatenated on the channel axis: 1×1 · 1×1 → 3×3 · 1×1 → 5×5 · MaxPool 3×3/1 → 1×1. Every
    convolution has a bias and a ReLU (no BatchNorm: this is v1, not v2).
    """
    from keras import layers

    f1, f3r, f3, f5r, f5, fp = filters
    conv = _conv_relu
    b1 = conv(x, f1, 1, name=f"{name}_1x1")
    b3 = conv(conv(x, f3r, 1, name=f"{name}_3x3_reduce"), f3, 3, name=f"{name}_3x3")
    b5 = conv(conv(x, f5r, 1, name=f"{name}_5x5_reduce"), f5, 5, name=f"{name}_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv(bp, fp, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b3, b5, bp])


def inception_v1(input_shape: tuple[int, int, int] = PAPER_INPUT, n_classes: int = N_CLASSES,
                 *, name: str = "inception_v1"):
    """GoogLeNet (Inception V1, Szegedy et al. 2015) without auxiliary classifiers.

    Stem: Conv 7×7/64 stride 2 → MaxPool 3×3/2 → Conv 1×1/64 → Conv 3×3/192 → MaxPool 3×3/2;
    inception modules 3a-5b (:data:`INCEPTION_V1_PLAN`) with max pools 3×3/2 between stages;
    global average pool (= the original's 7×7 average pool at 224) → Dropout 0.4 → Dense softmax.
    Conv biases, true 5×5 branches, 5,979,702 parameters with 6 classes at 224.

    Local response normalisation (after the first pool and after the 3×3/192 conv in the paper)
    is omitted: it has no parameters, later work found it useless, and Keras has no layer for it.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_relu(inputs, 64, 7, strides=2, name="conv1_7x7")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv_relu(x, 64, 1, name="conv2_reduce")
    x = _conv_relu(x, 192, 3, name="conv2_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    n_pool = 2
    for step in INCEPTION_V1_PLAN:
        if step == "pool":
            n_pool += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{n_pool}")(x)
        else:
            module, filters = step
            x = inception_module(x, filters, name=f"inception_{module}")
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
                      fallback: bool = True):
    """Build model ``key`` initialised as ``init`` asks; returns ``(model, init_used)``.

    ``init="random"``: every model from random weights (our default; the paper is silent).
    ``"imagenet"``: DenseNet121 and MobileNet start from Keras' ImageNet weights (downloaded
    online); the proposed model and Inception V1 have none and stay random. Offline, with
    ``fallback`` the model is built randomly with a warning and ``init_used`` says so; without
    it :class:`ModelWeightsError` is raised. ``init_used`` is what tables record: ``"random"``,
    ``"imagenet"``, ``"random (no ImageNet weights for this model)"`` or ``"random (ImageNet
    weights unavailable: ...)"``.
    """
    if init not in INITS:
        raise ValueError(f"init={init!r}: expected one of {', '.join(INITS)}")
    if init == "random":
        return build(key, input_shape, n_classes), "random"
    if key not in PRETRAINABLE:
        return build(key, input_shape, n_classes), "random (no ImageNet weights for this model)"
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


def _conv_relu(x, filters: int, kernel: int, *, strides: int = 1, name: str):
    from keras import layers

    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu",
                         name=name)(x)


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


# ---------------------------------------------------------------------------- experiment
def subsample_train(split_df, *, max_train: int | None, seed: int):
    """``split_df`` with at most ``max_train`` training rows (seeded, keeping at least one image
    of every class present in train); val and test rows are kept whole."""
    import pandas as pd

    train_rows = split_df[split_df["split"] == "train"]
    if max_train is None or len(train_rows) <= max_train:
        return split_df
    first = train_rows.groupby("label", group_keys=False).head(1)
    rest = train_rows.drop(first.index).sample(n=max(0, max_train - len(first)),
                                               random_state=seed)
    keep = pd.concat([first, rest])
    return pd.concat([keep, split_df[split_df["split"] != "train"]]).reset_index(drop=True)


TEST_PROBA = "test_proba.npy"  # in a model's run folder: its test-set outputs (N, 6) float32


def _split_digest(split_df) -> str:
    """SHA-256 (16 hex digits) of the rows a run trains and evaluates on (split, shard, row,
    label): a changed subsample or split makes a finished run's results stale."""
    import hashlib

    cols = [c for c in ("split", "shard", "row", "label") if c in split_df.columns]
    text = split_df[cols].astype(str).agg(",".join, axis=1).str.cat(sep="\n")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_and_evaluate(key: str, cache, split_df, *, image_size: int, batch_size: int,
                       max_epochs: int, patience: int, run_dir, seed: int = 42,
                       init: str = "random") -> dict:
    """Train model ``key`` on the cached RSNA split with the paper's protocol; evaluate on test.

    Protocol: :func:`compile_paper`, at most ``max_epochs`` epochs, early stopping on val loss
    with ``patience``, best weights restored (``medrepro.train.fit``). Re-run with the same
    ``run_dir`` and arguments, a finished model is not retrained (its weights, history and test
    outputs are read back) and an interrupted one resumes at its next epoch. Returns a dict:
    ``history`` (DataFrame), ``best_epoch``, ``epochs_run``, ``train_seconds`` (sum of epoch
    wall times), ``train_images``, ``images_per_s`` (training images processed per second,
    validation included in the time), ``train_acc``/``train_loss``/``val_acc``/``val_loss``
    (history at the best epoch), ``test_acc``/``test_loss``, ``y_true``/``y_pred`` (int64,
    test set), ``proba`` (float32 (N, 6)), ``params``, ``init`` (how the model was
    initialised, :func:`build_initialised`).
    """
    from pathlib import Path

    import numpy as np

    from medrepro import rsna, train
    from medrepro.fileio import atomic_path

    run_dir = Path(run_dir)
    train.set_seed(seed)
    model, init_used = build_initialised(key, (image_size, image_size, 3), init=init)
    model = compile_paper(model)
    data = {s: rsna.make_dataset(cache, split_df, split=s, batch_size=batch_size,
                                 image_size=image_size, shuffle=s == "train", seed=seed)
            for s in ("train", "val", "test")}
    # A finished model is reused, an interrupted one resumes (medrepro.train.fit_once).
    config = {"model": key, "image_size": image_size, "batch_size": batch_size, "seed": seed,
              "images": _split_digest(split_df)}
    history = train.fit_once(model, data["train"], data["val"], run_dir=run_dir, config=config,
                             epochs=max_epochs, patience=patience, restore_best_weights=True,
                             verbose=0, checkpoint="weights", backup=True)
    best = train.best_epoch(history, monitor="val_loss")
    at_best = history.loc[history["epoch"] == best].iloc[0]
    test_rows = split_df[split_df["split"] == "test"]
    proba_path = run_dir / TEST_PROBA
    if history.attrs.get("reused") and proba_path.is_file():
        proba = np.load(proba_path)
    else:
        proba = train.predict_proba(model, data["test"])
        with atomic_path(proba_path, suffix=".npy") as tmp:
            np.save(tmp, proba)
    y_true = test_rows["label"].to_numpy(np.int64)
    y_pred = proba.argmax(axis=1).astype(np.int64)
    eps = 1e-7
    n_train = int((split_df["split"] == "train").sum())
    seconds = float(history["epoch_seconds"].sum())
    return {"model": key, "history": history, "best_epoch": best, "epochs_run": len(history),
            "train_seconds": seconds, "train_images": n_train,
            "images_per_s": n_train * len(history) / seconds if seconds else float("nan"),
            "train_acc": float(at_best["accuracy"]), "train_loss": float(at_best["loss"]),
            "val_acc": float(at_best["val_accuracy"]), "val_loss": float(at_best["val_loss"]),
            "test_acc": float((y_true == y_pred).mean()),
            "test_loss": float(-np.log(np.clip(proba[np.arange(len(y_true)), y_true], eps,
                                               1.0)).mean()),
            "y_true": y_true, "y_pred": y_pred, "proba": proba,
            "params": int(model.count_params()), "init": init_used, "model_object": model}
