"""Study D's scoring: every scenario's best-restored model on every split (:func:`evaluate_scenarios`),
the best scenario and the headline metrics recorded for ``06_compare``."""

from __future__ import annotations

from typing import Any

import numpy as np

from medrepro.core.profiles import DSettings
from medrepro.studies.d.data import Splits, scenario_splits
from medrepro.studies.d.scenarios import SCENARIOS

# The headline numbers recorded for X.compare: scenario -> metric name (validation accuracy).
HEADLINE_METRICS = {"aug_25": "validation accuracy (25 epochs, augmentation)",
                    "aug_5": "validation accuracy (5 epochs, augmentation)"}


def predict_labels(model, x: np.ndarray, *, batch: int = 4,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of ``model`` on volumes ``x`` ``(N, H, W, D)``: float, 0/1 int."""
    from medrepro.data import pipeline
    from medrepro.training import train

    ds = pipeline.from_arrays(x[..., None], batch_size=batch, cache=False)
    prob = train.predict_proba(model, ds).reshape(-1)
    return prob, (prob >= threshold).astype(np.int64)


def binary_scores(y_true, prob, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class = abnormal, from
    :func:`medrepro.analysis.evaluate.per_class_table`), binary cross-entropy and MSE of probabilities
    ``prob`` against 0/1 ``y_true``; rates in [0, 1], 0 where undefined."""
    from medrepro.analysis import evaluate
    from medrepro.data import volumes

    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    pred = (p >= threshold).astype(np.int64)
    abnormal = evaluate.per_class_table(y, pred, labels=volumes.CLASS_NAMES).iloc[1]
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {"accuracy": float(np.mean(pred == y)), "precision": float(abnormal["precision"]),
            "recall": float(abnormal["recall"]), "f1": float(abnormal["f1"]),
            "loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "mse": float(np.mean((p - y) ** 2))}


def evaluate_scenarios(results: dict[str, Any], splits: Splits, *,
                       batch: int = 4) -> dict[str, dict[str, Any]]:
    """Per scenario and split: probabilities, 0/1 predictions and :func:`binary_scores`
    of the trained (best-restored) model (``results``: scenario -> ``training.ScenarioResult``).
    ``out[key][split] = {"y", "prob", "pred", **scores}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, res in results.items():
        data = scenario_splits(res.scenario, splits)
        # One predict call over all splits: fewer traced shapes, less per-call overhead.
        x_all = np.concatenate([x for x, _ in data.values()])
        prob_all, _ = predict_labels(res.restore(), x_all, batch=batch)
        out[key] = {}
        start = 0
        for name, (x, y) in data.items():
            prob = prob_all[start:start + len(x)]
            start += len(x)
            out[key][name] = {"y": y, "prob": prob, "pred": (prob >= 0.5).astype(np.int64),
                              **binary_scores(y, prob)}
    return out


def best_scenario(scores: dict[str, dict[str, Any]]) -> str:
    """The scenario with the highest validation accuracy (ties: the first in :data:`SCENARIOS`)."""
    return max(scores, key=lambda k: (scores[k]["val"]["accuracy"], -list(SCENARIOS).index(k)))


def record_metrics(settings: DSettings, ds, scores: dict[str, dict[str, Any]], *, profile: str,
                   seed: int) -> None:
    """Record the headline validation accuracies (:data:`HEADLINE_METRICS`) with 95% Wilson
    intervals (40 volumes: :func:`medrepro.analysis.stats.accuracy_ci`) for ``D.table4_3``
    (:func:`medrepro.reporting.report.record_metric`) and print them."""
    from medrepro.analysis import stats
    from medrepro.reporting import report

    for key, metric in HEADLINE_METRICS.items():
        s = scores[key]["val"]
        ci = stats.accuracy_ci(s["y"], s["pred"])
        report.record_metric("D", metric, s["accuracy"], source=ds.source, artifact="D.table4_3",
                             ci=(ci["lo"], ci["hi"]), n=len(s["y"]),
                             notes=f"profile {profile}, {settings.epochs[key]} epoch(s)")
        print(f"{metric}: {s['accuracy']:.3f} (95% Wilson CI {ci['lo']:.3f}-{ci['hi']:.3f}, "
              f"n={len(s['y'])})")


def calibration(variant, *, key: str = "aug_25", n_boot: int = 1000, seed: int = 0):
    """D.calibration: scenario ``key``'s ECE, Brier and NLL on the 70/20/10 variant's held-out
    test volumes before and after temperature scaling fitted on its validation volumes (the
    thesis' own set-up has no test split). A handful of volumes: read the CIs."""
    from medrepro.analysis import calibration as cal

    val, test = (variant.scores[key][s] for s in ("val", "test"))
    return cal.calibrate(val["y"], val["prob"], test["y"], test["prob"],
                         model=f"{variant.results[key].scenario.label} (70/20/10 variant)",
                         n_boot=n_boot, seed=seed,
                         test_note=f"{len(test['y'])} held-out test volumes")
