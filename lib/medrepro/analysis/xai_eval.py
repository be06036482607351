"""Explanation maps evaluated as the literature does, in one pass (:func:`evaluate`).
The thresholds are ours: docs/decisions.md#x13.

On the items whose lesion is known (phantom masks), for every method and every baseline
(:data:`medrepro.analysis.xai_score.BASELINES`, scored by the same code):

- the **pointing game** (:mod:`medrepro.analysis.xai_score`), each method's hit rate beside the
  chance rate and its paired difference from each baseline, then **stratified** by lesion size and
  by the model's confidence (tertiles of the scored items);
- **faithfulness**: deletion and insertion curves (:mod:`medrepro.analysis.faithfulness`) on a
  subset, against the random order;
- **sanity checks** (:mod:`medrepro.analysis.sanity`, Adebayo et al. 2018) on a subset: cascading
  weight randomisation from the output down and a model trained on shuffled labels, the rank
  correlation and SSIM between the original and randomised maps; a method whose maps survive is
  flagged;
- **repeatability** across seeds, when maps of models trained with other seeds are given.

:func:`evaluation_table` lays every number out as one long table (most telling rows first),
each with its 95% CI (a hit rate's Wilson interval, else a bootstrap one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medrepro.analysis import faithfulness, sanity, xai_score

TABLE_COLUMNS = ("check", "condition", "method", "role", "metric", "value", "lo", "hi", "n",
                 "diff", "diff_lo", "diff_hi", "verdict")
POINTING = "pointing game"
METHOD, BASELINE = "method", "baseline"


@dataclass
class XaiEvaluation:
    """What :func:`evaluate` measured. ``games``: method or baseline -> pointing game over the
    scored items; ``pointing`` / ``strata`` / ``sanity`` / ``faith`` / ``repeat``: table rows;
    ``curves``: method -> deletion/insertion curves ``(n_faith, steps + 1)``; ``example``:
    one sanity item's input and maps, ``{"input", "maps": {condition: {method: map}}}``;
    ``sizes``: how many items each check used and with how many steps."""

    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    games: dict
    pointing: list[dict]
    strata: list[dict]
    sanity: list[dict]
    faith: list[dict]
    repeat: list[dict]
    curves: dict
    example: dict
    sizes: dict
    flags: dict = field(default_factory=dict)


def subset(n_items: int, n: int, *, seed: int) -> np.ndarray:
    """``min(n, n_items)`` item positions drawn without replacement (seeded), sorted."""
    k = min(int(n), int(n_items))
    return np.sort(np.random.default_rng(seed).choice(n_items, size=k, replace=False))


def evaluate(model, inputs: np.ndarray, maps: Mapping[str, np.ndarray], *,
             maps_of: Callable[[object, np.ndarray], dict[str, np.ndarray]],
             masks: np.ndarray, regions: np.ndarray | None, confidence: np.ndarray,
             lesion_size: np.ndarray, class_index: np.ndarray, shuffled_model=None,
             maps_by_seed: Mapping | None = None, n_sanity: int, n_faith: int, steps: int,
             target: str = "probability", seed: int = 0, n_boot: int = 1000,
             score_batch: int = faithfulness.SCORE_BATCH) -> XaiEvaluation:
    """Evaluate the methods' ``maps`` (method -> ``(N, *spatial)``, of the original ``model``
    on ``inputs`` ``(N, *spatial, C)``, channels last) on the N scored items.

    ``maps_of(model, inputs) -> {method: maps}`` makes the same maps for another model (the
    randomised and shuffled-label ones); ``masks`` / ``regions``: the lesion and organ masks
    ``(N, *spatial)`` (``masks=None``, real data: no pointing game and no strata, the
    faithfulness and sanity checks run all the same); ``confidence`` / ``lesion_size`` ``(N,)``: the strata's values;
    ``class_index`` ``(N,)``: the class whose score the faithfulness curves follow (``target``:
    :func:`medrepro.analysis.faithfulness.scorer`); ``maps_by_seed``: for repeatability,
    :func:`medrepro.analysis.sanity.seed_repeatability`'s input. ``n_sanity`` / ``n_faith``
    items (a seeded subset) for the sanity checks and the curves, ``steps`` per curve, scored
    ``score_batch`` perturbed inputs per forward pass."""
    n = len(inputs)
    if any(len(m) != n for m in maps.values()) or (masks is not None and len(masks) != n):
        raise ValueError(f"evaluate: {n} inputs, maps of {[len(m) for m in maps.values()]} "
                         f"items, {'no' if masks is None else len(masks)} masks")
    methods = tuple(maps)
    base = xai_score.baseline_maps(inputs, channel_axis=-1, seed=seed)
    every = {**maps, **base}
    games, pointing, strata = {}, [], []
    if masks is not None:  # real data has no lesion masks: no pointing game, the rest runs
        games = xai_score.score_maps(every, masks, regions=regions)
        pointing = _pointing_rows(games, methods, n_boot=n_boot, seed=seed)
        strata = (xai_score.stratified(games, lesion_size, by="lesion size")
                  + xai_score.stratified(games, confidence, by="confidence"))
    pick = subset(n, n_sanity, seed=seed)
    original = {m: v[pick] for m, v in maps.items()}
    cascade, kept, shuffled = [], {}, []
    if len(pick):
        cascade, kept = sanity.cascade_rows(model, lambda mdl: maps_of(mdl, inputs[pick]),
                                            original, seed=seed, n_boot=n_boot)
    example_maps = {"original": original, **kept}
    if shuffled_model is not None and len(pick):
        shuffled_maps = maps_of(shuffled_model, inputs[pick])
        shuffled = sanity.similarity_rows(sanity.similarities(original, shuffled_maps),
                                          check="shuffled labels", condition=sanity.SHUFFLED,
                                          n_boot=n_boot, seed=seed)
        example_maps[sanity.SHUFFLED] = shuffled_maps
    chosen = subset(n, n_faith, seed=seed + 1)
    score = faithfulness.scorer(model, target=target, batch=score_batch)
    curves = {m: faithfulness.curves(score, inputs[chosen], v[chosen],
                                     class_index=np.asarray(class_index)[chosen], steps=steps,
                                     seed=seed) for m, v in every.items()} if len(chosen) else {}
    faith = faithfulness.faithfulness_rows(curves, reference=xai_score.RANDOM, n_boot=n_boot,
                                           seed=seed) if curves else []
    repeat = sanity.seed_repeatability(maps_by_seed or {}, n_boot=n_boot, seed=seed)
    sanity_rows = cascade + shuffled
    sizes = {"n_scored": n, "n_sanity": len(pick), "n_faith": len(chosen), "steps": steps,
             "n_seeds": len(maps_by_seed or {}), "target": target,
             "n_layers": max([r["step"] for r in cascade], default=0)}
    example = {"input": inputs[pick[0]] if len(pick) else None,
               "mask": masks[pick[0]] if len(pick) and masks is not None else None,
               "maps": {c: {m: v[0] for m, v in d.items()} for c, d in example_maps.items()}
               if len(pick) else {}}
    return XaiEvaluation(methods, tuple(base), games, pointing, strata, sanity_rows, faith,
                         repeat, curves, example, sizes, sanity.flags(sanity_rows))


def _pointing_rows(games: Mapping[str, xai_score.PointingGame], methods: Sequence[str], *,
                   n_boot: int, seed: int) -> list[dict]:
    """Hit rate (CI) per method and baseline; a method's verdict names the baselines it does
    not beat (paired bootstrap CI of the per-item hit difference not above 0)."""
    from medrepro.analysis import evaluate as ev

    rows = []
    baselines = [name for name in games if name not in methods]
    for name, game in games.items():
        s = xai_score.summary(game)  # Wilson interval
        row = {"check": POINTING, "condition": "every scored item", "method": name,
               "role": METHOD if name in methods else BASELINE, "metric": "hit rate",
               "value": s["hit_rate"], "lo": s["hit_rate_lo"], "hi": s["hit_rate_hi"],
               "n": s["n_scored"], "chance_image": s["chance_image"],
               "chance_region": s["chance_region"], "n_empty_maps": s["n_empty_maps"]}
        if name in methods and len(game.hits):
            beaten, not_beaten = [], []
            for b in baselines:
                d = ev.mean_ci(game.hits.astype(float) - games[b].hits.astype(float),
                               n_boot=n_boot, seed=seed)
                (beaten if d["lo"] > 0 else not_beaten).append(b)
            row["verdict"] = ("beats every baseline" if not not_beaten else
                              "not better than: " + ", ".join(not_beaten))
        rows.append(row)
    return rows


def evaluation_table(ev: XaiEvaluation) -> pd.DataFrame:
    """Every number of ``ev`` as one long table (:data:`TABLE_COLUMNS`, plus the pointing
    game's chance rates): the pointing game, faithfulness, the sanity checks with every weight
    random and with shuffled labels, the strata, repeatability, then each cascade step."""
    rows = list(ev.pointing)
    role = {m: METHOD for m in ev.methods} | {b: BASELINE for b in ev.baselines}
    for r in ev.faith:
        verdict = None if r["beats_random"] is None else (
            "beats the random order" if r["beats_random"] else "no better than the random order")
        rows.append({"check": "faithfulness", "condition": r["condition"], "method": r["method"],
                     "role": role[r["method"]], "metric": "AUC of the class score",
                     "value": r["auc"], "lo": r["auc_lo"], "hi": r["auc_hi"], "n": r["n"],
                     "diff": r["diff_vs_random"], "diff_lo": r["diff_vs_random_lo"],
                     "diff_hi": r["diff_vs_random_hi"], "verdict": verdict})
    cascade = [r for r in ev.sanity if r["check"] == "cascading randomisation"]
    final = [r for r in cascade if r["condition"] == sanity.FULL]
    shuffled = [r for r in ev.sanity if r["condition"] == sanity.SHUFFLED]
    steps = [r for r in cascade if r["condition"] != sanity.FULL]
    rows += _similarity(final + shuffled, flag=True)
    for r in ev.strata:
        rows.append({"check": f"{POINTING} by {r['stratum']}",
                     "condition": f"{r['bin']} ({r['bin_lo']:.3g}-{r['bin_hi']:.3g})",
                     "method": r["method"], "role": role[r["method"]], "metric": "hit rate",
                     "value": r["hit_rate"], "lo": r["hit_rate_lo"], "hi": r["hit_rate_hi"],
                     "n": r["n_scored"]})
    rows += _similarity(ev.repeat, flag=False)
    rows += _similarity(steps, flag=True)
    table = pd.DataFrame(rows)
    for col in TABLE_COLUMNS:
        if col not in table:
            table[col] = None
    return table[list(TABLE_COLUMNS) + [c for c in table if c not in TABLE_COLUMNS]]


def _similarity(rows: Sequence[Mapping], *, flag: bool) -> list[dict]:
    """Two rows (Spearman, SSIM) per similarity row of :mod:`medrepro.analysis.sanity`."""
    out = []
    for r in rows:
        verdict = None
        if flag:
            verdict = ("FLAG: the maps survive" if r["survives"] else "the maps change")
        for metric, key in (("Spearman rank correlation", "spearman"), ("SSIM", "ssim")):
            out.append({"check": r["check"], "condition": r["condition"], "method": r["method"],
                        "role": METHOD, "metric": metric, "value": r[key],
                        "lo": r[f"{key}_lo"], "hi": r[f"{key}_hi"], "n": r["n"],
                        "n_constant": r["n_constant"],
                        "verdict": verdict if key == "spearman" else None})
    return out


def notes(ev: XaiEvaluation, *, what: str) -> str:
    """The table's notes: what was scored, the subsets' sizes, the rules of each verdict."""
    s = ev.sizes
    flagged = {m: c for m, c in ev.flags.items() if c}
    seeds = (f"repeatability across {s['n_seeds']} seeds on their shared items"
             if s["n_seeds"] >= 2 else
             "repeatability not measured: maps of one seed only (run again with --seed N)")
    pointing = (f"pointing game on {s['n_scored']} item(s) (methods and the baselines "
                f"{', '.join(ev.baselines)} scored by the same code; a method's verdict names "
                "the baselines whose hit rate it does not beat, paired bootstrap CI of the "
                "per-item difference)" if ev.games else
                "no pointing game (no lesion masks: real data)")
    return (f"{what}: {pointing}; faithfulness on {s['n_faith']} item(s), {s['steps']} steps per curve "
            f"(class score: {s['target']}; deletion to black, insertion into a blurred copy; "
            "diff: AUC minus the random order's, paired CI; it beats the random order when that CI "
            f"lies beyond {faithfulness.MIN_GAIN} on the good side); sanity checks on "
            f"{s['n_sanity']} item(s): cascading re-initialisation of the model's {s['n_layers']} "
            "blocks (a weighted layer with its BatchNorm) from the output down, and a model "
            "trained on shuffled labels; a method is "
            f"flagged when its maps' mean rank correlation with the original stays >= "
            f"{sanity.SURVIVES_RANK} ({', '.join(f'{m}: {c}' for m, c in flagged.items()) or 'none flagged'}); "
            f"strata at the scored items' tertiles; {seeds}. lo/hi: 95% CIs over the items "
            "(hit rates: Wilson intervals; the rest: bootstrap).")
