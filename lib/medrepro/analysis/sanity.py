"""Sanity checks for explanation maps (Adebayo et al. 2018, "Sanity checks for saliency maps").
The thresholds are ours: docs/decisions.md#x14.

A map that explains the model must change when the model does. Two randomisations:

- **cascading weight randomisation** (:func:`cascade`): a copy of the model whose layers are
  re-initialised one block at a time from the output down, cumulatively, until every weight is
  random;
- **shuffled labels**: a model trained on labels permuted at random (the study trains it).

The maps of the original and of the randomised model are compared image by image with the
Spearman rank correlation (``scipy.stats.spearmanr``) and SSIM (``skimage.metrics``), per
method, with a bootstrap 95% CI over the images (:func:`similarity_rows`). A method whose maps
stay similar (mean rank correlation at or above :data:`SURVIVES_RANK`) after the whole network
is randomised, or for the shuffled-label model, is flagged: its maps do not depend on what the
model learnt. The same comparison across models trained with other seeds measures how
repeatable the maps are (:func:`seed_repeatability`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

# A method "survives" a randomisation when the mean rank correlation between its maps of the
# original and of the randomised model is at least this (Adebayo et al. show surviving methods'
# maps with rank correlations of about 0.5 to 1 after full randomisation).
SURVIVES_RANK = 0.5
SHUFFLED = "shuffled labels"
FULL = "all layers"


NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization")


def weighted_layers(model) -> list:
    """The layers of ``model`` that hold weights, input to output (nested models' included)."""
    from medrepro.analysis import explain

    return [layer for layer in explain.iter_layers(model)
            if layer.weights and not hasattr(layer, "layers")]


def stages(model) -> list[list]:
    """The cascade's stages, input to output: each weighted layer with the normalisation layers
    that follow it (a convolution block's Conv + BatchNorm are randomised together)."""
    out: list[list] = []
    for layer in weighted_layers(model):
        if type(layer).__name__ in NORMALISATION and out:
            out[-1].append(layer)
        else:
            out.append([layer])
    return out


def reinitialise(layer, *, seed: int) -> None:
    """Draw every weight of ``layer`` afresh from its own initializer (``kernel_initializer``,
    ``bias_initializer``, BatchNorm's ``gamma``/``beta``/moving statistics' initializers), seeded;
    a weight without one is shuffled (a random permutation of its values)."""
    rng = np.random.default_rng(seed)
    for var in layer.weights:
        name = var.name.rsplit("/", 1)[-1].split(":")[0]
        init = getattr(layer, f"{name}_initializer", None)
        shape, dtype = tuple(var.shape), var.dtype
        if init is not None and hasattr(init, "get_config"):
            config = dict(init.get_config())
            if "seed" in config:
                config["seed"] = int(rng.integers(2**31 - 1))
            value = np.asarray(type(init).from_config(config)(shape, dtype=dtype))
        else:
            value = rng.permutation(np.asarray(var).ravel()).reshape(shape)
        var.assign(value.astype(np.asarray(var).dtype))


def cascade(model, *, seed: int = 0) -> Iterator[tuple[str, object]]:
    """Cascading randomisation of a copy of ``model`` (``keras.models.clone_model``, same layer
    names, the trained weights): yields ``(stage name, copy)`` after re-initialising
    (:func:`reinitialise`) each stage (:func:`stages`; named by its layers, ``"conv4+bn4"``) in
    turn from the output down, every stage above it staying random. The same copy is yielded
    each time (compute its maps before the next step); ``model`` itself is never changed."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for i, stage in enumerate(reversed(stages(copy))):
        for j, layer in enumerate(stage):
            reinitialise(layer, seed=seed + 100 * i + j)
        yield "+".join(layer.name for layer in stage), copy


def map_similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation and SSIM of two maps of one shape (2-D or 3-D, values in
    [0, 1]). A constant map has no ranking: its rank correlation is NaN (counted by
    :func:`similarity_rows`); SSIM is defined for it."""
    from scipy import stats
    from skimage.metrics import structural_similarity

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"map_similarity: maps of shapes {a.shape} and {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        rho = np.nan
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            rho = float(stats.spearmanr(a.ravel(), b.ravel()).statistic)
    win = min(7, *[s if s % 2 else s - 1 for s in a.shape])
    ssim = float(structural_similarity(a, b, data_range=1.0, win_size=max(win, 3)))
    return {"spearman": rho, "ssim": ssim}


def similarities(original: Mapping[str, np.ndarray],
                 randomised: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per method (the keys both share): ``{"spearman": (N,), "ssim": (N,)}`` between each
    original map ``original[m][i]`` and ``randomised[m][i]``."""
    out = {}
    for method in original:
        if method not in randomised:
            continue
        pairs = [map_similarity(a, b) for a, b in zip(original[method], randomised[method])]
        out[method] = {k: np.array([p[k] for p in pairs]) for k in ("spearman", "ssim")}
    return out


def similarity_rows(sims: Mapping[str, Mapping[str, np.ndarray]], *, check: str, condition: str,
                    n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per method: mean Spearman and SSIM with 95% bootstrap CIs (``*_lo``, ``*_hi``),
    ``n`` (images), ``n_constant`` (image pairs with a constant map, no rank correlation) and
    ``survives`` (mean rank correlation >= :data:`SURVIVES_RANK`)."""
    from medrepro.analysis import evaluate

    rows = []
    for method, s in sims.items():
        rho = evaluate.mean_ci(s["spearman"], n_boot=n_boot, seed=seed)
        ssim = evaluate.mean_ci(s["ssim"], n_boot=n_boot, seed=seed)
        rows.append({"check": check, "condition": condition, "method": method,
                     "n": len(s["ssim"]), "n_constant": int(np.isnan(s["spearman"]).sum()),
                     "spearman": rho["point"], "spearman_lo": rho["lo"], "spearman_hi": rho["hi"],
                     "ssim": ssim["point"], "ssim_lo": ssim["lo"], "ssim_hi": ssim["hi"],
                     "survives": bool(np.isfinite(rho["point"]) and rho["point"] >= SURVIVES_RANK)})
    return rows


def cascade_rows(model, maps_of: Callable[[object], dict[str, np.ndarray]],
                 original: Mapping[str, np.ndarray], *, seed: int = 0,
                 n_boot: int = 1000) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """Cascading randomisation of ``model`` (:func:`cascade`), ``maps_of(model) -> {method:
    (N, *spatial)}`` at every step compared with ``original``: the :func:`similarity_rows` of each
    step (``step`` k, ``layer``, ``condition`` ``"top k: <layer>"``; the last step's rows once
    more as :data:`FULL`, every weight random), and the randomised maps of the first step
    (``"top 1: <layer>"``) and of the last (:data:`FULL`), for a figure."""
    rows, kept = [], {}
    maps = None
    for k, (name, copy) in enumerate(cascade(model, seed=seed), start=1):
        maps = maps_of(copy)
        condition = f"top {k}: {name}"
        rows += [{**r, "step": k, "layer": name} for r in similarity_rows(
            similarities(original, maps), check="cascading randomisation",
            condition=condition, n_boot=n_boot, seed=seed)]
        if k == 1:
            kept[condition] = maps
    if rows:
        last = max(r["step"] for r in rows)
        rows += [{**r, "condition": FULL} for r in rows if r["step"] == last]
        kept[FULL] = maps
    return rows, kept


def flags(rows: Sequence[Mapping]) -> dict[str, list[str]]:
    """Per method, the randomisations whose maps it survives among :data:`FULL` (every weight
    random) and :data:`SHUFFLED` (a model trained on shuffled labels): a method with any is
    flagged."""
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["method"], [])
        if r["condition"] in (FULL, SHUFFLED) and r["survives"]:
            out[r["method"]].append(r["condition"])
    return out


def seed_repeatability(maps_by_seed: Mapping[int, tuple[Sequence[str], Mapping[str, np.ndarray]]],
                       *, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """How alike the maps of models trained with different seeds are, on the items they share:
    ``maps_by_seed[s] = (item keys, {method: (N_s, *spatial)})``. One :func:`similarity_rows`
    row per method and pair of seeds (``condition``: ``"seed a vs seed b"``, ``n``: the shared
    items); none with fewer than two seeds."""
    rows = []
    seeds_ = sorted(maps_by_seed)
    for i, a in enumerate(seeds_):
        for b in seeds_[i + 1:]:
            keys_a, maps_a = maps_by_seed[a]
            keys_b, maps_b = maps_by_seed[b]
            where_b = {k: j for j, k in enumerate(keys_b)}
            shared = [(j, where_b[k]) for j, k in enumerate(keys_a) if k in where_b]
            if not shared:
                continue
            ia, ib = (np.array(t) for t in zip(*shared))
            sims = similarities({m: v[ia] for m, v in maps_a.items()},
                                {m: v[ib] for m, v in maps_b.items()})
            rows += [{**r, "survives": None} for r in similarity_rows(
                sims, check="repeatability across seeds", condition=f"seed {a} vs seed {b}",
                n_boot=n_boot, seed=seed)]
    return rows


MAPS_FILE = "xai_maps.npz"  # in a seed's run folder: its maps, for repeatability across seeds
MAX_STORED = 200  # items whose maps are stored per seed (float16, compressed)


def save_maps(path, keys: Sequence[str], maps: Mapping[str, np.ndarray]) -> None:
    """Store the first :data:`MAX_STORED` items' maps (method -> ``(N, *spatial)``) under their
    ``keys`` (file names, volume names) in ``path`` (``.npz``, written atomically)."""
    from medrepro.core.fileio import atomic_path

    n = min(len(keys), MAX_STORED)
    arrays = {f"map:{m}": np.asarray(v[:n], dtype=np.float16) for m, v in maps.items()}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, keys=np.asarray(list(keys)[:n], dtype=str), **arrays)


def read_maps(path) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(keys, {method: maps})`` as :func:`save_maps` stored them (maps float32)."""
    with np.load(path) as f:
        return ([str(k) for k in f["keys"]],
                {k.removeprefix("map:"): f[k].astype(np.float32) for k in f.files
                 if k.startswith("map:")})


def maps_across_seeds(runs, name: str, keys: Sequence[str],
                      maps: Mapping[str, np.ndarray]) -> dict:
    """Store this seed's maps as ``runs/name`` (:func:`save_maps`; ``runs``: a
    :func:`medrepro.core.paths.runs_dir` folder) and read those of every seed that stored them
    there (this one included): :func:`seed_repeatability`'s ``{seed: (keys, maps)}``."""
    from pathlib import Path

    from medrepro.core import paths

    save_maps(Path(runs) / name, keys, maps)
    return {seed: read_maps(folder / name) for seed, folder in paths.seed_runs(runs).items()
            if (folder / name).is_file()}
