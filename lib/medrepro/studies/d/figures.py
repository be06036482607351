"""Study D's figures made here: the 3-D Grad-CAM of the best model (``D.gradcam3d``) and the
pointing game's volumes (``D.fig_xai_score``); the others come from :mod:`medrepro.reporting.plots`."""

from __future__ import annotations

import numpy as np

from medrepro.models.chest_ct import GRADCAM_LAYER
from medrepro.studies.d.data import scenario_splits
from medrepro.studies.d.training import VariantResult
from medrepro.studies.d.xai import N_SCORE_SHOWN, SCORED, XaiScore


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


def reliability_figure(cal):
    """D.fig_reliability: the held-out test volumes' reliability diagram."""
    from medrepro.reporting import plots

    return plots.plot_reliability(cal.frames, title="D: reliability on the held-out test "
                                                     "volumes")
