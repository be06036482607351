"""Phantom generation speed: each family at demo size against a format-only floor.

    .venv/bin/python benchmarks/bench_phantoms.py [--out file.json] [--quick]

For each family (Masoud MRI, Sartaj MRI, RSNA, MosMed) at the demo profile's sizes
(``profiles.settings("phantoms", "demo")``; ``--quick``: the smoke sizes), in ONE run:

- the generator's wall time into a temporary folder, and whether it met the target of < 60 s;
- a reference measured in the same run: writing the same number of files of the same format and
  size from a constant image (JPEG encode / pydicom write / NIfTI gzip) - the cost of the format
  alone; the ratio generator / reference says how much the anatomy costs on top of the I/O.

One process, BLAS limited to one thread (as the generators do). On a shared machine the absolute
times are disturbed by other load; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

import numpy as np
from medrepro.data import phantoms
from medrepro.core import profiles

TARGET_SECONDS = 60.0


def _floor_mri(n: int, size: int, mode: str) -> float:
    from PIL import Image

    image = Image.fromarray(np.full((size, size), 80, np.uint8), mode="L")
    if mode == "RGB":
        image = image.convert("RGB")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=90)
            (Path(tmp) / f"{i}.jpg").write_bytes(buf.getvalue())
    return time.perf_counter() - start


def _floor_rsna(n: int) -> float:
    from medrepro.data.phantoms import head_ct
    from medrepro.data.phantoms._common import rng_for

    study = head_ct.plan_studies(8, seed=0)[0]
    study.encoding = "int16"
    hu = np.zeros((512, 512), np.int16)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            data = head_ct.encode_dicom(hu, study=study, slice_index=0, image_id=f"ID_{i:09x}",
                                     size=512, rng=rng_for(0, i))
            (Path(tmp) / f"{i}.dcm").write_bytes(data)
    return time.perf_counter() - start


def _floor_mosmed(n: int, size: int) -> float:
    from medrepro.data.phantoms import chest_ct

    volume = np.full((size, size, 50), -1000, np.int16)
    volume[size // 4: -size // 4, size // 4: -size // 4] = 40
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            data = chest_ct.encode_nifti(volume, np.diag([-0.7, 0.7, 8.0, 1.0]), "120000.000")
            (Path(tmp) / f"{i}.nii.gz").write_bytes(data)
    return time.perf_counter() - start


def _timed(fn) -> float:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fn(Path(tmp) / "ds")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="smoke sizes instead of demo")
    args = parser.parse_args()
    profile = "smoke" if args.quick else "demo"
    s = profiles.settings("phantoms", profile)
    from medrepro.data.phantoms import brain_mri
    from medrepro.data.phantoms._common import single_threaded_blas

    start = time.perf_counter()
    brain_mri.load_template()
    template_s = time.perf_counter() - start
    n_mri = 4 * (s.mri_train_per_class + s.mri_test_per_class)
    families = {
        "mri_masoud": (lambda r: phantoms.make_mri(
            r, layout="masoud", n_per_class=s.mri_train_per_class,
            n_test_per_class=s.mri_test_per_class, seed=42),
            lambda: _floor_mri(n_mri, 512, "L"), n_mri, "JPEG 512x512 L"),
        "mri_sartaj": (lambda r: phantoms.make_mri(
            r, layout="sartaj", n_per_class=s.mri_train_per_class,
            n_test_per_class=s.mri_test_per_class, seed=42),
            lambda: _floor_mri(n_mri, 512, "RGB"), n_mri, "JPEG 512x512 RGB"),
        "rsna": (lambda r: phantoms.make_rsna(r, n_images=s.rsna_images, seed=42),
                 lambda: _floor_rsna(s.rsna_images), s.rsna_images, "DICOM 512x512"),
        "mosmed": (lambda r: phantoms.make_mosmed(r, n_per_class=s.mosmed_per_class, seed=42,
                                                  size=s.mosmed_size),
                   lambda: _floor_mosmed(2 * s.mosmed_per_class, s.mosmed_size),
                   2 * s.mosmed_per_class, f"NIfTI {s.mosmed_size}^2 x N"),
    }
    results = {"profile": profile, "target_seconds": TARGET_SECONDS,
               "template_load_seconds": round(template_s, 3), "families": {}}
    for name, (generate, floor, n_files, fmt) in families.items():
        gen_s = _timed(generate)
        with single_threaded_blas():
            ref_s = floor()
        results.families[name] = {
            "files": n_files, "format": fmt, "generator_seconds": round(gen_s, 2),
            "format_floor_seconds": round(ref_s, 2), "ratio_to_floor": round(gen_s / ref_s, 1),
            "files_per_second": round(n_files / gen_s, 1), "met_target": gen_s < TARGET_SECONDS}
        print(name, results.families[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
