"""Brain-tumour MRI model builders of studies A, C and E (training: :mod:`medrepro.studies`).

- Study A: :func:`lstm_cnn_head` (Table 1, exactly: 207,605,764 parameters, all trainable) and
  the "standard CNN" baseline :func:`standard_cnn_head`, both on the features of
  :func:`resnet50_backbone` (ResNet50 without top at 224×224 → 7×7×2048 = 100,352 features,
  fed as a length-1 sequence ``(1, 100352)``; extracted and cached by
  :func:`medrepro.studies.a.resnet50_features`). ImageNet weights when keras can fetch them;
  offline, random initialisation with a visible warning (or a clear error, ``fallback=False``).
- Study C: :func:`seq_cnn`, the author's "Sequential CNN" (architecture not published: ours,
  Conv-BatchNorm-ReLU-MaxPool blocks, Flatten, Dense-BatchNorm-ReLU head).
- Study E: :func:`xai_cnn`, Conv2D-BatchNorm-MaxPool blocks, Flatten-Dense-Dropout head.

Every classifier keeps its softmax output in float32, so it trains safely under the
``mixed_float16`` policy (:func:`medrepro.core.device.configure_precision`). Inputs of ``seq_cnn`` and
``xai_cnn`` are images scaled to [0, 1], ``(H, W, 3)``; ResNet50 takes 0-255 RGB (its own
``preprocess_input`` is applied by :func:`medrepro.studies.a.resnet50_features`).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

N_CLASSES = 4
RESNET_INPUT = 224
RESNET_FEATURE_SHAPE = (7, 7, 2048)
N_FEATURES = int(np.prod(RESNET_FEATURE_SHAPE))  # 100,352
LSTM_HEAD_PARAMS = 207_605_764  # Table 1 of study A
RESNET50_NOTOP_PARAMS = 23_587_712  # keras.applications.ResNet50(include_top=False)
LSTM_UNITS = (512, 256, 128, 64)
# Study A gives no dropout rate; 0.2 is the common choice for stacked LSTMs (docs/decisions.md#a4).
LSTM_DROPOUT = 0.2
# Study A's model section: ReLU was preferred as the LSTM activation (Keras' default is tanh;
# docs/decisions.md#a1). Table 1's counts hold for both; "tanh" is the named variant "lstm_tanh".
# (A non-tanh LSTM cannot use the cuDNN kernel.)
LSTM_ACTIVATION = "relu"
LSTM_VARIANTS = {"lstm": LSTM_ACTIVATION, "lstm_tanh": "tanh"}
# Seconds keras may spend on one socket operation while fetching ImageNet weights. Offline
# (no route, or a firewall that drops packets) the download fails after this instead of hanging.
WEIGHTS_TIMEOUT = float(os.environ.get("MEDREPRO_WEIGHTS_TIMEOUT", "10"))
RESNET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                      + RESNET_WEIGHTS_FILE)
RESNET_WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # keras.applications' WEIGHTS_HASHES

# Study C: the author's Sequential CNN is not published. Four Conv(3×3)-BatchNorm-ReLU-MaxPool(2)
# blocks with doubling filters, a Dense layer and a softmax: the usual Kaggle "Sequential CNN",
# with BatchNorm, without which it learnt far less (docs/decisions.md#c5).
SEQ_CNN_FILTERS = (32, 64, 128, 128)
SEQ_CNN_DENSE = 128
SEQ_CNN_DROPOUT = 0.3
SEQ_CNN_BN_MOMENTUM = 0.9
# BatchNorm in the head too (Dense without bias → BatchNorm → ReLU): without it one Adam step at
# trial 4's 0.01 saturates the softmax, and the MSE of a saturated softmax has no gradient left
# (docs/decisions.md#c6).
SEQ_CNN_HEAD_BN = True
# Study E: "Conv2D-MaxPool blocks with BatchNorm and Dropout, Dense head, softmax". The source
# does not say where the Dropout goes: in the head only. The head is Flatten (the tumour's
# position matters: pituitary tumours sit at the sella) → Dense 128 → Dropout 0.3
# (docs/decisions.md#e2).
XAI_CNN_FILTERS = (32, 64, 128, 128)
XAI_CNN_BLOCK_DROPOUT = 0.0
XAI_CNN_DENSE = 128
XAI_CNN_HEAD_DROPOUT = 0.3
# BatchNorm moving-average momentum. Keras' 0.99 needs several hundred steps before the
# inference statistics forget their initial values; short runs then predict one class at test
# time (docs/decisions.md#e5).
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


# ---------------------------------------------------------------------------- ResNet50 features
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
    from medrepro.core import seeds

    seeds.seed_everything(seed)
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


def wanted_weights(weights: str | None) -> str:
    """The weights ``resnet50_backbone(weights=...)`` asks for: ``"imagenet"`` or ``"random"``."""
    return "random" if weights is None else weights


def imagenet_weights_available() -> bool:
    """True if the ResNet50 ImageNet weights are cached or can be downloaded now (fast)."""
    try:
        fetch_resnet50_weights()
        return True
    except Exception:  # noqa: BLE001 - keras raises a bare Exception for a failed download
        return False


# ---------------------------------------------------------------------------- studies C and E
def seq_cnn(input_shape: tuple[int, int, int] = (224, 224, 3), n_classes: int = N_CLASSES, *,
            filters: Sequence[int] = SEQ_CNN_FILTERS, dense: int = SEQ_CNN_DENSE,
            dropout: float = SEQ_CNN_DROPOUT, head_bn: bool = SEQ_CNN_HEAD_BN,
            name: str = "seq_cnn"):
    """Study C's Sequential CNN (the author's architecture is not published; our choice).

    ``len(filters)`` blocks of Conv2D(f, 3×3, same) → BatchNorm (momentum
    :data:`SEQ_CNN_BN_MOMENTUM`) → ReLU → MaxPool(2), then Flatten → Dense(``dense``) →
    BatchNorm (``head_bn``, :data:`SEQ_CNN_HEAD_BN`; else a Dense with bias) → ReLU → Dropout →
    Dense(``n_classes``, softmax). The study trains the softmax outputs with MSE against one-hot
    labels.
    """
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(input_shape))
    for i, f in enumerate(filters):
        model.add(layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}"))
        model.add(layers.BatchNormalization(momentum=SEQ_CNN_BN_MOMENTUM, name=f"bn{i + 1}"))
        model.add(layers.Activation("relu", name=f"relu{i + 1}"))
        model.add(layers.MaxPooling2D(2, name=f"pool{i + 1}"))
    model.add(layers.Flatten(name="flatten"))
    if head_bn:
        model.add(layers.Dense(dense, use_bias=False, name="fc"))
        model.add(layers.BatchNormalization(momentum=SEQ_CNN_BN_MOMENTUM, name="fc_bn"))
        model.add(layers.Activation("relu", name="fc_relu"))
    else:
        model.add(layers.Dense(dense, activation="relu", name="fc"))
    model.add(layers.Dropout(dropout, name="dropout"))
    model.add(layers.Dense(n_classes, activation="softmax", dtype="float32", name="softmax"))
    return model


def xai_cnn(input_shape: tuple[int, int, int] = (224, 224, 3), n_classes: int = N_CLASSES, *,
            filters: Sequence[int] = XAI_CNN_FILTERS, block_dropout: float = XAI_CNN_BLOCK_DROPOUT,
            dense: int = XAI_CNN_DENSE, head_dropout: float = XAI_CNN_HEAD_DROPOUT,
            name: str = "xai_cnn"):
    """Study E's CNN: blocks Conv2D(f, 3×3, same) → BatchNorm → ReLU → MaxPool(2) [→ Dropout].

    Then Flatten → Dense(``dense``, ReLU) → Dropout → Dense softmax. The source names the block
    types only; filter counts, rates, BatchNorm momentum 0.9 and the Flatten head are our
    choices. The last block's activation (``relu4`` by default) is the Grad-CAM / Eigen-CAM
    layer.
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
        if block_dropout:
            model.add(layers.Dropout(block_dropout, name=f"drop{i + 1}"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(dense, activation="relu", name="fc"))
    model.add(layers.Dropout(head_dropout, name="head_dropout"))
    model.add(layers.Dense(n_classes, activation="softmax", dtype="float32", name="softmax"))
    return model
