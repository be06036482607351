"""Study B input: the compact RSNA cache against the raw-shard cache, and streamed decoding.

    .venv/bin/python benchmarks/bench_cache.py [--out file.json] [--copies N] [--read-images N]
        [--rounds R] [--quick] [--no-rates]

In ONE process and run, on the same DICOM files (the 20 real slices of
``../shared/data/rsna_ich_samples`` repeated ``--copies`` times under new ids, or an RSNA
phantom of 512×512 slices when they are absent), for each cache format (``compact``, the
default of ``rsna.build_cache``, and ``raw``, the ``.npy`` shards it replaces):

1. **bytes per image** of the built cache (``summary.json``), and on the real samples the
   lossless check: every decoded image equals ``dicom.read_rgb`` of its file;
2. **build** images/s of ``rsna.build_cache`` with 1 worker (the per-worker rate) and with
   every core, in fresh folders;
3. **read** images/s through ``rsna.make_dataset`` (batch 32, shuffled: decode + batch + scale
   to float32, no training), the formats alternating round by round, median of ``--rounds``;
4. **streamed**: ``dicom.read_rgb`` images/s per core, the rate a cache-less mode (DICOM decoded
   on the fly by parallel workers) would have per core;
5. **codecs**: on the real samples, bytes/image and encode/decode ms per image (process CPU
   time, one core) of the compact codec beside the alternatives it was chosen against: PNG
   (Pillow, levels 6 and 9), the zlib'd array, WebP lossless (Pillow).

It projects, per mode, the disk and time of the full 720,733-image selection: disk = bytes per
image × 720,733; build = images / (per-worker rate × workers × the measured multi-worker
efficiency) for this machine's cores and for a 4-CPU Kaggle session; one epoch's read (train +
val + test) at the measured read rate. The measured rates go into ``benchmarks/rates.json``
(under this machine's key), which ``medrepro.run.plan`` reads (``--no-rates``: leave it alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

FULL_IMAGES = 720_733  # the six-class selection of stage_2_train (PAPERS.md B, Table 1)
KAGGLE_CPUS = 4  # a Kaggle GPU session's CPU count
FORMATS = ("compact", "raw")
READ_BATCH = 32
TARGET_KIB = 30  # issue 12 targets: <= 30 KiB/image, >= 2,000 img/s read on 2 cores,
TARGET_READ_IMG_S = 2000  # >= 150 img/s build per worker
TARGET_BUILD_IMG_S = 150
PHANTOM_IMAGES = 160


def make_source(workdir: Path, *, copies: int) -> tuple[Path, str]:
    """An RSNA folder (labels CSV + ``stage_2_train/``) to build from: ``(root, description)``."""
    from medrepro.core import paths
    from medrepro.data import rsna

    shared = paths.shared_data_dir()
    samples = sorted((shared / "rsna_ich_samples").glob("*.dcm")) if shared else []
    root = workdir / "rsna"
    images = root / rsna.IMAGES_DIR
    images.mkdir(parents=True)
    if samples:
        ids = []
        for c in range(copies):
            for p in samples:
                image_id = f"{p.stem}c{c:03d}"
                os.symlink(p.resolve(), images / f"{image_id}.dcm")
                ids.append(image_id)
        with open(root / rsna.LABELS_CSV, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["ID", "Label"])
            for i in ids:
                w.writerows([[f"{i}_{s}", 0] for s in (*rsna.SUBTYPES, "any")])
        return root, (f"the {len(samples)} real RSNA samples of ../shared/data/rsna_ich_samples, "
                      f"each {copies} times ({len(ids)} files)")
    from medrepro.data import phantoms

    shutil.rmtree(root)
    phantoms.make_rsna(root, n_images=PHANTOM_IMAGES, seed=0)
    return root, f"an RSNA phantom of {PHANTOM_IMAGES} 512x512 slices (no real samples here)"


def measure_build(root: Path, out: Path, *, format: str, workers: int) -> dict:
    from medrepro.data import rsna

    shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    rsna.build_cache(root, out, workers=workers, format=format, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = rsna.read_summary(out)
    return {"workers": workers, "images": s["images"], "wall_s": wall,
            "img_s": s["images"] / wall, "bytes_per_image": s["bytes"] / max(s["cached"], 1),
            # 1 worker runs in this process: images per CPU-second, the rate of a free core
            "img_per_cpu_s": s["images"] / cpu if workers == 1 and cpu > 0 else None}


def check_lossless(root: Path, cache: Path) -> bool:
    """Every cached image equals ``dicom.read_rgb`` of its file."""
    from medrepro.data import dicom, rsna

    man = rsna.load_manifest(cache)
    ok = man[man["status"] == "ok"]
    got = rsna.load_images(cache, ok)
    want = np.stack([dicom.read_rgb(root / rsna.IMAGES_DIR / f"{i}.dcm") for i in ok["image_id"]])
    return bool(np.array_equal(got, want))


def measure_read(cache: Path, *, images: int) -> tuple[float, float]:
    """``(images/s, images per CPU-second of this process)`` through ``rsna.make_dataset``
    (shuffled, repeated until ``images`` are read). The second is what one free core does:
    on a machine shared with other work the wall rate understates it."""
    from medrepro.data import rsna

    man = rsna.load_manifest(cache)
    df = man[man["status"] == "ok"].assign(label=0, split="train")
    ds = rsna.make_dataset(cache, df, split="train", batch_size=READ_BATCH, shuffle=True, seed=0)
    ds = ds.repeat()
    it = iter(ds)
    next(it)  # tracing and the first batch
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while n < images:
        x, _ = next(it)
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def measure_stream(root: Path, *, seconds: float = 3.0) -> float:
    """``dicom.read_rgb`` images/s in this process (one core)."""
    from medrepro.data import dicom, rsna

    files = sorted((root / rsna.IMAGES_DIR).glob("*.dcm"))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for f in files[:50]:
            try:
                dicom.read_rgb(f)
            except dicom.DicomReadError:
                pass
            n += 1
    return n / (time.perf_counter() - t0)


def compare_codecs(images: list, *, reps: int = 3) -> list[dict]:
    """Bytes/image and CPU ms per image to encode/decode, for each codec, on ``images``."""
    import io
    import zlib

    from medrepro.data import compact
    from PIL import Image

    side = images[0].shape[0]

    def pil(fmt: str, **kw):
        def enc(a):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, fmt, **kw)
            return buf.getvalue()
        return enc, lambda b: np.asarray(Image.open(io.BytesIO(b)))

    codecs = {"compact (medrepro.data.compact)": (compact.encode,
                                             lambda b: compact.decode(b, side)),
              "PNG level 6 (Pillow)": pil("PNG", compress_level=6),
              "PNG level 9 (Pillow)": pil("PNG", compress_level=9),
              "zlib level 6, raw array": (lambda a: zlib.compress(a.tobytes(), 6),
                                          lambda b: np.frombuffer(zlib.decompress(b), np.uint8)
                                          .reshape(side, side, 3)),
              "WebP lossless (Pillow)": pil("WEBP", lossless=True)}
    rows = []
    for name, (enc, dec) in codecs.items():
        c0 = time.process_time()
        blobs = [enc(a) for a in images]
        enc_ms = (time.process_time() - c0) / len(images) * 1e3
        c0 = time.process_time()
        for _ in range(reps):
            decoded = [dec(b) for b in blobs]
        dec_ms = (time.process_time() - c0) / len(images) / reps * 1e3
        rows.append({"codec": name, "KiB_per_image": float(np.mean([len(b) for b in blobs]))
                     / 1024, "encode_ms": enc_ms, "decode_ms": dec_ms,
                     "lossless": all(np.array_equal(x, a) for x, a in zip(decoded, images))})
    rows.append({"codec": "compact, batched decode (as make_dataset)", "KiB_per_image":
                 rows[0]["KiB_per_image"], "encode_ms": rows[0]["encode_ms"],
                 "decode_ms": _batched_decode_ms(images, reps=reps), "lossless": True})
    return rows


def _batched_decode_ms(images: list, *, reps: int) -> float:
    from medrepro.data import compact

    blobs = [compact.encode(a) for a in images]
    c0 = time.process_time()
    for _ in range(reps):
        compact.decode_batch(blobs, images[0].shape[0])
    return (time.process_time() - c0) / len(images) / reps * 1e3


def project(mode: dict, *, workers: int, efficiency: float) -> dict:
    """Disk and times of the 720,733-image selection for one mode on ``workers`` workers."""
    build_img_s = mode["build_img_s_per_worker"] * workers * efficiency
    out = {"workers": workers,
           "disk_GiB": mode["bytes_per_image"] * FULL_IMAGES / 2**30 if mode.get("bytes_per_image")
           else 0.0,
           "build_h": FULL_IMAGES / build_img_s / 3600 if build_img_s else None}
    if mode.get("read_img_s"):
        out["epoch_read_min"] = FULL_IMAGES / mode["read_img_s"] / 60
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--copies", type=int, default=20, help="times each real sample is used")
    parser.add_argument("--read-images", type=int, default=4000, help="images read per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer copies, images and rounds")
    parser.add_argument("--no-rates", action="store_true", help="do not update rates.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.copies, args.read_images, args.rounds = 5, 1000, 1

    from medrepro.core import device as devices
    from medrepro.run import plan
    from medrepro.data import rsna

    cpus = devices.cpu_count()
    device = devices.machine()
    modes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        tmp = Path(tmp)
        root, source = make_source(tmp, copies=args.copies)
        print(f"source: {source}; {cpus} CPU(s)", flush=True)
        caches = {}
        for fmt in FORMATS:
            one = measure_build(root, tmp / f"{fmt}-1", format=fmt, workers=1)
            many = measure_build(root, tmp / f"{fmt}-n", format=fmt, workers=cpus)
            caches[fmt] = tmp / f"{fmt}-n"
            modes[fmt] = {"bytes_per_image": one["bytes_per_image"],
                          "KiB_per_image": one["bytes_per_image"] / 1024,
                          "build_img_s_per_worker": one["img_s"],
                          "build_img_per_cpu_s": one["img_per_cpu_s"],
                          f"build_img_s_{cpus}_workers": many["img_s"],
                          "build_efficiency": many["img_s"] / (one["img_s"] * cpus),
                          "lossless_vs_read_rgb": check_lossless(root, caches[fmt])}
            print(f"  {fmt}: {one['bytes_per_image'] / 1024:.1f} KiB/image, build "
                  f"{one['img_s']:.0f} img/s (1 worker), {many['img_s']:.0f} img/s ({cpus})",
                  flush=True)
        reads: dict[str, list[tuple[float, float]]] = {f: [] for f in FORMATS}
        for _ in range(args.rounds):  # alternate, so both see the same machine load
            for fmt in FORMATS:
                reads[fmt].append(measure_read(caches[fmt], images=args.read_images))
        for fmt in FORMATS:
            modes[fmt]["read_img_s"] = statistics.median(r[0] for r in reads[fmt])
            modes[fmt]["read_img_per_cpu_s"] = statistics.median(r[1] for r in reads[fmt])
            modes[fmt]["read_img_s_rounds"] = [r[0] for r in reads[fmt]]
            print(f"  {fmt}: read {modes[fmt]['read_img_s']:.0f} img/s via make_dataset "
                  f"({modes[fmt]['read_img_per_cpu_s']:.0f} per CPU-second)", flush=True)
        stream = measure_stream(root)
        from medrepro.data import dicom

        real = "real RSNA samples" in source
        sample_files = sorted((root / rsna.IMAGES_DIR).glob("*c000.dcm"))  # each sample once
        codec_rows = compare_codecs([dicom.read_rgb(f) for f in sample_files]) if real else []
    eff = statistics.median(m["build_efficiency"] for m in modes.values())
    modes["streamed"] = {"bytes_per_image": 0, "KiB_per_image": 0.0,
                         "build_img_s_per_worker": None,
                         "read_img_s_per_core": stream,
                         "read_img_s": stream * cpus * min(eff, 1.0),
                         "note": "DICOM decoded on the fly (dicom.read_rgb) by parallel workers, "
                                 "no cache: per-core rate measured, scaled by the cores and the "
                                 "measured build efficiency; not implemented as a mode"}
    for name, m in modes.items():
        m["projection"] = {
            "this_machine": project(m, workers=cpus, efficiency=min(eff, 1.0))
            if name != "streamed" else {"disk_GiB": 0.0,
                                        "epoch_read_min": FULL_IMAGES / m["read_img_s"] / 60},
            "kaggle_4cpu": project(m, workers=KAGGLE_CPUS, efficiency=min(eff, 1.0))
            if name != "streamed" else {"disk_GiB": 0.0, "epoch_read_min": FULL_IMAGES / (
                stream * KAGGLE_CPUS * min(eff, 1.0)) / 60}}
    c, r = modes["compact"], modes["raw"]
    result = {
        "machine": device["description"], "machine_key": plan.machine_key(device), "cpus": cpus,
        "source": source, "read_batch": READ_BATCH, "modes": modes,
        "ratios": {"bytes_compact_over_raw": c["bytes_per_image"] / r["bytes_per_image"],
                   "read_compact_over_raw": c["read_img_s"] / r["read_img_s"],
                   "build_compact_over_raw": c["build_img_s_per_worker"]
                   / r["build_img_s_per_worker"]},
        "targets": {"KiB_per_image_max": TARGET_KIB, "read_img_s_min_on_2_cores":
                    TARGET_READ_IMG_S, "build_img_s_per_worker_min": TARGET_BUILD_IMG_S,
                    "met_wall": {"size": c["KiB_per_image"] <= TARGET_KIB,
                                 "read": c["read_img_s"] >= TARGET_READ_IMG_S,
                                 "build": c["build_img_s_per_worker"] >= TARGET_BUILD_IMG_S},
                    # two free cores: twice the per-CPU-second rate (the decode threads scale)
                    "met_cpu_time": {"read": 2 * c["read_img_per_cpu_s"] >= TARGET_READ_IMG_S,
                                     "build": c["build_img_per_cpu_s"] >= TARGET_BUILD_IMG_S}},
        "load_average_1min": os.getloadavg()[0],
        "full_set_images": FULL_IMAGES,
        "codecs_on_real_samples": codec_rows,
        "note": "rates on a shared machine vary with its load; compare the formats (measured "
                "alternately in the same run) through the ratios",
    }
    print_table(result)
    if not args.no_rates:
        plan.record_rates("cache", {
            "source": source, "cpus": cpus,
            **{f"{fmt}_{k}": modes[fmt][k] for fmt in FORMATS
               for k in ("bytes_per_image", "build_img_s_per_worker", "build_img_per_cpu_s",
                         "read_img_s", "read_img_per_cpu_s")},
            "build_efficiency": eff, "streamed_read_img_s_per_core": stream}, device=device)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(result: dict) -> None:
    import pandas as pd

    rows = []
    for name, m in result["modes"].items():
        p, k = m["projection"]["this_machine"], m["projection"]["kaggle_4cpu"]
        rows.append({"mode": name, "KiB/img": m["KiB_per_image"],
                     "build img/s/worker": m.get("build_img_s_per_worker"),
                     "read img/s": m["read_img_s"], "720k disk GiB": p["disk_GiB"],
                     f"720k build h ({result['cpus']} cpu)": p.get("build_h"),
                     "720k build h (4 cpu)": k.get("build_h"),
                     "720k epoch read min": p.get("epoch_read_min")})
    print(f"\nMachine: {result['machine']}; source: {result['source']}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("ratios:", {k: round(v, 3) for k, v in result["ratios"].items()})
    if result["codecs_on_real_samples"]:
        print("codecs on the real samples (CPU ms per image, one core):")
        print(pd.DataFrame(result["codecs_on_real_samples"]).to_string(
            index=False, float_format=lambda v: f"{v:.3g}"))
    print("targets met (wall):", result["targets"]["met_wall"], "(CPU time):",
          result["targets"]["met_cpu_time"], f"load average {result['load_average_1min']:.1f}")


if __name__ == "__main__":
    main()
