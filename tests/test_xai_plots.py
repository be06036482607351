"""The figures of the explanations' evaluation, the failure gallery and the explorer's panel."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import failures, sanity, xai_eval, xai_score
from medrepro.reporting import xai_plots


def _evaluation(volume=False):
    rng = np.random.default_rng(0)
    shape = (12, 12, 10) if volume else (12, 12)
    methods = ("Grad-CAM",) if volume else ("Grad-CAM", "Eigen-CAM")
    games = {}
    for name in (*methods, *xai_score.BASELINES):
        hits = rng.random(9) < 0.5
        games[name] = xai_score.PointingGame(hits, [(0, 0)] * 9, np.full(9, 0.1), np.full(9, 0.2))
    pointing = xai_eval._pointing_rows(games, methods, n_boot=20, seed=0)
    strata = (xai_score.stratified(games, rng.random(9), by="lesion size")
              + xai_score.stratified(games, rng.random(9), by="confidence"))
    sims = {m: {"spearman": rng.random(3), "ssim": rng.random(3)} for m in methods}
    sanity_rows = []
    for k, layer in enumerate(("out", "conv2", "conv1+bn1"), start=1):
        sanity_rows += [{**r, "step": k, "layer": layer} for r in sanity.similarity_rows(
            sims, check="cascading randomisation", condition=f"top {k}: {layer}", n_boot=20)]
    sanity_rows += sanity.similarity_rows(sims, check="shuffled labels",
                                          condition=sanity.SHUFFLED, n_boot=20)
    curves = {m: {"deletion": rng.random((4, 5)), "insertion": rng.random((4, 5))}
              for m in games}
    m = {meth: rng.random(shape) for meth in methods}
    example = {"input": rng.random((*shape, 1)), "mask": rng.random(shape) > 0.8,
               "maps": {"original": m, "top 1: out": m, sanity.FULL: m, sanity.SHUFFLED: m}}
    sizes = {"n_scored": 9, "n_sanity": 3, "n_faith": 4, "steps": 4, "n_seeds": 1,
             "target": "probability", "n_layers": 3}
    return xai_eval.XaiEvaluation(methods, xai_score.BASELINES, games, pointing, strata,
                                  sanity_rows, [], [], curves, example, sizes)


@pytest.mark.parametrize("volume", [False, True])
def test_the_evaluation_figure_has_its_panels(volume):
    fig = xai_plots.plot_xai_evaluation(_evaluation(volume), title="E: toy")
    titles = [ax.get_title() for ax in fig.get_axes()]
    for letter in "abcdef":
        assert any(t.startswith(f"({letter})") for t in titles), (letter, titles)
    assert "(a) pointing game, 9 item(s)" in titles
    assert any(t.startswith("input (slice" if volume else "input, lesion") for t in titles)


def _gallery_cases():
    prob = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.3, 0.7]])
    return failures.gallery_cases(failures.cases([0, 0, 1, 1], prob, labels=("n", "t")),
                                  n_wrong=3, n_unsure=2)


def test_gallery_with_maps_has_a_row_per_case():
    cases = _gallery_cases()
    assert cases.index.tolist() == [1, 2, 3, 0]
    images = [np.random.default_rng(i).random((10, 10, 3)) for i in range(len(cases))]
    maps = {"Grad-CAM": [np.eye(10)] * len(cases)}
    fig = xai_plots.plot_gallery(images, cases, labels=("n", "t"), maps=maps, title="g")
    axes = fig.get_axes()
    assert len(axes) == 4 * 3
    first = axes[0].title
    assert first.get_text().startswith("1\ntrue n / pred t (0.80)")
    assert first.get_color() == xai_plots.WRONG_COLOUR
    assert axes[3 * 3].title.get_color() == xai_plots.RIGHT_COLOUR  # the last: right, unsure


def test_gallery_without_maps_packs_three_cases_a_row_and_an_empty_one_says_so():
    cases = _gallery_cases()
    fig = xai_plots.plot_gallery([np.zeros((8, 8))] * 4, cases, labels=("n", "t"), title="g")
    assert len(fig.get_axes()) == 2 * 2 * 3
    empty = xai_plots.plot_gallery([], cases.iloc[:0], labels=("n", "t"), title="g")
    assert "no test case" in empty.get_axes()[0].texts[0].get_text()


def test_case_panel_and_slices():
    row = _gallery_cases().iloc[0]
    fig = xai_plots.case_panel(np.zeros((8, 8)), row, labels=("n", "t"),
                               maps={"a": np.eye(8), "b": np.eye(8)}, header="h")
    assert len(fig.get_axes()) == 4 and fig._suptitle.get_text() == "h"
    vol = np.zeros((6, 6, 5))
    heat = np.zeros_like(vol)
    heat[1, 2, 3] = 1
    assert xai_plots.volume_slice(vol, heat) == 3
    assert xai_plots.volume_slice(vol) == 2 and xai_plots.volume_slice(vol, index=9) == 4
    assert xai_plots.as_2d(np.zeros((6, 6, 1))).shape == (6, 6)
    assert xai_plots.as_2d(np.zeros((6, 6, 3))).shape == (6, 6, 3)
    assert xai_plots.as_2d(vol, k=1).shape == (6, 6)


def test_without_lesion_masks_the_pointing_panels_say_so():
    ev = _evaluation()
    ev.games, ev.pointing, ev.strata = {}, [], []
    ev.example["mask"] = None
    fig = xai_plots.plot_xai_evaluation(ev, title="E: real data")
    texts = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    assert texts.count(xai_plots.NO_MASKS) == 3
