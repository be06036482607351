"""Study D's 3-D CNN (thesis Fig 4.5) and its compile settings (builders only; the training
scenarios, their scores and tables live in :mod:`medrepro.studies.d`).

Fig 4.5, exact: Input (128, 128, 64, 1) → [Conv3D 16 k3 ReLU → MaxPool3D 2 → BN] →
[Conv3D 32 → MaxPool → BN → Dropout 0.1] → [Conv3D 64 → MaxPool → BN → Dropout 0.1] →
[Conv3D 64 → MaxPool → BN → Dropout 0.1] → GlobalAvgPool3D → Dense 512 ReLU → Dropout 0.2 →
Dense 1 sigmoid: 214,817 parameters (214,465 trainable, 352 non-trainable: the BN moving
statistics). The convolutions are 'valid', so every spatial axis must be >= 46 voxels
(:data:`MIN_SIDE`); the parameter count does not depend on the input size.

Training follows the thesis' chapter-4 listing (§4.2.1), whose model, 160/40 split and rotation
the kit follows: SGD without momentum on ``ExponentialDecay(0.1, ...)`` and Keras' BatchNorm
momentum 0.99 (:data:`INITIAL_LR`, :data:`SGD_MOMENTUM`, :data:`BN_MOMENTUM`); the reduced
profiles keep that optimiser with BatchNorm momentum 0.9. Why, and the appendix's other
values: docs/decisions.md#d2.
"""

from __future__ import annotations

from collections.abc import Sequence

PAPER_INPUT = (128, 128, 64, 1)  # (H, W, D, channels)
PAPER_PARAMS = {"total": 214_817, "trainable": 214_465, "non_trainable": 352}
FILTERS = (16, 32, 64, 64)
DROPOUTS = (0.0, 0.1, 0.1, 0.1)  # after each block's BatchNorm (none after the first)
DENSE_UNITS = 512
HEAD_DROPOUT = 0.2
MIN_SIDE = 46  # smallest axis that survives four (valid conv k3 + maxpool 2) stages
INITIAL_LR = 0.1  # the chapter-4 listing (§4.2.1); see the module docstring
SGD_MOMENTUM = 0.0  # the listing gives its 0.9 to compile(), not to SGD: Keras' default 0
DECAY_STEPS = 100_000
DECAY_RATE = 0.96
METRICS = ("accuracy", "mse")
# The thesis' callbacks (appendix code): ModelCheckpoint(save_best_only=True), i.e. Keras'
# default monitor, validation LOSS, and EarlyStopping(monitor="val_acc", patience=15).
CHECKPOINT_MONITOR = "val_loss"
STOP_MONITOR = "val_accuracy"
# BatchNorm moving-average momentum: the thesis' layers.BatchNormalization(), Keras' default.
BN_MOMENTUM = 0.99
GRADCAM_LAYER = "block3_conv"  # finer than the last conv (12×12×4 at the paper's input)


def min_side_ok(n: int) -> bool:
    """Whether an axis of ``n`` voxels survives the four valid conv + pool stages."""
    for _ in FILTERS:
        n = (n - 2) // 2
        if n < 1:
            return False
    return True


def cnn3d(input_shape: Sequence[int] = PAPER_INPUT, *, name: str = "3dcnn",
          bn_momentum: float = BN_MOMENTUM):
    """The 3-D CNN of Fig 4.5 (uncompiled keras ``Model``): ``(B, H, W, D, 1)`` → ``(B, 1)``.

    Any ``input_shape`` with every spatial axis >= :data:`MIN_SIDE` builds, with the same
    214,817 parameters; smaller axes raise ``ValueError``. ``bn_momentum``: the momentum of
    every BatchNorm's moving statistics (default :data:`BN_MOMENTUM`, the thesis' 0.99).
    """
    import keras
    from keras import layers

    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"cnn3d: input_shape must be (H, W, D, C), got {input_shape}")
    small = [s for s in input_shape[:3] if not min_side_ok(s)]
    if small:
        raise ValueError(f"cnn3d: input {input_shape} too small: every spatial axis must be "
                         f">= {MIN_SIDE} for four valid conv(3) + maxpool(2) stages")
    inputs = keras.Input(input_shape)
    x = inputs
    for i, (filters, rate) in enumerate(zip(FILTERS, DROPOUTS), start=1):
        x = layers.Conv3D(filters=filters, kernel_size=3, activation="relu",
                          name=f"block{i}_conv")(x)
        x = layers.MaxPool3D(pool_size=2, name=f"block{i}_pool")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{i}_bn")(x)
        if rate:
            x = layers.Dropout(rate, name=f"block{i}_dropout")(x)
    x = layers.GlobalAveragePooling3D(name="global_avg_pool")(x)
    x = layers.Dense(units=DENSE_UNITS, activation="relu", name="dense")(x)
    x = layers.Dropout(HEAD_DROPOUT, name="head_dropout")(x)
    outputs = layers.Dense(units=1, activation="sigmoid", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_cnn3d(model, *, initial_lr: float = INITIAL_LR, momentum: float = SGD_MOMENTUM):
    """Compile with the study's settings: SGD (``momentum``, default the listing's effective 0)
    on the exponential-decay schedule from ``initial_lr``, binary cross-entropy, metrics
    accuracy and MSE. Returns ``model``."""
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_lr, decay_steps=DECAY_STEPS, decay_rate=DECAY_RATE, staircase=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=momentum),
                  loss="binary_crossentropy", metrics=list(METRICS))
    return model
