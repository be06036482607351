"""The run profiles: one table, per notebook, of sizes, sample counts, epochs and batch sizes.

- ``smoke``: CI. Each notebook finishes in about a minute on 2 CPU cores. Tiny phantoms, one
  epoch.
- ``demo``: the default main job on a laptop CPU. All six notebooks together <= 15 min on 2 cores
  is the budget (how the sizes were chosen: ``docs/decisions.md#x7``; measured runs:
  ``docs/status.md``).
  Sizes are reduced from the papers' (stated in every output); the numbers show the pipeline
  works, nothing more.
- ``paper``: exactly the protocols of ``docs/protocols.md``, for a GPU (Kaggle/Colab).

Measured training rates per machine, for the plan: ``benchmarks/rates.json``.

``None`` for a count means "all available". Read a row with :func:`settings`; show the table
with :func:`table`.

Batch sizes (:data:`BATCH_KEYS`) are **per replica**: with several GPUs every model trains under
``tf.distribute.MirroredStrategy`` and the global batch is the per-replica batch × the number
of replicas (``settings(..., replicas=n)`` returns the global one; ``table(replicas=n)`` shows
both).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


PROFILE_NAMES = ("smoke", "demo", "paper")
DEFAULT_PROFILE = "demo"

# Official dataset sizes (used by the paper profile's phantoms, so a phantom "paper" run has the
# real datasets' shape).
_MASOUD_PAPER = {"train_per_class": 1428, "test_per_class": 328}
_SARTAJ_PAPER = {"train_per_class": 718, "test_per_class": 99}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "01_download": {
        # Phantom sizes; a real source ignores them.
        "smoke": {"mri_train_per_class": 12, "mri_test_per_class": 4, "mri_size": 256,
                  "rsna_images": 96, "mosmed_per_class": 6, "mosmed_size": 128},
        # demo MRI: 256 px (the models read 64-224 px; generating 512 px images cost more time
        # than it bought). demo MosMed: 30 volumes per class (24/6 train/validation in the thesis split) at 128
        # in-plane; notebook 05 resizes to 48 voxels a side anyway, so a larger matrix would
        # only cost generation and reading time.
        "demo": {"mri_train_per_class": 150, "mri_test_per_class": 38, "mri_size": 256,
                 "rsna_images": 480, "mosmed_per_class": 30, "mosmed_size": 128},
        "paper": {"mri_train_per_class": _MASOUD_PAPER["train_per_class"],
                  "mri_test_per_class": _MASOUD_PAPER["test_per_class"], "mri_size": 512,
                  "rsna_images": 720_733, "mosmed_per_class": 100, "mosmed_size": 512},
    },
    "02_preprocess_rsna": {
        "smoke": {"max_images": None, "image_size": 224, "workers": 2},
        "demo": {"max_images": None, "image_size": 224, "workers": 2},
        "paper": {"max_images": None, "image_size": 224, "workers": None},
    },
    "03_lstm_cnn_mri": {
        # A: ResNet50 features at 224 (fixed by Table 1), then the 207.6M-parameter LSTM head,
        # slow on a CPU: smoke/demo train it on a subset for few epochs, and not on the official
        # split (a_official_lstm), for the demo's budget (docs/decisions.md#x7).
        # a_max_images / max_images cap the images used (stratified by split and class);
        # c_epochs caps each trial's epochs (None: the trial's own 25 or 50; the demo's 15 make
        # trials 1 and 2 one run, docs/decisions.md#c8).
        # The demo uses every image of a real set (max_images None; a phantom is small anyway):
        # E needs the whole pooled split to learn, for up to 30 epochs (docs/decisions.md#e7).
        # ig_steps: Integrated Gradients intervals (docs/decisions.md#e6).
        # e_patience/e_reduce_lr are the recipe's, the same in every profile (docs/decisions.md#e4);
        # smoke keeps its one epoch.
        "smoke": {"a_image_size": 224, "a_max_images": 48, "a_epochs": 1, "a_batch": 64,
                  "a_lr": 1e-4, "a_official_lstm": False, "a_checkpoint": "memory",
                  "a_backup": False, "max_images": None,
                  "c_image_size": 64, "c_epochs": 1, "c_batch": 16, "c_patience": 5,
                  "e_image_size": 64, "e_epochs": 1, "e_batch": 16, "e_patience": 5,
                  "e_reduce_lr": 2, "ig_steps": 8, "n_boot": 200},
        "demo": {"a_image_size": 224, "a_max_images": 200, "a_epochs": 3, "a_batch": 32,
                 "a_lr": 1e-4, "a_official_lstm": False, "a_checkpoint": "memory",
                 "a_backup": False, "max_images": None,
                 "c_image_size": 64, "c_epochs": 15, "c_batch": 16, "c_patience": 5,
                 "e_image_size": 64, "e_epochs": 30, "e_batch": 32, "e_patience": 8,
                 "e_reduce_lr": 3, "ig_steps": 16, "n_boot": 1000},
        "paper": {"a_image_size": 224, "a_max_images": None, "a_epochs": 50, "a_batch": 32,
                  "a_lr": 1e-4, "a_official_lstm": True, "a_checkpoint": "weights",
                  "a_backup": True, "max_images": None,
                  "c_image_size": 224, "c_epochs": None, "c_batch": 16, "c_patience": 5,
                  "e_image_size": 224, "e_epochs": 50, "e_batch": 32, "e_patience": 8,
                  "e_reduce_lr": 3, "ig_steps": 50, "n_boot": 2000},
    },
    "04_lightweight_ct": {
        # Tracing a model's train step costs more than training it at these sizes on a CPU, so
        # the reduced profiles train only some of the comparison: the demo leaves DenseNet121
        # out (its rows stay empty), smoke trains the proposed only (docs/decisions.md#x7).
        # b_init: how DenseNet121/MobileNet start. The paper does not say; "random" is our
        # choice, "imagenet" (online: Kaggle/Colab) the option (docs/decisions.md#b1).
        "smoke": {"image_size": 64, "max_epochs": 1, "batch_main": 32, "batch_compare": 8,
                  "max_train": 64, "patience": 3, "compare_models": ("proposed",),
                  "patient_models": ("proposed",), "bootstrap": 200, "b_init": "random"},
        "demo": {"image_size": 64, "max_epochs": 2, "batch_main": 32, "batch_compare": 8,
                 "max_train": 160, "patience": 3,
                 "compare_models": ("proposed", "mobilenet", "inception_v1"),
                 "patient_models": ("proposed",), "bootstrap": 1000, "b_init": "random"},
        "paper": {"image_size": 224, "max_epochs": 30, "batch_main": 32, "batch_compare": 8,
                  "max_train": None, "patience": 3,
                  "compare_models": ("proposed", "densenet121", "mobilenet", "inception_v1"),
                  "patient_models": ("proposed", "densenet121", "mobilenet", "inception_v1"),
                  "bootstrap": 1000, "b_init": "random"},
    },
    "05_3dcnn_mosmed": {
        # The 3D CNN's valid convolutions need every axis >= 46 voxels (models.chest_ct.MIN_SIDE).
        # max_per_class caps a real source (the phantom's size comes from 01_download).
        # split: the main (paper) variant's protocol, the thesis' 160/40 train/validation set-up;
        # heldout_epochs: the scenarios also run on the 70/20/10 held-out-test variant (D.heldout).
        # Of aug_5/aug_10/aug_15/aug_25 only aug_25 is trained, the others are its first epochs
        # (studies.d.run_scenarios): 55 of the thesis' 85 epochs are trained.
        # demo: 48×48×48 voxels (just above the 46 the network needs) on the whole
        # 30-per-class phantom of 01_download (48 train / 12 validation volumes), with the
        # thesis' own epochs (the held-out variant: its 25-epoch augmented scenario only): with
        # fewer, a scenario predicted one class (docs/decisions.md#x7).
        "smoke": {"volume_shape": (48, 48, 48), "max_per_class": 6,
                  "epochs": {"aug_5": 1, "aug_10": 1, "aug_15": 1, "aug_25": 1, "noaug_5": 1,
                             "lung_25": 1}, "batch": 4, "patience": 15, "split": "thesis",
                  "heldout_epochs": {"aug_25": 1}, "n_boot": 200},
        "demo": {"volume_shape": (48, 48, 48), "max_per_class": 30,
                 "epochs": {"aug_5": 5, "aug_10": 10, "aug_15": 15, "aug_25": 25, "noaug_5": 5,
                            "lung_25": 25}, "batch": 4, "patience": 15, "split": "thesis",
                 "heldout_epochs": {"aug_25": 25}, "n_boot": 1000},
        "paper": {"volume_shape": (128, 128, 64), "max_per_class": None,
                  "epochs": {"aug_5": 5, "aug_10": 10, "aug_15": 15, "aug_25": 25, "noaug_5": 5,
                             "lung_25": 25}, "batch": 4, "patience": 15, "split": "thesis",
                  "heldout_epochs": {"aug_5": 5, "aug_10": 10, "aug_15": 15, "aug_25": 25,
                                     "noaug_5": 5, "lung_25": 25}, "n_boot": 2000},
    },
    "06_compare": {
        # Collects what 01-05 recorded; a manifest artifact that is missing fails the notebook.
        "smoke": {"require_all_artifacts": True},
        "demo": {"require_all_artifacts": True},
        "paper": {"require_all_artifacts": True},
    },
}


# Per-replica batch sizes; settings(replicas=n) multiplies them into the global batch.
BATCH_KEYS = frozenset({"a_batch", "c_batch", "e_batch", "batch_main", "batch_compare", "batch"})


def trains_models(notebook: str) -> bool:
    """Whether ``notebook`` trains models (its profile rows have batch sizes): the others
    (download, preprocessing, comparison) never need TensorFlow."""
    return any(BATCH_KEYS & set(row) for row in PROFILES[notebook].values())


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise ``ValueError`` listing the known ones."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILE_NAMES)}")
    return profile


def settings(notebook: str, profile: str, *, replicas: int = 1) -> Mapping[str, Any]:
    """The read-only settings of ``notebook`` (e.g. ``"03_lstm_cnn_mri"``) under ``profile``.

    ``replicas`` > 1 (several GPUs under ``MirroredStrategy``): the batch sizes returned are the
    global batch, per-replica batch × ``replicas``.
    """
    check_profile(profile)
    if notebook not in PROFILES:
        raise KeyError(f"no profile table for notebook {notebook!r}; known: {', '.join(PROFILES)}")
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    row = dict(PROFILES[notebook][profile])
    for key in BATCH_KEYS & set(row):
        row[key] = row[key] * replicas
    return MappingProxyType(row)


def table(notebook: str | None = None, *, replicas: int = 1):
    """The profile table as a ``pandas.DataFrame`` (rows: notebook/setting, columns: profiles).

    Batch sizes are per replica; with ``replicas`` > 1 they read ``"32 × 2 = 64"`` (global).
    """
    import pandas as pd

    rows = []
    for nb, by_profile in PROFILES.items():
        if notebook is not None and nb != notebook:
            continue
        keys = list(dict.fromkeys(k for p in PROFILE_NAMES for k in by_profile[p]))
        for key in keys:
            rows.append({"notebook": nb, "setting": key,
                         **{p: _fmt_batch(by_profile[p].get(key, "-"), replicas)
                            if key in BATCH_KEYS else _fmt(by_profile[p].get(key, "-"))
                            for p in PROFILE_NAMES}})
    return pd.DataFrame(rows).set_index(["notebook", "setting"])


def _fmt_batch(value: Any, replicas: int) -> str:
    if replicas <= 1 or not isinstance(value, int):
        return _fmt(value)
    return f"{value} × {replicas} = {value * replicas}"


def _fmt(value: Any) -> str:
    if value is None:
        return "all"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, tuple):
        return "×".join(str(v) for v in value)
    return str(value)
