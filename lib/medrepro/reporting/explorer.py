"""An explorer of a classifier's test set, for a live notebook (ipywidgets: Kaggle, Colab, Jupyter).

Filter the test cases by true and predicted class, right or wrong, and the model's confidence;
pick one and see its image, its probabilities and its explanation maps side by side (for a
volume, a slider scrolls its slices with the 3-D map). The cases are listed as the failure
gallery orders them: the wrong ones, most confident first, then the right ones, least confident
first. Maps are made when a case is first shown (and kept).

:func:`show` displays the explorer with a fallback: where no kernel runs the widgets (the static
HTML report, a notebook viewer), the same output shows the failure gallery's figure instead
(:func:`gallery`, drawn from the same :class:`Source`). The logic is plain Python
(:meth:`Explorer.selection`, :meth:`Explorer.render`), so it is tested without a browser.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ANY = "any"
OUTCOMES = ("all", "wrong", "correct")
MAX_LISTED = 2000  # cases in the picker at most (the first in gallery order)
MAP_CACHE = 64  # cases whose maps are kept
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass(frozen=True)
class Source:
    """What the explorer browses. ``cases``: :func:`medrepro.analysis.failures.cases` of the
    test set (index = position); ``image(pos)`` the case's image ``(H, W[, 3])`` or volume
    ``(H, W, D)``; ``maps(pos)`` method -> map of the image's spatial shape in [0, 1] (None: no
    maps); ``volume``: images are volumes (a slice slider)."""

    cases: pd.DataFrame
    labels: Sequence[str]
    image: Callable[[int], np.ndarray]
    maps: Callable[[int], Mapping[str, np.ndarray]] | None = None
    volume: bool = False
    title: str = ""


def ordered(cases: pd.DataFrame) -> pd.DataFrame:
    """The cases in gallery order: wrong ones by confidence, highest first, then right ones by
    confidence, lowest first (ties: test order)."""
    wrong = cases[~cases["correct"]].sort_values("confidence", ascending=False, kind="stable")
    right = cases[cases["correct"]].sort_values("confidence", ascending=True, kind="stable")
    return pd.concat([wrong, right])


def select(cases: pd.DataFrame, *, true: str = ANY, pred: str = ANY, outcome: str = "all",
           confidence: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Positions of the cases that pass the filters, in gallery order (:func:`ordered`)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome={outcome!r}: expected one of {', '.join(OUTCOMES)}")
    c = ordered(cases)
    keep = (c["confidence"] >= confidence[0] - 1e-9) & (c["confidence"] <= confidence[1] + 1e-9)
    if true != ANY:
        keep &= c["true_label"] == true
    if pred != ANY:
        keep &= c["pred_label"] == pred
    if outcome != "all":
        keep &= c["correct"] == (outcome == "correct")
    return c.index[keep].to_numpy()


class Explorer:
    """The widgets (``widget``: the whole box) and their callbacks over a :class:`Source`."""

    def __init__(self, source: Source):
        import ipywidgets as w

        self.source = source
        self._maps: dict[int, Mapping[str, np.ndarray]] = {}
        self._busy = False
        options = [ANY, *source.labels]
        self.true = w.Dropdown(options=options, value=ANY, description="true class")
        self.pred = w.Dropdown(options=options, value=ANY, description="predicted")
        self.outcome = w.ToggleButtons(options=list(OUTCOMES), value="all", description="cases")
        self.confidence = w.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.01,
                                             description="confidence", readout_format=".2f")
        self.case = w.Dropdown(options=[], description="case",
                               layout=w.Layout(width="460px"))
        depth = int(np.asarray(source.image(int(source.cases.index[0]))).shape[2]) \
            if source.volume and len(source.cases) else 1
        self.slice = w.IntSlider(value=0, min=0, max=max(depth - 1, 0), description="slice",
                                 layout=w.Layout(display=None if source.volume else "none"))
        self.status = w.HTML()
        self.view = w.Image(format="png")
        for control in (self.true, self.pred, self.outcome, self.confidence):
            control.observe(self._on_filter, names="value")
        self.case.observe(self._on_case, names="value")
        self.slice.observe(self._on_slice, names="value")
        self.widget = w.VBox([w.HTML(f"<b>{source.title}</b>") if source.title else w.HTML(),
                              w.HBox([self.true, self.pred]), self.outcome, self.confidence,
                              w.HBox([self.case, self.slice]), self.status, self.view])
        self.last_figure_title = ""
        self._on_filter()

    # ------------------------------------------------------------------ state
    def selection(self) -> np.ndarray:
        """Positions of the cases the filters let through, in gallery order."""
        return select(self.source.cases, true=self.true.value, pred=self.pred.value,
                      outcome=self.outcome.value, confidence=tuple(self.confidence.value))

    def maps_of(self, pos: int) -> Mapping[str, np.ndarray]:
        """Case ``pos``'s maps (made once, the last :data:`MAP_CACHE` kept)."""
        if self.source.maps is None:
            return {}
        if pos not in self._maps:
            if len(self._maps) >= MAP_CACHE:
                self._maps.pop(next(iter(self._maps)))
            self._maps[pos] = dict(self.source.maps(pos))
        return self._maps[pos]

    def header(self, pos: int) -> str:
        """The filter and the case's place in the selection, one line."""
        sel = self.selection()
        where = int(np.flatnonzero(sel == pos)[0]) + 1 if pos in sel else 0
        lo, hi = self.confidence.value
        return (f"true {self.true.value} · predicted {self.pred.value} · {self.outcome.value} · "
                f"confidence {lo:.2f}-{hi:.2f}: case {where} of {len(sel)}")

    def figure(self, pos: int, *, k: int | None = None):
        """The case panel of ``pos`` (a volume at slice ``k``, default the slider's)."""
        from medrepro.reporting import xai_plots

        row = self.source.cases.loc[pos]
        image, maps = np.asarray(self.source.image(pos)), self.maps_of(pos)
        header = self.header(pos)
        if self.source.volume:
            k = self.slice.value if k is None else k
            image = image[:, :, k]
            maps = {m: np.asarray(v)[:, :, k] for m, v in maps.items()}
            header += f" · slice {k} of {self.slice.max + 1}"
        self.last_figure_title = header
        return xai_plots.case_panel(image, row, labels=self.source.labels, maps=maps,
                                    header=header)

    def render(self) -> bytes:
        """Draw the chosen case into the image widget; its PNG bytes (empty: nothing chosen)."""
        import matplotlib.pyplot as plt

        pos = self.case.value
        if pos is None:
            self.view.value = b""
            return b""
        fig = self.figure(int(pos))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.view.value = png = buf.getvalue()
        return png

    # ------------------------------------------------------------------ callbacks
    def _on_filter(self, change=None) -> None:
        sel = self.selection()[:MAX_LISTED]
        c = self.source.cases
        self._busy = True
        try:
            self.case.options = [(_case_label(c.loc[p]), int(p)) for p in sel]
            self.case.value = int(sel[0]) if len(sel) else None
        finally:
            self._busy = False
        n = len(self.selection())
        self.status.value = (f"{n} of {len(c)} test cases match" if n else
                             "<span style='color:#b22222'>no test case matches these filters"
                             "</span>")
        self._on_case()

    def _on_case(self, change=None) -> None:
        if self._busy:
            return
        pos = self.case.value
        if pos is not None and self.source.volume:
            maps = self.maps_of(int(pos))
            from medrepro.reporting.xai_plots import volume_slice

            first = next(iter(maps.values()), None)
            self._busy = True
            try:
                self.slice.value = volume_slice(np.asarray(self.source.image(int(pos))), first)
            finally:
                self._busy = False
        self.render()

    def _on_slice(self, change=None) -> None:
        if not self._busy:
            self.render()


def _case_label(row) -> str:
    mark = "right" if row["correct"] else "WRONG"
    return (f"{mark} · {row['name']} · true {row['true_label']} / pred {row['pred_label']} "
            f"({row['confidence']:.2f})")


def gallery(source: Source, *, n_wrong: int | None = None, n_unsure: int | None = None,
            title: str | None = None, note: str = ""):
    """The failure gallery of ``source`` (:func:`medrepro.reporting.xai_plots.plot_gallery`):
    the ``n_wrong`` most confident wrong cases, then the ``n_unsure`` least confident right ones
    (:func:`medrepro.analysis.failures.gallery_cases`; defaults
    :data:`~medrepro.analysis.failures.N_WRONG`, :data:`~medrepro.analysis.failures.N_UNSURE`),
    each with its image, its maps (when ``source`` has them) and probabilities. A volume is
    shown by the slice through its first map's maximum (no map: the middle slice), named in the
    case's title. ``title`` defaults to ``source.title``; ``note`` follows the counts line."""
    from medrepro.analysis import failures
    from medrepro.reporting import xai_plots

    shown = failures.gallery_cases(source.cases,
                                   n_wrong=failures.N_WRONG if n_wrong is None else n_wrong,
                                   n_unsure=failures.N_UNSURE if n_unsure is None else n_unsure)
    images, maps, names = [], {}, []
    for pos, name in zip(shown.index, shown["name"]):
        image = np.asarray(source.image(int(pos)))
        made = dict(source.maps(int(pos))) if source.maps is not None else {}
        if source.volume:
            k = xai_plots.volume_slice(image, next(iter(made.values()), None))
            image, made = image[:, :, k], {m: np.asarray(v)[:, :, k] for m, v in made.items()}
            name = f"{name}, slice {k}"
        images.append(image)
        names.append(name)
        for method, m in made.items():
            maps.setdefault(method, []).append(m)
    counts = failures.counts_line(source.cases) + (f"; {note}" if note else "")
    return xai_plots.plot_gallery(images, shown.assign(name=names), labels=source.labels,
                                  maps=maps or None, note=counts,
                                  title=f"{title or source.title}: failure gallery")


def fallback_html(png: str | os.PathLike | None, *, note: str = "") -> str:
    """What a static page shows in the explorer's place: a line saying so and ``png`` (the
    failure gallery) inlined."""
    text = ("<p><i>The interactive explorer needs a live kernel (Kaggle, Colab, JupyterLab: run "
            "the notebook); here, the failure gallery.</i>" + (f" {note}" if note else "") + "</p>")
    if png is None or not Path(png).is_file():
        return text
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return text + f"<img src='data:image/png;base64,{data}' style='max-width:100%'/>"


def show(source: Source, *, fallback_png: str | os.PathLike | None = None,
         note: str = "") -> Explorer:
    """Build the :class:`Explorer` of ``source`` and display it; in the same output, for
    pages without a kernel, :func:`fallback_html` (the failure gallery's PNG). Returns it."""
    from IPython.display import display

    ex = Explorer(source)
    bundle = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0,
                            "model_id": ex.widget.model_id},
              "text/html": fallback_html(fallback_png, note=note),
              "text/plain": f"explorer of {len(source.cases)} test cases ({source.title})"}
    display(bundle, raw=True)
    return ex
