"""Every figure of the project, drawn one way: matplotlib/seaborn, returned as a ``Figure``.

The notebooks save what these return with :func:`medrepro.reporting.report.save_figure`, which adds the
phantom banner (:func:`phantom_banner`) to figures made from phantom data. Shared conventions:
titles name the data source (:func:`source_title`), ``LAYOUT_RECT`` leaves room for the banner,
figure sizes grow with the number of panels.

Sections: dataset overviews (notebook 01), DICOM windows (02), evaluation (confusion matrices,
learning curves, predictions), explanations (heat-map overlays), volumes (03-D montages,
augmentations, 3-D Grad-CAM), model diagrams and tables, scenario bars, the comparison plot (06).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.data import dicom, registry, volumes
from medrepro.analysis import evaluate

log = logging.getLogger(__name__)

CT_DISPLAY_HU = (-1000.0, 400.0)  # study D's HU clip, used to display its slices
# tight_layout box leaving a strip at the bottom for report.save_figure's phantom banner
LAYOUT_RECT = (0.0, 0.06, 1.0, 1.0)


# ---------------------------------------------------------------------------- conventions
def source_title(dataset_id: str, source: str) -> str:
    """``"<dataset> (PHANTOM)"`` or ``"<dataset> (real data)"``: every data figure says which."""
    return f"{dataset_id} ({'PHANTOM' if source == registry.PHANTOM else 'real data'})"


def phantom_banner(fig, text: str) -> None:
    """The red banner ``text`` under a figure made from phantom data (``report.PHANTOM_LABEL``)."""
    # Below the axes (va="top" at y=0): bbox_inches="tight" grows the canvas to hold it.
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=8,
             color="white", backgroundcolor="#b22222", weight="bold")


def dev_run_banner(fig, text: str) -> None:
    """The orange banner ``text`` above a figure made by a fast dev run (``devrun.LABEL``)."""
    fig.text(0.5, 1.01, text, ha="center", va="bottom", fontsize=8, color="black",
             backgroundcolor="#ffa500", weight="bold")


# ---------------------------------------------------------------------------- dataset overviews
def sample_files(root: str | os.PathLike, dataset_id: str, *, split: str = "Training",
                 per_class: int = 3, seed: int = 0) -> dict[str, list[Path]]:
    """``per_class`` seeded random files of each class folder of ``split``: {class: [paths]}."""
    from medrepro.data import images

    sp = registry.spec(dataset_id)
    rng = np.random.default_rng(seed)
    found = images.scan(root, dataset_id, splits=[split]).images  # usable files only
    out = {}
    for cls in sp.classes:
        files = list(found.loc[found["class_dir"] == cls, "path"])
        pick = rng.choice(len(files), size=min(per_class, len(files)), replace=False) \
            if files else []
        out[cls] = [files[i] for i in sorted(pick)]
    return out


def plot_samples(root: str | os.PathLike, dataset_id: str, *, source: str,
                 split: str = "Training", per_class: int = 3, seed: int = 0):
    """A grid of sample images: one row per class, ``per_class`` columns (A.fig1)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from medrepro.data import images

    picks = sample_files(root, dataset_id, split=split, per_class=per_class, seed=seed)
    fig, axes = plt.subplots(len(picks), per_class, figsize=(2.2 * per_class, 2.3 * len(picks)),
                             squeeze=False)
    for r, (cls, files) in enumerate(picks.items()):
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(files):
                gray = Image.fromarray(images.as_rgb(files[c])).convert("L")
                ax.imshow(np.asarray(gray), cmap="gray")
                ax.set_xlabel(files[c].name, fontsize=7)
            if c == 0:
                ax.set_ylabel(cls, fontsize=9)
    fig.suptitle(f"Sample {split} images per class — {source_title(dataset_id, source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_split_counts(inventory, dataset_id: str, *, source: str):
    """Files per split on disk beside the official counts (A.fig2)."""
    import matplotlib.pyplot as plt

    inv = _used_rows(inventory, dataset_id)
    sp = registry.spec(dataset_id)
    got = inv.groupby("split", sort=False)["files"].sum().reindex(list(sp.splits), fill_value=0)
    official = [sum(sp.official_counts[s].values()) for s in sp.splits]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bars = ax.bar(list(sp.splits), got.to_numpy(), color=["#4c72b0", "#dd8452"])
    ax.bar_label(bars, labels=[f"{n:,}\n(official {o:,})" for n, o in zip(got, official)],
                 fontsize=8)
    ax.set_ylabel("images")
    ax.set_ylim(0, max(1, got.max()) * 1.3)
    ax.set_title(f"Training vs testing images — {source_title(dataset_id, source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_class_counts(inventory, dataset_id: str, *, split: str, source: str):
    """Files per class of one split on disk, official counts written above the bars (A.fig3/4)."""
    import matplotlib.pyplot as plt

    inv = _used_rows(inventory, dataset_id)
    inv = inv[inv["split"] == split].set_index("class")
    sp = registry.spec(dataset_id)
    got = inv["files"].reindex(list(sp.classes), fill_value=0)
    official = [sp.official_counts[split].get(c, 0) for c in sp.classes]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bars = ax.bar(list(sp.classes), got.to_numpy(), color="#55a868")
    ax.bar_label(bars, labels=[f"{n:,}\n(official {o:,})" for n, o in zip(got, official)],
                 fontsize=8)
    ax.set_ylabel("images")
    ax.set_ylim(0, max(1, got.max()) * 1.3)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"{split} images per class — {source_title(dataset_id, source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def _used_rows(inventory, dataset_id: str):
    """The inventory rows of the data a notebook uses (not of real data found but not used)."""
    inv = inventory[inventory["dataset"] == dataset_id]
    used = inv.loc[inv["status"] == "used", "source"]
    return inv[inv["source"] == used.iloc[0]] if len(used) else inv.iloc[:0]


def rsna_examples(root: str | os.PathLike, *, seed: int = 0) -> dict[str, Path | None]:
    """One readable DICOM per class of the single-type selection: {class: path or None}.

    Candidates are tried in a seeded order; an unreadable file is skipped (logged) and the next
    one tried.
    """
    from medrepro.data import dicom, rsna

    root = Path(root)
    labels = rsna.select_single_type(rsna.read_labels(root / registry.RSNA_LABELS_CSV))
    rng = np.random.default_rng(seed)
    out: dict[str, Path | None] = {}
    for name in rsna.CLASSES:
        ids = labels.loc[labels["label_name"] == name, "image_id"].to_numpy()
        out[name] = None
        for image_id in ids[rng.permutation(len(ids))][:20]:
            path = root / "stage_2_train" / f"{image_id}.dcm"
            try:
                dicom.read_hu(path)
            except Exception as exc:  # corrupt or missing file: try the next one
                log.warning("B.fig1: skipped %s (%s)", path.name, exc)
                continue
            out[name] = path
            break
    return out


def plot_rsna_examples(root: str | os.PathLike, *, source: str, seed: int = 0):
    """One slice per haemorrhage class, brain window (level 40, width 80) (B.fig1)."""
    import matplotlib.pyplot as plt

    from medrepro.data import dicom

    examples = rsna_examples(root, seed=seed)
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.4))
    win = dicom.BRAIN_WINDOW
    for ax, (name, path) in zip(axes.ravel(), examples.items()):
        ax.set_xticks([])
        ax.set_yticks([])
        if path is None:
            ax.set_title(f"{name}: none available", fontsize=9)
            continue
        ax.imshow(dicom.window(dicom.read_hu(path), win.level, win.width), cmap="gray",
                  vmin=0, vmax=255)
        ax.set_title(f"{name}\n{path.stem}", fontsize=9)
    fig.suptitle(f"One example per class, brain window (L {win.level:g}, W {win.width:g}) — "
                 f"{source_title('rsna_ich', source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_ct_slices(root: str | os.PathLike, *, source: str, index: int = 0):
    """The middle axial slice of one CT-0 and one CT-23 volume, HU [-1000, 400] (D.fig3_2).

    Rotated 90° as study D's preprocessing does, so the patient's front is up.
    """
    import matplotlib.pyplot as plt

    from medrepro.data import volumes

    sp = registry.spec("mosmed")
    fig, axes = plt.subplots(1, len(sp.splits), figsize=(4.2 * len(sp.splits), 4.6),
                             squeeze=False)
    for ax, split, cls in zip(axes[0], sp.splits, sp.classes):
        files = sorted(p for p in (Path(root) / split).glob("*") if sp.is_data_file(p.name))
        ax.set_xticks([])
        ax.set_yticks([])
        if not files:
            ax.set_title(f"{split}: no volume", fontsize=9)
            continue
        path = files[min(index, len(files) - 1)]
        vol = volumes.read_volume(path)  # (H, W, D) HU
        z = vol.shape[2] // 2
        ax.imshow(np.rot90(vol[:, :, z]), cmap="gray", vmin=CT_DISPLAY_HU[0],
                  vmax=CT_DISPLAY_HU[1])
        ax.set_title(f"{split} ({cls})", fontsize=10)
        ax.set_xlabel(f"{path.name}, slice {z} of {vol.shape[2]}, {vol.shape[0]}×{vol.shape[1]}",
                      fontsize=7)
    fig.suptitle(f"A sample CT slice, HU [{CT_DISPLAY_HU[0]:g}, {CT_DISPLAY_HU[1]:g}] — "
                 f"{source_title('mosmed', source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


# ---------------------------------------------------------------------------- DICOM windows
def plot_windows(path: str | os.PathLike, *, windows: Sequence[dicom.Window] = dicom.RSNA_WINDOWS,
                 names: Sequence[str] = dicom.RSNA_WINDOW_NAMES, size: int = dicom.DEFAULT_SIZE,
                 title: str = ""):
    """Figure of one slice: HU overview, each window at full resolution, the RGB at ``size``."""
    import matplotlib.pyplot as plt

    hu = dicom.read_hu(path)
    rgb = dicom.window_rgb(hu, windows=windows, size=size)
    fig, axes = plt.subplots(1, 2 + len(windows), figsize=(3.2 * (2 + len(windows)), 3.8))
    lo = dicom.OVERVIEW_WINDOW.level - dicom.OVERVIEW_WINDOW.width / 2
    axes[0].imshow(hu, cmap="gray", vmin=lo, vmax=lo + dicom.OVERVIEW_WINDOW.width)
    axes[0].set_title(f"HU {hu.shape[0]}×{hu.shape[1]}\n({lo:.0f}..{lo + dicom.OVERVIEW_WINDOW.width:.0f})")
    for ax, w, name, channel in zip(axes[1:], windows, names, "RGB"):
        ax.imshow(dicom.window(hu, *w), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{channel}: {name}\nlevel {w.level:g}, width {w.width:g}")
    axes[-1].imshow(rgb)
    axes[-1].set_title(f"RGB {size}×{size}")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title or Path(path).name)
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # room for the suptitle above the panel titles
    return fig


# ---------------------------------------------------------------------------- evaluation
def plot_confusion(cm: np.ndarray, *, labels: Sequence[str], ax=None, title: str = ""):
    """Heat map of a confusion matrix (counts or normalised) with seaborn; returns the Figure.

    Rows are true classes, columns predicted. Integer matrices are annotated as counts, float
    ones with two decimals.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    cm = np.asarray(cm)
    if ax is None:
        size = 1.2 + 0.9 * len(labels)
        _, ax = plt.subplots(figsize=(size + 1.2, size))
    fmt = "d" if np.issubdtype(cm.dtype, np.integer) else ".2f"
    sns.heatmap(cm, annot=True, fmt=fmt, cmap="Blues", cbar=True, square=True,
                xticklabels=labels, yticklabels=labels, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    ax.figure.tight_layout()
    return ax.figure


def plot_history(history_df: pd.DataFrame, *, metric: str, ax=None, title: str = ""):
    """Training and validation curves of ``metric`` (and ``val_<metric>``) per epoch.

    ``history_df`` is what :func:`medrepro.training.train.fit` returns (column ``epoch`` optional:
    1-based row numbers otherwise). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if metric not in history_df.columns:
        raise evaluate.EvaluationError(f"history has no column {metric!r}; columns: "
                              f"{', '.join(map(str, history_df.columns))}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    epochs = (history_df["epoch"].to_numpy() if "epoch" in history_df.columns
              else np.arange(1, len(history_df) + 1))
    ax.plot(epochs, history_df[metric], marker="o", label=f"train {metric}")
    if f"val_{metric}" in history_df.columns:
        ax.plot(epochs, history_df[f"val_{metric}"], marker="o", label=f"validation {metric}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def plot_predictions(images: np.ndarray, y_true, y_pred, *, labels: Sequence[str],
                     n: int = 12, seed: int = 0, cols: int = 4, title: str = ""):
    """A grid of ``n`` random images titled ``true / predicted`` (green right, red wrong).

    ``images``: ``(N, H, W)`` or ``(N, H, W, C)``, float in [0, 1] or uint8. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    y_true, y_pred = evaluate.check_pair(y_true, y_pred)
    if len(images) != y_true.size:
        raise evaluate.EvaluationError(f"plot_predictions: {len(images)} images but {y_true.size} labels")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), size=min(n, len(images)), replace=False)
    rows = max(1, int(np.ceil(len(pick) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), pick):
        img = np.asarray(images[i])
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ok = y_true[i] == y_pred[i]
        ax.set_title(f"true: {labels[y_true[i]]}\npred: {labels[y_pred[i]]}", fontsize=8,
                     color="green" if ok else "red")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- explanations
def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45,
            cmap: str = "jet") -> np.ndarray:
    """RGB float image in [0, 1]: ``image`` (H, W[, C], any range) blended with a colour map."""
    import matplotlib

    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    span = img.max() - img.min()
    img = (img - img.min()) / span if span > 0 else np.zeros_like(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    colours = matplotlib.colormaps[cmap](np.clip(heatmap, 0, 1))[..., :3]
    return np.clip((1 - alpha) * img + alpha * colours, 0.0, 1.0)


def plot_maps(images: np.ndarray, maps: np.ndarray, *, titles: Sequence[str] = (),
              suptitle: str = "", alpha: float = 0.45):
    """Figure: each image (top row) above its heat-map overlay (bottom row). Returns the Figure.

    ``images`` ``(N, H, W[, C])``, ``maps`` ``(N, H, W)`` in [0, 1].
    """
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5.0), squeeze=False)
    for i in range(n):
        img = np.asarray(images[i], dtype=np.float32)
        axes[0, i].imshow(overlay(img, np.zeros(img.shape[:2]), alpha=0.0))
        axes[1, i].imshow(overlay(img, maps[i], alpha=alpha))
        if i < len(titles):
            axes[0, i].set_title(titles[i], fontsize=8)
        for ax in axes[:, i]:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- volumes
def montage(vol: np.ndarray, *, cols: int = 8, gap: int = 1) -> np.ndarray:
    """The slices ``vol[:, :, k]`` of ``(H, W, D)`` tiled row by row into one 2-D image
    ``(rows * (H + gap), cols * (W + gap))``; unused tiles and gaps are NaN (drawn blank)."""
    h, w, depth = vol.shape
    rows = int(np.ceil(depth / cols))
    out = np.full((rows * (h + gap), cols * (w + gap)), np.nan, dtype=np.float32)
    for k in range(depth):
        r, c = divmod(k, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = vol[:, :, k]
    return out


def plot_montage(vol: np.ndarray, *, cols: int = 8, title: str = "", cmap: str = "gray"):
    """All slices of a ``(H, W, D)`` volume as one grid image (Fig 4.3), slice 0 top left,
    row by row; returns the Figure."""
    import matplotlib.pyplot as plt

    rows = int(np.ceil(vol.shape[2] / cols))
    fig, ax = plt.subplots(figsize=(10, 10 * rows * vol.shape[0] / (cols * vol.shape[1]) + 0.5))
    ax.imshow(montage(vol, cols=cols), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title or f"all {vol.shape[2]} slices of one volume (row by row)")
    fig.tight_layout()
    return fig


def plot_augmentations(vol: np.ndarray, *, n: int = 16, slice_index: int | None = None,
                       seed: int = 0, cmap: str = "gray"):
    """One slice of ``vol`` ``(H, W, D)`` before (left) and after ``n`` random augmentations of the
    whole volume (Fig 4.2); returns the Figure."""
    import matplotlib.pyplot as plt

    k = vol.shape[2] // 2 if slice_index is None else slice_index
    augmenter = volumes.make_augmenter(seed=seed)
    cols = int(np.ceil(np.sqrt(n)))
    fig = plt.figure(figsize=(3 + 1.8 * cols, 1.8 * cols))
    grid = fig.add_gridspec(cols, cols + 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(vol[:, :, k], cmap=cmap, vmin=0, vmax=1)
    ax.set_title(f"A) original, slice {k}")
    ax.axis("off")
    for i in range(n):
        aug = volumes.augment_volume(vol, augmenter, step=i)
        ax = fig.add_subplot(grid[i // cols, 2 + i % cols])
        ax.imshow(aug[:, :, k], cmap=cmap, vmin=0, vmax=1)
        ax.axis("off")
    fig.suptitle(f"B) {n} random augmentations of the same volume (flip, rotation ±"
                 f"{volumes.ROTATION_FACTOR} turn, contrast {volumes.CONTRAST_FACTOR}; one transform per volume)",
                 fontsize=9)
    return fig


def plot_lung_slices(vol: np.ndarray, *, axes=None, cmap: str = "gray"):
    """Slice 0 (replaced by the lung-only rule: no lung) beside the middle slice of ``vol``."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(6, 3))
    head, _ = volumes.lung_slices(vol.shape[2])
    for ax, k, label in [(axes[0], 0, f"slice 0 (one of the first {head}: replaced)"),
                         (axes[1], vol.shape[2] // 2, f"slice {vol.shape[2] // 2} (lung)")]:
        ax.imshow(vol[:, :, k], cmap=cmap, vmin=0, vmax=1)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    return axes[0].figure


def plot_gradcam_slices(vol: np.ndarray, cam: np.ndarray, *, n: int = 8, title: str = ""):
    """``n`` evenly spaced slices of ``vol`` ``(H, W, D)`` with the 3-D heat map ``cam`` (same
    shape, [0, 1]) overlaid; returns the Figure."""
    import matplotlib.pyplot as plt

    ks = np.linspace(0, vol.shape[2] - 1, n).round().astype(int)
    fig, axes = plt.subplots(2, n, figsize=(1.7 * n, 3.8))
    for ax_img, ax_cam, k in zip(axes[0], axes[1], ks):
        ax_img.imshow(vol[:, :, k], cmap="gray", vmin=0, vmax=1)
        ax_img.set_title(f"slice {k}", fontsize=7)
        ax_cam.imshow(overlay(vol[:, :, k], cam[:, :, k]))
        ax_img.axis("off")
        ax_cam.axis("off")
    fig.suptitle(title or "3-D Grad-CAM (bottom) of one volume", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- models, scenarios, comparison
def plot_diagram(model, *, title: str = "", preamble: Sequence[tuple[str, str]] = ()):
    """A block diagram of a model's layers (name, type, output shape, params) with matplotlib.

    ``preamble``: ``(label, detail)`` boxes drawn before the model's first layer (e.g. the
    image and the feature extractor outside the summarised model). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    boxes = [(label, detail, "#e8e8e8") for label, detail in preamble]
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        colour = {"LSTM": "#cfe2f3", "Dropout": "#f4f4f4", "Dense": "#d9ead3"}.get(kind,
                                                                              "#fff2cc")
        detail = f"{kind} · out {tuple(layer.output.shape)} · {layer.count_params():,} params"
        boxes.append((layer.name, detail, colour))
    height = 0.62 * len(boxes) + 0.8
    fig, ax = plt.subplots(figsize=(7.5, height))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, len(boxes))
    ax.axis("off")
    for i, (label, detail, colour) in enumerate(boxes):
        y = len(boxes) - i - 0.85
        ax.add_patch(FancyBboxPatch((0.08, y), 0.84, 0.62, boxstyle="round,pad=0.02",
                                    facecolor=colour, edgecolor="#555555"))
        ax.text(0.5, y + 0.41, label, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(0.5, y + 0.17, detail, ha="center", va="center", fontsize=7.5)
        if i < len(boxes) - 1:
            ax.annotate("", xy=(0.5, y - 0.12), xytext=(0.5, y - 0.01),
                        arrowprops={"arrowstyle": "->", "color": "#555555"})
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters")
    fig.tight_layout()
    return fig


def plot_bars(table, *, columns: Sequence[str], title: str = "", ax=None):
    """Grouped bars of ``columns`` of a scenario table, reproduced (solid) beside reported
    (hatched, where the paper has a value); returns the Figure (Figs 4.6-4.8)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(table)), 3.8))
    n = len(columns)
    width = 0.8 / (2 * n)
    x = np.arange(len(table))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, col in enumerate(columns):
        pos = x - 0.4 + width * (2 * i + 0.5)
        ax.bar(pos, table[col].astype(float), width, color=colours[i % len(colours)],
               label=f"{col} (ours)")
        rep_col = f"reported_{col}"
        if rep_col in table:
            rep = table[rep_col].astype(float)
            ax.bar(pos + width, rep, width, color=colours[i % len(colours)], alpha=0.45,
                   hatch="//", label=f"{col} (reported)")
    ax.set_xticks(x)
    names = [s.replace(", ", "\n") for s in table["scenario"]]
    if "epochs_run" in table:  # reduced profiles run fewer epochs than the scenario's name
        names = [f"{n}\n(ran {e})" for n, e in zip(names, table["epochs_run"])]
    ax.set_xticklabels(names, fontsize=7)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.figure.tight_layout()
    return ax.figure


def plot_table(df, *, title: str = ""):
    """A small table (e.g. a model summary frame) drawn as a figure (D's Fig 4.5)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 0.28 * (len(df) + 2)))
    ax.axis("off")
    cells = [[str(v) if not isinstance(v, (int, np.integer)) else f"{v:,}" for v in row]
             for row in df.itertuples(index=False)]
    tab = ax.table(cellText=cells, colLabels=list(df.columns), loc="center", cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.15)
    ax.set_title(title, fontsize=9)
    return fig


def plot_confusions(scores: dict[str, dict[str, Any]], *, splits: Sequence[str] = ("train",
                    "test"), labels: Sequence[str] = ("normal", "abnormal")):
    """Train and test confusion matrices of every scenario, one column per scenario (Fig 4.11):
    rates normalised by true class (each row sums to 1, as the thesis plots them), each cell
    annotated with its rate and, below it, its count; rows true, columns predicted. Returns
    the Figure."""
    import matplotlib.pyplot as plt

    keys = list(scores)
    fig, axes = plt.subplots(len(splits), len(keys), figsize=(2.2 * len(keys), 2.3 * len(splits)),
                             squeeze=False)
    for j, key in enumerate(keys):
        for i, split in enumerate(splits):
            s = scores[key][split]
            cm = evaluate.confusion(s["y"], s["pred"], n_classes=len(labels))
            rates = evaluate.confusion(s["y"], s["pred"], n_classes=len(labels), normalize=True)
            ax = axes[i, j]
            ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
            for (r, c), v in np.ndenumerate(rates):
                ax.text(c, r, f"{v:.2f}\n({cm[r, c]})", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 else "black")
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7, rotation=90, va="center")
            ax.set_title(f"{split}: {key}", fontsize=8)
            if j == 0:
                ax.set_ylabel("true", fontsize=7)
            if i == len(splits) - 1:
                ax.set_xlabel("predicted", fontsize=7)
    fig.tight_layout()
    return fig


def plot_compare(table: pd.DataFrame, *, title: str = "Reported vs reproduced"):
    """Dot plot: the paper's number (black x) and ours with its 95% CI, one row per metric."""
    import matplotlib.pyplot as plt

    rows = table[table["reproduced"].notna()].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    if rows.empty:
        ax.text(0.5, 0.5, "no reproduced metrics recorded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    y = range(len(rows))
    lo = (rows["reproduced"] - rows["ci_low"].fillna(rows["reproduced"])).clip(lower=0)
    hi = (rows["ci_high"].fillna(rows["reproduced"]) - rows["reproduced"]).clip(lower=0)
    ax.errorbar(rows["reproduced"], list(y), xerr=[lo, hi], fmt="o", color="tab:blue",
                capsize=3, label="reproduced (95% CI)")
    reported = rows["reported"].astype(float)
    ax.scatter(reported, list(y), marker="x", color="black", zorder=3, label="reported")
    ax.set_yticks(list(y), [f"{r.study}: {r.metric}" for r in rows.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("value")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def plot_reliability(frames: dict[str, pd.DataFrame], *, title: str = "Reliability"):
    """Reliability diagram: per confidence bin the accuracy against the mean confidence, one
    line per frame (``{"before": ..., "after": ...}`` of
    :func:`medrepro.analysis.calibration.reliability_frames`), the diagonal for perfect
    calibration, and the items per bin below."""
    import matplotlib.pyplot as plt

    fig, (ax, bars) = plt.subplots(2, 1, figsize=(5, 5.6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for (name, frame), colour in zip(frames.items(), ("tab:red", "tab:blue", "tab:green")):
        full = frame[frame["count"] > 0]
        ax.plot(full["confidence"], full["accuracy"], "o-", color=colour, label=name)
        width = (frame["hi"] - frame["lo"]).iloc[0]
        bars.bar(frame["lo"] + width / 2, frame["count"], width=width * 0.9, alpha=0.5,
                 color=colour, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    bars.set_xlabel("confidence (largest probability)")
    bars.set_ylabel("items")
    fig.tight_layout()
    return fig


def plot_summary_table(df, *, title: str = ""):
    """A model summary frame drawn as a matplotlib table at its automatic font size, one
    0.3-inch row per layer (B's Fig 4); returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.3 * len(df) + 1))
    ax.axis("off")
    ax.table(cellText=df.values, colLabels=df.columns, loc="center").auto_set_font_size(True)
    ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------- explanation scores
HIT_COLOUR, MISS_COLOUR = "tab:green", "tab:red"


def plot_pointing_game(images: np.ndarray, maps: dict[str, np.ndarray], masks: np.ndarray,
                       peaks: dict[str, Sequence], hits: dict[str, Sequence[bool]], *,
                       titles: Sequence[str] = (), radius: float = 3,
                       tolerances: np.ndarray | None = None, suptitle: str = ""):
    """The pointing game drawn: one row per method (``maps`` key), one column per image.

    ``images`` ``(N, H, W[, C])``, ``maps[method]`` ``(N, H, W)`` in [0, 1], ``masks`` ``(N, H,
    W)`` bool (the lesion), ``peaks[method][i]`` the map's maximum ``(row, col)`` or None,
    ``hits[method][i]``; the method names the row. Each panel: the map over the image, the
    lesion outline (white), the
    tolerance ``radius`` around it (dashed cyan; ``tolerances`` ``(N, H, W)`` bool instead, e.g.
    slices of a 3-D dilation), the maximum (a cross); "hit"/"miss" in the title. Returns the
    Figure.
    """
    import matplotlib.pyplot as plt

    from medrepro.analysis import xai_score

    methods = list(maps)
    n = len(images)
    fig, axes = plt.subplots(len(methods), n, figsize=(2.3 * n + 0.8, 2.7 * len(methods) + 0.9),
                             squeeze=False)
    for r, method in enumerate(methods):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(overlay(images[i], maps[method][i], alpha=0.4))
            if np.any(masks[i]):  # a slice may miss the lesion (3-D)
                ax.contour(np.asarray(masks[i], float), levels=[0.5], colors="white",
                           linewidths=0.9)
            grown = xai_score.dilate(masks[i], radius=radius) if tolerances is None \
                else tolerances[i]
            if np.any(grown):
                ax.contour(np.asarray(grown, float), levels=[0.5], colors="cyan", linewidths=0.8,
                           linestyles="dashed")
            if peaks[method][i] is not None:
                ax.plot(peaks[method][i][1], peaks[method][i][0], marker="x", color="yellow",
                        markersize=9, mew=2.2)
            hit = bool(hits[method][i])
            head = f"{titles[i]}\n" if i < len(titles) else ""
            ax.set_title(f"{head}{'hit' if hit else 'miss'}", fontsize=7.5,
                         color=HIT_COLOUR if hit else MISS_COLOUR)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(method, fontsize=9)
    fig.suptitle(suptitle or "Pointing game: is the map's maximum (x) on the lesion?", fontsize=9)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_message(text: str, *, title: str = ""):
    """A small figure that only says ``text`` (an artifact that could not be made here)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig
