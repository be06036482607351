"""Study D's volume pipeline: the fast resize against scipy, per-volume preprocessing, 3D CNN training.

    python benchmarks/bench_volumes.py [--out result.json] [--quick] [--slices N] [--steps N]

1. ``resize``: :func:`medrepro.data.volumes.resize_volume` and the scipy reference
   (``ndimage.rotate(90, reshape=False)`` + ``ndimage.zoom(order=1)``) on the same normalised
   512×512×N volume (a synthetic chest phantom, and a real MosMed mask if ``../shared/data`` is
   there): best-of-k seconds of each, their ratio, and the maximum absolute difference.
2. ``preprocess``: read a 512×512×N int16 ``.nii.gz`` → normalise → resize, seconds per volume
   (with the fast resize and with the scipy one).
3. ``train``: volumes/s of the 3D CNN (Fig 4.5) training at 128×128×64 with batch 4, after
   warm-up steps.

Timings depend on the machine's load: the ratios are measured in the same run against the same
inputs. The load average at the start is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from medrepro.core import paths
from medrepro.data import volumes
from medrepro.core.fileio import atomic_path

IN_PLANE = 512  # MosMed slices are 512×512
TARGET = volumes.TARGET_SHAPE


def chest_phantom(shape: tuple[int, int, int], *, seed: int = 0) -> np.ndarray:
    """A float32 HU volume ``(H, W, D)``: air, an elliptic body, two lungs, noise."""
    rng = np.random.default_rng(seed)
    h, w, d = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    body = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.4 * w)) ** 2 < 1
    lungs = ((yy - h / 2) / (0.3 * h)) ** 2 + ((np.abs(xx - w / 2) - 0.18 * w) / (0.12 * w)) ** 2 < 1
    sl = np.where(body, 40.0, -1000.0) + np.where(lungs, -860.0, 0.0)
    return (sl[:, :, None] + rng.normal(0, 40, (h, w, d))).astype(np.float32)


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_resize(vol: np.ndarray, *, name: str, repeats_ref: int, repeats_fast: int) -> dict:
    t_ref, ref = best_of(lambda: volumes.resize_volume_reference(vol, TARGET), repeats_ref)
    t_fast, fast = best_of(lambda: volumes.resize_volume(vol, TARGET), repeats_fast)
    return {"input": name, "shape": "×".join(map(str, vol.shape)),
            "scipy_s": round(t_ref, 4), "fast_s": round(t_fast, 4),
            "speedup": round(t_ref / t_fast, 1),
            "max_abs_diff": float(np.abs(np.asarray(ref) - np.asarray(fast)).max())}


def bench_preprocess(slices: int, repeats: int) -> dict:
    import nibabel as nib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study_0001.nii.gz"
        hu = chest_phantom((IN_PLANE, IN_PLANE, slices), seed=1).astype(np.int16)
        nib.save(nib.Nifti1Image(hu, np.eye(4)), str(path))
        t_read, vol = best_of(lambda: volumes.read_volume(path), repeats)
        t_norm, norm = best_of(lambda: volumes.normalize_hu(vol), repeats)
        t_fast, _ = best_of(lambda: volumes.resize_volume(norm, TARGET), repeats)
        t_ref, _ = best_of(lambda: volumes.resize_volume_reference(norm, TARGET), 1)
        t_total, _ = best_of(lambda: volumes.process_scan(path, shape=TARGET), repeats)
    return {"shape": f"{IN_PLANE}×{IN_PLANE}×{slices} int16 .nii.gz",
            "read_s": round(t_read, 4), "normalize_s": round(t_norm, 4),
            "resize_fast_s": round(t_fast, 4), "resize_scipy_s": round(t_ref, 4),
            "per_volume_fast_s": round(t_total, 4),
            "per_volume_scipy_s": round(t_read + t_norm + t_ref, 4)}


def bench_train(shape: tuple[int, int, int], *, steps: int, warmup: int, batch: int = 4) -> dict:
    import keras
    from medrepro.models import chest_ct
    from medrepro.models.summary import param_counts

    keras.utils.set_random_seed(0)
    model = chest_ct.compile_cnn3d(chest_ct.cnn3d((*shape, 1)))
    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape, 1), dtype=np.float32)
    y = np.array([0, 1] * (batch // 2) + [0] * (batch % 2), np.float32)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return {"input": "×".join(map(str, shape)), "batch": batch, "steps": steps,
            "seconds": round(seconds, 3), "volumes_per_s": round(steps * batch / seconds, 3),
            "params": param_counts(model)["total"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer slices, repeats and steps")
    parser.add_argument("--slices", type=int, default=None, help="N of the 512×512×N volume")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps")
    args = parser.parse_args(argv)
    slices = args.slices or (32 if args.quick else 64)
    steps = args.steps or (2 if args.quick else 5)
    repeats = 2 if args.quick else 3

    result: dict = {"load_average_1m_at_start": round(os.getloadavg()[0], 2),
                    "cpu_count": os.cpu_count(), "target_shape": "×".join(map(str, TARGET))}
    vol = volumes.normalize_hu(chest_phantom((IN_PLANE, IN_PLANE, slices)))
    rows = [bench_resize(vol, name="phantom (normalised HU)", repeats_ref=max(1, repeats - 1),
                         repeats_fast=repeats)]
    shared = paths.shared_data_dir()
    masks = sorted((shared / "mosmed_masks" / "masks").glob("*.nii.gz")) if shared else []
    if masks:
        mask = volumes.read_volume(masks[0])
        rows.append(bench_resize(mask, name=f"real MosMed mask {masks[0].name}",
                                 repeats_ref=1, repeats_fast=repeats))
    result["resize"] = rows
    print(json.dumps(rows, indent=1), flush=True)
    result["preprocess"] = bench_preprocess(slices, repeats)
    print(json.dumps(result["preprocess"], indent=1), flush=True)
    result["train"] = bench_train(TARGET, steps=steps, warmup=2)
    print(json.dumps(result["train"], indent=1), flush=True)
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    if args.out:
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    worst = max(r["max_abs_diff"] for r in rows)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
