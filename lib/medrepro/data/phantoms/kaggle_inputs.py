"""A Kaggle input tree of phantoms under the real datasets' mount names (emulations and tests).

:func:`make_kaggle_inputs` writes what ``/kaggle/input`` holds in a notebook with the four
datasets attached, with Kaggle's folder names and each publisher's own layout inside:

- ``brain-tumor-classification-mri/{Training,Testing}/...`` (Sartaj; the classic
  ``/kaggle/input/<slug>/`` mount),
- ``datasets/masoudnickparvar/brain-tumor-mri-dataset/{Training,Testing}/...`` (Masoud; the newer
  ``datasets/<owner>/<slug>/`` mount),
- ``competitions/rsna-intracranial-hemorrhage-detection/rsna-intracranial-hemorrhage-detection/``
  ``{stage_2_train.csv, stage_2_train/}`` (the competition, nested as its archive is),
- ``datasets/mathurinache/mosmeddata-chest-ct-scans-with-covid19/<release top>/studies/CT-0 ...
  CT-4/study_NNNN.nii`` (the full MosMedData release as that mirror publishes it: uncompressed
  ``.nii``, CT-2 and CT-3 separate, five levels below the input root).

The phantoms are sized by the profile's ``01_download`` settings, as :func:`medrepro.data.datasets
.make_phantom` sizes them. Data, not a real dataset: everything made from it is a phantom result.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from medrepro.core import profiles
from medrepro.core.seeds import DEFAULT_SEED
from medrepro.data.registry import MOSMED_KAGGLE_MIRRORS, MOSMED_RELEASE_TOP, REGISTRY

SARTAJ_MOUNT = "brain-tumor-classification-mri"
MASOUD_MOUNT = f"datasets/{REGISTRY['brain_tumor_masoud'].kaggle_dataset}"
RSNA_MOUNT = (f"competitions/{REGISTRY['rsna_ich'].kaggle_competition}/"
              f"{REGISTRY['rsna_ich'].kaggle_competition}")
MOSMED_MOUNT = f"datasets/{MOSMED_KAGGLE_MIRRORS[0]}/{MOSMED_RELEASE_TOP}/studies"


def make_kaggle_inputs(root: str | os.PathLike, *, profile: str = "smoke",
                       seed: int = DEFAULT_SEED,
                       datasets: tuple[str, ...] = tuple(REGISTRY)) -> dict[str, Path]:
    """Write the phantoms of ``datasets`` under ``root`` in Kaggle's mount layout (module
    docstring); return ``{dataset_id: the dataset's root folder}``."""
    from medrepro.data import phantoms

    root = Path(root)
    s = profiles.settings("phantoms", profile)
    out: dict[str, Path] = {}
    mri = {"n_per_class": s.mri_train_per_class, "n_test_per_class": s.mri_test_per_class,
           "size": s.mri_size, "seed": seed}
    if "brain_tumor_sartaj" in datasets:
        out["brain_tumor_sartaj"] = phantoms.make_mri(root / SARTAJ_MOUNT, layout="sartaj", **mri)
    if "brain_tumor_masoud" in datasets:
        out["brain_tumor_masoud"] = phantoms.make_mri(root / MASOUD_MOUNT, layout="masoud", **mri)
    if "rsna_ich" in datasets:
        out["rsna_ich"] = phantoms.make_rsna(root / RSNA_MOUNT, n_images=s.rsna_images,
                                             seed=seed)
    if "mosmed" in datasets:
        out["mosmed"] = mosmed_release_tree(root / MOSMED_MOUNT, n_per_class=s.mosmed_per_class,
                                            size=s.mosmed_size, seed=seed)
    return out


def mosmed_release_tree(studies: str | os.PathLike, *, n_per_class: int, size: int,
                        seed: int = DEFAULT_SEED) -> Path:
    """The full release's ``studies/`` folder: the phantom's CT-0 volumes, its CT-23 volumes
    split by study number into ``CT-2`` (the lower half) and ``CT-3``, and one ``CT-1`` volume
    (mild cases, not part of the studies' CT-23), all written as uncompressed ``.nii``."""
    from medrepro.data import phantoms

    studies = Path(studies)
    with tempfile.TemporaryDirectory(dir=_mkdir(studies.parent)) as tmp:
        made = phantoms.make_mosmed(Path(tmp) / "phantom", n_per_class=n_per_class, size=size,
                                    seed=seed)
        normal = sorted((made / "CT-0").glob("*.nii.gz"))
        abnormal = sorted((made / "CT-23").glob("*.nii.gz"))
        half = (len(abnormal) + 1) // 2
        placed = {"CT-0": normal, "CT-1": normal[:1], "CT-2": abnormal[:half],
                  "CT-3": abnormal[half:]}
        for folder, files in placed.items():
            for f in files:
                name = f.name.removesuffix(".gz")
                if folder == "CT-1":  # another study number: the real CT-1 range starts at 255
                    name = "study_0255.nii"
                _gunzip(f, _mkdir(studies / folder) / name)
    return studies


def _gunzip(src: Path, dest: Path) -> None:
    with gzip.open(src, "rb") as f, open(dest, "wb") as out:
        shutil.copyfileobj(f, out)


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
