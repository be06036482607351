"""Study D's data: the MosMed volumes listed, both split protocols assigned, the preprocessing cache
built and the split arrays loaded (:func:`load_data`), and the splits as each scenario sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medrepro.core.profiles import DSettings
from medrepro.studies.d.scenarios import Scenario

Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split name -> (x (N, H, W, D), y (N,))


@dataclass
class Data:
    """The listed volumes, both split protocols, the preprocessing cache and the loaded arrays."""

    scans: Any  # pandas.DataFrame: the paper variant's split (DSettings.split)
    scans_heldout: Any  # pandas.DataFrame: the 70/20/10 held-out-test variant
    cache: Any  # medrepro.data.volumes.CacheSummary
    splits: Splits
    heldout_splits: Splits


def load_data(settings: DSettings, ds, *, profile: str) -> Data:
    """List the volumes of ``ds`` (at most ``settings.max_per_class`` per class), assign both
    split protocols, build (or reuse) the preprocessing cache of ``settings.volume_shape``
    ``(H, W, D)`` (its folder names ``profile``) and load the split arrays."""
    from medrepro.data import volumes
    from medrepro.reporting import report

    shape = tuple(settings.volume_shape)
    listed = volumes.list_scans(ds.root, max_per_class=settings.max_per_class)
    scans = volumes.assign_split(listed, settings.split)  # the paper variant: 160/40
    scans_heldout = volumes.assign_split(listed, "heldout")  # the 70/20/10 held-out variant
    folder = volumes.cache_dir(ds.source, profile, shape)  # .../<source>-<profile>-HxWxD
    cache = volumes.build_cache(scans.path, folder=folder, shape=shape)
    report.record_skips(ds.dataset_id, cache.skipped_frame(), source=ds.source,
                        n_files=len(scans))
    splits = volumes.load_splits(scans, folder=cache.folder)
    if splits["train"][0].shape[1:] != shape:
        raise ValueError(f"{cache.folder}: cached volumes have shape "
                         f"{splits['train'][0].shape[1:]}, expected {shape}")
    return Data(scans=scans, scans_heldout=scans_heldout, cache=cache, splits=splits,
                heldout_splits=volumes.load_splits(scans_heldout, folder=cache.folder))


def cache_frames(cache) -> list:
    """What to show of the cache build: its summary row, and the skipped volumes if any."""
    import pandas as pd

    frames = [cache.as_frame()]
    if cache.skipped:
        frames.append(pd.DataFrame(cache.skipped, columns=["file", "reason"]))
    return frames


def split_table(data: Data):
    """Volumes per class and split of both protocols, side by side."""
    import pandas as pd

    def counts(scans):
        return scans.groupby(["class_name", "split"]).size().unstack()

    return pd.concat({"thesis (paper)": counts(data.scans),
                      "heldout": counts(data.scans_heldout)}, axis=1)


def eval_split(splits: Splits) -> str:
    """The split the study evaluates on: ``test`` if there is one, else the thesis set-up's
    validation set (which its code calls the test set)."""
    return "test" if "test" in splits else "val"


def print_splits(splits: Splits) -> None:
    """One line per split: array shape, dtype and abnormal count."""
    for name, (x, y) in splits.items():
        print(f"{name:5s} x {x.shape} {x.dtype}  abnormal {int(y.sum())} / {len(y)}")


def lung_only_splits(splits: Splits) -> Splits:
    """The same splits with :func:`medrepro.data.volumes.lung_only` applied to every volume."""
    from medrepro.data import volumes

    return {name: (volumes.lung_only(x), y) for name, (x, y) in splits.items()}


def scenario_splits(scenario: Scenario, splits: Splits) -> Splits:
    """The splits as ``scenario`` sees them (lung-only slices for the lung-only scenario)."""
    return lung_only_splits(splits) if scenario.lung_only else splits
