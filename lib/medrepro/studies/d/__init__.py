"""Study D: the 3-D CNN of Fig 4.5 on MosMedData CT-0 vs CT-23 volumes (notebook 05).

The thesis trains one 3-D CNN (:mod:`medrepro.models.chest_ct`) in six scenarios
(:data:`SCENARIOS`: all slices with augmentation for 5/10/15/25 epochs, 5 epochs without
augmentation, "lung-only" slices for 25 epochs) on two split protocols: the thesis' own 160/40
train/validation set-up (the paper variant, evaluated on its validation volumes as the thesis
did) and the prose's 70/20/10 split with a held-out test set.

One module per job; the names notebook 05 uses are re-exported here (``d.train_variant``):

- :mod:`.scenarios`: the six scenarios and which are the first epochs of a longer one;
- :mod:`.data`: the volumes, both split protocols, the cache, the arrays (:func:`load_data`);
- :mod:`.training`: one scenario, every scenario on one model, a protocol trained and scored
  (:func:`train_variant`), following one :class:`Recipe`;
- :mod:`.scoring`: every model on every split, the best scenario, the headline metrics, the
  calibration of the held-out variant (``D.calibration``);
- :mod:`.tables`: ``D.table4_1``, ``D.table4_2``, ``D.table4_3``, ``D.heldout``;
- :mod:`.xai`: the pointing game of the 3-D Grad-CAM on phantom lesion masks (``D.xai_score``)
  and its evaluation against baselines, sanity checks and faithfulness (``D.xai_eval``);
- :mod:`.figures`: ``D.gradcam3d``, ``D.fig_xai_score`` and ``D.fig_reliability``;
- :mod:`.failures`: the failure gallery (``D.fig_failures``) and the test-set explorer's volumes.
"""

from medrepro.studies.d.data import (Data, Splits, cache_frames, eval_split, load_data,
                                     lung_only_splits, print_splits, scenario_splits,
                                     split_table)
from medrepro.studies.d.failures import FAILURE_SCENARIO, failure_source
from medrepro.studies.d.figures import gradcam_figure, reliability_figure, xai_score_figure
from medrepro.studies.d.scenarios import SCENARIOS, Scenario, nested_plan
from medrepro.studies.d.scoring import (HEADLINE_METRICS, best_scenario, binary_scores,
                                        calibration, evaluate_scenarios, predict_labels,
                                        record_metrics)
from medrepro.studies.d.tables import (heldout_table, performance_table, training_table,
                                       validation_table)
from medrepro.studies.d.training import (Recipe, ScenarioResult, VariantResult, bn_momenta,
                                         data_digest, nested_config, plan, print_trained,
                                         reset_model, run_scenarios, train_scenario,
                                         train_variant)
from medrepro.studies.d.xai import (SCORED, XaiScore, evaluate_gradcam, preprocess_mask,
                                    score_gradcam, score_scenarios, train_shuffled,
                                    xai_eval_figure, xai_eval_notes, xai_score_notes,
                                    xai_score_table)

__all__ = ["FAILURE_SCENARIO", "HEADLINE_METRICS", "SCENARIOS", "SCORED", "Data", "Recipe", "Scenario",
           "ScenarioResult", "Splits", "VariantResult", "XaiScore", "best_scenario",
           "binary_scores", "bn_momenta", "cache_frames", "calibration", "data_digest", "eval_split", "evaluate_gradcam", "evaluate_scenarios", "failure_source", "gradcam_figure",
           "heldout_table", "load_data", "lung_only_splits", "nested_config", "nested_plan", "performance_table",
           "plan", "predict_labels", "preprocess_mask", "print_splits", "print_trained",
           "record_metrics", "reliability_figure", "reset_model", "run_scenarios", "scenario_splits", "score_gradcam",
           "score_scenarios", "split_table", "train_scenario", "train_variant",
           "train_shuffled", "training_table", "validation_table", "xai_eval_figure",
           "xai_eval_notes", "xai_score_figure", "xai_score_notes", "xai_score_table"]
