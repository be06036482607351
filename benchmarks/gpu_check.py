"""GPU check: can this machine run the paper profile, and how long will each notebook take?

    python benchmarks/gpu_check.py [--steps 200] [--data PATH] [--out reports/benchmarks.json]
    python benchmarks/gpu_check.py --cpu-dry-run      # tiny inputs, eager, on CPU (~1-2 min)

One command, about 5-8 min on one GPU. On a machine without a GPU it exits with status 2 and
says so (use ``--cpu-dry-run`` there). For every study's paper-size model:

1. **Training steps**: ``--steps`` optimizer steps (after warm-up steps that trace and compile)
   under the dtype policy of ``medrepro.core.device.configure_precision`` (``mixed_float16`` on a GPU),
   with XLA (``jit_compile=True``; ``--no-xla`` turns it off, and a model XLA cannot compile
   falls back to plain graph mode, recorded). Images (volumes, feature vectors) per second.
2. **Inference** images/s (validation passes, study A's ResNet50 feature extraction).
3. **Peak GPU memory** of each model (``tf.config.experimental.get_memory_info``, reset per
   model), bytes.
4. **Input pipeline**: images/s of ``medrepro.data.rsna.make_dataset`` (decode + batch, nothing
   else) over an RSNA cache built with ``medrepro.data.rsna.ensure_cache`` from ``--data`` (a folder
   with ``rsna_ich/``; ``--pipeline-images`` of them) or the phantom, set against the
   proposed model's training rate (the ratio must stay above 1).
5. **Projected wall time of each notebook's paper run** on this machine: per trained model,
   epochs × (training images / training rate + validation images / inference rate), with the
   paper profile's epochs and the real datasets' sizes (constants below; early stopping can
   only shorten it, so epoch counts are upper bounds except study B's, which uses the paper's
   9).

Results go under the key ``gpu_check`` (``gpu_check_dry_run`` for a dry run, so a CPU run never
replaces GPU figures) of ``--out`` (default ``reports/benchmarks.json``), written atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NO_GPU_EXIT = 2
NO_GPU_MESSAGE = ("gpu_check: no GPU visible to TensorFlow (tf.config.list_physical_devices"
                  "('GPU') is empty). Run it on a CUDA machine (Kaggle/Colab GPU runtime), or "
                  "pass --cpu-dry-run to exercise the code on CPU with tiny inputs.")

# Dataset sizes of the paper runs (shared/PAPERS.md; medrepro.data.datasets official counts).
SARTAJ_IMAGES = 3_264  # study A pools Training + Testing, 80/20, 10% of train for validation
MASOUD_IMAGES = 7_023  # studies C and E, 80/20, 10% of train for validation
RSNA_TRAIN, RSNA_VAL = 360_373, 180_180  # study B, Table 1
RSNA_ASSUMED_EPOCHS = 9  # the proposed model stopped at 9 (Table 2); assumed for every model
MOSMED_VOLUMES = 254 + 170  # CT-0 + CT-23, 70/20/10
TRAIN_FRACTION, VAL_FRACTION = 0.8 * 0.9, 0.8 * 0.1
MOSMED_TRAIN_FRACTION, MOSMED_VAL_FRACTION = 0.7, 0.2

DEFAULT_STEPS, DEFAULT_WARMUP = 200, 5
DRY_STEPS, DRY_WARMUP = 2, 1
PIPELINE_BATCHES = 50
DRY_PIPELINE_BATCHES = 3


@dataclass(frozen=True)
class Sizes:
    """Input sizes: the paper's, or tiny ones for the CPU dry run."""

    image: int
    volume: tuple[int, int, int]
    features: int
    pipeline_images: int


PAPER_SIZES = Sizes(image=224, volume=(128, 128, 64), features=100_352, pipeline_images=2_000)
DRY_SIZES = Sizes(image=32, volume=(48, 48, 48), features=512, pipeline_images=24)


# ---------------------------------------------------------------------------- models
def model_specs(sizes: Sizes) -> list[dict]:
    """Every study's paper model: name, study, a builder returning a compiled model, the input
    shape of one item and the batch size of the paper profile."""
    import keras
    from medrepro.core import profiles
    from medrepro.training import train
    from medrepro.models import head_ct, brain_mri, chest_ct

    img = (sizes.image, sizes.image, 3)
    b = profiles.settings("B", "paper")
    a = profiles.settings("A", "paper")
    c = profiles.settings("C", "paper")
    e = profiles.settings("E", "paper")
    d = profiles.settings("D", "paper")

    def head(kind):
        def build():
            net = (brain_mri.lstm_cnn_head if kind == "lstm" else brain_mri.standard_cnn_head)(
                n_features=sizes.features)
            net.compile(optimizer=keras.optimizers.Adam(a.lr),
                        loss="categorical_crossentropy", metrics=["accuracy"])
            return net
        return build

    def seq_cnn():
        net = brain_mri.seq_cnn(img)
        net.compile(optimizer=train.make_optimizer("Adam", 1e-3), loss="mse",
                    metrics=["accuracy"])
        return net

    def xai_cnn():
        net = brain_mri.xai_cnn(img)
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                    metrics=["accuracy"])
        return net

    specs = [
        {"name": "A.lstm_head", "study": "A", "build": head("lstm"),
         "shape": (1, sizes.features), "classes": brain_mri.N_CLASSES, "batch": a.batch},
        {"name": "A.standard_head", "study": "A", "build": head("standard"),
         "shape": (1, sizes.features), "classes": brain_mri.N_CLASSES, "batch": a.batch},
        {"name": "A.resnet50_features", "study": "A", "inference_only": True,
         "build": lambda: brain_mri.resnet50_backbone(weights=None, image_size=sizes.image)[0],
         "shape": img, "classes": None, "batch": a.batch},
    ]
    for key in head_ct.BUILDERS:
        for batch in sorted({b.batch_compare, b.batch_main if key == "proposed" else 0}
                            - {0}):
            specs.append({"name": f"B.{key}.b{batch}", "study": "B", "shape": img,
                          "build": (lambda key=key: head_ct.compile_paper(head_ct.build(key, img))),
                          "classes": head_ct.N_CLASSES, "batch": batch})
    specs += [
        {"name": "C.seq_cnn", "study": "C", "build": seq_cnn, "shape": img,
         "classes": brain_mri.N_CLASSES, "batch": c.batch},
        {"name": "D.cnn3d", "study": "D", "shape": (*sizes.volume, 1), "classes": 1,
         "build": lambda: chest_ct.compile_cnn3d(chest_ct.cnn3d((*sizes.volume, 1))),
         "batch": d.batch},
        {"name": "E.xai_cnn", "study": "E", "build": xai_cnn, "shape": img,
         "classes": brain_mri.N_CLASSES, "batch": e.batch},
    ]
    return specs


def _batch(spec: dict, dtype):
    """One random batch ``(x, y)`` for ``spec`` (labels one-hot, or 0/1 for one unit)."""
    import tensorflow as tf

    x = tf.random.stateless_uniform((spec["batch"], *spec["shape"]), seed=(1, 2), dtype=dtype)
    k = spec["classes"]
    if k is None:
        return x, None
    if k == 1:
        return x, tf.cast(tf.range(spec["batch"]) % 2, tf.float32)
    return x, tf.one_hot(tf.range(spec["batch"]) % k, k)


def measure_model(spec: dict, *, steps: int, warmup: int, xla: bool, gpu: bool,
                  eager: bool = False) -> dict:
    """Training and inference images/s and peak memory of one model (see the module text).

    ``eager``: no graph tracing (the CPU dry run: tracing DenseNet121 alone takes minutes on
    two cores)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    model = _built(spec, eager)
    x, y = _batch(spec, tf.float32)
    out = {"model": spec["name"], "study": spec["study"], "batch": spec["batch"],
           "params": int(model.count_params()), "input": list(spec["shape"])}
    if not spec.get("inference_only"):
        used_xla = xla
        try:
            out["train_img_s"] = _train_rate(model, x, y, steps=steps, warmup=warmup, xla=xla)
        except Exception as exc:  # XLA cannot compile some ops: plain graph mode then
            if not xla:
                raise
            print(f"  {spec['name']}: XLA failed ({type(exc).__name__}: {str(exc)[:200]}); "
                  "retrying without", file=sys.stderr)
            used_xla = False
            model = _built(spec, eager)
            out["train_img_s"] = _train_rate(model, x, y, steps=steps, warmup=warmup, xla=False)
        out["xla"] = used_xla
    out["infer_img_s"] = _infer_rate(model, x, steps=max(steps // 4, 1), warmup=warmup)
    if gpu:
        out["peak_memory_bytes"] = int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    del model
    keras.backend.clear_session()
    return out


def _built(spec: dict, eager: bool):
    model = spec["build"]()
    model.run_eagerly = eager
    return model


def _train_rate(model, x, y, *, steps: int, warmup: int, xla: bool) -> float:
    import tensorflow as tf

    model.jit_compile = xla and not model.run_eagerly
    model.train_function = None  # rebuilt with this jit setting
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)  # trace + compile
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * int(x.shape[0]) / (time.perf_counter() - start)


def _infer_rate(model, x, *, steps: int, warmup: int) -> float:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(x).repeat()
    model.predict(data, steps=warmup, verbose=0)
    start = time.perf_counter()
    model.predict(data, steps=steps, verbose=0)
    return steps * int(x.shape[0]) / (time.perf_counter() - start)


# ---------------------------------------------------------------------------- input pipeline
def measure_pipeline(*, data: str, sizes: Sizes, batch: int, batches: int, workdir: Path) -> dict:
    """Images/s of ``rsna.make_dataset`` over a cache of ``sizes.pipeline_images`` images."""
    from medrepro.data import datasets, rsna

    os.environ["MEDREPRO_DATA"] = str(workdir / "data")  # caches and phantoms: scratch only
    ds = datasets.resolve("rsna_ich", data=data, profile="smoke", seed=0)
    start = time.perf_counter()
    cache = rsna.ensure_cache(ds, profile="smoke", image_size=sizes.image,
                              max_images=sizes.pipeline_images, progress=False)
    build_s = time.perf_counter() - start
    split = rsna.load_split(cache, kind="image")
    n_train = int((split["split"] == "train").sum())
    dataset = rsna.make_dataset(cache, split, split="train", batch_size=batch,
                                image_size=sizes.image, shuffle=True, seed=0).repeat()
    it = iter(dataset)
    next(it)  # warm-up: threads, first reads
    start = time.perf_counter()
    images = sum(int(next(it)[0].shape[0]) for _ in range(batches))
    return {"source": ds.source, "cache_images": n_train, "batch": batch,
            "read_img_s": images / (time.perf_counter() - start),
            "cache_build_seconds": build_s, "cpu_count": os.cpu_count()}


# ---------------------------------------------------------------------------- projection
def projections(rates: dict[str, dict]) -> list[dict]:
    """Projected minutes of each notebook's paper run from the measured rates (module text)."""
    from medrepro.core import manifest, profiles

    a = profiles.settings("A", "paper")
    b = profiles.settings("B", "paper")
    e = profiles.settings("E", "paper")
    d = profiles.settings("D", "paper")

    def run_s(name: str, epochs: int, n_train: float, n_val: float) -> float:
        r = rates[name]
        return epochs * (n_train / r["train_img_s"] + n_val / r["infer_img_s"])

    a_fit, a_val = SARTAJ_IMAGES * TRAIN_FRACTION, SARTAJ_IMAGES * VAL_FRACTION
    m_fit, m_val = MASOUD_IMAGES * TRAIN_FRACTION, MASOUD_IMAGES * VAL_FRACTION
    a_s = (SARTAJ_IMAGES / rates["A.resnet50_features"]["infer_img_s"]
           + 2 * run_s("A.lstm_head", a.epochs, a_fit, a_val)  # paper + official split
           + 2 * run_s("A.standard_head", a.epochs, a_fit, a_val))
    c_epochs = int(manifest.reported_frame("C.table1")["epochs"].sum())
    c_s = run_s("C.seq_cnn", c_epochs, m_fit, m_val)
    e_s = run_s("E.xai_cnn", e.epochs, m_fit, m_val)
    b_runs = [f"B.proposed.b{b.batch_main}"] + [
        f"B.{k}.b{b.batch_compare}" for k in (*b.compare_models, *b.patient_models)]
    b_s = sum(run_s(n, RSNA_ASSUMED_EPOCHS, RSNA_TRAIN, RSNA_VAL) for n in b_runs)
    d_epochs = int(sum(d.epochs.values()))
    d_s = run_s("D.cnn3d", d_epochs, MOSMED_VOLUMES * MOSMED_TRAIN_FRACTION,
                MOSMED_VOLUMES * MOSMED_VAL_FRACTION)
    return [
        {"notebook": "03_lstm_cnn_mri", "minutes": (a_s + c_s + e_s) / 60,
         "basis": f"A: ResNet50 features of {SARTAJ_IMAGES} images + 4 heads × "
                  f"{a.epochs} epochs; C: {c_epochs} epochs over the 5 trials; E: "
                  f"{e.epochs} epochs; {MASOUD_IMAGES} Masoud images (upper bounds: early "
                  "stopping shortens them)"},
        {"notebook": "04_lightweight_ct", "minutes": b_s / 60,
         "basis": f"{len(b_runs)} runs × {RSNA_ASSUMED_EPOCHS} epochs of {RSNA_TRAIN:,} "
                  f"training + {RSNA_VAL:,} validation images (main, comparison, patient "
                  "split)"},
        {"notebook": "05_3dcnn_mosmed", "minutes": d_s / 60,
         "basis": f"{d_epochs} epochs over the six scenarios, {MOSMED_VOLUMES} volumes "
                  "70/20/10"},
    ]


# ---------------------------------------------------------------------------- main
def run_check(*, dry_run: bool, steps: int, warmup: int, xla: bool, data: str,
              only: list[str] | None = None) -> dict:
    """Measure everything; return the result dict (see the module text)."""
    import tensorflow as tf
    from medrepro.core import device

    gpus = tf.config.list_physical_devices("GPU")
    sizes = DRY_SIZES if dry_run else PAPER_SIZES
    policy = device.configure_precision(force="float32" if dry_run else None)
    gpu_name = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
                if gpus else None)
    result = {"mode": "cpu-dry-run" if dry_run else "gpu", "device": gpu_name or "CPU",
              "dtype_policy": policy, "xla_requested": xla, "steps": steps, "warmup": warmup,
              "sizes": sizes.__dict__, "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(
                  timespec="seconds"), "platform": platform.platform(),
              "tensorflow": tf.__version__}
    start = time.perf_counter()
    models = []
    for spec in model_specs(sizes):
        if only and spec["study"] not in only:
            continue
        t0 = time.perf_counter()
        row = measure_model(spec, steps=steps, warmup=warmup, xla=xla and not dry_run,
                            gpu=bool(gpus), eager=dry_run)
        row["seconds"] = time.perf_counter() - t0
        print(f"  {row['model']}: train {row.get('train_img_s', float('nan')):.1f} img/s, "
              f"inference {row['infer_img_s']:.1f} img/s"
              + (f", peak {row['peak_memory_bytes'] / 2**30:.2f} GiB"
                 if "peak_memory_bytes" in row else ""), flush=True)
        models.append(row)
    result["models"] = models
    batch = profiles_batch()
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = measure_pipeline(data=data, sizes=sizes, batch=batch, workdir=Path(tmp),
                                    batches=DRY_PIPELINE_BATCHES if dry_run else PIPELINE_BATCHES)
    rates = {m["model"]: m for m in models}
    proposed = rates.get(f"B.proposed.b{batch}")
    if proposed:
        pipeline["vs_proposed_training"] = pipeline["read_img_s"] / proposed["train_img_s"]
    result["pipeline"] = pipeline
    print(f"  input pipeline: {pipeline['read_img_s']:.0f} img/s"
          + (f" ({pipeline['vs_proposed_training']:.2f}× the proposed model's training)"
             if proposed else ""), flush=True)
    if not only:
        result["projected_paper_runs"] = projections(rates)
        for p in result["projected_paper_runs"]:
            print(f"  {p['notebook']}: projected {p['minutes']:.0f} min", flush=True)
    result["wall_seconds"] = time.perf_counter() - start
    if dry_run:
        result["note"] = ("CPU dry run with tiny inputs, eager, no XLA: exercises the code; "
                          "the figures say nothing about a GPU")
    return result


def profiles_batch() -> int:
    """Study B's main batch size (the input pipeline is measured at it)."""
    from medrepro.core import profiles

    return int(profiles.settings("B", "paper").batch_main)


def write_result(out: Path, key: str, result: dict) -> None:
    """Put ``result`` under ``key`` of the JSON file ``out`` (other keys kept), atomically."""
    from medrepro.core.fileio import atomic_path

    existing = {}
    if out.is_file():
        try:
            existing = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SystemExit(f"gpu_check: {out} is not valid JSON ({exc}); move it away "
                             "first") from None
    existing[key] = result
    with atomic_path(out, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(existing, indent=2, default=_json_default) + "\n",
                             encoding="utf-8")


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from medrepro.core import paths

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="tiny inputs, a few steps, on CPU: checks that the code runs")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"timed training steps per model (default {DEFAULT_STEPS}; "
                             f"dry run {DRY_STEPS})")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--no-xla", action="store_true", help="no jit_compile")
    parser.add_argument("--data", default="phantom",
                        help="RSNA source for the pipeline check (phantom | PATH)")
    parser.add_argument("--only", nargs="*", choices=list("ABCDE"),
                        help="only these studies' models (no projection then)")
    parser.add_argument("--out", type=Path, default=paths.reports_root() / "benchmarks.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    if not args.cpu_dry_run and not tf.config.list_physical_devices("GPU"):
        print(NO_GPU_MESSAGE, file=sys.stderr)
        return NO_GPU_EXIT
    if args.cpu_dry_run:
        tf.config.set_visible_devices([], "GPU")
    steps = args.steps or (DRY_STEPS if args.cpu_dry_run else DEFAULT_STEPS)
    warmup = args.warmup or (DRY_WARMUP if args.cpu_dry_run else DEFAULT_WARMUP)
    result = run_check(dry_run=args.cpu_dry_run, steps=steps, warmup=warmup,
                       xla=not args.no_xla, data=args.data, only=args.only)
    key = "gpu_check_dry_run" if args.cpu_dry_run else "gpu_check"
    write_result(args.out, key, result)
    print(f"gpu_check: {result['wall_seconds']:.0f} s; results under {key!r} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
