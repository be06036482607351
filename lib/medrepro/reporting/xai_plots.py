"""Figures of the explanations' evaluation and of the failure analysis.

- :func:`plot_xai_evaluation`: one figure per study of what :func:`medrepro.analysis.xai_eval.evaluate`
  measured (pointing game against the baselines, the sanity checks, deletion/insertion curves,
  strata) with one item's maps under each randomisation;
- :func:`plot_gallery`: a classifier's failure gallery (image, maps, probabilities per case);
- :func:`case_panel`: one case as the explorer shows it.

Images and maps are 2-D here; a volume is shown by one slice (:func:`volume_slice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from medrepro.reporting.plots import LAYOUT_RECT, overlay

METHOD_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
BASELINE_COLOURS = ("0.35", "0.55", "0.75")
WRONG_COLOUR, RIGHT_COLOUR = "tab:red", "tab:green"


def volume_slice(volume: np.ndarray, heatmap: np.ndarray | None = None,
                 index: int | None = None) -> int:
    """The slice (last axis) to show of ``volume`` ``(H, W, D)``: ``index``, else the one through
    ``heatmap``'s maximum, else the middle one."""
    depth = volume.shape[2]
    if index is not None:
        return int(np.clip(index, 0, depth - 1))
    if heatmap is not None and np.max(heatmap) > 0:
        return int(np.unravel_index(np.argmax(heatmap), heatmap.shape)[2])
    return depth // 2


def as_2d(image: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """A displayable 2-D image: ``(H, W)``, ``(H, W, 1|3)`` as is (channel 1 dropped); a volume
    ``(H, W, D[, 1])`` (D > 3) by its slice ``k`` (default the middle one)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 4 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[-1] == 1:
        return img[..., 0]
    if img.ndim == 3 and img.shape[-1] not in (3,):
        return img[:, :, img.shape[2] // 2 if k is None else k]
    return img


def _colours(names: Sequence[str], baselines: Sequence[str]) -> dict[str, str]:
    out, m, b = {}, iter(METHOD_COLOURS * 3), iter(BASELINE_COLOURS * 3)
    for name in names:
        out[name] = next(b) if name in baselines else next(m)
    return out


def plot_xai_evaluation(ev, *, title: str):
    """The evaluation of one study's maps (:class:`medrepro.analysis.xai_eval.XaiEvaluation`):
    (a) pointing-game hit rates, methods beside the baselines, 95% CIs, chance dashed;
    (b) the sanity checks: rank correlation with the original maps as the cascade randomises
    the model from the output down, and for the shuffled-label model, the flag line dashed;
    (c, d) mean deletion and insertion curves, the random order dashed; (e, f) hit rates per
    lesion-size and confidence tertile; right: one item's maps, original and randomised."""
    import matplotlib.pyplot as plt

    from medrepro.analysis import sanity, xai_score

    names = list(dict.fromkeys([*ev.methods, *ev.games, *ev.curves]))
    colour = _colours(names, ev.baselines)
    fig = plt.figure(figsize=(17, 11.5))
    left, right = fig.subfigures(1, 2, width_ratios=[2.1, 1.0])
    axes = left.subplots(3, 2)
    _pointing_panel(axes[0, 0], ev, colour)
    _sanity_panel(axes[0, 1], ev, colour, threshold=sanity.SURVIVES_RANK, full=sanity.FULL,
                  shuffled=sanity.SHUFFLED)
    for ax, kind in zip(axes[1], ("deletion", "insertion")):
        for name, c in ev.curves.items():
            mean = np.asarray(c[kind]).mean(axis=0)
            ax.plot(np.linspace(0, 1, len(mean)), mean, color=colour[name], label=name,
                    ls="--" if name == xai_score.RANDOM else "-", lw=1.6)
        ax.set_xlabel(f"fraction of the pixels {'removed' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("class score (mean)")
        ax.set_title(f"({'c' if kind == 'deletion' else 'd'}) {kind} curves, "
                     f"{ev.sizes['n_faith']} item(s)", fontsize=9)
    axes[1, 0].legend(fontsize=7)
    for ax, by, letter in zip(axes[2], ("lesion size", "confidence"), "ef"):
        _strata_panel(ax, ev, by, colour, letter)
    _examples(right, ev)
    fig.suptitle(title, fontsize=11)
    left.subplots_adjust(hspace=0.5, wspace=0.28, bottom=0.08, top=0.93)
    return fig


NO_MASKS = "no lesion masks (real data):\nno pointing game"


def _pointing_panel(ax, ev, colour) -> None:
    rows = ev.pointing
    if not rows:
        ax.text(0.5, 0.5, NO_MASKS, ha="center", va="center", transform=ax.transAxes)
        ax.set_title("(a) pointing game", fontsize=9)
        return
    y = np.arange(len(rows))
    val = np.array([r["value"] for r in rows], dtype=float)
    err = np.array([[r["value"] - r["lo"], r["hi"] - r["value"]] for r in rows], dtype=float).T
    ax.barh(y, np.nan_to_num(val), xerr=np.nan_to_num(err), color=[colour[r["method"]]
                                                                  for r in rows], capsize=3)
    ax.set_yticks(y, [r["method"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    chance = np.nanmean([r["chance_image"] for r in rows]) if rows else np.nan
    if np.isfinite(chance):
        ax.axvline(chance, color="k", ls="--", lw=1, label=f"chance {chance:.2f}")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_xlabel("hit rate (95% CI)")
    ax.set_title(f"(a) pointing game, {ev.sizes['n_scored']} item(s)", fontsize=9)


def _sanity_panel(ax, ev, colour, *, threshold: float, full: str, shuffled: str) -> None:
    steps = sorted({(r["step"], r["layer"]) for r in ev.sanity if "step" in r})
    for method in ev.methods:
        pts = {r["step"]: r for r in ev.sanity if r.get("step") is not None
               and r["method"] == method and r["condition"] != full}
        xs = sorted(pts)
        ax.plot(xs, [pts[k]["spearman"] for k in xs], marker="o", color=colour[method],
                label=method)
        ax.fill_between(xs, [pts[k]["spearman_lo"] for k in xs],
                        [pts[k]["spearman_hi"] for k in xs], color=colour[method], alpha=0.15)
        sh = [r for r in ev.sanity if r["condition"] == shuffled and r["method"] == method]
        if sh:
            x = len(steps) + 1
            ax.errorbar([x], [sh[0]["spearman"]], yerr=[[sh[0]["spearman"] - sh[0]["spearman_lo"]],
                        [sh[0]["spearman_hi"] - sh[0]["spearman"]]], marker="s",
                        color=colour[method], capsize=3)
    ticks = [k for k, _ in steps] + ([len(steps) + 1] if any(
        r["condition"] == shuffled for r in ev.sanity) else [])
    labels = [name for _, name in steps] + (["shuffled\nlabels"] if len(ticks) > len(steps) else [])
    ax.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=7)
    ax.axhline(threshold, color="k", ls="--", lw=1)
    ax.set_ylim(-0.5, 1.05)
    ax.set_ylabel("Spearman vs original maps")
    ax.set_title(f"(b) sanity checks: cascading randomisation (output down), "
                 f"{ev.sizes['n_sanity']} item(s)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")


def _strata_panel(ax, ev, by: str, colour, letter: str) -> None:
    rows = [r for r in ev.strata if r["stratum"] == by]
    ax.set_title(f"({letter}) pointing game by {by} (tertiles)", fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, NO_MASKS, ha="center", va="center", transform=ax.transAxes)
        return
    bins = list(dict.fromkeys(r["bin"] for r in rows))
    names = list(dict.fromkeys(r["method"] for r in rows))
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        got = {r["bin"]: r for r in rows if r["method"] == name}
        x = np.arange(len(bins)) + (j - (len(names) - 1) / 2) * width
        v = np.array([got[b]["hit_rate"] for b in bins], dtype=float)
        lo = np.array([got[b]["hit_rate_lo"] for b in bins], dtype=float)
        hi = np.array([got[b]["hit_rate_hi"] for b in bins], dtype=float)
        ax.bar(x, np.nan_to_num(v), width, color=colour[name], label=name,
               yerr=np.nan_to_num([v - lo, hi - v]), capsize=2)
    ranges = {r["bin"]: f"{r['bin_lo']:.2g}-{r['bin_hi']:.2g}\nn={r['n_scored']}" for r in rows}
    ax.set_xticks(np.arange(len(bins)), [f"{b}\n{ranges[b]}" for b in bins], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("hit rate")


def _examples(subfig, ev) -> None:
    """One sanity item: its input (and lesion), then per method the original map and the maps
    of the randomised models."""
    ex = ev.example
    if ex["input"] is None:
        return
    conditions = list(ex["maps"])
    methods = list(ev.methods)
    axes = subfig.subplots(len(methods) + 1, len(conditions), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    first = ex["maps"]["original"][methods[0]]
    volume = np.asarray(first).ndim == 3
    k = volume_slice(np.asarray(first), first) if volume else None
    img = as_2d(ex["input"], k=k)
    axes[0, 0].imshow(overlay(img, np.zeros(img.shape[:2]), alpha=0.0))
    if ex.get("mask") is not None:
        mask = np.asarray(ex["mask"])[..., k] if volume else np.asarray(ex["mask"])
        if mask.any():
            axes[0, 0].contour(mask.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    axes[0, 0].set_title("input" + (f" (slice {k})" if volume else "") + ", lesion", fontsize=8)
    for i, method in enumerate(methods, start=1):
        for j, cond in enumerate(conditions):
            m = ex["maps"][cond].get(method)
            if m is None:
                continue
            m = np.asarray(m)[..., k] if volume else np.asarray(m)
            axes[i, j].imshow(overlay(img, m, alpha=0.5))
            if i == 1:
                axes[i, j].set_title(cond.replace(": ", ":\n"), fontsize=8)
        axes[i, 0].axis("on")
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_ylabel(method, fontsize=8)
    subfig.suptitle("one item's maps: original and randomised", fontsize=9)


# ---------------------------------------------------------------------------- failure gallery
def _prob_bars(ax, row: Mapping, labels: Sequence[str]) -> None:
    p = [float(row[f"p_{label}"]) for label in labels]
    colours = ["0.7"] * len(labels)
    colours[int(row["pred"])] = RIGHT_COLOUR if row["correct"] else WRONG_COLOUR
    ax.barh(np.arange(len(labels)), p, color=colours)
    ax.set_yticks(np.arange(len(labels)), [("* " if i == int(row["true"]) else "") + label
                                           for i, label in enumerate(labels)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=6)
    ax.set_title("probabilities (* true)", fontsize=7)


def _case_title(row: Mapping) -> str:
    return (f"{row['name']}\ntrue {row['true_label']} / pred {row['pred_label']} "
            f"({row['confidence']:.2f})")


def plot_gallery(images: Sequence[np.ndarray], cases: pd.DataFrame, *, labels: Sequence[str],
                 maps: Mapping[str, Sequence[np.ndarray]] | None = None, title: str,
                 note: str = ""):
    """A failure gallery: per case (a row of :func:`medrepro.analysis.failures.gallery_cases`,
    same order as ``images``) its image, its maps (``maps[method][i]``, 2-D in [0, 1]) and its
    probabilities (the predicted class red when wrong, green when right). Cases without maps
    are packed three to a row. ``note``: a line under the title (counts, the profile's sizes)."""
    import matplotlib.pyplot as plt

    from medrepro.reporting.plots import plot_message

    if len(cases) == 0:
        return plot_message("no test case to show (every prediction right and sure?)",
                            title=title)
    methods = list(maps or {})
    per_case = 2 + len(methods)
    per_row = 1 if methods else 3
    n_rows = int(np.ceil(len(cases) / per_row))
    fig, axes = plt.subplots(n_rows, per_case * per_row, squeeze=False,
                             figsize=(2.3 * per_case * per_row, 2.5 * n_rows + 0.9),
                             gridspec_kw={"width_ratios": ([1] * (per_case - 1) + [0.9]) * per_row})
    for ax in axes.ravel():
        ax.axis("off")
    for i, (_, row) in enumerate(cases.iterrows()):
        r, c0 = divmod(i, per_row)
        c0 *= per_case
        img = as_2d(images[i])
        ax = axes[r, c0]
        ax.imshow(overlay(img, np.zeros(img.shape[:2]), alpha=0.0))
        ax.set_title(_case_title(row), fontsize=7,
                     color=RIGHT_COLOUR if row["correct"] else WRONG_COLOUR)
        ax.text(0.02, 0.02, row["kind"], transform=ax.transAxes, fontsize=6, color="white",
                backgroundcolor="black")
        for j, method in enumerate(methods, start=1):
            axes[r, c0 + j].imshow(overlay(img, np.asarray(maps[method][i]), alpha=0.5))
            axes[r, c0 + j].set_title(method, fontsize=7)
        bar_ax = axes[r, c0 + per_case - 1]
        bar_ax.axis("on")
        _prob_bars(bar_ax, row, labels)
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=9)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def case_panel(image: np.ndarray, row: Mapping, *, labels: Sequence[str],
               maps: Mapping[str, np.ndarray] | None = None, header: str = ""):
    """One case as the explorer shows it: image, its maps side by side, its probabilities;
    ``header`` (the explorer's filter and position) above. 2-D ``image`` / maps (a volume's
    slice)."""
    import matplotlib.pyplot as plt

    methods = list(maps or {})
    n = 2 + len(methods)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.2),
                             gridspec_kw={"width_ratios": [1] * (n - 1) + [0.9]})
    img = as_2d(image)
    axes[0].imshow(overlay(img, np.zeros(img.shape[:2]), alpha=0.0))
    axes[0].set_title(_case_title(row), fontsize=8,
                      color=RIGHT_COLOUR if row["correct"] else WRONG_COLOUR)
    for j, method in enumerate(methods, start=1):
        axes[j].imshow(overlay(img, np.asarray(maps[method]), alpha=0.5))
        axes[j].set_title(method, fontsize=8)
    for ax in axes[:-1]:
        ax.axis("off")
    _prob_bars(axes[-1], row, labels)
    if header:
        fig.suptitle(header, fontsize=8)
    fig.tight_layout()
    return fig
