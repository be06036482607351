"""Study D's failure gallery and test-set explorer (``D.fig_failures``): the volumes of one
scenario's model, by default the 70/20/10 variant's held-out test volumes (never seen in training
or model selection) under its 25-epoch augmented scenario, the model of ``D.calibration``; each
volume with its probabilities and the 3-D Grad-CAM of the "abnormal" output."""

from __future__ import annotations

import numpy as np

from medrepro.models.chest_ct import GRADCAM_LAYER
from medrepro.studies.d.data import Data, scenario_splits
from medrepro.studies.d.training import VariantResult
from medrepro.studies.d.xai import METHOD, split_scans

FAILURE_SCENARIO = "aug_25"  # the scenario every variant trains in every profile


def failure_source(variant: VariantResult, data: Data, ds, *, key: str = FAILURE_SCENARIO,
                   split: str = "test"):
    """The ``split`` volumes of ``variant`` (the paper variant or the 70/20/10 one of ``data``)
    under scenario ``key``'s restored model (:class:`medrepro.reporting.explorer.Source`,
    volumes ``(H, W, D)`` as the scenario sees them): the cases (threshold 0.5 on the abnormal
    probability, names: the volumes' file names), the 3-D Grad-CAM at :data:`GRADCAM_LAYER`
    of each volume made on demand."""
    from medrepro.analysis import explain, failures
    from medrepro.data import volumes
    from medrepro.reporting import explorer

    heldout = variant.splits is data.heldout_splits
    result = variant.results[key]
    x, y = scenario_splits(result.scenario, variant.splits)[split]
    names = split_scans(data, split, heldout=heldout)["name"].tolist()
    cases = failures.cases(y, variant.scores[key][split]["prob"], labels=volumes.CLASS_NAMES,
                           names=names, threshold=0.5)

    def image(pos: int) -> np.ndarray:  # (H, W, D)
        return x[pos]

    def maps(pos: int) -> dict[str, np.ndarray]:  # the shared model: this scenario's weights first
        return {METHOD: explain.gradcam(result.restore(), x[pos][..., None],
                                        layer=GRADCAM_LAYER)}

    which = "70/20/10 variant" if heldout else "thesis split"
    return explorer.Source(cases, volumes.CLASS_NAMES, image, maps, volume=True,
                           title=f"D: {result.scenario.label}, {which}, {split} volumes, "
                                 f"{ds.label}")
