"""The project's one seed: its default and the one function that seeds every generator.

Every notebook, phantom generator and training run is reproducible from ``seed``; they all seed
through :func:`seed_everything` (Python's ``random``, NumPy's legacy global state, TensorFlow and
Keras' global generators, via ``keras.utils.set_random_seed``).
"""

from __future__ import annotations

import os
import random
import sys

DEFAULT_SEED = 42


def seed_everything(seed: int, *, frameworks: bool = True) -> None:
    """Seed Python, NumPy and (when importable) Keras/TensorFlow with ``seed``.

    ``frameworks=False``: seed Keras/TensorFlow only if they are imported already, without
    importing them (~5 s) in a process that builds no model (the data and report notebooks).
    """
    seed = int(seed)
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import numpy as np

    np.random.seed(seed)
    if not frameworks and "keras" not in sys.modules:
        return
    try:
        import keras
    except ImportError:  # keras is a dependency, but seeding must never be the failure
        return
    keras.utils.set_random_seed(seed)
