"""Random augmentation drawn statelessly, applied on the device inside the training step.

:class:`Augment` changes a batch of images (or volumes) at random with the transforms and ranges
of Keras' preprocessing layers (``RandomFlip``, ``RandomRotation``, ``RandomTranslation``,
``RandomZoom``, ``RandomContrast``) and a gamma curve, but it holds no generator state: every
random number of a batch is ``tf.random.stateless_uniform`` of a key made of the augmentation's
``seed`` and the training ``step`` (``optimizer.iterations``, part of the saved training
state), and item ``i`` of the global batch gets row ``i`` of the draws, whichever replica holds
it. So a resumed run draws exactly what the uninterrupted run drew, parallel calls race for
nothing, and the number of replicas changes no item's draws (the draws of an epoch's last,
padded batch excepted). Why: docs/decisions.md#x5 and docs/decisions.md#x6.

:func:`medrepro.training.train.fit` applies a dataset's :class:`Augment`
(:func:`medrepro.data.pipeline.finish` attaches it) to each training batch inside the
compiled training step, as Keras advises for GPU training (augmentation in the model, on the
device); the dataset itself yields the batches unchanged.

The geometric transforms are composed into one affine map and resampled once
(:func:`warp`, bilinear, written with gathers so that XLA compiles it: TensorFlow's
``ImageProjectiveTransformV3`` has no XLA kernel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FLIPS = ("", "horizontal", "horizontal_and_vertical")
FILL_MODES = ("constant", "reflect")
_DRAWS = ("flip", "angle", "shift_x", "shift_y", "zoom", "contrast", "gamma")  # one key each


@dataclass(frozen=True)
class Augment:
    """Random flip, rotation, shift, zoom, contrast and gamma of a batch, in that order.

    - ``flip``: ``"horizontal"`` flips an image left-right with probability 0.5;
      ``"horizontal_and_vertical"`` flips it left-right and upside-down together with
      probability 0.5 (what Keras 3's ``RandomFlip("horizontal_and_vertical")`` does).
    - ``rotation``: a fraction of a full turn; the angle is uniform in ``±rotation × 360°``.
    - ``shift``: fraction of the height and of the width; each uniform in ``±shift``.
    - ``zoom``: the sampling scale is uniform in ``1 ± zoom``, the same for both axes.
    - ``contrast`` ``(lower, upper)``: each image's deviations from its per-channel mean scaled
      by a factor uniform in ``[1 - lower, 1 + upper]``, then clipped to [0, 1] (Keras'
      ``RandomContrast(factor=(lower, upper), value_range=(0, 1))``).
    - ``gamma``: the image raised to ``γ``, ``log γ`` uniform in ``±gamma`` (a gamma curve
      keeps black black and white white; Keras has no such layer).
    - ``fill_mode``: what the geometric transforms show outside the image, ``"constant"``
      (zeros) or ``"reflect"``.
    """

    flip: str = ""
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0
    contrast: tuple[float, float] = (0.0, 0.0)
    gamma: float = 0.0
    fill_mode: str = "constant"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.flip not in FLIPS:
            raise ValueError(f"Augment: flip={self.flip!r}, expected one of {FLIPS}")
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"Augment: fill_mode={self.fill_mode!r}, expected one of "
                             f"{FILL_MODES}")
        object.__setattr__(self, "contrast", tuple(float(c) for c in self.contrast))
        ranges = {"rotation": self.rotation, "shift": self.shift, "zoom": self.zoom,
                  "gamma": self.gamma, "contrast": min(self.contrast)}
        for name, value in ranges.items():
            if not value >= 0:
                raise ValueError(f"Augment: {name} must be >= 0, got {value}")
        if not (len(self.contrast) == 2 and self.contrast[0] <= 1 and self.zoom < 1):
            raise ValueError(f"Augment: need contrast (lower <= 1, upper) and zoom < 1, got "
                             f"contrast={self.contrast}, zoom={self.zoom}")

    def options(self) -> dict[str, Any]:
        """The transforms and ranges (everything but the seed), JSON values."""
        out = asdict(self)
        out.pop("seed")
        out["contrast"] = list(self.contrast)
        return out

    def __call__(self, images, *, step, replica=0, replicas=1):
        """``images`` augmented: ``(B, H, W, C)`` float in [0, 1], or volumes
        ``(B, H, W, D, 1)`` (the depth axis taken as channels: every slice gets the volume's
        transform). ``step``: the training step (int or int tensor); ``replica`` of
        ``replicas``: which rows of the global batch's draws these ``B`` items are."""
        import tensorflow as tf

        images = tf.convert_to_tensor(images, dtype=tf.float32)
        shape = tf.shape(images)
        x = tf.reshape(images, tf.concat([shape[:3], [-1]], 0)) if images.shape.rank == 5 \
            else images
        n = tf.shape(x)[0]
        start = tf.cast(replica, tf.int32) * n
        draws = {k: v[start:start + n] for k, v in
                 self.draw(step, n * tf.cast(replicas, tf.int32)).items()}
        return tf.reshape(self.apply(x, draws), shape)

    def draw(self, step, n) -> dict:
        """The random parameters of ``n`` items at ``step`` (each ``(n,)`` float32): ``flip``
        (1.0 = flipped), ``angle`` (radians), ``shift_x``/``shift_y`` (fractions), ``zoom``,
        ``contrast`` (factor), ``gamma`` (exponent). A pure function of (seed, step, n)."""
        import math

        import tensorflow as tf

        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        keys = tf.random.experimental.stateless_split(key, num=len(_DRAWS))

        def uniform(name, low, high):
            return tf.random.stateless_uniform([n], seed=keys[_DRAWS.index(name)], minval=low,
                                               maxval=high, alg="philox")

        turn = self.rotation * 2 * math.pi
        return {"flip": tf.cast(uniform("flip", 0.0, 1.0) <= 0.5, tf.float32),
                "angle": uniform("angle", -turn, turn),
                "shift_x": uniform("shift_x", -self.shift, self.shift),
                "shift_y": uniform("shift_y", -self.shift, self.shift),
                "zoom": uniform("zoom", 1.0 - self.zoom, 1.0 + self.zoom),
                "contrast": uniform("contrast", 1.0 - self.contrast[0], 1.0 + self.contrast[1]),
                "gamma": tf.exp(uniform("gamma", -self.gamma, self.gamma))}

    def apply(self, images, draws: dict):
        """``images`` ``(B, H, W, C)`` transformed by ``draws`` (:meth:`draw`'s, ``B`` rows)."""
        import tensorflow as tf

        if self.flip or self.rotation or self.shift or self.zoom:
            shape = tf.shape(images)
            images = warp(images, affine_matrix(draws, height=shape[1], width=shape[2],
                                                flip=self.flip),
                          fill_mode=self.fill_mode)
        if any(self.contrast):
            factor = draws["contrast"][:, None, None, None]
            mean = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
            images = tf.clip_by_value((images - mean) * factor + mean, 0.0, 1.0)
        if self.gamma:
            images = tf.pow(tf.clip_by_value(images, 1e-6, 1.0), draws["gamma"][:, None, None,
                                                                                None])
        return images


def affine_matrix(draws: dict, *, height, width, flip: str = ""):
    """``(B, 8)`` float32 output → input maps (``ImageProjectiveTransformV3``'s layout) of
    flip, then rotation about the centre, then shift, then zoom about the centre, as Keras'
    layers applied one after the other map them (their matrices, composed)."""
    import tensorflow as tf

    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    n = tf.shape(draws["angle"])[0]
    one, zero = tf.ones([n]), tf.zeros([n])

    def matrix(rows):
        return tf.reshape(tf.stack([tf.stack(r, -1) for r in rows], 1), [n, 3, 3])

    cos, sin = tf.cos(draws["angle"]), tf.sin(draws["angle"])
    rotate = matrix([[cos, -sin, cx - cx * cos + cy * sin], [sin, cos, cy - cx * sin - cy * cos],
                     [zero, zero, one]])
    shift = matrix([[one, zero, -draws["shift_x"] * w], [zero, one, -draws["shift_y"] * h],
                    [zero, zero, one]])
    z = draws["zoom"]
    zoom = matrix([[z, zero, cx * (1 - z)], [zero, z, cy * (1 - z)], [zero, zero, one]])
    f = draws["flip"] if flip else zero
    mirror_y = f if flip == "horizontal_and_vertical" else zero
    mirror = matrix([[1 - 2 * f, zero, f * (w - 1)], [zero, 1 - 2 * mirror_y, mirror_y * (h - 1)],
                     [zero, zero, one]])
    m = mirror @ rotate @ shift @ zoom
    return tf.concat([tf.reshape(m, [n, 9])[:, :6], tf.zeros([n, 2])], axis=1)


def warp(images, transforms, *, fill_mode: str = "constant", fill_value: float = 0.0):
    """``images`` ``(B, H, W, C)`` resampled bilinearly at the points ``transforms`` ``(B, 8)``
    map each output pixel to (``tf.raw_ops.ImageProjectiveTransformV3``'s semantics: integer
    pixel coordinates; ``"constant"``: ``fill_value`` outside; ``"reflect"``: ``dcba|abcd|dcba``).
    Gathers only, so XLA compiles it."""
    import tensorflow as tf

    if fill_mode not in FILL_MODES:
        raise ValueError(f"warp: fill_mode={fill_mode!r}, expected one of {FILL_MODES}")
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                         indexing="ij")
    xs, ys = tf.reshape(xs, [1, -1]), tf.reshape(ys, [1, -1])  # (1, H*W)
    t = [transforms[:, i:i + 1] for i in range(8)]
    proj = t[6] * xs + t[7] * ys + 1.0
    in_x = (t[0] * xs + t[1] * ys + t[2]) / proj  # (B, H*W)
    in_y = (t[3] * xs + t[4] * ys + t[5]) / proj
    if fill_mode == "reflect":
        in_x, in_y = _reflect(in_x, w), _reflect(in_y, h)
    flat = tf.reshape(images, [b, h * w, -1])
    x0, y0 = tf.floor(in_x), tf.floor(in_y)
    x1, y1 = x0 + 1, y0 + 1

    def read(yy, xx):
        inside = (yy >= 0) & (yy <= tf.cast(h - 1, tf.float32)) & (xx >= 0) & (
            xx <= tf.cast(w - 1, tf.float32))
        index = (tf.cast(tf.clip_by_value(yy, 0, tf.cast(h - 1, tf.float32)), tf.int32) * w
                 + tf.cast(tf.clip_by_value(xx, 0, tf.cast(w - 1, tf.float32)), tf.int32))
        return tf.where(inside[..., None], tf.gather(flat, index, batch_dims=1), fill_value)

    top = (x1 - in_x)[..., None] * read(y0, x0) + (in_x - x0)[..., None] * read(y0, x1)
    bottom = (x1 - in_x)[..., None] * read(y1, x0) + (in_x - x0)[..., None] * read(y1, x1)
    out = (y1 - in_y)[..., None] * top + (in_y - y0)[..., None] * bottom
    out = tf.where((proj == 0)[..., None], fill_value, out)
    return tf.reshape(out, shape)


def _reflect(coord, size):
    """TensorFlow's reflect mapping of coordinates onto ``[0, size - 1]``."""
    import tensorflow as tf

    n = tf.cast(size, tf.float32)
    period = 2 * n
    low = period * tf.floor(-coord / period) + coord
    low = tf.where(low < -n, low + period, -low - 1)
    high = coord - period * tf.floor(coord / period)
    high = tf.where(high >= n, period - high - 1, high)
    out = tf.where(coord < 0, low, tf.where(coord > n - 1, high, coord))
    return tf.clip_by_value(tf.where(n <= 1, tf.zeros_like(out), out), 0.0, n - 1)
