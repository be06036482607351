"""Study B: the lightweight CNN for intracranial haemorrhage on RSNA CT (notebook 04).

The proposed lightweight CNN (:mod:`medrepro.models.head_ct`) is trained on notebook 02's RSNA cache
with the paper's protocol (:func:`train_and_evaluate`): once at batch 32 (:func:`train_main`),
then with DenseNet121, MobileNet and Inception V1 at batch 8 on the image-level split
(:func:`train_compare`) and on the patient-level split (:func:`train_patient`). Each returns a
:class:`Trained` result; the table functions turn results into the notebook's artifacts:

- ``B.fig4`` model summary (:func:`fig4_frame`, :func:`fig4`); ``B.fig5``/``B.fig6`` curves;
- ``B.table2`` main run (:func:`table2`), ``B.table3`` accuracies (:func:`table3`), ``B.table4``
  training time (:func:`table4`), ``B.table5`` weighted precision/recall/F1 (:func:`table5`);
- ``B.table6``-``B.table9`` test confusion matrices (:func:`confusion_tables`);
- ``B.per_class`` per-class scores with CIs, ``B.mcnemar`` proposed vs each comparison model,
  ``B.patient_split`` every model on the patient-level split; ``B.fig_failures`` the proposed
  model's failure gallery (:func:`failure_source`).

Each table sits beside the paper's numbers (``manifest.reported_frame``); models a profile does
not train show empty cells. Headline numbers go to ``06_compare`` via :func:`record_table2`,
:func:`record_table3` and :func:`record_table5`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medrepro.analysis import evaluate, stats
from medrepro.core import device, manifest, paths, profiles
from medrepro.core.planning import CHECKPOINT_BYTES_PER_PARAM, PlanContext, RowPlan, Write
from medrepro.core.profiles import BSettings
from medrepro.data import rsna
from medrepro.models import head_ct
from medrepro.reporting import report

DATASET = rsna.DATASET_ID
MODELS = list(head_ct.BUILDERS)  # proposed, densenet121, mobilenet, inception_v1
LABELS = [f"S{i + 1} {c}" for i, c in enumerate(rsna.CLASSES)]
SPLIT_KINDS = ("image", "patient")
TEST_PROBA = "test_proba.npy"  # in a model's run folder: its test-set outputs (N, 6) float32
VAL_PROBA = "val_proba.npy"  # ... and its validation-set outputs (calibration)

# The metric names of B.table3's headline numbers (manifest.HEADLINES).
TABLE3_METRICS = {"proposed": "test accuracy (proposed, batch 8)",
                  "densenet121": "test accuracy (DenseNet121)",
                  "mobilenet": "test accuracy (MobileNet)",
                  "inception_v1": "test accuracy (Inception V1)"}
# Confusion-matrix artifact → model (the paper's Tables 6-9).
CONFUSION_TABLES = {"B.table6": "proposed", "B.table7": "densenet121", "B.table8": "mobilenet",
                    "B.table9": "inception_v1"}

PER_CLASS_NOTES = "test split; *_lo/*_hi: 95% percentile bootstrap CIs over the test images"
MCNEMAR_NOTES = ("same test images; n01: proposed wrong and the other right; n10: the reverse. "
                 "Image level: p_value (McNemar), acc_diff with its paired bootstrap 95% CI over "
                 "images. Patient level (RSNA has ~30 slices per patient, not independent): "
                 "p_value_patient (clustered McNemar, Durkalski et al. 2003) and acc_diff_patient_"
                 "lo/hi (bootstrap over PatientIDs). p_holm / p_holm_patient: Holm's correction "
                 "over the comparisons of this table, each level on its own.")
CI_NOTES = ("test_ci95_*: percentile bootstrap over test images; test_ci95_*_patient: over "
            "patients (PatientID clusters), the interval the ledger uses")
_NO_CI = {"point": np.nan, "lo": np.nan, "hi": np.nan}


@dataclass(frozen=True)
class ModelResult:
    """One model trained and evaluated by :func:`train_and_evaluate`.

    ``history``: one row per epoch; ``best_epoch`` (lowest validation loss) and ``epochs_run``;
    ``train_seconds``: the epochs' wall time summed; ``train_images`` and ``images_per_s``
    (training images processed per second, validation included in the time); ``train_*`` and
    ``val_*``: the history at the best epoch; ``test_acc`` / ``test_loss``; ``y_true`` /
    ``y_pred``: int64 ``(N,)`` test labels and predictions; ``proba``: float32 ``(N, 6)``;
    ``val_proba`` / ``y_val``: the validation outputs and labels (calibration); ``patient_id``:
    str ``(N,)``, the test images' patients; ``params``; ``init``: how it was initialised
    (:func:`medrepro.models.head_ct.build_initialised`); ``model``: the Keras model holding the
    best weights.
    """

    key: str
    history: pd.DataFrame
    best_epoch: int
    epochs_run: int
    train_seconds: float
    train_images: int
    images_per_s: float
    train_acc: float
    train_loss: float
    val_acc: float
    val_loss: float
    test_acc: float
    test_loss: float
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    val_proba: np.ndarray
    y_val: np.ndarray
    patient_id: np.ndarray
    params: int
    init: str
    model: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Data:
    """Study B's inputs: the resolved RSNA set ``ds``, notebook 02's ``cache`` folder (of
    ``profile``) and the ``splits`` ``{"image": frame, "patient": frame}`` (:func:`load_splits`)."""

    ds: Any
    cache: Path
    splits: Mapping[str, pd.DataFrame]
    profile: str

    @property
    def source(self) -> str:
        return self.ds.source


@dataclass
class Trained:
    """Models trained with one batch size on one split, and what their tables need.

    ``models``: model key → :class:`ModelResult`, in training order (only the models the
    profile trains). ``batch_size``: the global batch, over ``replicas``
    (:func:`medrepro.core.profiles.batch_text`). ``init``: the initialisation asked (``random``
    | ``imagenet``); each result says what it used.
    """

    models: dict[str, ModelResult]
    source: str
    profile: str
    seed: int
    settings: BSettings
    batch_size: int
    init: str
    replicas: int = 1
    _cis: dict = field(default_factory=dict, repr=False)

    def ci(self, key: str, metric: str = "accuracy", *,
           level: str = "image") -> dict[str, float]:
        """The bootstrap 95% CI of model ``key``'s test ``metric`` (computed once), resampling
        test images (``level="image"``) or patients (``"patient"``: PatientID clusters,
        :func:`medrepro.analysis.stats.cluster_bootstrap_ci`); NaN (``point``, ``lo``, ``hi``)
        for a model not trained."""
        r = self.models.get(key)
        if r is None:
            return dict(_NO_CI)
        if (key, metric, level) not in self._cis:
            kw = {"metric": metric, "n_boot": self.settings.n_boot, "seed": self.seed}
            self._cis[key, metric, level] = (
                stats.cluster_bootstrap_ci(r.y_true, r.y_pred, r.patient_id, **kw)
                if level == "patient" else evaluate.bootstrap_ci(r.y_true, r.y_pred, **kw))
        return self._cis[key, metric, level]

    @property
    def proposed(self) -> ModelResult:
        """The proposed model's result (a run that trains it)."""
        return self.models["proposed"]

    @property
    def batch(self) -> str:
        """The batch as the tables state it: global and per replica."""
        return profiles.batch_text(self.batch_size, self.replicas,
                                   per_replica_option=profiles.batch_per_replica_option())


# ---------------------------------------------------------------------------- data
def subsample_train(split_df, *, max_train: int | None, seed: int):
    """``split_df`` with at most ``max_train`` training rows (seeded, keeping at least one image
    of every class present in train); val and test rows are kept whole."""
    train_rows = split_df[split_df["split"] == "train"]
    if max_train is None or len(train_rows) <= max_train:
        return split_df
    first = train_rows.groupby("label", group_keys=False).head(1)
    rest = train_rows.drop(first.index).sample(n=max(0, max_train - len(first)),
                                               random_state=seed)
    keep = pd.concat([first, rest])
    return pd.concat([keep, split_df[split_df["split"] != "train"]]).reset_index(drop=True)


def load(settings: BSettings, ds, *, profile: str, seed: int) -> Data:
    """Notebook 02's cache of ``ds`` (resolved ``rsna_ich``; built here if it is not complete)
    and its splits, training rows capped at ``settings.max_train``; its skips recorded for the
    run summary (``report.record_skips``)."""
    cache = rsna.ensure_cache(ds, profile=profile, progress=False)
    report.record_skips(DATASET, **rsna.skip_record(cache), source=ds.source)
    return Data(ds, cache, load_splits(cache, max_train=settings.max_train, seed=seed), profile)


def load_splits(cache, *, max_train: int | None, seed: int) -> dict[str, pd.DataFrame]:
    """Notebook 02's image- and patient-level splits of ``cache``, training rows subsampled to
    ``max_train`` (:func:`subsample_train`): ``{"image": frame, "patient": frame}``."""
    return {kind: subsample_train(rsna.load_split(cache, kind=kind), max_train=max_train,
                                  seed=seed) for kind in SPLIT_KINDS}


def split_counts(split_df) -> pd.DataFrame:
    """Images per class (rows, the paper's order) and split (columns)."""
    return pd.crosstab(split_df["label_name"], split_df["split"]).reindex(rsna.CLASSES)


# ---------------------------------------------------------------------------- training
def _split_digest(split_df) -> str:
    """SHA-256 (16 hex digits) of the rows a run trains and evaluates on (split, shard, row,
    label): a changed subsample or split makes a finished run's results stale."""
    import hashlib

    cols = [c for c in ("split", "shard", "row", "label") if c in split_df.columns]
    text = split_df[cols].astype(str).agg(",".join, axis=1).str.cat(sep="\n")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_and_evaluate(key: str, cache, split_df, *, image_size: int, batch_size: int,
                       max_epochs: int, patience: int, run_dir, seed: int = 42,
                       init: str = "random", lr: float = head_ct.LEARNING_RATE,
                       bn_momentum: float = head_ct.BN_MOMENTUM,
                       options: Mapping[str, Any] | None = None) -> ModelResult:
    """Train model ``key`` on the cached RSNA split with the paper's protocol; evaluate on test.

    Protocol: :func:`medrepro.models.head_ct.compile_paper` at Adam rate ``lr`` (the paper's
    by default), BatchNorm momentum ``bn_momentum`` (Keras' by default), at most ``max_epochs``
    epochs, early stopping on val loss with ``patience``, best weights restored
    (``medrepro.training.train.fit``); ``options`` go to the model's builder
    (:func:`medrepro.models.head_ct.build_initialised`).
    Re-run with the same ``run_dir`` and arguments, a finished model is not retrained (its
    weights, history and test outputs are read back) and an interrupted one resumes at its next
    epoch. Returns a :class:`ModelResult`.
    """
    from medrepro.core import seeds
    from medrepro.training import train

    run_dir = Path(run_dir)
    seeds.seed_everything(seed)
    options = dict(options or {})
    model, init_used = head_ct.build_initialised(key, (image_size, image_size, 3), init=init,
                                                 **options)
    model = head_ct.compile_paper(head_ct.set_bn_momentum(model, bn_momentum), learning_rate=lr)
    data = {s: rsna.make_dataset(cache, split_df, split=s, batch_size=batch_size,
                                 image_size=image_size, shuffle=s == "train", seed=seed)
            for s in ("train", "val", "test")}
    # A finished model is reused, an interrupted one resumes (medrepro.training.train.fit_once).
    identity = {"model": key, "image_size": image_size, "batch_size": batch_size, "seed": seed,
                "lr": lr, "bn_momentum": bn_momentum, "images": _split_digest(split_df)}
    # Named only where they depart from the paper's build, so that earlier runs stay reusable.
    identity |= {"options": options} if options != _default_options(key) else {}
    recipe = train.FitConfig(epochs=max_epochs, patience=patience, checkpoint="weights")
    history = train.fit_once(model, data["train"], data["val"], recipe, run_dir=run_dir,
                             identity=identity, verbose=0)
    best = train.best_epoch(history, monitor="val_loss")
    at_best = history.loc[history["epoch"] == best].iloc[0]
    test_rows = split_df[split_df["split"] == "test"]
    proba, val_proba = (_outputs(model, data[split], run_dir / name,
                                 reuse=bool(history.attrs.get("reused")))
                        for split, name in (("test", TEST_PROBA), ("val", VAL_PROBA)))
    y_true = test_rows["label"].to_numpy(np.int64)
    y_pred = proba.argmax(axis=1).astype(np.int64)
    eps = 1e-7
    n_train = int((split_df["split"] == "train").sum())
    seconds = float(history["epoch_seconds"].sum())
    return ModelResult(
        key=key, history=history, best_epoch=best, epochs_run=len(history),
        train_seconds=seconds, train_images=n_train,
        images_per_s=n_train * len(history) / seconds if seconds else float("nan"),
        train_acc=float(at_best["accuracy"]), train_loss=float(at_best["loss"]),
        val_acc=float(at_best["val_accuracy"]), val_loss=float(at_best["val_loss"]),
        test_acc=float((y_true == y_pred).mean()),
        test_loss=float(-np.log(np.clip(proba[np.arange(len(y_true)), y_true], eps,
                                        1.0)).mean()),
        y_true=y_true, y_pred=y_pred, proba=proba, val_proba=val_proba,
        y_val=split_df.loc[split_df["split"] == "val", "label"].to_numpy(np.int64),
        patient_id=test_rows["patient_id"].astype(str).to_numpy(),
        params=int(model.count_params()), init=init_used, model=model)


def _default_options(key: str) -> dict[str, Any]:
    """The builder options of model ``key`` as the paper profile builds it."""
    return ({"kernel_initializer": head_ct.KERNEL_INIT} if key == "inception_v1" else {})


def _outputs(model, ds, path: Path, *, reuse: bool) -> np.ndarray:
    """The model's outputs on ``ds``, read back from ``path`` for a reused model, else
    predicted and saved there (atomic)."""
    from medrepro.core.fileio import atomic_path
    from medrepro.training import train

    if reuse and path.is_file():
        return np.load(path)
    proba = train.predict_proba(model, ds)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, proba)
    return proba


def calibration(main: Trained):
    """B.calibration: the proposed model's ECE, Brier and NLL on the test images before and
    after temperature scaling fitted on the validation images (image level)."""
    from medrepro.analysis import calibration as cal

    r = main.proposed
    return cal.calibrate(r.y_val, r.val_proba, r.y_true, r.proba,
                         model=f"proposed, batch {main.batch_size}",
                         n_boot=main.settings.n_boot, seed=main.seed)


def reliability_figure(cal):
    """B.fig_reliability: the test images' reliability diagram before and after scaling."""
    from medrepro.reporting import plots

    return plots.plot_reliability(cal.frames, title="B: reliability on the test images "
                                                     "(proposed model)")


def failure_source(main: Trained, data: Data):
    """The main run's test images for B.fig_failures (:func:`medrepro.reporting.explorer.gallery`):
    each image of the image-level split's test rows as cached (uint8 windows scaled to [0, 1],
    the cache's size) with the proposed model's probabilities; no maps (the paper explains
    nothing)."""
    from medrepro.analysis import failures
    from medrepro.reporting import explorer

    r = main.proposed
    test = data.splits["image"].query("split == 'test'")
    if len(test) != len(r.y_true) or (test["label"].to_numpy() != r.y_true).any():
        raise ValueError(f"{data.cache}: {len(test)} test rows in the image split, the main run "
                         f"scored {len(r.y_true)} (or other labels): not the split it ran on")
    cases = failures.cases(r.y_true, r.proba, labels=LABELS,
                           names=test["image_id"].astype(str).tolist())

    def image(pos: int) -> np.ndarray:  # (S, S, 3) float32
        return rsna.load_images(data.cache, test.iloc[[pos]])[0].astype(np.float32) / 255.0

    return explorer.Source(cases, LABELS, image,
                           title=f"B: proposed model, batch {main.batch_size}, test images, "
                                 f"{data.ds.label}")


def _train(settings: BSettings, data: Data, runs: Path, keys: Sequence[str], *, split: str,
           batch_size: int, folder: Callable[[str], str], seed: int, init: str) -> Trained:
    """Train ``keys`` in turn on ``data.splits[split]`` with the profile's protocol
    (``settings.recipe``), each in the run folder ``runs / folder(key)``."""
    models = {key: train_and_evaluate(key, data.cache, data.splits[split], batch_size=batch_size,
                                      run_dir=Path(runs) / folder(key),
                                      image_size=settings.image_size, seed=seed, init=init,
                                      **settings.recipe(key))
              for key in keys}
    return Trained(models, source=data.source, profile=data.profile, seed=seed,
                   settings=settings, batch_size=batch_size, init=init,
                   replicas=device.replicas_in_sync())


def train_main(settings: BSettings, data: Data, runs: Path, *, seed: int, init: str) -> Trained:
    """The main run: the proposed model at ``settings.batch_main`` on the image split."""
    return _train(settings, data, runs, ["proposed"], split="image",
                  batch_size=settings.batch_main, folder=lambda key: "main", seed=seed,
                  init=init)


def train_compare(settings: BSettings, data: Data, runs: Path, *, seed: int,
                  init: str) -> Trained:
    """The comparison: ``settings.compare_models`` at ``batch_compare``, image split. Where
    the main run has the same batch (the demo), its proposed model is that run, read back."""
    def folder(key: str) -> str:
        same = key == "proposed" and settings.batch_main == settings.batch_compare
        return "main" if same else f"image-{key}"

    return _train(settings, data, runs, settings.compare_models, split="image",
                  batch_size=settings.batch_compare, folder=folder, seed=seed, init=init)


def train_patient(settings: BSettings, data: Data, runs: Path, *, seed: int,
                  init: str) -> Trained:
    """``settings.patient_models`` at ``batch_compare`` on the patient-level split."""
    return _train(settings, data, runs, settings.patient_models, split="patient",
                  batch_size=settings.batch_compare, folder=lambda key: f"patient-{key}",
                  seed=seed, init=init)


def trained_line(res: Trained) -> str:
    """Which models ``res`` trained and which the profile left out, in one line."""
    return ("trained: " + ", ".join(res.models) + " | not trained in this profile: "
            + (", ".join(k for k in MODELS if k not in res.models) or "none"))


# ---------------------------------------------------------------------------- B.fig4
def fig4_frame(model) -> pd.DataFrame:
    """The model summary of B.fig4: every layer (input included), output shape without the
    batch dimension, parameters; no total rows."""
    from medrepro.models import summary

    return summary.summary_frame(model, input_layer=True, batch_dim=False, totals=None,
                                 shape_column="output shape")


def fig4(model, frame: pd.DataFrame):
    """B.fig4: the summary table ``frame`` of the proposed ``model`` as a figure."""
    from medrepro.reporting import plots

    return plots.plot_summary_table(
        frame, title=f"Proposed lightweight CNN: {model.count_params():,} parameters "
                     "(paper: 5.434M)")


def curves_title(main: Trained) -> str:
    """The title of ``B.fig5``/``B.fig6``: the proposed model's curves, its batch, data and
    profile."""
    return f"Proposed model, batch {main.batch} ({main.source}, {main.profile})"


def plot_confusion(res: Trained, key: str = "proposed"):
    """Model ``key``'s test confusion matrix as a figure (shown, not saved)."""
    from medrepro.reporting import plots

    r = res.models[key]
    return plots.plot_confusion(evaluate.confusion(r.y_true, r.y_pred,
                                                   n_classes=rsna.N_CLASSES),
                                labels=LABELS, title=f"Proposed model, test ({res.source})")


# ---------------------------------------------------------------------------- tables
def _with_paper(frame: pd.DataFrame, artifact: str, on: str) -> pd.DataFrame:
    """``frame`` beside the paper's values of ``artifact`` (columns ``paper_*``), joined on
    column ``on``."""
    return frame.merge(manifest.reported_frame(artifact).add_prefix("paper_"),
                       left_on=on, right_on=f"paper_{on}").drop(columns=f"paper_{on}")


def table2(main: Trained) -> pd.DataFrame:
    """B.table2: the main run's accuracy and loss on train/val/test (test with its 95% CI),
    best epoch and epochs run, beside the paper's."""
    r, ci = main.proposed, main.ci("proposed")
    table = pd.DataFrame({"split": ["train", "val", "test"],
                          "accuracy": [r.train_acc, r.val_acc, r.test_acc],
                          "loss": [r.train_loss, r.val_loss, r.test_loss],
                          "ci95_low": [np.nan, np.nan, ci["lo"]],
                          "ci95_high": [np.nan, np.nan, ci["hi"]]})
    table = _with_paper(table, "B.table2", "split")
    table["best_epoch"], table["epochs_run"] = r.best_epoch, r.epochs_run
    return table


def table2_notes(main: Trained) -> str:
    return f"batch {main.batch}; paper: {manifest.get('B.table2').notes}"


def record_table2(main: Trained) -> None:
    """Record the main run's test accuracy (with its CI) for 06_compare; the metric is named
    after the paper's batch-32 run, the notes state the batch this one trained at."""
    r = main.proposed
    _record(main, "proposed", "test accuracy (proposed, batch 32)", r.test_acc, "B.table2",
            lead=f"main run at batch {main.batch_size}; ")


def _record(res: Trained, key: str, metric: str, value: float, artifact: str,
            ci_metric: str = "accuracy", lead: str = "") -> None:
    """Record a headline number with its patient-cluster CI (the ledger's), the image-level
    CI beside it (``ci_image``)."""
    patient, image = (res.ci(key, ci_metric, level=lv) for lv in ("patient", "image"))
    report.record_metric("B", metric, value, source=res.source, artifact=artifact,
                         ci=(patient["lo"], patient["hi"]), n=len(res.models[key].y_true),
                         notes=f"{lead}CI over {patient.get('n_clusters')} patients (PatientID "
                               f"bootstrap); over images {image['lo']:.3f}-{image['hi']:.3f}",
                         extra={"ci_image": [image["lo"], image["hi"]]})


def table3(res: Trained) -> pd.DataFrame:
    """B.table3: every model's parameters (at 224), initialisation and train/val/test accuracy
    (test with its 95% CI), beside the paper's."""
    rows = []
    for key in MODELS:
        r, ci, pci = res.models.get(key), res.ci(key), res.ci(key, level="patient")
        rows.append({"model": key, "params_224": head_ct.PAPER_PARAMS[key],
                     "init": r.init if r else "",
                     **{m: getattr(r, m) if r else np.nan
                        for m in ("train_acc", "val_acc", "test_acc")},
                     "test_ci95_low": ci["lo"], "test_ci95_high": ci["hi"],
                     "test_ci95_low_patient": pci["lo"], "test_ci95_high_patient": pci["hi"]})
    return _with_paper(pd.DataFrame(rows), "B.table3", "model")


def table3_notes(res: Trained) -> str:
    return (f"batch {res.batch}; image size {res.settings.image_size}; params counted "
            f"at 224; initialisation asked: {res.init} (our choice; the paper does not say), "
            f"used: see column init. {CI_NOTES}")


def record_table3(res: Trained) -> None:
    """Record every trained model's test accuracy (with its CI) for 06_compare."""
    for key in MODELS:
        r = res.models.get(key)
        if r:
            _record(res, key, TABLE3_METRICS[key], r.test_acc, "B.table3")


def table4(res: Trained) -> pd.DataFrame:
    """B.table4: epochs, training images, minutes and images/s of every model, beside the
    paper's minutes."""
    m = res.models
    table = pd.DataFrame([{"model": k, "epochs_run": m[k].epochs_run if k in m else np.nan,
                           "train_images": m[k].train_images if k in m else np.nan,
                           "train_minutes": m[k].train_seconds / 60 if k in m else np.nan,
                           "images_per_s": m[k].images_per_s if k in m else np.nan}
                          for k in MODELS])
    return _with_paper(table, "B.table4", "model")


def table4_notes(res: Trained) -> str:
    return (f"measured wall time on this machine ({res.profile} profile, image size "
            f"{res.settings.image_size}, validation passes included); the paper's minutes "
            "are for the full set on the authors' hardware. Projection to the full set: "
            "benchmarks/bench_train.py")


def _weighted(r: dict | None) -> pd.Series:
    """Weighted-average precision, recall and F1 of one model's test predictions (NaN if
    not trained)."""
    if not r:
        return pd.Series({"precision": np.nan, "recall": np.nan, "f1": np.nan})
    return evaluate.classification_table(r.y_true, r.y_pred,
                                         labels=LABELS).loc["weighted avg"]


def table5(res: Trained) -> pd.DataFrame:
    """B.table5: every model's weighted precision, recall and F1 (F1 with its 95% CI),
    beside the paper's."""
    rows = []
    for key in MODELS:
        r = res.models.get(key)
        w, ci = _weighted(r), res.ci(key, "weighted_f1")
        rows.append({"model": key, "init": r.init if r else "", "precision": w["precision"],
                     "recall": w["recall"], "f1": w["f1"], "f1_ci95_low": ci["lo"],
                     "f1_ci95_high": ci["hi"]})
    return _with_paper(pd.DataFrame(rows), "B.table5", "model")


def table5_notes(res: Trained) -> str:
    return (f"weighted averages over the six classes, test split; initialisation {res.init} "
            "asked, column init: used")


def record_table5(res: Trained) -> None:
    """Record the proposed model's weighted F1 (with its CI) for 06_compare, if trained."""
    r = res.models.get("proposed")
    if r:
        ci = res.ci("proposed", "weighted_f1")
        report.record_metric("B", "test weighted F1 (proposed)", _weighted(r)["f1"],
                             source=res.source, artifact="B.table5", ci=(ci["lo"], ci["hi"]),
                             n=len(r.y_true))


def confusion_table(res: Trained, artifact: str) -> pd.DataFrame:
    """One of B.table6-B.table9: the model's test confusion matrix (``ours_S1``..; NaN if not
    trained) beside the paper's (``paper_S1``..); rows the true class."""
    r = res.models.get(CONFUSION_TABLES[artifact])
    ours = (evaluate.confusion(r.y_true, r.y_pred, n_classes=rsna.N_CLASSES) if r
            else np.full((rsna.N_CLASSES, rsna.N_CLASSES), np.nan))
    paper = manifest.reported_frame(artifact)
    return pd.concat([pd.DataFrame(ours, index=paper.index,
                                   columns=paper.columns).add_prefix("ours_"),
                      paper.add_prefix("paper_")], axis=1).rename_axis("true class")


def confusion_notes(res: Trained, artifact: str) -> str:
    key = CONFUSION_TABLES[artifact]
    return f"{head_ct.DISPLAY_NAMES[key]}; " + ("" if key in res.models else
                                            "not trained in this profile")


def save_confusion_tables(res: Trained) -> dict[str, pd.DataFrame]:
    """Build and save B.table6-B.table9; returns them by artifact id."""
    tables = {art: confusion_table(res, art) for art in CONFUSION_TABLES}
    for art, table in tables.items():
        report.save_table(table, art, source=res.source, index=True,
                          notes=confusion_notes(res, art))
    return tables


def per_class(res: Trained) -> pd.DataFrame:
    """B.per_class: per-class precision, recall and F1 with 95% bootstrap CIs of every trained
    model (column ``model``), test split."""
    return pd.concat({key: evaluate.per_class_ci_table(r.y_true, r.y_pred, labels=LABELS,
                                                       n_boot=res.settings.n_boot,
                                                       seed=res.seed)
                      for key, r in res.models.items()}, names=["model"]).reset_index()


def mcnemar(res: Trained) -> pd.DataFrame:
    """B.mcnemar: McNemar's test of the proposed model against each comparison model on the
    same test images, and the accuracy difference with its paired bootstrap 95% CI, at the
    image level and at the patient level (clustered McNemar, PatientID bootstrap), with Holm's
    correction over the comparisons at each level (:data:`MCNEMAR_NOTES`)."""
    base = res.proposed
    no_test = {"n01": np.nan, "n10": np.nan, "statistic": np.nan, "p_value": np.nan,
               "method": "not trained in this profile", "better": ""}
    kw = {"n_boot": res.settings.n_boot, "seed": res.seed}
    rows = []
    for key in MODELS[1:]:
        r = res.models.get(key)
        args = (base.y_true, base.y_pred, r.y_pred) if r else None
        test = evaluate.mcnemar(*args) if r else no_test
        diff = evaluate.paired_accuracy_difference(*args, **kw) if r else _NO_CI
        clustered = stats.mcnemar_clustered(*args, base.patient_id) if r else no_test
        pdiff = (stats.cluster_paired_difference(*args, base.patient_id, **kw) if r
                 else _NO_CI)
        rows.append({"model_a": "proposed", "model_b": key, "acc_a": base.test_acc,
                     "acc_b": r.test_acc if r else np.nan,
                     **{k: test[k] for k in ("n01", "n10", "statistic", "p_value", "method",
                                             "better")},
                     "acc_diff": diff["point"], "acc_diff_lo": diff["lo"],
                     "acc_diff_hi": diff["hi"], "p_value_patient": clustered["p_value"],
                     "acc_diff_patient_lo": pdiff["lo"], "acc_diff_patient_hi": pdiff["hi"]})
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm", stats.holm(table["p_value"]))
    table["p_holm_patient"] = stats.holm(table["p_value_patient"])
    return table


def patient_split(patient: Trained, image: Trained) -> pd.DataFrame:
    """B.patient_split: every model's test accuracy (95% CI) and val accuracy on the
    patient-level split, beside its image-split test accuracy and the paper's."""
    paper = manifest.reported_frame("B.table3").set_index("model")
    rows = []
    for key in MODELS:
        r, ci = patient.models.get(key), patient.ci(key)
        rows.append({"model": key, "patient_test_acc": ci["point"], "ci95_low": ci["lo"],
                     "ci95_high": ci["hi"], "patient_val_acc": r.val_acc if r else np.nan,
                     "image_split_test_acc": (image.models[key].test_acc
                                              if key in image.models else np.nan),
                     "paper_test_acc_image_split": paper.loc[key, "test_acc"]})
    return pd.DataFrame(rows)


def patient_split_notes(patient: Trained) -> str:
    return f"batch {patient.batch}; split grouped by PatientID (notebook 02)"


# ---------------------------------------------------------------------------- the plan
NOTEBOOK = "04_lightweight_ct"
ASSUMED_EPOCHS = 9  # the proposed model stopped at epoch 9 (Table 2); assumed for every model
PLANNED_PARAMS = 7_100_000  # the largest of the four models: DenseNet121, 7,043,654


def plan(settings: BSettings, ctx: PlanContext) -> RowPlan:
    """Study B's part of notebook 04's plan: every model's checkpoints, and the training time
    from the measured per-model rates (``ctx.rates["train"]``, ``benchmarks/bench_train.py``)."""
    rates = ctx.rates.get("train", {})
    n = round(ctx.found[rsna.DATASET_ID].files * rsna.SELECTED_FRACTION)
    n_train = n // 2 if settings.max_train is None else min(n // 2, int(settings.max_train))
    n_val = n // 4
    def epochs(key: str) -> int:
        most = int(settings.recipe(key)["max_epochs"])
        return min(most, ASSUMED_EPOCHS) if ctx.profile == "paper" else most

    runs = [(m, "image") for m in settings.compare_models] + [(m, "patient")
                                                              for m in settings.patient_models]
    out = RowPlan([Write(f"study B checkpoints ({len(runs)} runs)",
                         paths.runs_root() / NOTEBOOK / ctx.profile,
                         len(runs) * PLANNED_PARAMS * CHECKPOINT_BYTES_PER_PARAM)])
    models = {r.get("model"): r for r in rates.get("models", [])}
    if not models or any(m not in models for m, _ in runs):
        out.note = "no measured training rate for every model (benchmarks/bench_train.py)"
        return out
    if int(rates.get("size", 224)) != int(settings.image_size):
        out.note = (f"training rates measured at {rates.get('size')} px, this profile trains "
                    f"at {settings.image_size} px: not projected")
        return out
    out.seconds = sum(epochs(m) * (n_train / models[m]["train_img_s"]
                                   + n_val / models[m]["infer_img_s"])
                      + n_val / models[m]["infer_img_s"] for m, _ in runs)
    most = sorted({epochs(m) for m, _ in runs})
    out.note = (f"{len(runs)} trainings x {'-'.join(map(str, most))} epochs x ({n_train:,} "
                f"train + {n_val:,} val) "
                f"at the measured img/s per model (batch {rates.get('batch')}, "
                f"{rates.get('precision', '?')})")
    return out
