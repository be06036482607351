"""Study D: the 3-D CNN of Fig 4.5 on MosMedData CT-0 vs CT-23 volumes (notebook 05).

The thesis trains one 3-D CNN (:mod:`medrepro.models.chest_ct`) in six scenarios
(:data:`SCENARIOS`: all slices with augmentation for 5/10/15/25 epochs, 5 epochs without
augmentation, "lung-only" slices for 25 epochs) on two split protocols: the thesis' own 160/40
train/validation set-up (the paper variant, evaluated on its validation volumes as the thesis
did) and the prose's 70/20/10 split with a held-out test set (:func:`train_variant`).

Artifacts made from this module's results: ``D.table4_1`` (:func:`training_table`),
``D.table4_2`` (:func:`validation_table`), ``D.table4_3`` (:func:`performance_table`),
``D.heldout`` (:func:`heldout_table`), the headline metrics (:func:`record_metrics`) and
``D.gradcam3d`` (:func:`gradcam_figure`), ``D.xai_score`` / ``D.fig_xai_score`` (the pointing
game of the 3-D Grad-CAM on phantom lesion masks: :func:`score_gradcam` for one model,
:func:`score_scenarios` for every scenario's); the figures of the notebook come from
:mod:`medrepro.reporting.plots`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medrepro.models.chest_ct import (
    CHECKPOINT_MONITOR,
    GRADCAM_LAYER,
    INITIAL_LR,
    STOP_MONITOR,
    cnn3d,
    compile_cnn3d,
)

Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split name -> (x (N, H, W, D), y (N,))

# The headline numbers recorded for X.compare: scenario -> metric name (validation accuracy).
HEADLINE_METRICS = {"aug_25": "validation accuracy (25 epochs, augmentation)",
                    "aug_5": "validation accuracy (5 epochs, augmentation)"}


@dataclass(frozen=True)
class Scenario:
    """One training scenario of study D."""

    key: str
    paper_epochs: int
    augment: bool
    lung_only: bool
    label: str


SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("aug_5", 5, True, False, "all slices, augmentation, 5 epochs"),
    Scenario("aug_10", 10, True, False, "all slices, augmentation, 10 epochs"),
    Scenario("aug_15", 15, True, False, "all slices, augmentation, 15 epochs"),
    Scenario("aug_25", 25, True, False, "all slices, augmentation, 25 epochs"),
    Scenario("noaug_5", 5, False, False, "all slices, no augmentation, 5 epochs"),
    Scenario("lung_25", 25, True, True, "lung-only slices, augmentation, 25 epochs"),
)}


@dataclass
class ScenarioResult:
    """A trained scenario: its history (one row per epoch), its best weights and wall time.

    ``model`` may be shared between scenarios (see :func:`run_scenarios`); :meth:`restore`
    loads this scenario's weights into it and returns it."""

    scenario: Scenario
    epochs: int
    history: Any  # pandas.DataFrame
    model: Any
    weights: list
    seconds: float
    nested_in: str | None = None  # the longer scenario whose first ``epochs`` epochs this is
    config: dict | None = None  # the configuration its run is stored with (train_scenario)

    def last(self, column: str) -> float:
        """The value of ``column`` at the last epoch run (as the study's tables report)."""
        return float(self.history[column].iloc[-1])

    def restore(self):
        """The model holding this scenario's (best-restored) weights."""
        self.model.set_weights(self.weights)
        return self.model


@dataclass
class Data:
    """The listed volumes, both split protocols, the preprocessing cache and the loaded arrays."""

    scans: Any  # pandas.DataFrame: the paper variant's split (run.settings["split"])
    scans_heldout: Any  # pandas.DataFrame: the 70/20/10 held-out-test variant
    cache: Any  # medrepro.data.volumes.CacheSummary
    splits: Splits
    heldout_splits: Splits


@dataclass
class VariantResult:
    """The scenarios trained on one split protocol and their scores per split
    (``scores[key][split] = {"y", "prob", "pred", **binary_scores}``)."""

    splits: Splits
    results: dict[str, ScenarioResult]
    scores: dict[str, dict[str, Any]]


# ---------------------------------------------------------------------------- data
def load_data(run, ds, *, shape: tuple[int, int, int]) -> Data:
    """List the volumes of ``ds`` (capped by the profile), assign both split protocols, build
    (or reuse) the preprocessing cache of ``shape`` ``(H, W, D)`` and load the split arrays."""
    from medrepro.data import volumes
    from medrepro.reporting import report

    listed = volumes.list_scans(ds.root, max_per_class=run.settings["max_per_class"])
    scans = volumes.assign_split(listed, run.settings["split"])  # the paper variant: 160/40
    scans_heldout = volumes.assign_split(listed, "heldout")  # the 70/20/10 held-out variant
    folder = volumes.cache_dir(ds.source, run.profile, shape)  # .../<source>-<profile>-HxWxD
    cache = volumes.build_cache(scans.path, folder=folder, shape=shape)
    report.record_skips(ds.dataset_id, cache.skipped_frame(), source=ds.source,
                        n_files=len(scans))
    splits = volumes.load_splits(scans, folder=cache.folder)
    if splits["train"][0].shape[1:] != tuple(shape):
        raise ValueError(f"{cache.folder}: cached volumes have shape "
                         f"{splits['train'][0].shape[1:]}, expected {tuple(shape)}")
    return Data(scans=scans, scans_heldout=scans_heldout, cache=cache, splits=splits,
                heldout_splits=volumes.load_splits(scans_heldout, folder=cache.folder))


def cache_frames(cache) -> list:
    """What to show of the cache build: its summary row, and the skipped volumes if any."""
    import pandas as pd

    frames = [cache.as_frame()]
    if cache.skipped:
        frames.append(pd.DataFrame(cache.skipped, columns=["file", "reason"]))
    return frames


def split_table(data: Data):
    """Volumes per class and split of both protocols, side by side."""
    import pandas as pd

    def counts(scans):
        return scans.groupby(["class_name", "split"]).size().unstack()

    return pd.concat({"thesis (paper)": counts(data.scans),
                      "heldout": counts(data.scans_heldout)}, axis=1)


def eval_split(splits: Splits) -> str:
    """The split the study evaluates on: ``test`` if there is one, else the thesis set-up's
    validation set (which its code calls the test set)."""
    return "test" if "test" in splits else "val"


def print_splits(splits: Splits) -> None:
    """One line per split: array shape, dtype and abnormal count."""
    for name, (x, y) in splits.items():
        print(f"{name:5s} x {x.shape} {x.dtype}  abnormal {int(y.sum())} / {len(y)}")


def lung_only_splits(splits: Splits) -> Splits:
    """The same splits with :func:`medrepro.data.volumes.lung_only` applied to every volume."""
    from medrepro.data import volumes

    return {name: (volumes.lung_only(x), y) for name, (x, y) in splits.items()}


def scenario_splits(scenario: Scenario, splits: Splits) -> Splits:
    """The splits as ``scenario`` sees them (lung-only slices for the lung-only scenario)."""
    return lung_only_splits(splits) if scenario.lung_only else splits


# ---------------------------------------------------------------------------- training
def bn_momenta(model) -> list[float]:
    """The distinct moving-average momenta of ``model``'s BatchNorm layers (sorted)."""
    return sorted({float(layer.momentum) for layer in model.layers
                   if type(layer).__name__ == "BatchNormalization"})


def data_digest(*splits: tuple[np.ndarray, np.ndarray]) -> str:
    """A short digest of ``(x, y)`` arrays (their bytes, shapes and dtypes)."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for arrays in splits:
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(f"{a.shape}{a.dtype}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def reset_model(model, initial_weights: list) -> None:
    """Put ``model`` back to ``initial_weights`` with a fresh optimizer state (momentum and step
    count zero), as if newly built and compiled with the same seed; keeps its traced functions."""
    model.set_weights(initial_weights)
    for var in model.optimizer.variables:
        var.assign(np.zeros(var.shape, dtype=var.dtype))


def train_scenario(scenario: Scenario | str, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray], *, epochs: int, batch: int,
                   patience: int, run_dir: str | Path, seed: int = 42,
                   initial_lr: float = INITIAL_LR, verbose: int = 2,
                   model=None, initial_weights: list | None = None,
                   nested: dict[str, tuple[int, Path]] | None = None) -> ScenarioResult:
    """Train one scenario with ``medrepro.training.train.fit``: a fresh :func:`cnn3d`, or ``model``
    reset to ``initial_weights`` (:func:`reset_model`).

    ``nested``: shorter scenarios of the same kind, ``key -> (epochs, run_dir)``; their runs are
    snapshots of this one (:class:`medrepro.training.callbacks.PrefixSnapshots`, see :func:`nested_plan`).

    ``train`` / ``val``: ``(x, y)`` with ``x`` float32 ``(N, H, W, D)`` in [0, 1] (already
    lung-only for that scenario) and ``y`` 0/1. As in the thesis' code, the best checkpoint
    follows validation loss (:data:`CHECKPOINT_MONITOR`) and early stopping validation accuracy
    (:data:`STOP_MONITOR`, patience ``patience``); the best-loss weights are restored at the end
    (the model the thesis saved and evaluated).
    """
    from medrepro.training import callbacks
    from medrepro.core import seeds
    from medrepro.data import volumes
    from medrepro.training import train as training

    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    x_train, y_train = train
    if model is None:
        seeds.seed_everything(seed)
        model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1)), initial_lr=initial_lr)
    elif initial_weights is not None:
        reset_model(model, initial_weights)
    train_ds = volumes.make_dataset(x_train, y_train, batch=batch, augment=scenario.augment,
                                    shuffle=True, seed=seed)
    val_ds = volumes.make_dataset(*val, batch=batch)
    start = time.perf_counter()
    # A finished scenario is reused, an interrupted one resumes (train.fit_once); early
    # stopping is the resumable one of medrepro.training.callbacks, so its wait/best survive a kill.
    # The BatchNorm momentum and a digest of the volumes are part of the configuration, so a
    # run of another model set-up or of other (e.g. regenerated phantom) volumes is redone.
    config = {"scenario": scenario.key,
              "train_shape": list(x_train.shape), "val_shape": list(val[0].shape),
              "batch": batch, "seed": seed, "initial_lr": initial_lr, "patience": patience,
              "checkpoint_monitor": CHECKPOINT_MONITOR, "stop_monitor": STOP_MONITOR,
              "bn_momentum": bn_momenta(model), "data": data_digest(train, val)}
    stop = callbacks.EarlyStopping(monitor=STOP_MONITOR, mode="max", patience=patience)
    extra = [stop]
    if nested:
        best = callbacks.BestInMemory(monitor=CHECKPOINT_MONITOR, mode="min")
        extra += [best, callbacks.PrefixSnapshots(
            {key: (k, Path(d), nested_config(config, key, k)) for key, (k, d) in nested.items()},
            best=best, history_path=Path(run_dir) / training.HISTORY_CSV)]
    history = training.fit_once(model, train_ds, val_ds, run_dir=run_dir, config=config,
                                epochs=epochs, monitor=CHECKPOINT_MONITOR, patience=None,
                                restore_best_weights=True, verbose=verbose, callbacks=extra)
    return ScenarioResult(scenario=scenario, epochs=epochs, history=history, model=model,
                          weights=model.get_weights(), seconds=time.perf_counter() - start,
                          config=config)


def nested_config(config: dict, key: str, epochs: int) -> dict:
    """The configuration a nested scenario's snapshot is stored with: its longer run's
    ``config`` (data, model, seed, schedule; :attr:`ScenarioResult.config`), its own key and
    epochs."""
    return {**config, "scenario": key, "epochs": int(epochs), "nested_in": config["scenario"]}


def nested_plan(epochs: dict[str, int]) -> dict[str, list[str]]:
    """The scenarios of ``epochs`` (key -> epochs) to train, each with the shorter scenarios of
    the same kind (augmentation, lung-only) that are its first epochs:
    ``{longest: [shorter, ...]}``, in :data:`SCENARIOS` order (ties: the later one is trained).

    The scenarios that differ only in their number of epochs (``aug_5``, ``aug_10``, ``aug_15``
    and ``aug_25``) start from the same weights, with the same optimizer state, data order and
    per-step learning-rate schedule; nothing in a run depends on how many epochs it will have,
    and early stopping (patience on validation accuracy) that ends the long run at epoch
    ``s < k`` would have ended the ``k``-epoch run there too. So the first ``k`` epochs of the
    longest run are the ``k``-epoch run (:class:`medrepro.training.callbacks.PrefixSnapshots`). The random
    streams of augmentation and dropout continue from run to run in either case: the draws are
    not the ones a separate run would make.
    """
    kinds: dict[tuple[bool, bool], list[str]] = {}
    for key, sc in SCENARIOS.items():
        if key in epochs:
            kinds.setdefault((sc.augment, sc.lung_only), []).append(key)
    plan = {}
    for keys in kinds.values():
        longest = max(reversed(keys), key=lambda k: epochs[k])
        plan[longest] = [k for k in keys if k != longest]
    return {k: plan[k] for k in SCENARIOS if k in plan}


def run_scenarios(splits: Splits, *, epochs: dict[str, int], batch: int, patience: int,
                  run_root: str | Path, seed: int = 42, initial_lr: float = INITIAL_LR,
                  verbose: int = 2) -> dict[str, ScenarioResult]:
    """Train every scenario of :data:`SCENARIOS` listed in ``epochs`` (scenario → epochs).

    ``splits``: ``{"train", "val", ...}`` → ``(x, y)`` with all slices; the lung-only scenario
    gets :func:`medrepro.data.volumes.lung_only` applied to every split. Each run lives in
    ``run_root/<scenario>`` (checkpoint, history, resume state). One model is built (seeded)
    and every scenario starts from its initial weights with a fresh optimizer state: the same
    start as a new model with the same seed, without re-tracing the training step each time.
    Of the scenarios that differ only in their epochs, only the longest is trained; the others
    are its first epochs (:func:`nested_plan`, :class:`medrepro.training.callbacks.PrefixSnapshots`; a
    shorter one whose snapshot is missing is trained on its own). The thesis' four augmented
    all-slice scenarios (5, 10, 15, 25 epochs) then cost 25 epochs instead of 55.
    """
    from medrepro.training import callbacks
    from medrepro.core import seeds

    seeds.seed_everything(seed)
    x_train = splits["train"][0]
    model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1)), initial_lr=initial_lr)
    initial = model.get_weights()
    results = {}

    def train(key, nested=None):
        data = scenario_splits(SCENARIOS[key], splits)
        return train_scenario(key, data["train"], data["val"], epochs=epochs[key], batch=batch,
                              patience=patience, run_dir=Path(run_root) / key, seed=seed,
                              initial_lr=initial_lr, verbose=verbose, model=model,
                              initial_weights=initial, nested=nested)

    for key, shorter in nested_plan(epochs).items():
        results[key] = train(key, {m: (epochs[m], Path(run_root) / m) for m in shorter})
        for m in shorter:
            found = callbacks.read_snapshot(Path(run_root) / m,
                                            nested_config(results[key].config, m, epochs[m]))
            if found is None:  # e.g. the long run was reused from before its snapshots
                results[m] = train(m)
                continue
            history, weights = found
            results[m] = ScenarioResult(scenario=SCENARIOS[m], epochs=epochs[m],
                                        history=history, model=model, weights=weights,
                                        seconds=float(history["epoch_seconds"].sum()),
                                        nested_in=key)
    return {k: results[k] for k in SCENARIOS if k in results}


def runs_root(run, ds) -> Path:
    """The folder of this notebook run's training runs (one subfolder per scenario)."""
    from medrepro.core import paths

    return paths.runs_dir(run.notebook, profile=run.profile, source=ds.source, seed=run.seed)


def train_variant(run, ds, splits: Splits, *, heldout: bool = False,
                  verbose: int = 0) -> VariantResult:
    """Train and score the scenarios of one split protocol with the profile's settings.

    The paper variant (``heldout=False``) runs ``run.settings["epochs"]`` in
    ``runs_root/<scenario>``; the held-out variant ``run.settings["heldout_epochs"]`` in
    ``runs_root/heldout/<scenario>``.
    """
    s = run.settings
    root = runs_root(run, ds) / "heldout" if heldout else runs_root(run, ds)
    results = run_scenarios(splits, epochs=s["heldout_epochs" if heldout else "epochs"],
                            batch=s["batch"], patience=s["patience"], run_root=root,
                            seed=run.seed, verbose=verbose)
    scores = evaluate_scenarios(results, splits, batch=s["batch"])
    return VariantResult(splits=splits, results=results, scores=scores)


def print_trained(res: VariantResult) -> None:
    """One line per scenario: epochs run, wall time, training and validation accuracy."""
    for key, r in res.results.items():
        nested = f" (the first epochs of {r.nested_in}'s run)" if r.nested_in else ""
        print(f"{key:8s} {len(r.history)} epoch(s) in {r.seconds:.1f} s{nested}; "
              f"training acc {res.scores[key]['train']['accuracy']:.3f}, "
              f"validation acc {res.scores[key]['val']['accuracy']:.3f}")


# ---------------------------------------------------------------------------- evaluation
def predict_labels(model, x: np.ndarray, *, batch: int = 4,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of ``model`` on volumes ``x`` ``(N, H, W, D)``: float, 0/1 int."""
    from medrepro.data import pipeline
    from medrepro.training import train

    ds = pipeline.from_arrays(x[..., None], batch_size=batch, cache=False)
    prob = train.predict_proba(model, ds).reshape(-1)
    return prob, (prob >= threshold).astype(np.int64)


def binary_scores(y_true, prob, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class = abnormal, from
    :func:`medrepro.analysis.evaluate.per_class_table`), binary cross-entropy and MSE of probabilities
    ``prob`` against 0/1 ``y_true``; rates in [0, 1], 0 where undefined."""
    from medrepro.analysis import evaluate
    from medrepro.data import volumes

    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    pred = (p >= threshold).astype(np.int64)
    abnormal = evaluate.per_class_table(y, pred, labels=volumes.CLASS_NAMES).iloc[1]
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {"accuracy": float(np.mean(pred == y)), "precision": float(abnormal["precision"]),
            "recall": float(abnormal["recall"]), "f1": float(abnormal["f1"]),
            "loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "mse": float(np.mean((p - y) ** 2))}


def evaluate_scenarios(results: dict[str, ScenarioResult], splits: Splits, *,
                       batch: int = 4) -> dict[str, dict[str, Any]]:
    """Per scenario and split: probabilities, 0/1 predictions and :func:`binary_scores`
    of the trained (best-restored) model. ``out[key][split] = {"y", "prob", "pred", **scores}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, res in results.items():
        data = scenario_splits(res.scenario, splits)
        # One predict call over all splits: fewer traced shapes, less per-call overhead.
        x_all = np.concatenate([x for x, _ in data.values()])
        prob_all, _ = predict_labels(res.restore(), x_all, batch=batch)
        out[key] = {}
        start = 0
        for name, (x, y) in data.items():
            prob = prob_all[start:start + len(x)]
            start += len(x)
            out[key][name] = {"y": y, "prob": prob, "pred": (prob >= 0.5).astype(np.int64),
                              **binary_scores(y, prob)}
    return out


def best_scenario(scores: dict[str, dict[str, Any]]) -> str:
    """The scenario with the highest validation accuracy (ties: the first in :data:`SCENARIOS`)."""
    return max(scores, key=lambda k: (scores[k]["val"]["accuracy"], -list(SCENARIOS).index(k)))


def record_metrics(run, ds, scores: dict[str, dict[str, Any]]) -> None:
    """Record the headline validation accuracies (:data:`HEADLINE_METRICS`) with 95% Wilson
    intervals (40 volumes: :func:`medrepro.analysis.stats.accuracy_ci`) for ``D.table4_3``
    (:func:`medrepro.reporting.report.record_metric`) and print them."""
    from medrepro.analysis import stats
    from medrepro.reporting import report

    for key, metric in HEADLINE_METRICS.items():
        s = scores[key]["val"]
        ci = stats.accuracy_ci(s["y"], s["pred"])
        report.record_metric("D", metric, s["accuracy"], source=ds.source, artifact="D.table4_3",
                             ci=(ci["lo"], ci["hi"]), n=len(s["y"]),
                             notes=f"profile {run.profile}, {run.settings['epochs'][key]} epoch(s)")
        print(f"{metric}: {s['accuracy']:.3f} (95% Wilson CI {ci['lo']:.3f}-{ci['hi']:.3f}, "
              f"n={len(s['y'])})")


# ---------------------------------------------------------------------------- tables
def _reported(artifact_id: str):
    from medrepro.core import manifest

    return manifest.reported_frame(artifact_id).set_index("epochs")


def _reported_row(rep, res: ScenarioResult):
    """The reported row of ``res``'s scenario (the four augmentation scenarios), else None."""
    return rep.loc[res.scenario.paper_epochs] if res.scenario.key.startswith("aug_") else None


def _get(row, column: str) -> float | None:
    if row is None:
        return None
    value = row[column]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _last_epoch_table(results: dict[str, ScenarioResult], artifact_id: str, metrics):
    """One row per scenario: ``metrics`` (``(column, value of a ScenarioResult)`` pairs), each
    beside its ``reported_<column>`` from ``artifact_id`` (the augmentation scenarios only)."""
    import pandas as pd

    rep = _reported(artifact_id)
    rows = []
    for res in results.values():
        r = _reported_row(rep, res)
        row = {"scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
               "epochs_run": len(res.history)}
        for column, value in metrics:
            row[column] = value(res)
            row[f"reported_{column}"] = _get(r, column)
        rows.append(row)
    return pd.DataFrame(rows)


def training_table(results: dict[str, ScenarioResult]):
    """D.table4_1: last-epoch training accuracy, s/epoch, loss, MSE per scenario, beside the
    reported values (the four augmentation scenarios; the others were not tabulated)."""
    return _last_epoch_table(results, "D.table4_1", [
        ("train_acc", lambda res: res.last("accuracy")),
        ("s_per_epoch", lambda res: float(res.history["epoch_seconds"].mean())),
        ("train_loss", lambda res: res.last("loss")),
        ("train_mse", lambda res: res.last("mse"))])


def validation_table(results: dict[str, ScenarioResult]):
    """D.table4_2: last-epoch validation accuracy, loss, MSE per scenario, beside the reported."""
    return _last_epoch_table(results, "D.table4_2", [
        ("val_acc", lambda res: res.last("val_accuracy")),
        ("val_loss", lambda res: res.last("val_loss")),
        ("val_mse", lambda res: res.last("val_mse"))])


def performance_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                      split: str = "val", n_boot: int = 1000, seed: int = 0):
    """D.table4_3: accuracy, precision, recall, F1 (%) on ``split`` of the best-restored model
    per scenario (positive class: abnormal), each with a 95% CI (``*_lo``, ``*_hi``: Wilson's
    for accuracy, precision and recall on these 40 volumes, bootstrap for F1), beside the
    reported values. The thesis computed its precision/recall/F1 from
    the confusion matrix of its saved (best validation loss) model on the 40 volumes its code
    calls the test set; accuracy here comes from the same matrix."""
    import pandas as pd

    from medrepro.analysis import evaluate

    rep = _reported("D.table4_3")
    rows = []
    for key, res in results.items():
        r = _reported_row(rep, res)
        s = scores[key][split]
        ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed,
                                proportions="wilson")
        row = {"scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
               "epochs_run": len(res.history), "n_eval": len(s["y"])}
        for ours, theirs in (("accuracy", "val_acc"), ("precision", "precision"),
                             ("recall", "recall"), ("f1", "f1")):
            col = "val_acc" if ours == "accuracy" else ours
            row.update({col: 100 * s[ours], f"{col}_lo": 100 * ci[f"{ours}_lo"],
                        f"{col}_hi": 100 * ci[f"{ours}_hi"],
                        f"reported_{col}": _get(r, theirs)})
        rows.append(row)
    return pd.DataFrame(rows)


def heldout_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                  n_boot: int = 1000, seed: int = 0):
    """D.heldout: the 70/20/10 variant's scenarios on their validation and held-out test
    volumes: accuracy, precision, recall, F1 (%) with 95% CIs (Wilson's for the proportions,
    bootstrap for F1: 20 and 10 volumes)."""
    import pandas as pd

    from medrepro.analysis import evaluate

    rows = []
    for key, res in results.items():
        for split in ("val", "test"):
            s = scores[key][split]
            ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed,
                                    proportions="wilson")
            rows.append({"scenario": res.scenario.label, "epochs_run": len(res.history),
                         "split": split, "n": len(s["y"]),
                         **{k: 100 * v for k, v in ci.items()}})
    return pd.DataFrame(rows)


def calibration(variant, *, key: str = "aug_25", n_boot: int = 1000, seed: int = 0):
    """D.calibration: scenario ``key``'s ECE, Brier and NLL on the 70/20/10 variant's held-out
    test volumes before and after temperature scaling fitted on its validation volumes (the
    thesis' own set-up has no test split). A handful of volumes: read the CIs."""
    from medrepro.analysis import calibration as cal

    val, test = (variant.scores[key][s] for s in ("val", "test"))
    return cal.calibrate(val["y"], val["prob"], test["y"], test["prob"],
                         model=f"{variant.results[key].scenario.label} (70/20/10 variant)",
                         n_boot=n_boot, seed=seed,
                         test_note=f"{len(test['y'])} held-out test volumes")


def reliability_figure(cal):
    """D.fig_reliability: the held-out test volumes' reliability diagram."""
    from medrepro.reporting import plots

    return plots.plot_reliability(cal.frames, title="D: reliability on the held-out test "
                                                     "volumes")


# ---------------------------------------------------------------------------- figures
def gradcam_figure(res: VariantResult, key: str, *, split: str, n: int = 8):
    """D.gradcam3d: 3-D Grad-CAM (at :data:`GRADCAM_LAYER`) of scenario ``key``'s model on the
    first volume of ``split``, as the scenario sees it, overlaid on ``n`` slices.

    The scenarios share one model, which after :func:`evaluate_scenarios` holds the weights of
    the last scenario evaluated: scenario ``key``'s own weights are restored first."""
    from medrepro.analysis import explain
    from medrepro.reporting import plots
    from medrepro.data import volumes

    x, y = scenario_splits(res.results[key].scenario, res.splits)[split]
    cam = explain.gradcam(res.results[key].restore(), x[0][..., None], layer=GRADCAM_LAYER)
    if cam.shape != x[0].shape or cam.min() < 0.0 or cam.max() > 1.0:
        raise ValueError(f"gradcam_figure: expected a map of shape {x[0].shape} in [0, 1], "
                         f"got shape {cam.shape} in [{cam.min()}, {cam.max()}]")
    return plots.plot_gradcam_slices(x[0], cam, n=n,
                                     title=f"3-D Grad-CAM, best model ({key}), test volume of "
                                           f"class {volumes.CLASS_NAMES[int(y[0])]} ({split} set)")


# ---------------------------------------------------------------------------- Grad-CAM scored
# D.xai_score / D.fig_xai_score: the pointing game (medrepro.analysis.xai_score) of the best model's 3-D
# Grad-CAM on the CT-23 evaluation volumes it classifies correctly, against the phantom's masks.
N_SCORE_SHOWN = 6  # volumes in D.fig_xai_score
SCORED = "scored"


@dataclass(frozen=True)
class XaiScore:
    """The pointing game of scenario ``key``'s 3-D Grad-CAM on the abnormal ``split`` volumes.
    ``status``: :data:`SCORED` or why not; ``volumes`` ``(N, H, W, D)`` as the scenario sees
    them, ``masks`` / ``lungs`` bool of the same shape (preprocessed like the volumes), ``cams``,
    ``game`` (all N), ``correct`` (N,) bool (classified abnormal), ``names``; ``n_candidates``:
    correctly classified abnormal volumes, ``n_empty``: abnormal volumes whose lesion vanished
    in the resize (left out)."""

    label: str
    status: str
    key: str
    split: str
    lung_only: bool = False
    n_candidates: int = 0
    n_empty: int = 0
    volumes: np.ndarray | None = None
    masks: np.ndarray | None = None
    lungs: np.ndarray | None = None
    cams: np.ndarray | None = None
    game: Any = None
    correct: np.ndarray | None = None
    names: tuple[str, ...] = ()
    n_boot: int = 1000
    seed: int = 0


def split_scans(data: Data, split: str):
    """The rows of ``data.scans`` (the paper variant) behind ``data.splits[split]``, in order:
    those of ``split`` whose cached volume exists (as :func:`medrepro.data.volumes.load_cached`)."""
    from medrepro.data import volumes

    rows = data.scans[data.scans["split"] == split]
    kept = rows[[volumes.cached_path(data.cache.folder, p).is_file() for p in rows["path"]]]
    if len(kept) != len(data.splits[split][1]) or \
            (kept["label"].to_numpy() != data.splits[split][1]).any():
        raise ValueError(f"{data.cache.folder}: {len(kept)} cached {split} volumes listed, "
                         f"{len(data.splits[split][1])} loaded; the cache changed since loading")
    return kept


def preprocess_mask(mask: np.ndarray, *, shape: tuple[int, int, int],
                    lung_only: bool) -> np.ndarray:
    """A mask in a volume's stored voxel order ``(H, W, D)`` taken through the study's
    preprocessing (:func:`medrepro.data.volumes.resize_volume`: rotate 90°, linear zoom to ``shape``;
    then the lung-only slice rule if ``lung_only``); bool ``shape``, a voxel in where at least
    half of it was."""
    from medrepro.data import volumes

    out = volumes.resize_volume(np.asarray(mask, dtype=np.float32), shape) >= 0.5
    return volumes.lung_only(out) if lung_only else out


def score_gradcam(res: VariantResult, data: Data, ds, key: str, *, split: str, n_boot: int,
                  seed: int) -> XaiScore:
    """3-D Grad-CAM (at :data:`GRADCAM_LAYER`) of scenario ``key``'s restored model on the
    abnormal ``split`` volumes it classifies correctly, scored by the pointing game against the
    phantom's lesion masks preprocessed exactly like the volumes (:func:`preprocess_mask`).
    ``res`` must be the paper variant trained on ``data.splits``. Real data (no masks): a
    "not scored" :class:`XaiScore`."""
    from medrepro.analysis import explain, xai_score
    from medrepro.data import phantoms

    scenario = res.results[key].scenario
    base = {"label": ds.label, "key": key, "split": split, "lung_only": scenario.lung_only}
    if not phantoms.has_lesion_masks(ds.root):
        return XaiScore(status=f"not scored: {ds.label} has no lesion masks", **base)
    x, y = scenario_splits(scenario, res.splits)[split]
    pred = res.scores[key][split]["pred"]
    rows = split_scans(data, split)
    chosen = np.flatnonzero(y == 1)  # every abnormal volume; the table's first row: correct ones
    store = phantoms.lesion_masks(ds.root)
    drawn = [store[phantoms.mask_key(ds.root, rows["path"].iloc[i])] for i in chosen]
    prep = {"shape": x.shape[1:], "lung_only": scenario.lung_only}
    masks = np.stack([preprocess_mask(d["lesion"], **prep) for d in drawn]) if drawn else \
        np.zeros((0, *x.shape[1:]), dtype=bool)
    keep = masks.any(axis=(1, 2, 3))  # (N,); a lesion lost in the resize cannot be hit
    counts = {"n_candidates": int((pred[chosen] == 1).sum()), "n_empty": int((~keep).sum())}
    if not keep.any():
        return XaiScore(status="no abnormal volume with a lesion to score", **base, **counts)
    chosen, masks = chosen[keep], masks[keep]
    lungs = np.stack([preprocess_mask(d["region"], **prep) for d, k in zip(drawn, keep) if k])
    cams = explain.gradcam(res.results[key].restore(), x[chosen][..., None],
                           layer=GRADCAM_LAYER)
    return XaiScore(status=SCORED, **base, **counts, volumes=x[chosen], masks=masks, lungs=lungs,
                    cams=cams, game=xai_score.pointing_game(cams, masks, regions=lungs),
                    correct=pred[chosen] == 1, names=tuple(rows["name"].iloc[chosen]),
                    n_boot=n_boot, seed=seed)


def score_scenarios(res: VariantResult, data: Data, ds, *, split: str, n_boot: int,
                    seed: int) -> dict[str, XaiScore]:
    """:func:`score_gradcam` for every scenario's restored model, in the scenarios' order: does
    the pointing game depend on which model is explained?"""
    return {key: score_gradcam(res, data, ds, key, split=split, n_boot=n_boot, seed=seed)
            for key in res.results}


def xai_score_table(scores: XaiScore | dict[str, XaiScore], *, best: str | None = None):
    """D.xai_score: the hit rate with its 95% Wilson interval beside the chance rate of a random
    voxel in the volume (``chance_volume``) and in the lungs (``chance_lungs``). The model of
    scenario ``best`` first (one :class:`XaiScore`: that one): its correctly classified abnormal
    volumes, then every abnormal volume (any prediction); then, from a dict of every scenario's
    score (:func:`score_scenarios`), each other scenario's model on its correctly classified
    abnormal volumes (``model``: "best" or "other scenario")."""
    import pandas as pd

    from medrepro.analysis import xai_score

    if isinstance(scores, XaiScore):
        scores, best = {scores.key: scores}, scores.key
    elif best not in scores:
        raise ValueError(f"best scenario {best!r} not among the scored ones {sorted(scores)}")
    rows = []
    plan = [(best, "correctly classified CT-23"), (best, "every CT-23 (any prediction)")] + \
        [(key, "correctly classified CT-23") for key in scores if key != best]
    for key, volumes_scored in plan:
        score = scores[key]
        row = {"method": "Grad-CAM (3-D)", "model": "best" if key == best else "other scenario",
               "volumes": volumes_scored, "status": score.status, "data": score.label,
               "scenario": score.key, "split": score.split,
               "n_correct_abnormal": score.n_candidates, "n_empty_mask": score.n_empty,
               "dilation_vox": xai_score.DILATION_PX}
        if score.game is not None:
            game = score.game.take(score.correct) if volumes_scored.startswith("correctly") \
                else score.game
            row.update(xai_score.summary(game))
            row["chance_volume"] = row.pop("chance_image")
            row["chance_lungs"] = row.pop("chance_region")
            if not len(game.hits):
                row["status"] = "no correctly classified abnormal volume"
        rows.append(row)
    first = ["method", "model", "scenario", "volumes", "status", "n_scored", "hits", "hit_rate",
             "hit_rate_lo", "hit_rate_hi", "chance_volume", "chance_lungs"]
    table = pd.DataFrame(rows)
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def xai_score_notes(score: XaiScore) -> str:
    from medrepro.analysis import xai_score

    if score.status != SCORED:
        return f"{score.status}."
    lung = "; lung-only slices, the masks' too" if score.lung_only else ""
    return (f"Pointing game of the best model's ({score.key}) 3-D Grad-CAM on the correctly "
            f"classified CT-23 {score.split} volumes (first row; second row: every CT-23 {score.split} "
            f"volume whatever the prediction; further rows, if any: each other scenario's model "
            f"on the volumes it classifies correctly) ({score.label}): a hit when the map's maximum "
            f"lies in the lesion mask (GGO + consolidation) dilated by {xai_score.DILATION_PX} "
            "voxels, masks taken through the volumes' preprocessing (rotate 90°, resize"
            f"{lung}); hit_rate_lo/hi: 95% Wilson interval; chance_volume / chance_lungs: the rate "
            "of a random voxel in the volume / in the lungs; "
            f"{score.n_empty} volume(s) whose lesion vanished in the resize left out.")


def xai_score_figure(score: XaiScore):
    """D.fig_xai_score: up to :data:`N_SCORE_SHOWN` scored volumes (hits and misses), each the
    slice through its Grad-CAM maximum, with the map, the lesion outline and the maximum."""
    from medrepro.reporting import plots
    from medrepro.analysis import xai_score

    if score.status != SCORED:
        return plots.plot_message(f"D: 3-D Grad-CAM {score.status}", title="D: pointing game")
    hits = score.game.hits
    half = N_SCORE_SHOWN // 2
    # correctly classified volumes first, then the others; hits and misses half each if can be
    rank = np.argsort(~score.correct, kind="stable")
    order = [int(i) for i in rank if hits[i]][:half] + [int(i) for i in rank if not hits[i]][:half]
    order += [int(i) for i in rank if i not in order][:N_SCORE_SHOWN - len(order)]
    peaks = [score.game.peaks[i] for i in order]
    ks = [p[2] if p is not None else score.volumes.shape[3] // 2 for p in peaks]
    grown = [xai_score.dilate(score.masks[i]) for i in order]  # the 3-D tolerance, sliced below
    return plots.plot_pointing_game(
        _slices(score.volumes[order], ks), {"Grad-CAM": _slices(score.cams[order], ks)},
        _slices(score.masks[order], ks),
        {"Grad-CAM": [p[:2] if p is not None else None for p in peaks]},
        {"Grad-CAM": hits[order]},
        titles=[f"{score.names[i]} ({'correct' if score.correct[i] else 'called normal'}), "
                f"slice {k}" for i, k in zip(order, ks)],
        tolerances=_slices(grown, ks),
        suptitle=f"D: pointing game of the 3-D Grad-CAM ({score.key}), CT-23 {score.split} "
                 f"volumes ({score.label}); slice through the maximum")


def _slices(vols, ks) -> np.ndarray:
    """``(N, H, W)``: slice ``ks[i]`` (last axis) of each volume ``vols[i]`` ``(H, W, D)``."""
    return np.stack([v[:, :, k] for v, k in zip(vols, ks)])
