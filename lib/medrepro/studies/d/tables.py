"""Study D's tables beside the thesis': ``D.table4_1`` (:func:`training_table`), ``D.table4_2``
(:func:`validation_table`), ``D.table4_3`` (:func:`performance_table`) and ``D.heldout``
(:func:`heldout_table`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from medrepro.studies.d.training import ScenarioResult


def _reported(artifact_id: str):
    from medrepro.core import manifest

    return manifest.reported_frame(artifact_id).set_index("epochs")


def _reported_row(rep, res: ScenarioResult):
    """The reported row of ``res``'s scenario (the four augmentation scenarios), else None."""
    return rep.loc[res.scenario.paper_epochs] if res.scenario.key.startswith("aug_") else None


def _get(row, column: str) -> float | None:
    if row is None:
        return None
    value = row[column]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _last_epoch_table(results: dict[str, ScenarioResult], artifact_id: str, metrics):
    """One row per scenario: ``metrics`` (``(column, value of a ScenarioResult)`` pairs), each
    beside its ``reported_<column>`` from ``artifact_id`` (the augmentation scenarios only)."""
    import pandas as pd

    rep = _reported(artifact_id)
    rows = []
    for res in results.values():
        r = _reported_row(rep, res)
        row = {"scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
               "epochs_run": len(res.history)}
        for column, value in metrics:
            row[column] = value(res)
            row[f"reported_{column}"] = _get(r, column)
        rows.append(row)
    return pd.DataFrame(rows)


def training_table(results: dict[str, ScenarioResult]):
    """D.table4_1: last-epoch training accuracy, s/epoch, loss, MSE per scenario, beside the
    reported values (the four augmentation scenarios; the others were not tabulated)."""
    return _last_epoch_table(results, "D.table4_1", [
        ("train_acc", lambda res: res.last("accuracy")),
        ("s_per_epoch", lambda res: float(res.history["epoch_seconds"].mean())),
        ("train_loss", lambda res: res.last("loss")),
        ("train_mse", lambda res: res.last("mse"))])


def validation_table(results: dict[str, ScenarioResult]):
    """D.table4_2: last-epoch validation accuracy, loss, MSE per scenario, beside the reported."""
    return _last_epoch_table(results, "D.table4_2", [
        ("val_acc", lambda res: res.last("val_accuracy")),
        ("val_loss", lambda res: res.last("val_loss")),
        ("val_mse", lambda res: res.last("val_mse"))])


def performance_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                      split: str = "val", n_boot: int = 1000, seed: int = 0):
    """D.table4_3: accuracy, precision, recall, F1 (%) on ``split`` of the best-restored model
    per scenario (positive class: abnormal), each with a 95% CI (``*_lo``, ``*_hi``: Wilson's
    for accuracy, precision and recall on these 40 volumes, bootstrap for F1), beside the
    reported values. The thesis computed its precision/recall/F1 from
    the confusion matrix of its saved (best validation loss) model on the 40 volumes its code
    calls the test set; accuracy here comes from the same matrix."""
    import pandas as pd

    from medrepro.analysis import evaluate

    rep = _reported("D.table4_3")
    rows = []
    for key, res in results.items():
        r = _reported_row(rep, res)
        s = scores[key][split]
        ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed,
                                proportions="wilson")
        row = {"scenario": res.scenario.label, "paper_epochs": res.scenario.paper_epochs,
               "epochs_run": len(res.history), "n_eval": len(s["y"])}
        for ours, theirs in (("accuracy", "val_acc"), ("precision", "precision"),
                             ("recall", "recall"), ("f1", "f1")):
            col = "val_acc" if ours == "accuracy" else ours
            row.update({col: 100 * s[ours], f"{col}_lo": 100 * ci[f"{ours}_lo"],
                        f"{col}_hi": 100 * ci[f"{ours}_hi"],
                        f"reported_{col}": _get(r, theirs)})
        rows.append(row)
    return pd.DataFrame(rows)


def heldout_table(scores: dict[str, dict[str, Any]], results: dict[str, ScenarioResult], *,
                  n_boot: int = 1000, seed: int = 0):
    """D.heldout: the 70/20/10 variant's scenarios on their validation and held-out test
    volumes: accuracy, precision, recall, F1 (%) with 95% CIs (Wilson's for the proportions,
    bootstrap for F1: 20 and 10 volumes)."""
    import pandas as pd

    from medrepro.analysis import evaluate

    rows = []
    for key, res in results.items():
        for split in ("val", "test"):
            s = scores[key][split]
            ci = evaluate.binary_ci(s["y"], s["pred"], n_boot=n_boot, seed=seed,
                                    proportions="wilson")
            rows.append({"scenario": res.scenario.label, "epochs_run": len(res.history),
                         "split": split, "n": len(s["y"]),
                         **{k: 100 * v for k, v in ci.items()}})
    return pd.DataFrame(rows)
