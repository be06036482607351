"""The explorer, headless: its callbacks give the expected selection, panel and slice."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import failures
from medrepro.reporting import explorer

LABELS = ("a", "b", "c")
PNG = b"\x89PNG"


def _cases():
    prob = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.4, 0.35, 0.25],
                     [0.2, 0.2, 0.6], [0.3, 0.45, 0.25], [0.05, 0.05, 0.9]])
    return failures.cases([0, 0, 0, 1, 1, 2], prob, labels=LABELS, names=list("uvwxyz"))


def _source(volume=False, calls=None):
    calls = [] if calls is None else calls
    shape = (12, 12, 10) if volume else (12, 12)

    def image(pos):
        return np.full(shape, pos / 10.0, dtype=np.float32)

    def maps(pos):
        calls.append(pos)
        m = np.zeros(shape, dtype=np.float32)
        m[(pos, pos, 7) if volume else (pos, pos)] = 1.0
        return {"Grad-CAM": m, "Eigen-CAM": m}

    return explorer.Source(_cases(), LABELS, image, maps, volume=volume, title="toy")


def test_select_filters_in_gallery_order():
    c = _cases()
    assert explorer.select(c).tolist() == [1, 3, 2, 4, 0, 5]
    assert explorer.select(c, true="a").tolist() == [1, 2, 0]
    assert explorer.select(c, outcome="wrong", pred="c").tolist() == [3]
    assert explorer.select(c, outcome="correct", confidence=(0.5, 1.0)).tolist() == [0, 5]
    assert explorer.select(c, true="c", outcome="wrong").tolist() == []
    with pytest.raises(ValueError, match="outcome='maybe'"):
        explorer.select(c, outcome="maybe")


def test_the_first_view_is_the_most_confident_wrong_case():
    calls = []
    ex = explorer.Explorer(_source(calls=calls))
    assert ex.case.value == 1 and len(ex.case.options) == 6
    assert ex.case.options[0][0].startswith("WRONG · v · true a / pred b (0.85)")
    assert bytes(ex.view.value).startswith(PNG)
    assert ex.status.value == "6 of 6 test cases match"
    assert ex.last_figure_title.endswith("case 1 of 6")
    assert calls == [1]


def test_filter_callbacks_change_the_selection_and_the_panel():
    calls = []
    ex = explorer.Explorer(_source(calls=calls))
    ex.true.value = "b"
    assert [v for _, v in ex.case.options] == [3, 4] and ex.case.value == 3
    assert "true b" in ex.last_figure_title and ex.last_figure_title.endswith("case 1 of 2")
    ex.outcome.value = "correct"
    assert ex.case.value == 4 and ex.status.value == "1 of 6 test cases match"
    before = bytes(ex.view.value)
    ex.confidence.value = (0.9, 1.0)
    assert ex.case.value is None and bytes(ex.view.value) == b""
    assert "no test case matches" in ex.status.value
    ex.confidence.value = (0.0, 1.0)
    assert ex.case.value == 4 and bytes(ex.view.value) == before  # the same case drawn the same way
    ex.true.value, ex.outcome.value = explorer.ANY, "all"
    ex.case.value = 5
    assert ex.last_figure_title.endswith("case 6 of 6")
    assert calls == [1, 3, 4, 2, 5]  # maps made once per case shown (1 and 4 again: kept)


def test_a_volume_opens_at_its_maps_maximum_and_scrolls():
    ex = explorer.Explorer(_source(volume=True))
    assert ex.slice.max == 9 and ex.slice.value == 7
    assert ex.last_figure_title.endswith("slice 7 of 10")
    first = bytes(ex.view.value)
    ex.slice.value = 2
    assert ex.last_figure_title.endswith("slice 2 of 10") and bytes(ex.view.value) != first
    ex.case.value = 5
    assert ex.slice.value == 7  # the new case opens at its own maximum


def test_show_displays_the_widget_with_the_gallery_as_fallback(monkeypatch, tmp_path):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    png = tmp_path / "gallery.png"
    png.write_bytes(PNG + b"rest")
    ex = explorer.show(_source(), fallback_png=png, note="E.gallery")
    (bundle, raw), = shown
    assert raw and bundle[explorer.WIDGET_VIEW]["model_id"] == ex.widget.model_id
    assert "data:image/png;base64," in bundle["text/html"] and "E.gallery" in bundle["text/html"]
    assert "live kernel" in explorer.fallback_html(None)
    assert "<img" not in explorer.fallback_html(tmp_path / "missing.png")


def _titles(fig):
    return [ax.get_title() for ax in fig.get_axes() if ax.get_title()]


def test_gallery_draws_the_most_confident_wrong_first_then_the_least_sure_right():
    import matplotlib.pyplot as plt

    calls = []
    fig = explorer.gallery(_source(calls=calls), n_wrong=5, n_unsure=1, note="toy note")
    cases = [t for t in _titles(fig) if "\ntrue" in t]
    assert [t.split("\n")[0] for t in cases] == ["v", "x", "w"]  # wrong 0.85, 0.60; right 0.40
    assert cases[0].endswith("true a / pred b (0.85)")
    assert calls == [1, 3, 2]  # maps made for the shown cases only
    assert len(fig.get_axes()) == 3 * (2 + 2)  # a row per case: image, two maps, probabilities
    suptitle = fig._suptitle.get_text()
    assert suptitle.startswith("toy: failure gallery")
    assert "2 of 6 test items wrong" in suptitle and suptitle.endswith("; toy note")
    plt.close(fig)
    few = explorer.gallery(_source(), n_wrong=1, n_unsure=0, title="other")
    assert [t.split("\n")[0] for t in _titles(few) if "\ntrue" in t] == ["v"]
    assert few._suptitle.get_text().startswith("other: failure gallery")
    plt.close(few)


def _slice_volume(pos):
    """(12, 12, 10): slice k bright at pixel (k, k), so a drawn slice tells which it is."""
    vol = np.zeros((12, 12, 10), dtype=np.float32)
    for k in range(10):
        vol[k, k, k] = 1.0 + pos
    return vol


def _volume_source():
    def maps(pos):
        m = np.zeros((12, 12, 10), dtype=np.float32)
        m[2, 2, 3 + pos] = 1.0  # case p's maximum on slice 3 + p
        return {"Grad-CAM": m}

    return explorer.Source(_cases(), LABELS, _slice_volume, maps, volume=True, title="vol")


def test_a_volume_gallery_shows_the_slice_through_each_maps_maximum():
    import matplotlib.pyplot as plt

    fig = explorer.gallery(_volume_source(), n_wrong=2, n_unsure=0)
    cases = [t.split("\n")[0] for t in _titles(fig) if "\ntrue" in t]
    assert cases == ["v, slice 4", "x, slice 6"]  # cases 1 and 3
    image_axes = fig.get_axes()[::3]
    for ax, k in zip(image_axes, (4, 6)):
        drawn = ax.get_images()[0].get_array()[..., 0]  # grey: every channel the slice
        assert np.unravel_index(np.argmax(drawn), drawn.shape) == (k, k)
    plt.close(fig)


def test_the_slice_slider_draws_the_chosen_slice_and_filters_change_the_cases(monkeypatch):
    from medrepro.reporting import xai_plots

    drawn = []
    real = xai_plots.case_panel
    monkeypatch.setattr(xai_plots, "case_panel", lambda image, row, **kw: drawn.append(
        (row["name"], np.asarray(image), {m: np.asarray(v) for m, v in kw["maps"].items()}))
        or real(image, row, **kw))
    ex = explorer.Explorer(_volume_source())
    name, image, maps = drawn[-1]
    assert (name, ex.slice.value) == ("v", 4)  # the most confident wrong, at its map's maximum
    np.testing.assert_array_equal(image, _slice_volume(1)[:, :, 4])
    assert maps["Grad-CAM"][2, 2] == 1.0
    ex.slice.value = 8
    name, image, maps = drawn[-1]
    np.testing.assert_array_equal(image, _slice_volume(1)[:, :, 8])
    assert not maps["Grad-CAM"].any() and ex.last_figure_title.endswith("slice 8 of 10")
    ex.outcome.value = "correct"
    assert [v for _, v in ex.case.options] == [2, 4, 0, 5]
    assert ex.case.value == 2 and ex.slice.value == 5 and drawn[-1][0] == "w"
    ex.pred.value = "c"
    assert [v for _, v in ex.case.options] == [5] and ex.slice.value == 8
    np.testing.assert_array_equal(drawn[-1][1], _slice_volume(5)[:, :, 8])
