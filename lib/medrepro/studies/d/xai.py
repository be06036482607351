"""Study D's 3-D Grad-CAM scored: the pointing game (:mod:`medrepro.analysis.xai_score`) of the best
model's maps on the CT-23 evaluation volumes it classifies correctly, against the phantom's lesion
masks taken through the volumes' preprocessing (``D.xai_score``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from medrepro.models.chest_ct import GRADCAM_LAYER
from medrepro.studies.d.data import Data, scenario_splits
from medrepro.studies.d.training import VariantResult

# D.xai_score / D.fig_xai_score: the pointing game (medrepro.analysis.xai_score) of the best model's 3-D
# Grad-CAM on the CT-23 evaluation volumes it classifies correctly, against the phantom's masks.
N_SCORE_SHOWN = 6  # volumes in D.fig_xai_score
# Volumes per forward or gradient pass of the maps and curves: at 128x128x64 one volume's
# activations take about 1 GB, so all test volumes at once would not fit a T4.
VOLUMES_PER_PASS = 4


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


def split_scans(data: Data, split: str, *, heldout: bool = False):
    """The rows of ``data.scans`` (the paper variant; ``heldout``: ``data.scans_heldout``, the
    70/20/10 variant) behind ``data.splits[split]`` (``data.heldout_splits[split]``), in order:
    those of ``split`` whose cached volume exists (as :func:`medrepro.data.volumes.load_cached`)."""
    from medrepro.data import volumes

    scans, splits = ((data.scans_heldout, data.heldout_splits) if heldout else
                     (data.scans, data.splits))
    rows = scans[scans["split"] == split]
    kept = rows[[volumes.cached_path(data.cache.folder, p).is_file() for p in rows["path"]]]
    if len(kept) != len(splits[split][1]) or (kept["label"].to_numpy() != splits[split][1]).any():
        raise ValueError(f"{data.cache.folder}: {len(kept)} cached {split} volumes listed, "
                         f"{len(splits[split][1])} loaded; the cache changed since loading")
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
                           layer=GRADCAM_LAYER, batch_size=VOLUMES_PER_PASS)
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


# D.xai_eval / D.fig_xai_eval: the best model's 3-D Grad-CAM against baselines, by strata, under
# the sanity checks and by its deletion/insertion curves (medrepro.analysis.xai_eval,
# docs/decisions.md#x13, #x14, #x15).
METHOD = "Grad-CAM (3-D)"
SHUFFLED_RUN = "shuffled_labels"  # the shuffled-label model's run folder
SHUFFLED_SCENARIO = "noaug_5"  # its recipe: all slices, no augmentation


def train_shuffled(settings, splits, runs, *, seed: int):
    """The sanity check's model trained on shuffled labels (docs/decisions.md#x14): the 3-D CNN
    of :func:`medrepro.studies.d.training.train_scenario` (SGD, its schedule, the best
    validation-loss checkpoint) on the training volumes with their labels permuted (seeded),
    all slices, no augmentation, ``settings.shuffled_epochs`` epochs (None: the longest
    scenario's) without early stopping, in ``runs/shuffled_labels``."""
    from pathlib import Path

    from medrepro.studies.d.training import Recipe, train_scenario

    epochs = settings.shuffled_epochs or max(settings.epochs.values())
    x, y = splits["train"]
    shuffled = (x, np.random.default_rng(seed).permutation(y))
    recipe = dataclasses.replace(Recipe.of(settings, seed=seed),
                                 epochs={SHUFFLED_SCENARIO: epochs}, patience=epochs + 1)
    return train_scenario(SHUFFLED_SCENARIO, shuffled, splits["val"], recipe,
                          Path(runs) / SHUFFLED_RUN).model


def evaluate_gradcam(score: XaiScore, res: VariantResult, *, settings, runs, shuffled_model,
                     seed: int):
    """:func:`medrepro.analysis.xai_eval.evaluate` of the 3-D Grad-CAM of scenario
    ``score.key``'s restored model (:class:`medrepro.analysis.xai_eval.XaiEvaluation`): on
    ``score``'s abnormal volumes (any prediction) with their lesion and lung masks when it is
    :data:`SCORED`; else (real data) on a seeded subset of the ``score.split`` volumes without a
    pointing game. Sizes from ``settings`` (``xai_sanity``, ``xai_faith``, ``xai_steps``); the
    class score followed is the sigmoid's (abnormal); confidence: the predicted class's
    probability; lesion size: the share of the lungs; repeatability across the seeds whose
    maps ``runs`` has beside it."""
    from medrepro.analysis import explain, faithfulness, sanity, xai_eval

    model = res.results[score.key].restore()
    if score.status == SCORED:
        volumes, maps, masks, lungs, keys = (score.volumes, {METHOD: score.cams}, score.masks,
                                             score.lungs, score.names)
        size = masks.sum(axis=(1, 2, 3)) / np.maximum(lungs.sum(axis=(1, 2, 3)), 1)
    else:
        x, _ = scenario_splits(res.results[score.key].scenario, res.splits)[score.split]
        pick = xai_eval.subset(len(x), max(settings.xai_sanity, settings.xai_faith), seed=seed)
        volumes, masks, lungs, size = x[pick], None, None, np.zeros(len(pick))
        maps = {METHOD: explain.gradcam(model, volumes[..., None], layer=GRADCAM_LAYER,
                                        batch_size=VOLUMES_PER_PASS)}
        keys = [f"{score.split} volume {i}" for i in pick]
    inputs = volumes[..., None]  # (N, H, W, D, 1)
    p = faithfulness.scorer(model, batch=VOLUMES_PER_PASS)(inputs)[:, 0]  # P("abnormal")
    by_seed = sanity.maps_across_seeds(runs, "D_" + sanity.MAPS_FILE, keys, maps)
    return xai_eval.evaluate(
        model, inputs, maps,
        maps_of=lambda mdl, xs: {METHOD: explain.gradcam(mdl, xs, layer=GRADCAM_LAYER,
                                                         batch_size=VOLUMES_PER_PASS)},
        masks=masks, regions=lungs, confidence=np.maximum(p, 1 - p), lesion_size=size,
        class_index=np.zeros(len(inputs), dtype=int), shuffled_model=shuffled_model,
        maps_by_seed=by_seed, n_sanity=settings.xai_sanity, n_faith=settings.xai_faith,
        steps=settings.xai_steps, seed=seed, n_boot=settings.n_boot, score_batch=VOLUMES_PER_PASS)


def xai_eval_notes(ev, score: XaiScore) -> str:
    """D.xai_eval's notes (:func:`medrepro.analysis.xai_eval.notes`), naming the model and volumes."""
    from medrepro.analysis import xai_eval

    which = (f"every abnormal {score.split} volume with a lesion (any prediction)"
             if score.status == SCORED else
             f"a seeded subset of the {score.split} volumes ({score.status})")
    return xai_eval.notes(ev, what=f"D: 3-D Grad-CAM of the best model ({score.key}) on {which}, "
                          f"{score.label}; class score: the sigmoid's (abnormal)")


def xai_eval_figure(ev, score: XaiScore):
    """D.fig_xai_eval (:func:`medrepro.reporting.xai_plots.plot_xai_evaluation`, one slice of the
    volumes)."""
    from medrepro.reporting import xai_plots

    return xai_plots.plot_xai_evaluation(
        ev, title=f"D: the 3-D Grad-CAM of the best model ({score.key}) evaluated ({score.label})")
