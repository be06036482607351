"""Brain-tumour MRI models of studies A, C and E.

- Study A: :func:`lstm_cnn_head` (Table 1, exactly: 207,605,764 parameters, all trainable) and
  the "standard CNN" baseline :func:`standard_cnn_head`, both on ResNet50 features computed once
  by :func:`resnet50_features` (ResNet50 without top at 224×224 → 7×7×2048 = 100,352 features,
  fed as a length-1 sequence ``(1, 100352)``). ImageNet weights when keras can fetch them;
  offline, random initialisation with a visible warning (or a clear error, ``fallback=False``).
- Study C: :func:`seq_cnn`, the author's "Sequential CNN" (architecture not published).
- Study E: :func:`xai_cnn`, Conv2D-MaxPool blocks with BatchNorm and Dropout, Dense head.

Every classifier keeps its softmax output in float32, so it trains safely under the
``mixed_float16`` policy (:func:`medrepro.train.configure_precision`). Inputs of ``seq_cnn`` and
``xai_cnn`` are images scaled to [0, 1], ``(H, W, 3)``; ResNet50 takes 0-255 RGB (its own
``preprocess_input`` is applied inside :func:`resnet50_features`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medrepro.fileio import atomic_path

log = logging.getLogger(__name__)

N_CLASSES = 4
RESNET_INPUT = 224
RESNET_FEATURE_SHAPE = (7, 7, 2048)
N_FEATURES = int(np.prod(RESNET_FEATURE_SHAPE))  # 100,352
LSTM_HEAD_PARAMS = 207_605_764  # Table 1 of study A
LSTM_UNITS = (512, 256, 128, 64)
# Study A gives no dropout rate; 0.2 is the common choice for stacked LSTMs.
LSTM_DROPOUT = 0.2
# Study A's model section: ReLU was preferred as the LSTM activation (Keras' default is tanh).
# The activation has no parameters, so Table 1's counts hold for both; "tanh" is kept as the
# named variant "lstm_tanh" for comparison. (A non-tanh LSTM cannot use the cuDNN kernel.)
LSTM_ACTIVATION = "relu"
LSTM_VARIANTS = {"lstm": LSTM_ACTIVATION, "lstm_tanh": "tanh"}
# Seconds keras may spend on one socket operation while fetching ImageNet weights. Offline
# (no route, or a firewall that drops packets) the download fails after this instead of hanging.
WEIGHTS_TIMEOUT = float(os.environ.get("MEDREPRO_WEIGHTS_TIMEOUT", "10"))
RESNET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                      + RESNET_WEIGHTS_FILE)
RESNET_WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # keras.applications' WEIGHTS_HASHES
FEATURE_DTYPE = np.float16  # 3264 images × 100,352 features = 655 MB instead of 1.3 GB

# Study C: the author's Sequential CNN is not published. Four Conv(3×3, ReLU)-MaxPool(2) blocks
# with doubling filters, a Dense layer and a softmax: the usual Kaggle "Sequential CNN".
SEQ_CNN_FILTERS = (32, 64, 128, 128)
SEQ_CNN_DENSE = 128
SEQ_CNN_DROPOUT = 0.3
# Study E: "Conv2D-MaxPool blocks with BatchNorm and Dropout, Dense head, softmax".
XAI_CNN_FILTERS = (32, 64, 128, 256)
XAI_CNN_BLOCK_DROPOUT = 0.25
XAI_CNN_DENSE = 128
XAI_CNN_HEAD_DROPOUT = 0.5
# BatchNorm moving-average momentum. Keras' 0.99 needs several hundred steps before the
# inference statistics forget their initial values; short CPU runs (tens of steps) then predict
# one class at test time although training accuracy rises. 0.9 converges in ~50 steps.
XAI_CNN_BN_MOMENTUM = 0.9


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that could not be loaded (offline, or the download failed)."""


# ---------------------------------------------------------------------------- study A heads
def lstm_cnn_head(n_features: int = N_FEATURES, n_classes: int = N_CLASSES, *,
                  dropout: float = LSTM_DROPOUT, activation: str = LSTM_ACTIVATION,
                  name: str = "lstm_cnn_head"):
    """Study A's LSTM head (Table 1): input ``(1, n_features)`` features as a length-1 sequence.

    LSTM 512 (sequences) → Dropout → LSTM 256 (sequences) → Dropout → LSTM 128 (sequences) →
    Dropout → LSTM 64 → Dropout → Flatten → Dense softmax. ``activation``: the LSTM cell
    activation, ReLU as the paper states (``"tanh"``: Keras' default, the variant). With the
    defaults: 207,605,764 parameters, all trainable (building it allocates ~830 MB of float32
    weights).
    """
    import keras
    from keras import layers

    inputs = keras.Input((1, n_features), name="resnet50_features")
    x = inputs
    for i, units in enumerate(LSTM_UNITS):
        last = i == len(LSTM_UNITS) - 1
        # unroll: the sequence has length 1, so the unrolled graph is the same computation
        # without a while loop, and trains ~2x faster on CPU.
        x = layers.LSTM(units, activation=activation, return_sequences=not last, unroll=True,
                        name="lstm" if i == 0 else f"lstm_{i}")(x)
        x = layers.Dropout(dropout, name="dropout" if i == 0 else f"dropout_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="dense")(x)
    return keras.Model(inputs, outputs, name=name)


def standard_cnn_head(n_features: int = N_FEATURES, n_classes: int = N_CLASSES, *,
                      name: str = "standard_cnn_head"):
    """Study A's "standard CNN" baseline on the same features: Flatten → Dense softmax.

    401,412 parameters with the defaults.
    """
    import keras
    from keras import layers

    inputs = keras.Input((1, n_features), name="resnet50_features")
    x = layers.Flatten(name="flatten")(inputs)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="dense")(x)
    return keras.Model(inputs, outputs, name=name)


def table1_beside(model):
    """Our LSTM head's summary beside study A's Table 1 (``paper_*`` columns), row by row."""
    import pandas as pd

    from medrepro import manifest
    from medrepro.models.summary import summary_frame

    ours = summary_frame(model)
    paper = manifest.reported_frame("A.table1")
    n = max(len(ours), len(paper))
    ours = ours.reindex(range(n))
    paper = paper.reindex(range(n)).add_prefix("paper_")
    out = pd.concat([ours, paper], axis=1)
    out["params_match"] = out["params"] == out["paper_params"]
    return out


def scale_features(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre features on the training mean (per feature) and divide by one scalar, the
    training features' overall standard deviation; float32 out.

    ResNet50 features share a large common component (random-init ones especially: cosine
    similarity ~0.94 between images), which would push every LSTM gate the same way. Centring
    removes it; one global scale keeps the features' geometry. Statistics come from ``train``
    only. Returns ``[train, *others]`` transformed.
    """
    train = np.asarray(train, dtype=np.float32)
    mean = train.mean(axis=0, keepdims=True)
    std = float((train - mean).std()) or 1.0
    return [(np.asarray(a, dtype=np.float32) - mean) / std for a in (train, *others)]


def train_head(kind: str, x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray,
               y_val: np.ndarray, *, epochs: int, batch_size: int, learning_rate: float,
               run_dir, checkpoint: str | None = "memory", backup: bool = False,
               seed: int = 0, verbose: int = 2, model=None):
    """Build, compile (Adam, categorical cross-entropy) and train a study-A head on features.

    ``kind``: ``"lstm"`` (:func:`lstm_cnn_head`, ReLU as the paper), ``"lstm_tanh"`` (the same
    with tanh) or ``"standard"`` (:func:`standard_cnn_head`).
    ``x_*``: ``(N, 1, F)`` features; ``y_*``: int class indices ``(N,)``. Study A names no
    optimizer; Adam is our choice. ``model``: an already built head of that kind to train
    (building the LSTM head takes seconds). Returns ``(model, history)``; the model holds the
    weights of the epoch with the lowest validation loss.
    """
    import keras

    from medrepro import train

    builders = {**{k: functools.partial(lstm_cnn_head, activation=act)
                   for k, act in LSTM_VARIANTS.items()}, "standard": standard_cnn_head}
    if kind not in builders:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(builders)}")
    keras.utils.set_random_seed(seed)
    if model is None:
        model = builders[kind](n_features=int(x_fit.shape[-1]))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    k = model.output_shape[-1]
    fit_ds = train.from_arrays(x_fit, keras.utils.to_categorical(y_fit, k),
                               batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = train.from_arrays(x_val, keras.utils.to_categorical(y_val, k),
                               batch_size=batch_size)
    # With backup (the paper profile) a finished head is reused and an interrupted one resumes
    # (train.fit_once); without, every run trains afresh (no 0.8 GB weight file per head).
    fitter = train.fit_once if backup else train.fit
    extra = {"config": {"kind": kind, "n_fit": len(x_fit), "n_val": len(x_val),
                        "features": int(x_fit.shape[-1]), "learning_rate": learning_rate,
                        "batch_size": batch_size, "seed": seed}} if backup else {}
    history = fitter(model, fit_ds, val_ds, epochs=epochs, run_dir=run_dir,
                     checkpoint=checkpoint, backup=backup, verbose=verbose, **extra)
    return model, history


def predict_head(model, x: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Predicted class indices ``(N,)`` of a head for features ``x`` ``(N, 1, F)``."""
    from medrepro import train

    return train.predict_classes(model, train.from_arrays(x, batch_size=batch_size, cache=False))


# ---------------------------------------------------------------------------- ResNet50 features
@dataclass(frozen=True)
class FeatureSet:
    """ResNet50 features of a list of images.

    ``x``: ``(N, 1, F)`` float16, F = 100,352 at 224 (the head's input layout); ``weights``: ``"imagenet"`` or
    ``"random"`` (what was actually used); ``path``: the cache file; ``cached``: loaded from it.
    """

    x: np.ndarray
    weights: str
    path: Path
    cached: bool


def resnet50_backbone(*, weights: str | None = "imagenet", fallback: bool = True,
                      image_size: int = RESNET_INPUT, seed: int = 0):
    """ResNet50 without top (global pooling off) → ``(7, 7, 2048)`` at 224; ``(model, used)``.

    ``weights="imagenet"`` asks keras for the ImageNet weights (cached in ``~/.keras/models``;
    downloaded otherwise, with a ``WEIGHTS_TIMEOUT`` socket timeout so an offline machine fails
    fast). If that fails: ``fallback=True`` warns visibly and returns a randomly initialised
    (seeded) network with ``used="random"``; ``fallback=False`` raises
    :class:`WeightsUnavailableError`. ``weights=None`` asks for random initialisation directly.
    """
    import keras

    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        try:
            path = fetch_resnet50_weights()
            return keras.applications.ResNet50(include_top=False, weights=path,
                                               input_shape=shape), "imagenet"
        except Exception as exc:  # URLError, timeout, HTTP errors, a bad hash, a broken file
            message = (f"ResNet50 ImageNet weights unavailable ({type(exc).__name__}: {exc}). "
                       f"keras fetches {RESNET_WEIGHTS_FILE} from {RESNET_WEIGHTS_URL} into "
                       f"{keras_models_dir()}; put the file there to run offline.")
            if not fallback:
                raise WeightsUnavailableError(message) from exc
            warnings.warn(message + " FALLING BACK TO A RANDOMLY INITIALISED ResNet50: the "
                          "features are random projections, and accuracies are NOT comparable "
                          "to the paper's.", RuntimeWarning, stacklevel=2)
    elif weights is not None:
        raise WeightsUnavailableError(f"weights={weights!r}: expected 'imagenet' or None")
    keras.utils.set_random_seed(seed)
    return keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=shape), "random"


def fetch_resnet50_weights() -> str:
    """Path of the cached ResNet50 no-top ImageNet weights, downloading them if needed.

    Fetched before the network is built, with a ``WEIGHTS_TIMEOUT`` socket timeout, so an
    offline machine fails in seconds (not after building ResNet50, and never hangs).
    """
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(WEIGHTS_TIMEOUT)
    try:
        return keras.utils.get_file(RESNET_WEIGHTS_FILE, RESNET_WEIGHTS_URL,
                                    cache_subdir="models", file_hash=RESNET_WEIGHTS_MD5)
    finally:
        socket.setdefaulttimeout(previous)


def keras_models_dir() -> Path:
    """Where keras caches downloaded weights: ``$KERAS_HOME/models`` (``~/.keras/models``)."""
    from keras.src.backend import config

    return Path(config.keras_home()) / "models"


def resnet50_features(files: Sequence[str | os.PathLike], *, cache_dir: str | os.PathLike,
                      root: str | os.PathLike | None = None, weights: str | None = "imagenet",
                      fallback: bool = True, batch_size: int = 32, seed: int = 0,
                      image_size: int = RESNET_INPUT) -> FeatureSet:
    """ResNet50 features of image files, computed once and cached in ``cache_dir``.

    Images are decoded (JPEG/PNG, grayscale → RGB), resized to ``image_size`` (bilinear) and
    passed through ResNet50's ``preprocess_input``. The cache file is keyed by the files' paths
    (relative to ``root`` when given), their sizes, the image size and the weights actually
    used; a sidecar JSON records them. Returns a :class:`FeatureSet` with ``x`` of shape
    ``(N, 1, F)`` float16 (F = 100,352 at 224), in ``files`` order.
    """
    files = [Path(f) for f in files]
    cache_dir = Path(cache_dir)
    used = "random" if weights is None else weights
    if weights == "imagenet" and not imagenet_weights_available():
        used = "random"  # resnet50_backbone below warns (or raises, without fallback)
    path = _cache_path(cache_dir, files, root=root, image_size=image_size, weights=used)
    if path.is_file():
        if used != wanted_weights(weights):
            warnings.warn(f"ResNet50 ImageNet weights unavailable: using the cached features of "
                          f"a RANDOMLY INITIALISED ResNet50 ({path.name}); accuracies are NOT "
                          "comparable to the paper's.", RuntimeWarning, stacklevel=2)
        return FeatureSet(np.load(path), used, path, True)
    model, used = resnet50_backbone(weights=weights, fallback=fallback, image_size=image_size,
                                    seed=seed)
    path = _cache_path(cache_dir, files, root=root, image_size=image_size, weights=used)
    x = _extract(model, files, image_size=image_size, batch_size=batch_size)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, x)
    meta = {"n_images": len(files), "weights": used, "image_size": image_size,
            "n_features": int(x.shape[-1]), "dtype": str(x.dtype), "file": path.name}
    with atomic_path(path.with_suffix(".json"), suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")
    return FeatureSet(x, used, path, False)


def wanted_weights(weights: str | None) -> str:
    return "random" if weights is None else weights


def imagenet_weights_available() -> bool:
    """True if the ResNet50 ImageNet weights are cached or can be downloaded now (fast)."""
    try:
        fetch_resnet50_weights()
        return True
    except Exception:  # noqa: BLE001 - keras raises a bare Exception for a failed download
        return False


def _cache_path(cache_dir: Path, files: Sequence[Path], *, root, image_size: int,
                weights: str) -> Path:
    key = _feature_key(files, root=root, image_size=image_size, weights=weights)
    return cache_dir / f"resnet50_{weights}_{image_size}_{key}.npy"


def _feature_key(files: Sequence[Path], *, root, image_size: int, weights: str) -> str:
    h = hashlib.sha1(f"{image_size}|{weights}".encode())
    for f in files:
        rel = f.relative_to(root) if root is not None and f.is_relative_to(root) else f
        size = f.stat().st_size if f.is_file() else -1
        h.update(f"{rel.as_posix()}|{size}\n".encode())
    return h.hexdigest()[:16]


def _extract(model, files: Sequence[Path], *, image_size: int, batch_size: int) -> np.ndarray:
    import keras
    import tensorflow as tf

    from medrepro import mri, progress

    ds = mri.decode_files(files, image_size=image_size, scale="raw")
    ds = ds.map(keras.applications.resnet50.preprocess_input).batch(batch_size).prefetch(2)
    n_features = int(np.prod(model.output_shape[1:]))  # 100,352 at 224
    out = np.empty((len(files), 1, n_features), dtype=FEATURE_DTYPE)
    start = 0
    batches = -(-len(files) // batch_size)
    for batch in progress.bar(ds, total=batches, desc="ResNet50 features", unit="batch"):
        feats = model(batch, training=False)
        n = int(feats.shape[0])
        out[start:start + n] = tf.reshape(feats, (n, 1, n_features)).numpy().astype(FEATURE_DTYPE)
        start += n
    if start != len(files):
        raise RuntimeError(f"feature extraction produced {start} rows for {len(files)} files")
    return out


# ---------------------------------------------------------------------------- studies C and E
def seq_cnn(input_shape: tuple[int, int, int] = (224, 224, 3), n_classes: int = N_CLASSES, *,
            filters: Sequence[int] = SEQ_CNN_FILTERS, dense: int = SEQ_CNN_DENSE,
            dropout: float = SEQ_CNN_DROPOUT, name: str = "seq_cnn"):
    """Study C's Sequential CNN (the author's architecture is not published; our choice).

    ``len(filters)`` blocks of Conv2D(f, 3×3, same, ReLU) → MaxPool(2), then Flatten →
    Dense(``dense``, ReLU) → Dropout → Dense(``n_classes``, softmax). The study trains the
    softmax outputs with MSE against one-hot labels.
    """
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(input_shape))
    for i, f in enumerate(filters):
        model.add(layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}"))
        model.add(layers.MaxPooling2D(2, name=f"pool{i + 1}"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(dense, activation="relu", name="fc"))
    model.add(layers.Dropout(dropout, name="dropout"))
    model.add(layers.Dense(n_classes, activation="softmax", dtype="float32", name="softmax"))
    return model


def xai_cnn(input_shape: tuple[int, int, int] = (224, 224, 3), n_classes: int = N_CLASSES, *,
            filters: Sequence[int] = XAI_CNN_FILTERS, block_dropout: float = XAI_CNN_BLOCK_DROPOUT,
            dense: int = XAI_CNN_DENSE, head_dropout: float = XAI_CNN_HEAD_DROPOUT,
            name: str = "xai_cnn"):
    """Study E's CNN: blocks Conv2D(f, 3×3, same) → BatchNorm → ReLU → MaxPool(2) → Dropout.

    Then GlobalAveragePooling → Dense(``dense``, ReLU) → Dropout → Dense softmax. The source
    names the block types only; filter counts, rates, BatchNorm momentum 0.9 and the pooling
    head are our choices. The
    last block's convolution (``conv4`` by default) is the Grad-CAM / Eigen-CAM layer.
    """
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(input_shape))
    for i, f in enumerate(filters):
        model.add(layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}"))
        model.add(layers.BatchNormalization(momentum=XAI_CNN_BN_MOMENTUM, name=f"bn{i + 1}"))
        model.add(layers.Activation("relu", name=f"relu{i + 1}"))
        model.add(layers.MaxPooling2D(2, name=f"pool{i + 1}"))
        model.add(layers.Dropout(block_dropout, name=f"drop{i + 1}"))
    model.add(layers.GlobalAveragePooling2D(name="gap"))
    model.add(layers.Dense(dense, activation="relu", name="fc"))
    model.add(layers.Dropout(head_dropout, name="head_dropout"))
    model.add(layers.Dense(n_classes, activation="softmax", dtype="float32", name="softmax"))
    return model
