"""The dataset registry: what each of the four datasets is and how its on-disk layout is found.

Pure data and folder checks, no acquisition: :class:`DatasetSpec` (ids, splits, classes, the
publishers' counts, licences, Kaggle slugs and URLs), :data:`REGISTRY` and :func:`spec`, and
:func:`find_dataset_root` / :func:`splits_present`, which recognise a dataset's layout inside a
folder. :mod:`medrepro.data.download` and :mod:`medrepro.data.datasets` both read it; it imports neither.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

PHANTOM = "phantom"  # the data source of the built-in phantoms, and what artifacts record
# The RSNA labels file, in the dataset root beside the stage_2_train/ DICOM folder.
RSNA_LABELS_CSV = "stage_2_train.csv"
# How deep below a given folder a dataset root is looked for (Kaggle downloads nest it; the
# MosMed mirror's root is <slug>/<release top>/studies/).
SEARCH_DEPTH = 3


class DatasetError(RuntimeError):
    """A dataset id, source or folder that cannot be resolved (the message names it)."""


@dataclass(frozen=True)
class UrlSource:
    """A file fetched over HTTPS. ``sha256`` None: not published; the computed digest is recorded."""

    url: str
    filename: str
    sha256: str | None = None
    split: str = ""  # the split folder the archive provides (MosMed: "CT-0" / "CT-23")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the registry.

    ``official_counts[split][class]`` are the publishers' file counts (``"all"`` for a split total
    where per-class numbers are not file counts). ``splits`` are the split folders of the layout,
    ``classes`` the class folders (MRI) or label names (RSNA, MosMed).
    """

    id: str
    title: str
    kind: str  # "mri" | "rsna" | "mosmed"
    layout: str
    splits: tuple[str, ...]
    classes: tuple[str, ...]
    official_counts: Mapping[str, Mapping[str, int]]
    licence: str
    homepage: str
    file_suffix: str
    other_suffixes: tuple[str, ...] = ()  # further data-file suffixes (MosMed: ".nii" too)
    kaggle_dataset: str | None = None
    kaggle_competition: str | None = None
    urls: tuple[UrlSource, ...] = ()
    kaggle_mirrors: tuple[str, ...] = ()  # other Kaggle datasets (owner/slug) holding the data
    aliases: tuple[str, ...] = ()  # other folder names it is found under (Kaggle's)
    notes: str = ""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Every suffix a data file of this dataset may have (for ``str.endswith``)."""
        return (self.file_suffix, *self.other_suffixes)

    def is_data_file(self, name: str) -> bool:
        """Whether the file name ``name`` is one of this dataset's data files (case-blind)."""
        return name.lower().endswith(self.suffixes)

    @property
    def official_total(self) -> int:
        """Files of all splits (a split's ``"all"`` entry where it has one, else its classes)."""
        return sum(c["all"] if "all" in c else sum(c.values())
                   for c in self.official_counts.values())


def _counts(d: dict) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in d.items()})


# Kaggle datasets (owner/slug) that mirror MosMedData COVID19_1110: the full release as it is
# published, ``<top>/studies/CT-0 ... CT-4/study_NNNN.nii`` (uncompressed) with ``<top>/masks/``.
MOSMED_KAGGLE_MIRRORS = ("mathurinache/mosmeddata-chest-ct-scans-with-covid19",)
MOSMED_RELEASE_TOP = "MosMedData Chest CT Scans with COVID-19 Related Findings COVID19_1110 1.0"
MOSMED_CT23_PARTS = ("CT-2", "CT-3")
MOSMED_BASE_URL = ("https://github.com/hasibzunair/3D-image-classification-tutorial/releases/"
                   "download/v0.2/")
# B.table1 totals: the single-type selection (exactly one subtype, or none) of stage_2_train.
RSNA_SELECTED_COUNTS = {"none": 644_874, "epidural": 1_694, "intraparenchymal": 15_664,
                        "intraventricular": 9_878, "subarachnoid": 16_423, "subdural": 32_200}
RSNA_ALL_IMAGES = 752_803
RSNA_SELECTED_IMAGES = 720_733
# Content hashes (medrepro.data.identity) of the copies in shared/data, for PUBLISHED_VERSIONS.
SARTAJ_TRAINING_SHA256 = "108e3759ee2f34171df04f4bb8a12285633d0de805057e88086435938021d5a2"
SARTAJ_TESTING_SHA256 = "034b6c92c7e4dcdc96562ea0e4ba49b8dda74ce6b24266e39e029e9ef2b4fcdf"
MASOUD_TESTING_SHA256 = "1fc14fb4d4029aab597ffbef79c7ac8d8e8949c5b41ffc05583757c3b1957d52"

REGISTRY: Mapping[str, DatasetSpec] = MappingProxyType({s.id: s for s in (
    DatasetSpec(
        id="brain_tumor_sartaj",
        title="Brain Tumor Classification (MRI), Sartaj Bhuvaji et al.",
        kind="mri",
        layout="root/{Training,Testing}/{glioma_tumor,meningioma_tumor,no_tumor,pituitary_tumor}/"
               "*.jpg (RGB JPEG; names like 'gg (1).jpg')",
        splits=("Training", "Testing"),
        classes=("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"),
        # Counted in the complete copy of ../shared/data/brain_tumor_sartaj (3264 files).
        official_counts=_counts({
            "Training": {"glioma_tumor": 826, "meningioma_tumor": 822, "no_tumor": 395,
                         "pituitary_tumor": 827},
            "Testing": {"glioma_tumor": 100, "meningioma_tumor": 115, "no_tumor": 105,
                        "pituitary_tumor": 74}}),
        licence="MIT (author's GitHub mirror; Kaggle page)",
        homepage="https://www.kaggle.com/datasets/sartajbhuvaji/brain-tumor-classification-mri",
        file_suffix=".jpg",
        kaggle_dataset="sartajbhuvaji/brain-tumor-classification-mri",
        aliases=("brain-tumor-classification-mri", "Brain-Tumor-Classification-DataSet"),
    ),
    DatasetSpec(
        id="brain_tumor_masoud",
        title="Brain Tumor MRI Dataset, Masoud Nickparvar",
        kind="mri",
        layout="root/{Training,Testing}/{glioma,meningioma,notumor,pituitary}/*.jpg "
               "(8-bit grayscale JPEG; Tr-gl_0001.jpg, Te-gl_0001.jpg)",
        splits=("Training", "Testing"),
        classes=("glioma", "meningioma", "notumor", "pituitary"),
        official_counts=_counts({
            "Training": {"glioma": 1321, "meningioma": 1339, "notumor": 1595, "pituitary": 1457},
            "Testing": {"glioma": 300, "meningioma": 306, "notumor": 405, "pituitary": 300}}),
        licence="CC0-1.0",
        homepage="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
        file_suffix=".jpg",
        kaggle_dataset="masoudnickparvar/brain-tumor-mri-dataset",
        aliases=("brain-tumor-mri-dataset",),
    ),
    DatasetSpec(
        id="rsna_ich",
        title="RSNA Intracranial Hemorrhage Detection (2019), stage 2 training set",
        kind="rsna",
        layout="root/stage_2_train.csv (ID_<image>_<subtype>,Label; six rows per image) + "
               "root/stage_2_train/ID_<image>.dcm",
        splits=("stage_2_train",),
        classes=tuple(RSNA_SELECTED_COUNTS),
        # Per-class numbers are the single-type selection (720,733 images, B.table1 totals);
        # "all" is every image of stage_2_train.
        official_counts=_counts({"stage_2_train": {"all": RSNA_ALL_IMAGES,
                                                   **RSNA_SELECTED_COUNTS}}),
        licence="RSNA/Kaggle competition terms (non-commercial research; accept the rules first)",
        homepage="https://www.kaggle.com/competitions/rsna-intracranial-hemorrhage-detection",
        file_suffix=".dcm",
        kaggle_competition="rsna-intracranial-hemorrhage-detection",
        aliases=("rsna-intracranial-hemorrhage-detection",),
        notes="~450 GB of DICOM; one training file (ID_6431af929) is corrupt",
    ),
    DatasetSpec(
        id="mosmed",
        title="MosMedData COVID19_1110, CT-0 and CT-23 (Keras 3D-classification release zips)",
        kind="mosmed",
        layout="root/CT-0/study_XXXX.nii.gz (normal) + root/CT-23/study_XXXX.nii.gz "
               "(CT-2 + CT-3 abnormal), or the full release root/CT-0 ... CT-4/study_XXXX.nii; "
               "NIfTI (.nii.gz or .nii), int16 HU",
        splits=("CT-0", "CT-23"),
        classes=("normal", "abnormal"),
        # Category sizes of MosMedData's dataset_registry.csv: CT-0 254; CT-2 125 + CT-3 45.
        # The release zips are reported to hold a 100 + 100 subset (the thesis uses 100 + 100);
        # not verifiable offline: the inventory shows what is on disk.
        official_counts=_counts({"CT-0": {"normal": 254}, "CT-23": {"abnormal": 170}}),
        licence="CC BY-NC-ND 3.0",
        homepage="https://mosmed.ai/datasets/covid19_1110",
        file_suffix=".nii.gz",
        other_suffixes=(".nii",),
        # sha256 not published and not fetchable here: recorded in the download's sidecar.
        urls=(UrlSource(MOSMED_BASE_URL + "CT-0.zip", "CT-0.zip", None, split="CT-0"),
              UrlSource(MOSMED_BASE_URL + "CT-23.zip", "CT-23.zip", None, split="CT-23")),
        # Kaggle mirrors: of the two release zips (folders CT-0/, CT-23/), and of the full
        # MosMedData release (CT-0 ... CT-4; CT-2 + CT-3 are composed into CT-23, see
        # compose_ct23). Any other folder with that layout is found by its structure.
        kaggle_mirrors=MOSMED_KAGGLE_MIRRORS,
        aliases=("MosMedData", "mosmeddata", *(m.split("/")[1] for m in MOSMED_KAGGLE_MIRRORS)),
    ),
)})

DATASET_IDS = tuple(REGISTRY)
MRI_DATASETS = ("brain_tumor_sartaj", "brain_tumor_masoud")


@dataclass(frozen=True)
class PublishedVersion:
    """A published version of a dataset, as far as it is known: file ``counts`` per split and
    class (``{"all": n}`` where only a split's total is known) and, where computed from a copy
    of it, ``split_sha256`` (:func:`medrepro.data.identity.dataset_identity`'s content hash of
    each split)."""

    name: str
    counts: Mapping[str, Mapping[str, int]]
    split_sha256: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


# Known versions, newest first. The content hashes were computed on the copies in shared/data
# (Sartaj complete; Masoud's Testing split only); the others are counts as published.
PUBLISHED_VERSIONS: Mapping[str, tuple[PublishedVersion, ...]] = MappingProxyType({
    "brain_tumor_sartaj": (
        PublishedVersion(
            "Sartaj Bhuvaji's release (GitHub mirror @ 3ea9f4e, Kaggle's counts)",
            REGISTRY["brain_tumor_sartaj"].official_counts,
            MappingProxyType({"Training": SARTAJ_TRAINING_SHA256,
                              "Testing": SARTAJ_TESTING_SHA256})),),
    "brain_tumor_masoud": (
        PublishedVersion(
            "Masoud Nickparvar's current Kaggle version (Testing 1,311)",
            REGISTRY["brain_tumor_masoud"].official_counts,
            MappingProxyType({"Testing": MASOUD_TESTING_SHA256})),
        PublishedVersion(
            "an earlier Kaggle version of Masoud's set (Testing 1,294)",
            _counts({"Testing": {"all": 1294}}),
            note="per-class counts and content not recorded; its curator later replaced "
                 "the glioma images that came from Sartaj's set"),),
    "rsna_ich": (
        PublishedVersion("RSNA ICH 2019 stage 2 training set",
                         _counts({"stage_2_train": {"all": RSNA_ALL_IMAGES}})),),
    "mosmed": (
        PublishedVersion("MosMedData COVID19_1110 release zips CT-0 / CT-23 (as the thesis: "
                         "100 + 100)", _counts({"CT-0": {"normal": 100},
                                                "CT-23": {"abnormal": 100}})),
        PublishedVersion("MosMedData COVID19_1110, CT-0 and CT-2 + CT-3 complete",
                         _counts({"CT-0": {"normal": 254}, "CT-23": {"abnormal": 170}})),),
})


def spec(dataset_id: str) -> DatasetSpec:
    """The registry entry of ``dataset_id``; a :class:`DatasetError` listing the known ids else."""
    try:
        return REGISTRY[dataset_id]
    except KeyError:
        raise DatasetError(f"unknown dataset id {dataset_id!r}; known: "
                           f"{', '.join(DATASET_IDS)}") from None


# --------------------------------------------------------------------------------------------
# layout checks

def splits_present(root: Path, sp: DatasetSpec) -> tuple[str, ...]:
    """The splits of ``sp`` that hold at least one data file under ``root``."""
    root = Path(root)
    out = []
    for split in sp.splits:
        if sp.kind == "mri":
            ok = any(_has_file(root / split / c, sp) for c in sp.classes)
        elif sp.kind == "rsna":
            ok = (root / RSNA_LABELS_CSV).is_file() and _has_file(root / split, sp)
        else:
            ok = _has_file(root / split, sp)
        if ok:
            out.append(split)
    return tuple(out)


def _has_file(folder: Path, sp: DatasetSpec) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as it:
        return any(sp.is_data_file(e.name) for e in it)


def looks_like(root: Path, sp: DatasetSpec) -> bool:
    """True if ``root`` is a root of ``sp``'s layout (at least one split, with its class names)."""
    return bool(splits_present(root, sp))


def find_dataset_root(folder: str | os.PathLike, sp: DatasetSpec | str, *,
                      depth: int = SEARCH_DEPTH) -> Path | None:
    """The root of dataset ``sp`` inside ``folder`` (None if absent).

    Looks at ``folder/<id>``, ``folder/<alias>`` (Kaggle's folder names), ``folder`` itself, then
    breadth-first up to ``SEARCH_DEPTH`` levels down (downloads nest the layout, e.g.
    ``rsna-intracranial-hemorrhage-detection/rsna-intracranial-hemorrhage-detection/``). Folders
    named like another dataset of the registry are not entered.
    """
    sp = spec(sp) if isinstance(sp, str) else sp
    folder = Path(folder)
    for name in (sp.id, *sp.aliases):
        cand = folder / name
        if cand.is_dir():
            found = _search(cand, sp, depth=depth)
            if found is not None:
                return found
    others = {n for s in REGISTRY.values() if s.id != sp.id for n in (s.id, *s.aliases)}
    if folder.name in others:
        return None
    return _search(folder, sp, depth=depth, skip=others)


def _search(folder: Path, sp: DatasetSpec, *, depth: int,
            skip: frozenset | set = frozenset()) -> Path | None:
    level = [folder]
    for _ in range(depth + 1):
        nxt = []
        for f in level:
            if looks_like(f, sp):
                return f.resolve()
            try:  # scandir's is_dir() needs no stat per entry: cheap beside 750k DICOMs
                with os.scandir(f) as it:
                    nxt += sorted(Path(e.path) for e in it if e.is_dir()
                                  and e.name not in skip and not e.name.startswith("."))
            except OSError:
                continue
        level = nxt
    return None
