"""The run profiles: one table of every study's settings, smoke / demo / paper side by side.

- ``smoke``: CI. Each notebook finishes in about a minute on 2 CPU cores. Tiny phantoms, one
  epoch.
- ``demo``: the default main job on a laptop CPU; all six notebooks within 15 minutes on 2 cores
  (how the sizes were chosen: ``docs/decisions.md#x7``; measured times: ``docs/status.md``).
  Sizes are reduced from the papers' (stated in every output); the numbers show the pipeline
  works, nothing more.
- ``paper``: exactly the protocols of the papers (``docs/protocols.md``), for a GPU.

Each row of :data:`PROFILES` is a frozen dataclass with the study's own, unprefixed fields
(:class:`ASettings` ... :class:`ESettings`; :class:`PhantomSizes` for notebook 01,
:class:`RsnaCacheSettings` for 02, :class:`CompareSettings` for 06); :data:`NOTEBOOK_ROWS` says
which rows a notebook reads. Read one with :func:`settings`, a notebook's with
:func:`notebook_settings`; show the whole table with :func:`table`. ``None`` for a count means
"all available".

**Batch sizes are global** (the papers' batch): with several replicas (GPUs under
``tf.distribute.MirroredStrategy``) each replica gets ``batch / replicas``
(:func:`choose_batching`; one replica where a batch does not divide, with the reason). The
explicit option ``MEDREPRO_BATCH_PER_REPLICA=1`` puts the profile's batch on every replica
instead (global batch × replicas, faster, not the papers' protocol; every artifact says so).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from medrepro.core import devrun

PROFILE_NAMES = ("smoke", "demo", "paper")
DEFAULT_PROFILE = "demo"
BATCH_PER_REPLICA_ENV = "MEDREPRO_BATCH_PER_REPLICA"


# ---------------------------------------------------------------------------- the rows
@dataclass(frozen=True)
class PhantomSizes:
    """Notebook 01: the phantoms' sizes (a real source ignores them). Images per class, pixels
    (``*_size``: the side of a generated image), RSNA DICOM files."""

    mri_train_per_class: int
    mri_test_per_class: int
    mri_size: int
    rsna_images: int
    mosmed_per_class: int
    mosmed_size: int
    BATCHES: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class RsnaCacheSettings:
    """Notebook 02: the RSNA image cache (side in pixels, image cap, worker processes; None:
    all images / the CPU count)."""

    max_images: int | None
    image_size: int
    workers: int | None
    BATCHES: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class ASettings:
    """Study A: ResNet50 features at ``image_size`` (fixed by its Table 1), at most
    ``max_images`` images, the LSTM head trained ``epochs`` at ``batch`` with Adam ``lr``.
    ``official_lstm``: the LSTM head is also trained on the official split; ``checkpoint`` /
    ``backup``: :class:`medrepro.training.train.FitConfig`'s; ``n_boot``: bootstrap resamples."""

    image_size: int
    max_images: int | None
    epochs: int
    batch: int
    lr: float
    official_lstm: bool
    checkpoint: str | None
    backup: bool
    n_boot: int
    BATCHES: ClassVar[tuple[str, ...]] = ("batch",)


@dataclass(frozen=True)
class BSettings:
    """Study B: input side ``image_size``, at most ``max_epochs`` with early stopping after
    ``patience``; the main run at ``batch_main``, the comparison at ``batch_compare``; at most
    ``max_train`` training images; the models trained on the image and patient splits; ``init``:
    how DenseNet121/MobileNet start (``random`` | ``imagenet``); Adam's rate ``lr`` and the
    BatchNorm momentum (the paper's 1e-5 and Keras' 0.99 in ``paper``; the demo's:
    docs/decisions.md#b9); Inception V1, which has no BatchNorm: its convolutions' initialiser
    ``inception_init`` and its ``inception_max_epochs`` (docs/decisions.md#b10)."""

    image_size: int
    max_epochs: int
    batch_main: int
    batch_compare: int
    max_train: int | None
    patience: int
    compare_models: tuple[str, ...]
    patient_models: tuple[str, ...]
    n_boot: int
    init: str
    lr: float = 1e-5
    bn_momentum: float = 0.99
    inception_init: str = "glorot_uniform"
    inception_max_epochs: int = 30
    BATCHES: ClassVar[tuple[str, ...]] = ("batch_main", "batch_compare")

    def recipe(self, key: str) -> dict[str, Any]:
        """Model ``key``'s training recipe: ``max_epochs``, ``patience``, ``lr``,
        ``bn_momentum`` and its builder ``options``; Inception V1 takes its own initialiser and
        epochs."""
        out = {"max_epochs": self.max_epochs, "patience": self.patience, "lr": self.lr,
               "bn_momentum": self.bn_momentum, "options": {}}
        if key == "inception_v1":
            out["max_epochs"] = self.inception_max_epochs
            out["options"] = {"kernel_initializer": self.inception_init}
        return out


@dataclass(frozen=True)
class CSettings:
    """Study C: input side, image cap, each trial's epochs capped at ``epochs`` (None: the
    trial's own), ``batch``, early-stopping ``patience``, bootstrap resamples."""

    image_size: int
    max_images: int | None
    epochs: int | None
    batch: int
    patience: int
    n_boot: int
    BATCHES: ClassVar[tuple[str, ...]] = ("batch",)


# The paper profile's items per explanation check (sanity, faithfulness), capped by the scored
# items; its curves take one row of pixels (E, 224 px) or one slice of voxels (D, 64 slices) per
# step, as Petsiuk et al.'s deletion curves (docs/decisions.md#x15).
XAI_ITEMS = 200


@dataclass(frozen=True)
class DSettings:
    """Study D: ``volume_shape`` ``(H, W, D)`` voxels, at most ``max_per_class`` volumes of a real
    source, epochs per scenario of the paper variant (``epochs``) and of the held-out variant
    (``heldout_epochs``), ``batch``, early-stopping ``patience``, the paper variant's ``split``
    protocol, bootstrap resamples, the BatchNorm momentum (the thesis' Keras default 0.99 in
    ``paper``, 0.9 in the reduced profiles: docs/decisions.md#d2); the 3-D Grad-CAM's
    evaluation (``D.xai_eval``): volumes of the sanity checks and of the deletion/insertion
    curves, steps per curve, epochs of the shuffled-label model (None: the longest
    scenario's)."""

    volume_shape: tuple[int, int, int]
    max_per_class: int | None
    epochs: Mapping[str, int]
    batch: int
    patience: int
    split: str
    heldout_epochs: Mapping[str, int]
    n_boot: int
    bn_momentum: float = 0.99
    xai_sanity: int = XAI_ITEMS
    xai_faith: int = XAI_ITEMS
    xai_steps: int = 64
    shuffled_epochs: int | None = None
    BATCHES: ClassVar[tuple[str, ...]] = ("batch",)


@dataclass(frozen=True)
class ESettings:
    """Study E: input side, image cap, ``epochs``, ``batch``, early-stopping ``patience``, the
    plateau cut's patience ``reduce_lr``, Integrated Gradients' ``ig_steps``, bootstrap
    resamples; the explanations' evaluation (``E.xai_eval``): items of the sanity checks
    (``xai_sanity``) and of the deletion/insertion curves (``xai_faith``), ``xai_steps`` per
    curve, epochs of the shuffled-label model (``shuffled_epochs``, None: ``epochs``); the
    failure gallery's wrong and least confident right cases (``gallery_wrong``,
    ``gallery_unsure``)."""

    image_size: int
    max_images: int | None
    epochs: int
    batch: int
    patience: int
    reduce_lr: int
    ig_steps: int
    n_boot: int
    xai_sanity: int = XAI_ITEMS
    xai_faith: int = XAI_ITEMS
    xai_steps: int = 224
    shuffled_epochs: int | None = None
    gallery_wrong: int = 12
    gallery_unsure: int = 6
    BATCHES: ClassVar[tuple[str, ...]] = ("batch",)


@dataclass(frozen=True)
class CompareSettings:
    """Notebook 06: whether a manifest artifact missing fails the notebook."""

    require_all_artifacts: bool
    BATCHES: ClassVar[tuple[str, ...]] = ()


Settings = (PhantomSizes | RsnaCacheSettings | ASettings | BSettings | CSettings | DSettings
            | ESettings | CompareSettings)

# Official dataset sizes (the paper profile's phantoms have the real datasets' shape).
_MASOUD_PAPER = {"train_per_class": 1428, "test_per_class": 328}
_THESIS_EPOCHS = {"aug_5": 5, "aug_10": 10, "aug_15": 15, "aug_25": 25, "noaug_5": 5,
                  "lung_25": 25}
_ALL_B_MODELS = ("proposed", "densenet121", "mobilenet", "inception_v1")


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))  # a row's epochs cannot be changed in place


PROFILES: dict[str, dict[str, Settings]] = {
    # demo MRI phantoms at 256 px (the models read 64-224 px); demo MosMed: 30 volumes per class
    # at 128 in-plane (notebook 05 resizes to 48 voxels a side anyway).
    "phantoms": {
        "smoke": PhantomSizes(mri_train_per_class=12, mri_test_per_class=4, mri_size=256,
                              rsna_images=96, mosmed_per_class=6, mosmed_size=128),
        "demo": PhantomSizes(mri_train_per_class=150, mri_test_per_class=38, mri_size=256,
                             rsna_images=480, mosmed_per_class=30, mosmed_size=128),
        "paper": PhantomSizes(mri_train_per_class=_MASOUD_PAPER["train_per_class"],
                              mri_test_per_class=_MASOUD_PAPER["test_per_class"], mri_size=512,
                              rsna_images=720_733, mosmed_per_class=100, mosmed_size=512),
    },
    "rsna_cache": {
        "smoke": RsnaCacheSettings(max_images=None, image_size=224, workers=2),
        "demo": RsnaCacheSettings(max_images=None, image_size=224, workers=2),
        "paper": RsnaCacheSettings(max_images=None, image_size=224, workers=None),
    },
    # A: the 207.6M-parameter LSTM head is slow on a CPU, so smoke and demo train it on a subset
    # for few epochs and not on the official split (docs/decisions.md#x7).
    "A": {
        "smoke": ASettings(image_size=224, max_images=48, epochs=1, batch=64, lr=1e-4,
                           official_lstm=False, checkpoint="memory", backup=False, n_boot=200),
        "demo": ASettings(image_size=224, max_images=200, epochs=3, batch=32, lr=1e-4,
                          official_lstm=False, checkpoint="memory", backup=False, n_boot=1000),
        "paper": ASettings(image_size=224, max_images=None, epochs=50, batch=32, lr=1e-4,
                           official_lstm=True, checkpoint="weights", backup=True, n_boot=2000),
    },
    # B: tracing a model's train step costs more than training it at these sizes on a CPU, so
    # the demo leaves DenseNet121 out (its rows stay empty) and smoke trains the proposed only.
    # init: the paper profile starts them as keras.applications does by default, from ImageNet
    # (random, with a warning, offline); the reduced profiles from random (docs/decisions.md#b1).
    # lr, bn_momentum: the paper's Adam 1e-5 and Keras' 0.99 in paper; the demo's few hundred
    # steps learn only at 1e-4 with 0.9, and the main run only at batch 8 (docs/decisions.md#b9);
    # Inception V1 leaves the class prior there only from He initialisation, after ~12 epochs
    # (docs/decisions.md#b10).
    "B": {
        "smoke": BSettings(image_size=64, max_epochs=1, batch_main=32, batch_compare=8,
                           max_train=64, patience=3, compare_models=("proposed",),
                           patient_models=("proposed",), n_boot=200, init="random",
                           lr=1e-4, bn_momentum=0.9, inception_max_epochs=1),
        "demo": BSettings(image_size=64, max_epochs=10, batch_main=8, batch_compare=8,
                          max_train=None, patience=3,
                          compare_models=("proposed", "mobilenet", "inception_v1"),
                          patient_models=("proposed",), n_boot=1000, init="random",
                          lr=1e-4, bn_momentum=0.9, inception_init="he_normal",
                          inception_max_epochs=30),
        "paper": BSettings(image_size=224, max_epochs=30, batch_main=32, batch_compare=8,
                           max_train=None, patience=3, compare_models=_ALL_B_MODELS,
                           patient_models=_ALL_B_MODELS, n_boot=1000, init="imagenet",
                           lr=1e-5, bn_momentum=0.99),
    },
    # C: the demo caps every trial at 15 epochs (trials 1 and 2 are then the same run, trained
    # once: docs/decisions.md#c8); why batch 16: docs/decisions.md#c3.
    "C": {
        "smoke": CSettings(image_size=64, max_images=None, epochs=1, batch=16, patience=5,
                           n_boot=200),
        "demo": CSettings(image_size=64, max_images=None, epochs=15, batch=16, patience=5,
                          n_boot=1000),
        "paper": CSettings(image_size=224, max_images=None, epochs=None, batch=16, patience=5,
                           n_boot=2000),
    },
    # D: the 3D CNN's valid convolutions need every axis >= 46 voxels (models.chest_ct.MIN_SIDE);
    # the demo runs 48 voxels a side with the thesis' epochs. Of aug_5/10/15/25 only aug_25 is
    # trained, the others are its first epochs (studies.d.training.run_scenarios).
    "D": {
        "smoke": DSettings(volume_shape=(48, 48, 48), max_per_class=6,
                           epochs=_frozen({k: 1 for k in _THESIS_EPOCHS}), batch=4, patience=15,
                           split="thesis", heldout_epochs=_frozen({"aug_25": 1}), n_boot=200,
                           bn_momentum=0.9, xai_sanity=2, xai_faith=2, xai_steps=4,
                           shuffled_epochs=1),
        "demo": DSettings(volume_shape=(48, 48, 48), max_per_class=30,
                          epochs=_frozen(_THESIS_EPOCHS), batch=4, patience=15, split="thesis",
                          heldout_epochs=_frozen({"aug_25": 25}), n_boot=1000,
                          bn_momentum=0.9, xai_sanity=4, xai_faith=6, xai_steps=12,
                          shuffled_epochs=5),
        "paper": DSettings(volume_shape=(128, 128, 64), max_per_class=None,
                           epochs=_frozen(_THESIS_EPOCHS), batch=4, patience=15, split="thesis",
                           heldout_epochs=_frozen(_THESIS_EPOCHS), n_boot=2000),
    },
    # E: patience and reduce_lr are the recipe's (docs/decisions.md#e4); the demo trains the whole
    # pooled split at 64 px for up to 30 epochs (docs/decisions.md#e7), IG with 16 intervals
    # (docs/decisions.md#e6).
    "E": {
        "smoke": ESettings(image_size=64, max_images=None, epochs=1, batch=16, patience=5,
                           reduce_lr=2, ig_steps=8, n_boot=200, xai_sanity=2, xai_faith=2,
                           xai_steps=4, shuffled_epochs=1, gallery_wrong=4, gallery_unsure=2),
        "demo": ESettings(image_size=64, max_images=None, epochs=30, batch=32, patience=8,
                          reduce_lr=3, ig_steps=16, n_boot=1000, xai_sanity=6, xai_faith=8,
                          xai_steps=16, shuffled_epochs=5, gallery_wrong=8, gallery_unsure=4),
        "paper": ESettings(image_size=224, max_images=None, epochs=50, batch=32, patience=8,
                           reduce_lr=3, ig_steps=50, n_boot=2000),
    },
    "compare": {p: CompareSettings(require_all_artifacts=True) for p in PROFILE_NAMES},
}

# The rows each notebook reads, in the order its sections run.
NOTEBOOK_ROWS: dict[str, tuple[str, ...]] = {
    "01_download": ("phantoms",),
    "02_preprocess_rsna": ("rsna_cache",),
    "03_lstm_cnn_mri": ("A", "C", "E"),
    "04_lightweight_ct": ("B",),
    "05_3dcnn_mosmed": ("D",),
    "06_compare": ("compare",),
}


# ---------------------------------------------------------------------------- reading rows
def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise ``ValueError`` listing the known ones."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILE_NAMES)}")
    return profile


def batches(row: Settings) -> dict[str, int]:
    """The batch sizes of a row, field name -> value (empty for rows that train nothing)."""
    return {name: int(getattr(row, name)) for name in row.BATCHES}


def trains_models(notebook: str) -> bool:
    """Whether ``notebook`` trains models (a row with batch sizes): the others (download,
    preprocessing, comparison) never need TensorFlow."""
    return any(PROFILES[name][p].BATCHES for name in _rows_of(notebook) for p in PROFILE_NAMES)


def settings(name: str, profile: str, *, replicas: int = 1,
             batch_per_replica: bool = False) -> Settings:
    """The settings row ``name`` (``"A"`` ... ``"E"``, ``"phantoms"``, ``"rsna_cache"``,
    ``"compare"``) under ``profile``.

    In a fast dev run the row's item counts are capped (:func:`medrepro.core.devrun.capped`).
    Batch sizes are the global batch, as in the table. With ``batch_per_replica`` (the explicit
    option) they are multiplied by ``replicas``: the profile's batch on every replica.
    """
    check_profile(profile)
    if name not in PROFILES:
        raise KeyError(f"no settings row {name!r}; known: {', '.join(PROFILES)}")
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    row = devrun.capped(name, PROFILES[name][profile])
    if not batch_per_replica or replicas == 1:
        return row
    return dataclasses.replace(row, **{k: v * replicas for k, v in batches(row).items()})


def notebook_settings(notebook: str, profile: str, *, replicas: int = 1,
                      batch_per_replica: bool = False) -> dict[str, Settings]:
    """Every row ``notebook`` reads (:data:`NOTEBOOK_ROWS`), name -> :func:`settings`."""
    return {name: settings(name, profile, replicas=replicas, batch_per_replica=batch_per_replica)
            for name in _rows_of(notebook)}


def _rows_of(notebook: str) -> tuple[str, ...]:
    if notebook not in NOTEBOOK_ROWS:
        raise KeyError(f"no profile rows for notebook {notebook!r}; known: "
                       f"{', '.join(NOTEBOOK_ROWS)}")
    return NOTEBOOK_ROWS[notebook]


# ---------------------------------------------------------------------------- batches
def batch_per_replica_option(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the doubled-batch option is on (``$MEDREPRO_BATCH_PER_REPLICA`` = 1/true/yes)."""
    env = os.environ if environ is None else environ
    return env.get(BATCH_PER_REPLICA_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Batching:
    """How a notebook's batches meet the replicas: ``replicas`` the models train on,
    ``per_replica_option`` (the profile's batch on each replica), ``reason`` why fewer replicas
    than ``available`` are used ("" if not)."""

    replicas: int
    available: int = 1
    per_replica_option: bool = False
    reason: str = ""

    def describe(self, global_batch: int) -> str:
        """``"32 (global; 16 per replica × 2 replicas)"`` (+ the option's label when on)."""
        return batch_text(global_batch, self.replicas, per_replica_option=self.per_replica_option)

    def record(self, rows: Mapping[str, Settings]) -> dict[str, Any]:
        """What the artifacts' sidecars state: the rule, replicas, every global and per-replica
        batch (``"<row>.<field>"``) of ``rows`` (batch sizes as :func:`settings` returns them)."""
        sizes = {f"{name}.{k}": v for name, row in rows.items() for k, v in batches(row).items()}
        return {"rule": PER_REPLICA_RULE if self.per_replica_option else GLOBAL_RULE,
                "replicas": self.replicas, "available_replicas": self.available,
                "reason": self.reason, "global": sizes,
                "per_replica": {k: v // self.replicas for k, v in sizes.items()}}


GLOBAL_RULE = "global: the profile's batch is the global batch, split over the replicas"
PER_REPLICA_RULE = ("per replica (MEDREPRO_BATCH_PER_REPLICA): the profile's batch on every "
                    "replica, global batch = profile batch × replicas; not the papers' protocol")


def batch_text(global_batch: int, replicas: int, *, per_replica_option: bool = False) -> str:
    """The batch as every output states it: global and per replica."""
    unit = "replica" if replicas == 1 else "replicas"
    text = f"{global_batch} (global; {global_batch // replicas} per replica × {replicas} {unit})"
    if per_replica_option and replicas > 1:
        text += " (per-replica option: global batch = profile batch × replicas, not the paper's)"
    return text


def batch_in_use(global_batch: int) -> str:
    """:func:`batch_text` for the strategy in use now
    (:func:`medrepro.core.device.replicas_in_sync`) and the option's state."""
    from medrepro.core import device

    return batch_text(global_batch, device.replicas_in_sync(),
                      per_replica_option=batch_per_replica_option())


def choose_batching(rows: Iterable[Settings], available: int, *,
                    per_replica_option: bool = False) -> Batching:
    """The replicas a notebook's models train on, given ``available`` ones (GPUs, or logical
    CPU devices in tests): all of them when every batch of ``rows`` divides by them (or with the
    per-replica option), else one, with the reason."""
    if available < 1:
        raise ValueError(f"available replicas must be >= 1, got {available}")
    if available == 1 or per_replica_option:
        return Batching(available, available, per_replica_option)
    odd = sorted({b for row in rows for b in batches(row).values() if b % available})
    if odd:
        reason = (f"batch {', '.join(map(str, odd))} does not divide over {available} "
                  "replicas: training on one replica, with the paper's batch")
        return Batching(1, available, per_replica_option, reason)
    return Batching(available, available, per_replica_option)


# ---------------------------------------------------------------------------- the table
def table(name: str | None = None, *, replicas: int = 1):
    """The profile table as a ``pandas.DataFrame``: rows ``(notebook, settings, setting)``,
    columns the profiles. ``name``: a notebook or a row name, to show only that.

    Batch sizes are global; with ``replicas`` > 1 they read ``"32 (16 per replica × 2)"``.
    """
    import pandas as pd

    out = []
    for notebook, row_names in NOTEBOOK_ROWS.items():
        for row_name in row_names:
            if name is not None and name not in (notebook, row_name):
                continue
            by_profile = PROFILES[row_name]
            for f in dataclasses.fields(by_profile[PROFILE_NAMES[0]]):
                out.append({"notebook": notebook, "settings": row_name, "setting": f.name,
                            **{p: _cell(getattr(by_profile[p], f.name),
                                        f.name in by_profile[p].BATCHES, replicas)
                               for p in PROFILE_NAMES}})
    return pd.DataFrame(out).set_index(["notebook", "settings", "setting"])


def _cell(value: Any, is_batch: bool, replicas: int) -> str:
    if is_batch and replicas > 1:
        return f"{value} ({value // replicas} per replica × {replicas})" if value % replicas \
            == 0 else f"{value} (one replica: does not divide over {replicas})"
    return fmt(value)


def fmt(value: Any) -> str:
    """A setting as the table and the notebooks' printout show it."""
    if value is None:
        return "all"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, tuple):
        return "×".join(str(v) for v in value)
    return str(value)
