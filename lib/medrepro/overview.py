"""Dataset overview figures for ``01_download``: samples per class, counts, CT examples.

Each function takes a resolved dataset's ``root`` (or the inventory table) and returns a
matplotlib ``Figure``; the notebook shows and saves it. Titles name the data source, so a
phantom figure never passes for the real set's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from medrepro import datasets, registry

log = logging.getLogger(__name__)

CT_DISPLAY_HU = (-1000.0, 400.0)  # study D's HU clip, used to display its slices
# tight_layout box leaving a strip at the bottom for report.save_figure's phantom banner
LAYOUT_RECT = (0.0, 0.06, 1.0, 1.0)


def _title(dataset_id: str, source: str) -> str:
    return f"{dataset_id} ({'PHANTOM' if source == 'phantom' else 'real data'})"


def sample_files(root: str | os.PathLike, dataset_id: str, *, split: str = "Training",
                 per_class: int = 3, seed: int = 0) -> dict[str, list[Path]]:
    """``per_class`` seeded random files of each class folder of ``split``: {class: [paths]}."""
    sp = registry.spec(dataset_id)
    rng = np.random.default_rng(seed)
    out = {}
    for cls in sp.classes:
        files = sorted((Path(root) / split / cls).glob(f"*{sp.file_suffix}"))
        pick = rng.choice(len(files), size=min(per_class, len(files)), replace=False) \
            if files else []
        out[cls] = [files[i] for i in sorted(pick)]
    return out


def plot_samples(root: str | os.PathLike, dataset_id: str, *, source: str,
                 split: str = "Training", per_class: int = 3, seed: int = 0):
    """A grid of sample images: one row per class, ``per_class`` columns (A.fig1)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    picks = sample_files(root, dataset_id, split=split, per_class=per_class, seed=seed)
    fig, axes = plt.subplots(len(picks), per_class, figsize=(2.2 * per_class, 2.3 * len(picks)),
                             squeeze=False)
    for r, (cls, files) in enumerate(picks.items()):
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(files):
                with Image.open(files[c]) as im:
                    ax.imshow(np.asarray(im.convert("L")), cmap="gray")
                ax.set_xlabel(files[c].name, fontsize=7)
            if c == 0:
                ax.set_ylabel(cls, fontsize=9)
    fig.suptitle(f"Sample {split} images per class — {_title(dataset_id, source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_split_counts(inventory, dataset_id: str, *, source: str):
    """Files per split on disk beside the official counts (A.fig2)."""
    import matplotlib.pyplot as plt

    inv = _used_rows(inventory, dataset_id)
    sp = datasets.spec(dataset_id)
    got = inv.groupby("split", sort=False)["files"].sum().reindex(list(sp.splits), fill_value=0)
    official = [sum(sp.official_counts[s].values()) for s in sp.splits]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bars = ax.bar(list(sp.splits), got.to_numpy(), color=["#4c72b0", "#dd8452"])
    ax.bar_label(bars, labels=[f"{n:,}\n(official {o:,})" for n, o in zip(got, official)],
                 fontsize=8)
    ax.set_ylabel("images")
    ax.set_ylim(0, max(1, got.max()) * 1.3)
    ax.set_title(f"Training vs testing images — {_title(dataset_id, source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_class_counts(inventory, dataset_id: str, *, split: str, source: str):
    """Files per class of one split on disk, official counts written above the bars (A.fig3/4)."""
    import matplotlib.pyplot as plt

    inv = _used_rows(inventory, dataset_id)
    inv = inv[inv["split"] == split].set_index("class")
    sp = datasets.spec(dataset_id)
    got = inv["files"].reindex(list(sp.classes), fill_value=0)
    official = [sp.official_counts[split].get(c, 0) for c in sp.classes]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bars = ax.bar(list(sp.classes), got.to_numpy(), color="#55a868")
    ax.bar_label(bars, labels=[f"{n:,}\n(official {o:,})" for n, o in zip(got, official)],
                 fontsize=8)
    ax.set_ylabel("images")
    ax.set_ylim(0, max(1, got.max()) * 1.3)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"{split} images per class — {_title(dataset_id, source)}", fontsize=10)
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
    from medrepro import dicom, rsna

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

    from medrepro import dicom

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
                 f"{_title('rsna_ich', source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig


def plot_ct_slices(root: str | os.PathLike, *, source: str, index: int = 0):
    """The middle axial slice of one CT-0 and one CT-23 volume, HU [-1000, 400] (D.fig3_2).

    Rotated 90° as study D's preprocessing does, so the patient's front is up.
    """
    import matplotlib.pyplot as plt

    from medrepro import volumes

    sp = datasets.spec("mosmed")
    fig, axes = plt.subplots(1, len(sp.splits), figsize=(4.2 * len(sp.splits), 4.6),
                             squeeze=False)
    for ax, split, cls in zip(axes[0], sp.splits, sp.classes):
        files = sorted((Path(root) / split).glob("*.nii.gz"))
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
                 f"{_title('mosmed', source)}", fontsize=10)
    fig.tight_layout(rect=LAYOUT_RECT)
    return fig
