"""Study C's recipe chosen on validation splits: augmentation, batch size and framing.

    .venv/bin/python benchmarks/tune_c.py --out DIR [--candidates c16 geometry16 ...]
        [--seeds 42 1 2] [--trial 5] [--epochs 15] [--size 64] [--root FOLDER --dataset ID]

Every candidate recipe trains study C's network (``models.brain_mri.seq_cnn``, softmax outputs,
MSE, early stopping on the validation loss with the best weights kept) with the optimiser and
rate of one trial of C's Table 1 (``--trial``, default 5, the final model) on the fit part of
``medrepro.data.tuning.view`` for each seed, and is scored on that seed's validation part. A
seed draws its own fit/validation split of the training images, as the study does. The
images come only from the view: this script cannot reach the test split of the dataset it
tunes (the Testing folder is never listed; ``tests/test_tuning.py`` holds it to that).

``DIR/results.jsonl`` gets one line per (candidate, seed), written as each finishes, so an
interrupted run resumes where it stopped; ``DIR/weights/`` keeps each trained model.
When every run is there, ``DIR/choice.json`` names the candidate with the highest mean
validation accuracy among those that augment (:data:`RULE`; the source applies augmentation,
so "none" is a reference only), with the ranking. A test number, if
wanted, comes afterwards from ``benchmarks/report_tuned_test.py DIR``, which refuses to run
before ``choice.json`` exists and changes nothing in it.

Default data: the real Sartaj set in ``../shared/data`` (C's stand-in for the Masoud set);
exit status 2 without it. ``--root`` and ``--dataset brain_tumor_masoud`` tune on a Masoud
copy's Training folder. 2.5-3.5 min a run on 2 CPU cores at 64 px and 15 epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).absolute().parent
sys.path.insert(0, str(HERE.parent / "lib"))

INTENSITY_KEYS = ("contrast", "gamma")
# name -> (augmentation, batch, framing); "c" is C_AUGMENT_INTENSITY (geometry, contrast and
# gamma), "geometry" without its intensity part, "none" no augmentation.
CANDIDATES = {f"{aug}{batch}{'' if framing == 'head' else '_stretch'}": (aug, batch, framing)
              for aug in ("c", "geometry", "none") for batch in (16, 32)
              for framing in ("head", "stretch")}
DEFAULT_CANDIDATES = ("c16", "geometry16", "none16", "c32", "geometry32")
# The source applies augmentation ("Eğitim ve doğrulama için veri artırma (data augmentation)
# teknikleri uygulanmıştır", papers/002_*.txt line 7): a recipe without it is measured as a
# reference, never chosen.
REFERENCE_ONLY = ("none",)
RULE = ("the highest mean validation accuracy over the seeds, among the candidates that augment "
        "(the source does); a tie goes to the candidate listed first")
RESULTS, CHOICE, WEIGHTS = "results.jsonl", "choice.json", "weights"


def augment_options(name: str) -> dict:
    """The augmenter options of ``"c"``, ``"geometry"`` or ``"none"``."""
    from medrepro.data import brain_mri

    if name == "none":
        return {}
    options = dict(brain_mri.C_AUGMENT_INTENSITY)
    if name == "geometry":
        options = {k: v for k, v in options.items() if k not in INTENSITY_KEYS}
    return options


def trial_settings(trial: int) -> tuple[str, float]:
    """``(optimizer, learning rate)`` of trial ``trial`` of C's Table 1."""
    from medrepro.core import manifest

    row = next(r for r in manifest.get("C.table1").reported if r["trial"] == trial)
    return row["optimizer"], row["lr"]


def run_one(view, candidate: str, *, trial: int, epochs: int, size: int, patience: int,
            weights_dir: Path) -> dict:
    """Train one candidate on one view; its validation scores and where its weights are."""
    from medrepro.core import seeds
    from medrepro.data import brain_mri, tuning
    from medrepro.models import brain_mri as mm
    from medrepro.studies import c
    from medrepro.training import train

    aug, batch, framing = CANDIDATES[candidate]
    options = augment_options(aug)
    fit_ds, val_ds = tuning.pipelines(view, image_size=size, batch_size=batch, augment=options,
                                      framing=framing)
    optimizer, lr = trial_settings(trial)
    seeds.seed_everything(view.seed)
    model = mm.seq_cnn((size, size, 3))
    model.compile(optimizer=train.make_optimizer(optimizer, lr,
                                                 **c.OPTIMIZER_OPTIONS.get(optimizer, {})),
                  loss="mse", metrics=["accuracy"])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = train.FitConfig(epochs=epochs, patience=patience, checkpoint="memory",
                                 backup=False, seed=view.seed)
        history = train.fit(model, fit_ds, val_ds, recipe, run_dir=tmp, verbose=0,
                            progress=False)
    pred = train.predict_classes(model, val_ds)
    y = view.val["label"].to_numpy()
    weights = weights_dir / f"{candidate}_seed{view.seed}.weights.h5"
    weights.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights)
    return {"candidate": candidate, "seed": view.seed, "dataset": view.dataset_id,
            "augment": aug, "options": options,
            "batch": batch, "framing": framing, "trial": trial, "optimizer": optimizer,
            "lr": lr, "epochs": epochs, "size": size, "epochs_run": len(history),
            "train_seconds": round(time.perf_counter() - start, 1),
            "n_fit": len(view.fit), "n_val": len(y),
            "val_accuracy": round(float((pred == y).mean()), 4),
            "val_recall": {name: round(float((pred[y == k] == k).mean()), 3)
                           for k, name in enumerate(brain_mri.CLASS_NAMES) if (y == k).any()},
            "weights": weights.name}


def read_results(out: Path) -> list[dict]:
    path = out / RESULTS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ranking(results: list[dict], order=()):
    """Mean, min and max validation accuracy per candidate, best first (``pandas.DataFrame``);
    a tie goes to the candidate listed first in ``order`` (the incumbent first)."""
    import pandas as pd

    frame = pd.DataFrame(results)
    table = frame.groupby("candidate")["val_accuracy"].agg(["mean", "min", "max", "count"])
    rank = {c: i for i, c in enumerate(order)}
    table = table.assign(_order=table.index.map(lambda c: rank.get(c, len(rank))))
    table = table.sort_values(["mean", "_order"], ascending=[False, True]).drop(columns="_order")
    per_seed = {name: ", ".join(f"{s}: {a:.3f}" for s, a in zip(g["seed"], g["val_accuracy"]))
                for name, g in frame.groupby("candidate")}
    return table.assign(per_seed=table.index.map(per_seed))


def write_choice(out: Path, results: list[dict], *, dataset: str, candidates, seeds_) -> dict:
    from medrepro.core.fileio import write_json

    table = ranking(results, candidates)
    allowed = [c for c in table.index if CANDIDATES[c][0] not in REFERENCE_ONLY]
    choice = {"chosen": str(allowed[0]), "rule": RULE,
              "decided_on": f"validation parts of {dataset}'s training images "
                            f"(medrepro.data.tuning.view, official protocol), seeds {list(seeds_)}",
              "candidates": {c: CANDIDATES[c] for c in candidates},
              "ranking": [{"candidate": str(k), **{m: float(v[m]) for m in ("mean", "min", "max")},
                           "per_seed": v["per_seed"],
                           "reference_only": CANDIDATES[k][0] in REFERENCE_ONLY}
                          for k, v in table.iterrows()],
              "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(out / CHOICE, choice)
    return choice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES),
                        default=list(DEFAULT_CANDIDATES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--trial", type=int, choices=range(1, 6), default=5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--root", type=Path, help="dataset folder (default: ../shared/data's Sartaj)")
    parser.add_argument("--dataset", default="brain_tumor_sartaj")
    args = parser.parse_args(argv)
    from medrepro.core import paths
    from medrepro.data import tuning

    root = args.root
    if root is None:
        shared = paths.shared_data_dir()
        root = shared / args.dataset if shared is not None else None
    if root is None or not (root / "Training").is_dir():
        print(f"tune_c: needs a {args.dataset} folder with a Training split (--root, or "
              "../shared/data)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    done = {(r["candidate"], r["seed"]) for r in read_results(args.out)}
    views = {}
    for seed in args.seeds:
        for cand in args.candidates:
            if (cand, seed) in done:
                continue
            if seed not in views:
                views[seed] = tuning.view(root, args.dataset, protocol="official", seed=seed)
                print(views[seed].describe(), flush=True)
            res = run_one(views[seed], cand, trial=args.trial, epochs=args.epochs, size=args.size,
                          patience=args.patience, weights_dir=args.out / WEIGHTS)
            with open(args.out / RESULTS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(res) + "\n")
            print(f"{cand} seed {seed}: validation {res['val_accuracy']:.3f} "
                  f"(recall {res['val_recall']}), {res['epochs_run']} epochs in "
                  f"{res['train_seconds']:.0f} s", flush=True)
    results = [r for r in read_results(args.out)
               if r["candidate"] in args.candidates and r["seed"] in args.seeds]
    choice = write_choice(args.out, results, dataset=args.dataset, candidates=args.candidates,
                          seeds_=args.seeds)
    print(ranking(results, args.candidates).round(4).to_string())
    print(f"chosen on validation ({RULE}): {choice['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
