"""Model builders of the five studies, one module per modality.

- ``medrepro.models.brain_mri``: ``lstm_cnn_head``, the standard-CNN baseline head, ``seq_cnn`` (C),
  ``xai_cnn`` (E), the ResNet50 backbone (A).
- ``medrepro.models.head_ct``: ``lightweight_cnn``, ``inception_v1``, ``densenet121``, ``mobilenet`` (B).
- ``medrepro.models.chest_ct``: ``cnn3d`` (D).

``from medrepro.models import cnn3d`` works too: names resolve lazily here, so importing
``medrepro.models`` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("brain_mri", "head_ct", "chest_ct")


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{sub}":
                raise
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"medrepro.models has no model builder {name!r}")
