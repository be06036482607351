"""The papers' internal consistency: each published number recomputed from the others.

Everything here comes from the numbers in :mod:`medrepro.core.manifest` (the papers' tables and the
few numbers their texts print), never from our runs: a confusion matrix gives accuracy and
weighted precision/recall/F1; per-class precision/recall and supports give macro/weighted
averages, F1 and accuracy; a support N says which accuracies are possible at all (``k / N``).
A check allows for the rounding of what was printed: a value printed with d decimals stands for
anything within half a unit of its last digit, and a value recomputed from rounded inputs is an
interval (:class:`Check`). A check that fails is a contradiction inside the paper.

``checks()`` lists them all; ``checks_frame()`` as a table (``X.consistency``);
``headline_notes()`` summarises them per ``manifest.HEADLINES`` row (``X.compare``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medrepro.analysis import evaluate
from medrepro.core import manifest

# Model key -> (confusion-matrix artifact, headline metric of its Table 3 test accuracy).
B_MODELS = {"proposed": ("B.table6", "test accuracy (proposed, batch 8)"),
            "densenet121": ("B.table7", "test accuracy (DenseNet121)"),
            "mobilenet": ("B.table8", "test accuracy (MobileNet)"),
            "inception_v1": ("B.table9", "test accuracy (Inception V1)")}
B_CLASS_ROWS = dict(zip(manifest.RSNA_CLASSES, (5, 0, 1, 2, 3, 4)))  # S-order -> Table 1 row
B_SPLIT_PCT = {"train": 50, "val": 25, "test": 25}  # "%50 ... %25 ... %25" (Materyal)
D_HEADLINE = {5: "validation accuracy (5 epochs, augmentation)",
              25: "validation accuracy (25 epochs, augmentation)"}
EXACT = 1e-9  # allowance for float noise on exact (count) comparisons
# Decimals the tables print (a float forgets trailing zeros): A's and E's reports 2 (0.90),
# B's tables 4 (0.9280), D's Tables 4.2/4.3 2 (0.500, 70.00).
A_DEC, B_DEC, D_DEC, E_DEC = 2, 4, 2, 2


@dataclass(frozen=True)
class Check:
    """One published number against its value recomputed from other published numbers.

    ``published`` stands for ``published ± published_tol`` (its rounding);
    ``[recomputed_lo, recomputed_hi]`` is what the inputs allow given their rounding.
    """

    study: str
    artifact: str
    check: str
    published: float
    published_tol: float
    recomputed: float
    recomputed_lo: float
    recomputed_hi: float
    how: str
    headline: str | None = None

    @property
    def consistent(self) -> bool:
        return (self.published + self.published_tol + EXACT >= self.recomputed_lo
                and self.published - self.published_tol - EXACT <= self.recomputed_hi)

    def summary(self) -> str:
        verdict = "consistent" if self.consistent else "CONTRADICTION"
        return (f"{verdict}: {self.check}: {_fmt(self.published)} vs {_fmt(self.recomputed)} "
                f"({self.how})")


def half_unit(value: float, min_decimals: int = 0) -> float:
    """Half a unit of the last printed digit of ``value`` (0.9281 -> 0.00005, 57.5 -> 0.05).

    A float forgets trailing zeros (0.90 is 0.9), so ``min_decimals`` gives the decimals the
    table printed (2 for "0.90")."""
    text = repr(float(value))
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
    return 0.5 * 10.0 ** -max(decimals, min_decimals)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 10 else f"{x:.2f}"


# ---------------------------------------------------------------------------- check builders
def exact_check(study, artifact, check, published, recomputed, how, *, headline=None,
                published_tol: float | None = None, dec: int = 0) -> Check:
    """A published value (printed with at least ``dec`` decimals) against a value recomputed
    from exact inputs (counts)."""
    tol = half_unit(published, dec) if published_tol is None else published_tol
    return Check(study, artifact, check, float(published), tol, float(recomputed),
                 float(recomputed), float(recomputed), how, headline)


def rounded_check(study, artifact, check, published, f: Callable[..., float],
                  inputs: Sequence[float], how, *, headline=None, scale: float = 1.0,
                  dec: int = 0) -> Check:
    """A published value against ``f(*inputs)``, where the inputs are themselves rounded
    published values: the recomputed interval spans ``f`` over every corner of the inputs'
    rounding box (exact for the monotone functions used here: sums, means, F1).
    ``scale`` multiplies the result (100 for percentages)."""
    inputs = [float(v) for v in inputs]
    boxes = [(v - half_unit(v, dec), v + half_unit(v, dec)) for v in inputs]
    corners = [scale * f(*c) for c in itertools.product(*boxes)] if len(inputs) <= 10 else []
    centre = scale * f(*inputs)
    if not corners:  # linear in many inputs: bound by the sum of the half units
        spread = scale * sum(half_unit(v, dec) for v in inputs)
        corners = [centre - spread, centre + spread]
    return Check(study, artifact, check, float(published), half_unit(published, dec), centre,
                 min(corners), max(corners), how, headline)


def count_check(study, artifact, check, published, n: int, how, *, headline=None,
                scale: float = 1.0, dec: int = 0) -> Check:
    """Whether ``published`` (a rate, times ``scale``) can be ``k / n`` for an integer k."""
    k = round(published / scale * n)
    return exact_check(study, artifact, check, published, scale * k / n,
                       f"{k}/{n} is the nearest possible value; {how}", headline=headline,
                       dec=dec)


def matrix_scores(cm) -> dict[str, float]:
    """Accuracy and weighted precision/recall/F1 of a ``(K, K)`` count matrix (rows true)."""
    cm = np.asarray(cm, dtype=float)
    precision, recall, f1, support = evaluate._prf(cm)
    w = support / support.sum()
    return {"accuracy": float(np.trace(cm) / cm.sum()), "precision": float(w @ precision),
            "recall": float(w @ recall), "f1": float(w @ f1)}


def binary_matrix_scores(cm) -> dict[str, float]:
    """Accuracy, precision, recall, F1 of the positive (second) class of a 2×2 matrix, in %."""
    cm = np.asarray(cm, dtype=float)
    precision, recall, f1, _ = evaluate._prf(cm)
    return {"accuracy": 100 * float(np.trace(cm) / cm.sum()), "precision": 100 * precision[1],
            "recall": 100 * recall[1], "f1": 100 * f1[1]}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# ---------------------------------------------------------------------------- per study
def study_a() -> list[Check]:
    """A: Table 2's report, its 653 supports and the accuracies printed in the text."""
    rep = {r["class"]: r for r in manifest.get("A.table2").reported}
    out = _report_checks("A", "A.table2", rep, headline="test accuracy (LSTM-CNN, paper split)",
                         dec=A_DEC)
    n = rep["accuracy"]["support"]
    text = manifest.A_TEXT
    head = "test accuracy (LSTM-CNN, paper split)"
    out += [
        exact_check("A", "A.table2", "test images (Table 2 supports) vs 20% of all images", n,
                    0.2 * text["n_images"], f"0.2 × {text['n_images']}", published_tol=1.0),
        count_check("A", "A.table3", "abstract/Table 3 accuracy 98.1% possible on 653 images",
                    text["abstract_accuracy_pct"], n, "no k/653 rounds to 98.1%", headline=head,
                    scale=100),
        count_check("A", "A.table3", "conclusion accuracy 98.01% possible on 653 images",
                    text["conclusion_accuracy_pct"], n, "section 5", headline=head, scale=100),
        exact_check("A", "A.table3", "abstract accuracy 98.1% vs the conclusion's 98.01%",
                    text["abstract_accuracy_pct"], text["conclusion_accuracy_pct"],
                    "two printed values", headline=head,
                    published_tol=half_unit(98.1) + half_unit(98.01)),
        exact_check("A", "A.table2", "Table 2 accuracy 0.98 vs the abstract's 0.981",
                    rep["accuracy"]["f1"], text["abstract_accuracy_pct"] / 100,
                    "two printed values", headline=head,
                    published_tol=half_unit(0.98, A_DEC) + half_unit(0.981)),
    ]
    return out


def study_b() -> list[Check]:
    """B: every confusion matrix against Tables 1, 3 and 5; Table 1's splits."""
    t1 = manifest.get("B.table1").reported
    t3 = {r["model"]: r for r in manifest.get("B.table3").reported}
    t5 = {r["model"]: r for r in manifest.get("B.table5").reported}
    out = []
    for key, (art, head) in B_MODELS.items():
        cm = np.asarray(manifest.get(art).reported)
        s = matrix_scores(cm)
        out.append(exact_check("B", "B.table3", f"{key} test accuracy (Table 3) vs its {art} "
                               "matrix", t3[key]["test_acc"], s["accuracy"],
                               f"trace / sum of {art}", headline=head, dec=B_DEC))
        for metric in ("precision", "recall", "f1"):
            out.append(exact_check("B", "B.table5", f"{key} weighted {metric} (Table 5) vs its "
                                   f"{art} matrix", t5[key][metric], s[metric],
                                   f"support-weighted from {art}",
                                   headline="test weighted F1 (proposed)"
                                   if key == "proposed" and metric == "f1" else None, dec=B_DEC))
        out.append(exact_check("B", "B.table5", f"{key} weighted recall (Table 5) vs test "
                               "accuracy (Table 3)", t5[key]["recall"], t3[key]["test_acc"],
                               "weighted recall is the accuracy",
                               published_tol=2 * half_unit(t5[key]["recall"], B_DEC)))
        for cls, row in B_CLASS_ROWS.items():
            out.append(exact_check("B", art, f"{key}: {cls} test images (Table 1) vs the "
                                   f"matrix row", t1[row]["test"], cm[manifest.RSNA_CLASSES.index(
                                       cls)].sum(), f"row sum of {art}", published_tol=0.0))
    for r in t1:
        out.append(exact_check("B", "B.table1", f"{r['class']}: total vs train + val + test",
                               r["total"], r["train"] + r["val"] + r["test"], "sum of the row",
                               published_tol=0.0))
        for part, pct in B_SPLIT_PCT.items():
            out.append(exact_check("B", "B.table1", f"{r['class']}: {part} share vs the text's "
                                   f"%{pct}", pct, 100 * r[part] / r["total"],
                                   f"100 × {part} / total; %{pct} printed as a whole percent"))
    return out


def study_d() -> list[Check]:
    """D: Table 4.3 against the appendix matrices and Table 4.2; Tables 4.1/4.2 against the
    set sizes, and the printed set sizes against each other; Table 4.2's 25-epoch accuracy
    against the text that introduces it; the lung-only model's printed accuracies against the
    set sizes (that model is in no table: its 70 %/71 % are not Table 4.3's 25-epoch row)."""
    t41 = {r["epochs"]: r for r in manifest.get("D.table4_1").reported}
    t42 = {r["epochs"]: r for r in manifest.get("D.table4_2").reported}
    t43 = {r["epochs"]: r for r in manifest.get("D.table4_3").reported}
    text = manifest.D_TEXT
    out = []
    for ep, cm in manifest.D_APPENDIX_CMS.items():
        s = binary_matrix_scores(cm)
        for metric, col in (("accuracy", "val_acc"), ("precision", "precision"),
                            ("recall", "recall"), ("f1", "f1")):
            out.append(exact_check("D", "D.table4_3", f"{ep} epochs: {metric} % (Table 4.3) "
                                   "vs the appendix matrix", t43[ep][col], s[metric],
                                   f"appendix A matrix {cm}",
                                   dec=D_DEC if metric == "accuracy" else 0,
                                   headline=D_HEADLINE.get(ep) if metric == "accuracy" else None))
    for ep, r in t43.items():
        out.append(exact_check("D", "D.table4_3", f"{ep} epochs: validation accuracy, Table 4.3 "
                               "vs Table 4.2", r["val_acc"], 100 * t42[ep]["val_acc"],
                               "the same run's two tables", headline=D_HEADLINE.get(ep),
                               published_tol=half_unit(r["val_acc"], D_DEC)
                               + 100 * half_unit(t42[ep]["val_acc"], D_DEC)))
        out.append(rounded_check("D", "D.table4_3", f"{ep} epochs: F1 % vs its precision and "
                                 "recall", r["f1"], lambda p, q: _f1(p, q),
                                 [r["precision"], r["recall"]], "2PR / (P + R)", dec=D_DEC))
    out.append(_d_precision_possible(t43[25], text["n_val_printed"] // 2))
    n_tr, n_val = text["n_train_printed"], text["n_val_printed"]
    per_class = text["per_class_split"]
    out += [exact_check("D", "D.table4_1", "training volumes: the code's printed 160 vs the "
                        "prose's 140 (70 + 70, section 3.3.4.2)", n_tr, 2 * per_class[0],
                        "two printed counts", published_tol=0.0),
            exact_check("D", "D.table4_2", "validation volumes: the code's printed 40 vs the "
                        "prose's 20 (10 + 10, section 3.3.4.2)", n_val, 2 * per_class[2],
                        "two printed counts", published_tol=0.0)]
    for ep, r in t41.items():
        for n, label in ((n_tr, "the printed 160"), (2 * per_class[0], "70/20/10's 140")):
            out.append(count_check("D", "D.table4_1", f"{ep} epochs: training accuracy "
                                   f"possible on {label} volumes", r["train_acc"], n,
                                   "set size", dec=D_DEC))
    for ep, r in t42.items():
        for n, label in ((n_val, "the printed 40"), (2 * per_class[2], "70/20/10's 20")):
            out.append(count_check("D", "D.table4_2", f"{ep} epochs: validation accuracy "
                                   f"possible on {label} volumes", r["val_acc"], n, "set size",
                                   headline=D_HEADLINE.get(ep), dec=D_DEC))
    out.append(exact_check("D", "D.table4_2", "25 epochs: validation accuracy, Table 4.2 vs the "
                           "text's 65.5 % that introduces it", 100 * t42[25]["val_acc"],
                           text["best_val_acc_pct_text"], "the sentence introducing Table 4.2 "
                           "and Fig 4.7", headline=D_HEADLINE[25],
                           published_tol=100 * half_unit(0.71, D_DEC) + half_unit(65.5)))
    # The lung-only model of section 4.5.1 (its own run, in no table): "%70 ve %71".
    for n, label in ((n_tr, "the printed 160"), (2 * per_class[0], "70/20/10's 140")):
        out.append(count_check("D", "D.fig4_10", f"lung-only model: training accuracy 70% "
                               f"possible on {label} volumes", text["best_model_train_acc_pct"],
                               n, "set size; section 4.5.1", scale=100))
    for n, label in ((n_val, "the printed 40"), (2 * per_class[2], "70/20/10's 20")):
        out.append(count_check("D", "D.fig4_10", f"lung-only model: validation accuracy 71% "
                               f"possible on {label} volumes", text["best_model_val_acc_pct"],
                               n, "set size; section 4.5.1", scale=100))
    return out


def _d_precision_possible(row, n_pos: int) -> Check:
    """Whether a precision is TP / (TP + FP) for integers, with TP fixed by the recall."""
    tp = round(row["recall"] / 100 * n_pos)
    fps = np.arange(0, 2 * n_pos + 1)
    values = 100 * tp / (tp + fps)
    best = float(values[np.argmin(np.abs(values - row["precision"]))])
    return exact_check("D", "D.table4_3", f"{row['epochs']} epochs: precision % possible with "
                       f"recall {row['recall']}% of {n_pos} abnormal volumes", row["precision"],
                       best, f"TP = {tp}; nearest TP / (TP + FP)", dec=D_DEC)


def study_e() -> list[Check]:
    """E: Table 1's report, its supports and the printed test accuracy."""
    rep = {r["class"]: r for r in manifest.get("E.table1").reported}
    head = "test accuracy"
    out = _report_checks("E", "E.table1", rep, headline=head, dec=E_DEC)
    n = rep["macro avg"]["support"]
    out += [
        exact_check("E", "E.table1", "test images (supports) vs 20% of all images", n,
                    0.2 * manifest.E_TEXT["n_images"], f"0.2 × {manifest.E_TEXT['n_images']}",
                    published_tol=1.0),
        count_check("E", "E.table1", "test accuracy 0.9445 possible on 1405 images",
                    manifest.E_HEADLINE["test_acc"], n, "set size", headline=head),
    ]
    return out


def _report_checks(study: str, artifact: str, rep: dict, *, headline: str,
                   dec: int) -> list[Check]:
    """Per-class F1 from P and R; macro and weighted rows from the classes; accuracy from the
    per-class recalls and supports."""
    classes = [c for c in rep if c not in ("accuracy", "macro avg", "weighted avg")]
    sup = np.array([rep[c]["support"] for c in classes], dtype=float)
    w = sup / sup.sum()
    out = [rounded_check(study, artifact, f"{c}: F1 vs its precision and recall", rep[c]["f1"],
                         _f1, [rep[c]["precision"], rep[c]["recall"]], "2PR / (P + R)",
                         dec=dec) for c in classes]
    for metric in ("precision", "recall", "f1"):
        vals = [rep[c][metric] for c in classes]
        out.append(rounded_check(study, artifact, f"macro {metric} vs the classes'",
                                 rep["macro avg"][metric], lambda *v: float(np.mean(v)), vals,
                                 "mean over classes", dec=dec))
        out.append(rounded_check(study, artifact, f"weighted {metric} vs the classes'",
                                 rep["weighted avg"][metric], lambda *v: float(w @ np.array(v)),
                                 vals, "support-weighted mean", dec=dec))
    acc = rep["accuracy"]["f1"] if "accuracy" in rep else manifest.E_HEADLINE["test_acc"]
    out.append(rounded_check(study, artifact, "accuracy vs the per-class recalls × supports",
                             acc, lambda *v: float(w @ np.array(v)),
                             [rep[c]["recall"] for c in classes], "Σ recall·support / N",
                             headline=headline, dec=dec))
    out.append(exact_check(study, artifact, "total support vs the classes' supports",
                           rep["macro avg"]["support"], sup.sum(), "sum", published_tol=0.0))
    return out


# ---------------------------------------------------------------------------- summaries
def checks() -> list[Check]:
    """Every internal-consistency check of studies A, B, D and E (C reported no numbers)."""
    return study_a() + study_b() + study_d() + study_e()


def checks_frame():
    """:func:`checks` as a ``pandas.DataFrame``, one row per check, ``consistent`` bool."""
    import pandas as pd

    rows = [{"study": c.study, "artifact": c.artifact, "check": c.check,
             "published": c.published, "recomputed": c.recomputed,
             "recomputed_lo": c.recomputed_lo, "recomputed_hi": c.recomputed_hi,
             "rounding_allowance": c.published_tol, "consistent": c.consistent, "how": c.how,
             "headline": c.headline or ""} for c in checks()]
    return pd.DataFrame(rows)


def headline_notes() -> dict[tuple[str, str], str]:
    """``(study, headline metric)`` -> the checks on that headline number, contradictions
    first, as one line (``"—"``-free; empty when nothing could be checked)."""
    by_head: dict[tuple[str, str], list[Check]] = {}
    for c in checks():
        if c.headline:
            by_head.setdefault((c.study, c.headline), []).append(c)
    return {key: "; ".join(c.summary() for c in sorted(cs, key=lambda c: c.consistent))
            for key, cs in by_head.items()}


def contradictions() -> list[str]:
    """One line per failed check: where each paper contradicts itself."""
    return [f"{c.study} {c.artifact}: {c.summary()}" for c in checks() if not c.consistent]
