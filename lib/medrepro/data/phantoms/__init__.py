"""Built-in phantom datasets in the real datasets' on-disk formats (the offline default data).

- :func:`make_mri` brain-tumour MRI JPEGs in the Masoud or Sartaj Kaggle layout (``brain_mri.py``);
- :func:`make_rsna` RSNA intracranial-haemorrhage DICOM slices and ``stage_2_train.csv`` (``head_ct.py``);
- :func:`make_mosmed` MosMedData chest-CT NIfTI volumes, ``CT-0`` and ``CT-23`` (``chest_ct.py``).

Each is deterministic by seed, writes atomically (completion marker ``.phantom.json`` last) and
is a no-op when called again with the same arguments on a complete folder. The MRI and MosMed
phantoms also keep their lesion masks out of the data path (:func:`lesion_masks`).
"""

from medrepro.data.phantoms._common import MARKER_NAME, PhantomError, is_complete, read_marker
from medrepro.data.phantoms._masks import (
    NoLesionMasksError,
    has_lesion_masks,
    lesion_masks,
    mask_key,
)


def make_mri(*args, **kwargs):
    from medrepro.data.phantoms.brain_mri import make_mri as _make
    return _make(*args, **kwargs)


def make_rsna(*args, **kwargs):
    from medrepro.data.phantoms.head_ct import make_rsna as _make
    return _make(*args, **kwargs)


def make_mosmed(*args, **kwargs):
    from medrepro.data.phantoms.chest_ct import make_mosmed as _make
    return _make(*args, **kwargs)


__all__ = [
    "MARKER_NAME",
    "NoLesionMasksError",
    "PhantomError",
    "has_lesion_masks",
    "is_complete",
    "lesion_masks",
    "make_mosmed",
    "make_mri",
    "make_rsna",
    "mask_key",
    "read_marker",
]
