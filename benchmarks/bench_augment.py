"""The input as ``fit`` consumes it, augmentation included, against the plain cached pipeline.

    .venv/bin/python benchmarks/bench_augment.py [--out result.json] [--images N] [--quick]

In ONE process and run, on the same images (the real Sartaj JPEGs of ``../shared/data`` when
there, else brain-MRI phantom JPEGs at 512 px), at 224 px, batches of 32, and on the same
volumes (synthetic 512×512×48 NIfTI files, resized to 128×128×64, batches of 4):

1. **decode**: JPEG decode + resize (NIfTI read + normalise + resize for the volumes), item/s,
   once, uncached: what the first epoch pays;
2. **plain**: the cached, shuffled pipeline without augmentation, item/s, as ``fit`` reads it
   (its epoch stream, after the epoch that filled the cache);
3. **fed**: the same pipeline with study C's augmentation (D's for the volumes) as ``fit``
   consumes it: the augmentation rides along and runs in the training step, on the device,
   so the input pipeline's rate is its ratio to **plain** (target >= 0.25);
4. **before**: the pipeline this replaced, Keras' random layers mapped in tf.data one call at a
   time (their shared generator raced in parallel calls), item/s and its ratio to **plain**;
5. **cost per training step**: milliseconds of one batch's augmentation (compiled, on this
   machine's device) beside one training step of study C's and E's networks at 224 px (D's 3D
   CNN for the volumes) with and without it.

Every rate is measured in this run on this machine; the load average at the start is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

IMAGE_SIZE = 224
BATCH = 32
VOLUME_BATCH = 4
TARGET_RATIO = 0.25  # issue 29: fed >= 0.25 x plain
ROUNDS = 3


def image_frame(workdir: Path, n: int):
    """``(frame, source)``: ``n`` brain-MRI JPEGs (real Sartaj when there, else phantoms)."""
    from medrepro.core import paths
    from medrepro.data import brain_mri
    from medrepro.data.phantoms import brain_mri as phantom

    shared = paths.shared_data_dir()
    if shared is not None and (shared / "brain_tumor_sartaj" / "Training").is_dir():
        frame = brain_mri.list_images(shared / "brain_tumor_sartaj", "brain_tumor_sartaj")
        source = "the real Sartaj JPEGs of ../shared/data"
    else:
        root = workdir / "brain_tumor_masoud"
        phantom.make_mri(root, layout="masoud", n_per_class=max(2, n // 4), seed=0, size=512)
        frame = brain_mri.list_images(root, "brain_tumor_masoud")
        source = "brain-MRI phantom JPEGs, 512 px"
    return frame.sample(n=min(n, len(frame)), random_state=0).reset_index(drop=True), source


def rate(ds, n_items: int, *, rounds: int = ROUNDS) -> float:
    """Items/s of one pass over ``ds`` (median of ``rounds``)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in ds:
            pass
        times.append(time.perf_counter() - start)
    return n_items / statistics.median(times)


def stream_rate(ds, n_items: int) -> float:
    """Items/s of ``ds`` read as ``fit`` reads it: its epoch stream, one epoch, the cache full."""
    from medrepro.data import pipeline

    stream = getattr(ds, pipeline.EPOCH_STREAM)
    for _ in stream.build(0).take(stream.batches):  # fills the cache
        pass
    return rate(stream.build(1).take(stream.batches), n_items)


def keras_layers(volume: bool, seed: int = 0):
    """The Keras random layers the stateless augmentation replaced (C's, D's)."""
    import keras
    from keras import layers

    if volume:
        return keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=seed),
                                 layers.RandomRotation(0.2, seed=seed + 1),
                                 layers.RandomContrast((0.5, 1.0), value_range=(0, 1),
                                                       seed=seed + 2)])
    return keras.Sequential([layers.RandomFlip("horizontal", seed=seed),
                             layers.RandomRotation(0.03, fill_mode="constant", seed=seed + 1),
                             layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 3),
                             layers.RandomContrast(0.3, value_range=(0, 1), seed=seed + 4)])


def step_ms(model, x, y, augment, *, steps: int) -> float:
    """Median milliseconds of one training step of ``model`` on ``(x, y)`` (traced first),
    with ``augment`` applied in the step (None: without)."""
    from medrepro.training import train

    with train.augmented_steps(model, augment):
        model.make_train_function()
        batch = iter([(x, y)] * (steps + 1))
        model.train_function(batch)  # trace
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_function(batch)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def augment_ms(augment, x, *, rounds: int) -> float:
    """Median milliseconds of ``augment`` on the batch ``x``, compiled (tf.function)."""
    import tensorflow as tf

    fn = tf.function(lambda batch, step: augment(batch, step=step))
    fn(x, tf.constant(0, tf.int64))
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        fn(x, tf.constant(i + 1, tf.int64)).numpy()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_images(workdir: Path, n: int, *, steps: int) -> dict:
    import keras
    import tensorflow as tf

    from medrepro.data import brain_mri
    from medrepro.models import brain_mri as mm

    frame, source = image_frame(workdir, n)
    n = len(frame)
    start = time.perf_counter()
    for _ in brain_mri.decode_files(frame["path"], image_size=IMAGE_SIZE):
        pass
    decode = n / (time.perf_counter() - start)
    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT, seed=0)

    def dataset(augment=None):
        return brain_mri.image_dataset(frame, image_size=IMAGE_SIZE, batch_size=BATCH,
                                       shuffle=True, seed=0, augment=augment)

    plain = stream_rate(dataset(), n)
    fed = stream_rate(dataset(aug), n)
    layers = keras_layers(volume=False)
    before_ds = dataset().map(lambda x, y: (layers(x, training=True), y))  # one call at a time
    for _ in before_ds:
        pass
    before = rate(before_ds, n, rounds=1)
    x = next(iter(dataset()))[0]
    y = tf.one_hot(tf.zeros(BATCH, tf.int32), 4)
    cost = augment_ms(aug, x, rounds=steps)
    steps_ms = {}
    for name, build, loss in (("C", mm.seq_cnn, "mse"),
                              ("E", mm.xai_cnn, "categorical_crossentropy")):
        keras.utils.set_random_seed(0)
        model = build((IMAGE_SIZE, IMAGE_SIZE, 3))
        model.compile(optimizer="adam", loss=loss)
        steps_ms[name] = {"plain_ms": step_ms(model, x, y, None, steps=steps),
                          "augmented_ms": step_ms(model, x, y, aug, steps=steps)}
    return {"source": source, "items": n, "size": IMAGE_SIZE, "batch": BATCH,
            "decode_item_s": decode, "plain_item_s": plain, "fed_item_s": fed,
            "fed_to_plain": fed / plain, "before_item_s": before, "before_to_plain": before / plain,
            "augment_ms_per_batch": cost, "augment_item_s_on_this_device": BATCH / cost * 1000,
            "train_step_ms": steps_ms}


def bench_volumes(workdir: Path, n: int, *, steps: int) -> dict:
    import keras
    import nibabel as nib
    import tensorflow as tf

    from medrepro.data import volumes
    from medrepro.models import chest_ct

    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        hu = rng.integers(-1000, 400, (512, 512, 48), dtype=np.int16)
        files.append(workdir / f"study_{i:04d}.nii.gz")
        nib.save(nib.Nifti1Image(hu, np.eye(4)), files[-1])
    start = time.perf_counter()
    x = np.stack([volumes.process_scan(f) for f in files])
    decode = n / (time.perf_counter() - start)
    labels = np.arange(n) % 2
    aug = volumes.make_augmenter(seed=0)
    plain = stream_rate(volumes.make_dataset(x, labels, batch=VOLUME_BATCH, shuffle=True), n)
    fed = stream_rate(volumes.make_dataset(x, labels, batch=VOLUME_BATCH, shuffle=True,
                                           augment=True), n)
    layers = keras_layers(volume=True)
    before_ds = (tf.data.Dataset.from_tensor_slices((x, labels.astype(np.float32)))
                 .map(lambda v, t: (layers(v, training=True), t))
                 .map(lambda v, t: (tf.expand_dims(v, -1), t)).batch(VOLUME_BATCH))
    before = rate(before_ds, n, rounds=1)
    batch = x[:VOLUME_BATCH, ..., None]
    cost = augment_ms(aug, batch, rounds=steps)
    keras.utils.set_random_seed(0)
    model = chest_ct.compile_cnn3d(chest_ct.cnn3d((*x.shape[1:], 1)))
    y = labels[:VOLUME_BATCH].astype(np.float32)
    return {"source": f"{n} synthetic 512x512x48 int16 NIfTI volumes", "items": n,
            "shape": list(x.shape[1:]), "batch": VOLUME_BATCH, "decode_item_s": decode,
            "plain_item_s": plain, "fed_item_s": fed, "fed_to_plain": fed / plain,
            "before_item_s": before, "before_to_plain": before / plain,
            "augment_ms_per_batch": cost,
            "augment_item_s_on_this_device": VOLUME_BATCH / cost * 1000,
            "train_step_ms": {"D": {"plain_ms": step_ms(model, batch, y, None, steps=steps),
                                    "augmented_ms": step_ms(model, batch, y, aug,
                                                            steps=steps)}}}


def summary_lines(res: dict) -> list[str]:
    lines = []
    for kind in ("images", "volumes"):
        r = res[kind]
        steps = "; ".join(f"{k} step {v['plain_ms']:.0f} ms plain, {v['augmented_ms']:.0f} ms "
                          f"augmented" for k, v in r["train_step_ms"].items())
        lines.append(
            f"{kind}: decode {r['decode_item_s']:.1f}/s; plain cached {r['plain_item_s']:.0f}/s; "
            f"fed to fit {r['fed_item_s']:.0f}/s = {r['fed_to_plain']:.2f} x plain (target >= "
            f"{TARGET_RATIO}); before {r['before_item_s']:.0f}/s = {r['before_to_plain']:.3f} x "
            f"plain; augmentation {r['augment_ms_per_batch']:.1f} ms per batch of {r['batch']} "
            f"on this device; {steps}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the result JSON here")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="128 images, 4 volumes, 2 steps")
    args = parser.parse_args(argv)
    n_images, n_volumes, steps = ((128, 4, 2) if args.quick else (args.images, args.volumes, 5))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as tmp:
        res = {"cpu_count": os.cpu_count(), "load_average_1min_at_start": load,
               "target_fed_to_plain": TARGET_RATIO,
               "images": bench_images(Path(tmp), n_images, steps=steps),
               "volumes": bench_volumes(Path(tmp), n_volumes, steps=steps)}
    res["meets_target"] = all(res[k]["fed_to_plain"] >= TARGET_RATIO
                              for k in ("images", "volumes"))
    for line in summary_lines(res):
        print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
