"""Study D's training: one scenario (:func:`train_scenario`), every scenario of a split protocol on
one model (:func:`run_scenarios`), and a protocol trained and scored with the profile's settings
(:func:`train_variant`), all following one :class:`Recipe`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medrepro.core.planning import PlanContext, RowPlan, Write
from medrepro.core.profiles import DSettings
from medrepro.models.chest_ct import (BN_MOMENTUM, CHECKPOINT_MONITOR, INITIAL_LR, STOP_MONITOR,
                                      cnn3d, compile_cnn3d)
from medrepro.studies.d.data import Splits, scenario_splits
from medrepro.studies.d.scenarios import SCENARIOS, Scenario, nested_plan
from medrepro.studies.d.scoring import evaluate_scenarios

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
class VariantResult:
    """The scenarios trained on one split protocol and their scores per split
    (``scores[key][split] = {"y", "prob", "pred", **binary_scores}``)."""

    splits: Splits
    results: dict[str, ScenarioResult]
    scores: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Recipe:
    """How study D trains: ``epochs`` per scenario key, global ``batch``, early-stopping
    ``patience`` (validation accuracy), ``seed``, the schedule's ``initial_lr``, the BatchNorm
    ``bn_momentum`` and Keras' ``verbose``. One object, handed from :func:`train_variant` down
    to :func:`train_scenario`."""

    epochs: Mapping[str, int]
    batch: int
    patience: int
    seed: int = 42
    initial_lr: float = INITIAL_LR
    verbose: int = 2
    bn_momentum: float = BN_MOMENTUM

    @classmethod
    def of(cls, settings: DSettings, *, seed: int, heldout: bool = False,
           verbose: int = 0) -> Recipe:
        """The recipe of a profile row: the paper variant's ``epochs``, or with ``heldout`` the
        held-out variant's ``heldout_epochs``."""
        return cls(epochs=dict(settings.heldout_epochs if heldout else settings.epochs),
                   batch=settings.batch, patience=settings.patience, seed=seed, verbose=verbose,
                   bn_momentum=settings.bn_momentum)


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
                   val: tuple[np.ndarray, np.ndarray], recipe: Recipe, run_dir: str | Path, *,
                   model=None, initial_weights: list | None = None,
                   nested: dict[str, tuple[int, Path]] | None = None) -> ScenarioResult:
    """Train one scenario for ``recipe.epochs[scenario]`` epochs with
    ``medrepro.training.train.fit``: a fresh :func:`cnn3d`, or ``model`` reset to
    ``initial_weights`` (:func:`reset_model`).

    ``nested``: shorter scenarios of the same kind, ``key -> (epochs, run_dir)``; their runs are
    snapshots of this one (:class:`medrepro.training.callbacks.PrefixSnapshots`, see :func:`nested_plan`).

    ``train`` / ``val``: ``(x, y)`` with ``x`` float32 ``(N, H, W, D)`` in [0, 1] (already
    lung-only for that scenario) and ``y`` 0/1. As in the thesis' code, the best checkpoint
    follows validation loss (:data:`CHECKPOINT_MONITOR`) and early stopping validation accuracy
    (:data:`STOP_MONITOR`, patience ``recipe.patience``); the best-loss weights are restored at
    the end (the model the thesis saved and evaluated).
    """
    from medrepro.training import callbacks
    from medrepro.core import seeds
    from medrepro.data import volumes
    from medrepro.training import train as training

    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    epochs, batch, seed = recipe.epochs[scenario.key], recipe.batch, recipe.seed
    initial_lr, patience = recipe.initial_lr, recipe.patience
    x_train, y_train = train
    if model is None:
        seeds.seed_everything(seed)
        model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1), bn_momentum=recipe.bn_momentum),
                              initial_lr=initial_lr)
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
    history = training.fit_once(model, train_ds, val_ds,
                                training.FitConfig(epochs=epochs, monitor=CHECKPOINT_MONITOR),
                                run_dir=run_dir, identity=config, verbose=recipe.verbose,
                                callbacks=extra)
    return ScenarioResult(scenario=scenario, epochs=epochs, history=history, model=model,
                          weights=model.get_weights(), seconds=time.perf_counter() - start,
                          config=config)


def nested_config(config: dict, key: str, epochs: int) -> dict:
    """The configuration a nested scenario's snapshot is stored with: its longer run's
    ``config`` (data, model, seed, schedule; :attr:`ScenarioResult.config`), its own key and
    epochs."""
    return {**config, "scenario": key, "epochs": int(epochs), "nested_in": config["scenario"]}


def run_scenarios(splits: Splits, recipe: Recipe, run_root: str | Path
                  ) -> dict[str, ScenarioResult]:
    """Train every scenario of :data:`SCENARIOS` listed in ``recipe.epochs`` (scenario → epochs).

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

    seeds.seed_everything(recipe.seed)
    x_train = splits["train"][0]
    model = compile_cnn3d(cnn3d((*x_train.shape[1:], 1), bn_momentum=recipe.bn_momentum),
                          initial_lr=recipe.initial_lr)
    initial = model.get_weights()
    epochs = recipe.epochs
    results = {}

    def train(key, nested=None):
        data = scenario_splits(SCENARIOS[key], splits)
        return train_scenario(key, data["train"], data["val"], recipe, Path(run_root) / key,
                              model=model, initial_weights=initial, nested=nested)

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


def train_variant(settings: DSettings, splits: Splits, runs: Path, *, seed: int,
                  heldout: bool = False, verbose: int = 0) -> VariantResult:
    """Train and score the scenarios of one split protocol with the profile row ``settings``.

    The paper variant (``heldout=False``) runs ``settings.epochs`` in ``runs/<scenario>``; the
    held-out variant ``settings.heldout_epochs`` in ``runs/heldout/<scenario>`` (``runs``: the
    notebook run's training folder).
    """
    recipe = Recipe.of(settings, seed=seed, heldout=heldout, verbose=verbose)
    root = Path(runs) / "heldout" if heldout else Path(runs)
    results = run_scenarios(splits, recipe, root)
    scores = evaluate_scenarios(results, splits, batch=recipe.batch)
    return VariantResult(splits=splits, results=results, scores=scores)


def print_trained(res: VariantResult) -> None:
    """One line per scenario: epochs run, wall time, training and validation accuracy."""
    for key, r in res.results.items():
        nested = f" (the first epochs of {r.nested_in}'s run)" if r.nested_in else ""
        print(f"{key:8s} {len(r.history)} epoch(s) in {r.seconds:.1f} s{nested}; "
              f"training acc {res.scores[key]['train']['accuracy']:.3f}, "
              f"validation acc {res.scores[key]['val']['accuracy']:.3f}")


# ---------------------------------------------------------------------------- the plan
def plan(settings: DSettings, ctx: PlanContext) -> RowPlan:
    """Study D's part of notebook 05's plan: the volume cache (float32 at
    ``settings.volume_shape``), no time projection yet."""
    from medrepro.core import paths

    n = ctx.found["mosmed"].files
    shape = tuple(settings.volume_shape)
    voxels = int(np.prod(shape))
    return RowPlan([Write(f"MosMed volume cache ({n} x {'x'.join(map(str, shape))} float32)",
                          paths.processed_dir("mosmed"), n * voxels * 4)],
                   note="no measured training rate for study D yet")
