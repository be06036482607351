"""The artifact manifest: every table and figure the kit regenerates, as data.

Ids follow ``shared/PAPERS.md`` (``A.table2``, ``B.fig3``, ...). Each entry names its study, kind
(``figure`` or ``table``), what it shows, the notebook that makes it, and, for tables, the values
the paper reported (``reported``), so every reproduced table can be set beside them.

Entries with ``beyond=True`` are the project's own additions (leakage audit, McNemar tests,
patient-level split, ...), not artifacts of the papers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

STUDIES = {
    "A": {"title": "Classification of Brain Tumor from MR Images with LSTM-CNN Hybrid Model",
          "title_tr": "LSTM-CNN Hibrit Modeli ile MR Görüntülerinden Beyin Tümörü Sınıflandırması",
          "dataset": "brain_tumor_sartaj", "notebook": "03_lstm_cnn_mri"},
    "B": {"title": "Intracranial Hemorrhage Identification from Computed Tomography Images Using "
                   "a Lightweight Deep Learning Model",
          "title_tr": "Hafif Bir Derin Öğrenme Modeli Kullanılarak Bilgisayarlı Tomografi "
                      "Görüntülerinden Kafa İçi Kanama Tespiti",
          "dataset": "rsna_ich", "notebook": "04_lightweight_ct"},
    "C": {"title": "Brain Tumour Detection (Sequential CNN trained with MSE, Kaggle notebook)",
          "title_tr": "Beyin Tümörü Tespiti",
          "dataset": "brain_tumor_masoud", "notebook": "03_lstm_cnn_mri"},
    "D": {"title": "3D Medical Image Identification Using Deep Learning Networks (thesis)",
          "title_tr": "Derin Öğrenme Ağları Kullanılarak 3B Tıbbi Görüntü Tanımlanması",
          "dataset": "mosmed", "notebook": "05_3dcnn_mosmed"},
    "E": {"title": "Brain-tumour MRI CNN with Grad-CAM, Eigen-CAM and Integrated Gradients "
                   "(Akbank Deep Learning bootcamp project)",
          "title_tr": "Akbank Derin Öğrenme Projesi: Beyin Tümörü Sınıflandırması ve "
                      "Açıklanabilirlik",
          "dataset": "brain_tumor_masoud", "notebook": "03_lstm_cnn_mri"},
}

NOTEBOOKS = ("01_download", "02_preprocess_rsna", "03_lstm_cnn_mri", "04_lightweight_ct",
             "05_3dcnn_mosmed", "06_compare")

# RSNA subtype order of the paper's confusion matrices (S1..S6).
RSNA_CLASSES = ("none", "epidural", "intraparenchymal", "intraventricular", "subarachnoid",
                "subdural")


@dataclass(frozen=True)
class Artifact:
    """One table or figure. ``reported`` holds the paper's values for tables (records or dict)."""

    id: str
    study: str
    kind: str  # "figure" | "table"
    description: str
    notebook: str
    reported: Any = None
    static: bool = False  # reproduced from the paper's numbers with our row added
    beyond: bool = False  # the project's own addition
    notes: str = field(default="")


def _cm(*rows: list[int]) -> list[list[int]]:
    return [list(r) for r in rows]


_A_TABLE2 = [
    {"class": "glioma_tumor", "precision": 0.98, "recall": 0.98, "f1": 0.98, "support": 198},
    {"class": "no_tumor", "precision": 0.97, "recall": 0.97, "f1": 0.97, "support": 79},
    {"class": "meningioma_tumor", "precision": 0.97, "recall": 0.97, "f1": 0.97, "support": 192},
    {"class": "pituitary_tumor", "precision": 0.99, "recall": 0.99, "f1": 0.99, "support": 184},
    {"class": "accuracy", "precision": None, "recall": None, "f1": 0.98, "support": 653},
    {"class": "macro avg", "precision": 0.98, "recall": 0.98, "f1": 0.98, "support": 653},
    {"class": "weighted avg", "precision": 0.98, "recall": 0.98, "f1": 0.98, "support": 653},
]

_A_TABLE1 = [
    {"layer": "lstm (LSTM 512, return_sequences)", "output_shape": "(None, 1, 512)",
     "params": 206_571_520},
    {"layer": "dropout", "output_shape": "(None, 1, 512)", "params": 0},
    {"layer": "lstm_1 (LSTM 256)", "output_shape": "(None, 1, 256)", "params": 787_456},
    {"layer": "dropout_1", "output_shape": "(None, 1, 256)", "params": 0},
    {"layer": "lstm_2 (LSTM 128)", "output_shape": "(None, 1, 128)", "params": 197_120},
    {"layer": "dropout_2", "output_shape": "(None, 1, 128)", "params": 0},
    {"layer": "lstm_3 (LSTM 64)", "output_shape": "(None, 64)", "params": 49_408},
    {"layer": "dropout_3", "output_shape": "(None, 64)", "params": 0},
    {"layer": "flatten", "output_shape": "(None, 64)", "params": 0},
    {"layer": "dense (Dense 4, softmax)", "output_shape": "(None, 4)", "params": 260},
    {"layer": "Total (all trainable)", "output_shape": "", "params": 207_605_764},
]

_A_TABLE3 = [
    {"study": "Zhuge et al.", "method": "3DConvNet", "dataset": "BraTS", "accuracy": 97.1},
    {"study": "Badža et al.", "method": "CNN", "dataset": "Figshare", "accuracy": 96.56},
    {"study": "Afshar et al.", "method": "CapsNet", "dataset": "Figshare", "accuracy": 86.56},
    {"study": "Gumaei et al.", "method": "CNN", "dataset": "Figshare", "accuracy": 94.23},
    {"study": "Pashaei et al.", "method": "CNN", "dataset": "Figshare", "accuracy": 93.68},
    {"study": "Abiwinanda et al.", "method": "CNN", "dataset": "Figshare", "accuracy": 84.19},
    {"study": "Hemanth et al.", "method": "Modified deep CNN", "dataset": "Figshare",
     "accuracy": 96.49},
    {"study": "Mzoughi et al.", "method": "Deep CNN", "dataset": "Devaki", "accuracy": 96.4},
    {"study": "Proposed (paper)", "method": "CNN-LSTM", "dataset": "Figshare",
     "accuracy": 98.1},
]
# As printed; section 3.1 describes the Kaggle set of 3264 images (Sartaj's) instead.
_A_TABLE3_NOTES = ("the paper's own row prints 'Figshare dataset' (as the literature rows), "
                   "although its section 3.1 uses the Kaggle set of 3264 images (Sartaj's)")

_B_TABLE1 = [
    {"class": "epidural", "train": 848, "val": 423, "test": 423, "total": 1694},
    {"class": "intraparenchymal", "train": 7832, "val": 3916, "test": 3916, "total": 15664},
    {"class": "intraventricular", "train": 4940, "val": 2469, "test": 2469, "total": 9878},
    {"class": "subarachnoid", "train": 8213, "val": 4105, "test": 4105, "total": 16423},
    {"class": "subdural", "train": 16100, "val": 8050, "test": 8050, "total": 32200},
    {"class": "none", "train": 322440, "val": 161217, "test": 161217, "total": 644874},
]

_B_TABLE2 = [
    {"split": "train", "accuracy": 0.9514, "loss": 0.1542},
    {"split": "val", "accuracy": 0.9259, "loss": 0.2561},
    {"split": "test", "accuracy": 0.9263, "loss": 0.2547},
]
_B_TABLE2_NOTES = "batch 32; best epoch 6, stopped at epoch 9; about 4 h of training"

_B_TABLE3 = [
    {"model": "proposed", "params_m": 5.434, "train_acc": 0.9544, "val_acc": 0.9284,
     "test_acc": 0.9281},
    {"model": "densenet121", "params_m": 7.049, "train_acc": 0.9265, "val_acc": 0.8828,
     "test_acc": 0.8816},
    {"model": "mobilenet", "params_m": 3.224, "train_acc": 0.9117, "val_acc": 0.9095,
     "test_acc": 0.9087},
    {"model": "inception_v1", "params_m": 5.979, "train_acc": 0.9359, "val_acc": 0.9224,
     "test_acc": 0.9221},
]

_B_TABLE4 = [
    {"model": "proposed", "train_minutes": 266},
    {"model": "densenet121", "train_minutes": 1004},
    {"model": "mobilenet", "train_minutes": 553},
    {"model": "inception_v1", "train_minutes": 422},
]

_B_TABLE5 = [
    {"model": "proposed", "precision": 0.9268, "recall": 0.9278, "f1": 0.9246},
    {"model": "densenet121", "precision": 0.9185, "recall": 0.9132, "f1": 0.9138},
    {"model": "mobilenet", "precision": 0.8850, "recall": 0.9088, "f1": 0.8908},
    {"model": "inception_v1", "precision": 0.9210, "recall": 0.9241, "f1": 0.9190},
]

_B_CMS = {
    "proposed": _cm([156974, 20, 207, 74, 689, 3253], [170, 107, 5, 0, 15, 126],
                    [1271, 9, 2076, 60, 222, 278], [989, 1, 179, 1053, 102, 145],
                    [2041, 1, 82, 23, 1531, 427], [2374, 15, 40, 5, 127, 5489]),
    "densenet121": _cm([154326, 2, 332, 95, 1539, 4923], [162, 0, 16, 1, 15, 229],
                       [966, 3, 2083, 115, 436, 313], [749, 0, 194, 1127, 272, 127],
                       [1760, 0, 105, 16, 1650, 574], [2367, 12, 104, 4, 225, 5338]),
    "mobilenet": _cm([158798, 9, 420, 190, 159, 1641], [318, 8, 14, 2, 6, 75],
                     [1923, 2, 1492, 143, 23, 333], [1485, 0, 206, 582, 31, 165],
                     [3316, 1, 117, 76, 212, 383], [5151, 4, 176, 28, 53, 2638]),
    "inception_v1": _cm([156468, 0, 193, 57, 1118, 3381], [149, 0, 5, 0, 14, 255],
                        [999, 0, 2018, 48, 415, 436], [883, 0, 283, 883, 235, 185],
                        [1979, 0, 56, 6, 1545, 519], [2621, 1, 21, 1, 180, 5226]),
}

_C_TABLE1 = [
    {"trial": 1, "optimizer": "Adamax", "epochs": 25, "lr": 0.001, "loss": "MSE"},
    {"trial": 2, "optimizer": "Adamax", "epochs": 50, "lr": 0.001, "loss": "MSE"},
    {"trial": 3, "optimizer": "SGD", "epochs": 25, "lr": 0.01, "loss": "MSE"},
    {"trial": 4, "optimizer": "Adam", "epochs": 25, "lr": 0.01, "loss": "MSE"},
    {"trial": 5, "optimizer": "SGD", "epochs": 25, "lr": 0.001, "loss": "MSE"},
]

_D_TABLE4_1 = [
    {"epochs": 5, "train_acc": 0.63, "s_per_epoch": 37.6, "train_loss": 0.6429, "train_mse": 0.2257},
    {"epochs": 10, "train_acc": 0.7125, "s_per_epoch": 37.6, "train_loss": 0.5589,
     "train_mse": 0.1904},
    {"epochs": 15, "train_acc": 0.7188, "s_per_epoch": 38.66, "train_loss": 0.5478,
     "train_mse": 0.1851},
    {"epochs": 25, "train_acc": 0.71, "s_per_epoch": 2, "train_loss": 0.6132,
     "train_mse": 0.1985},
]
_D_TABLE4_1_NOTES = ("25 epochs: the thesis prints 2 s per epoch (kept as printed), the other "
                     "rows 37.6-38.66 s")
_D_TABLE4_2 = [
    {"epochs": 5, "val_acc": 0.575, "val_loss": 0.7050, "val_mse": 0.2552},
    {"epochs": 10, "val_acc": 0.65, "val_loss": 0.8343, "val_mse": 0.2593},
    {"epochs": 15, "val_acc": 0.500, "val_loss": 0.7154, "val_mse": 0.2514},
    {"epochs": 25, "val_acc": 0.71, "val_loss": 0.6331, "val_mse": 0.2206},
]
_D_TABLE4_3 = [
    {"epochs": 5, "val_acc": 57.5, "precision": 60.0, "recall": 75.0, "f1": 66.67},
    {"epochs": 10, "val_acc": 65.0, "precision": 58.0, "recall": 90.0, "f1": 70.54},
    {"epochs": 15, "val_acc": 70.0, "precision": 63.64, "recall": 70.0, "f1": 66.67},
    {"epochs": 25, "val_acc": 70.0, "precision": 64.63, "recall": 70.00, "f1": 66.67},
]

_E_TABLE1 = [
    {"class": "glioma", "precision": 0.92, "recall": 0.98, "f1": 0.95, "support": 324},
    {"class": "meningioma", "precision": 0.97, "recall": 0.84, "f1": 0.90, "support": 329},
    {"class": "notumor", "precision": 0.99, "recall": 0.97, "f1": 0.98, "support": 400},
    {"class": "pituitary", "precision": 0.90, "recall": 0.99, "f1": 0.94, "support": 352},
    {"class": "macro avg", "precision": 0.94, "recall": 0.94, "f1": 0.94, "support": 1405},
    {"class": "weighted avg", "precision": 0.95, "recall": 0.94, "f1": 0.94, "support": 1405},
]
E_HEADLINE = {"best_val_acc": 0.9308, "test_acc": 0.9445, "test_loss": 0.1544}

# Numbers the papers print outside their tables, for the internal-consistency checks
# (medrepro.analysis.consistency). Percentages as printed.
A_TEXT = {"abstract_accuracy_pct": 98.1,  # abstract, discussion and Table 3's own row
          "conclusion_accuracy_pct": 98.01,  # section 5, "Sonuçlar"
          "n_images": 3264}
# Thesis appendix A: validation confusion matrices (rows true normal/abnormal, columns predicted)
# of the 5/10/15-epoch scenarios; the 25-epoch one is not printed.
D_APPENDIX_CMS = {5: _cm([10, 10], [5, 15]), 10: _cm([7, 13], [2, 18]), 15: _cm([12, 8], [6, 14])}
D_TEXT = {"n_train_printed": 160, "n_val_printed": 40,  # "train and validation are 160 and 40"
          "best_val_acc_pct_text": 65.5,  # introducing Table 4.2: "the best case ... 65.5, 25 epochs"
          # section 4.5.1, the lung-only model (in no table): "%70 ve %71"
          "best_model_train_acc_pct": 70, "best_model_val_acc_pct": 71,
          "per_class_split": (70, 20, 10)}  # the prose's 70/20/10 split of 100 per class
E_TEXT = {"n_images": 7023}

_NB1, _NB2, _NB3, _NB4, _NB5, _NB6 = NOTEBOOKS


def _calibration(study: str, what: str, notebook: str) -> tuple[Artifact, Artifact]:
    """A classifier's calibration table and reliability diagram (beyond the papers)."""
    return (Artifact(f"{study}.calibration", study, "table",
                     f"{what}: ECE, Brier, NLL (95% CIs) on test before/after temperature "
                     "scaling fitted on validation", notebook, beyond=True),
            Artifact(f"{study}.fig_reliability", study, "figure",
                     f"{what}: reliability diagram on test before/after temperature scaling",
                     notebook, beyond=True))


def _xai_eval(study: str, what: str, unit: str, notebook: str) -> tuple[Artifact, Artifact]:
    """A study's explanation maps evaluated (medrepro.analysis.xai_eval): table and figure."""
    return (Artifact(f"{study}.xai_eval", study, "table",
                     f"{what} evaluated: pointing game vs baselines (Sobel, brightest, random "
                     f"{unit}), by lesion size and confidence, deletion/insertion curves, sanity "
                     "checks (cascading randomisation, shuffled labels), repeatability across "
                     "seeds, 95% CIs", notebook, beyond=True),
            Artifact(f"{study}.fig_xai_eval", study, "figure",
                     f"{what} evaluated: baselines, sanity checks, deletion/insertion curves, "
                     "strata; one item's maps original and randomised", notebook, beyond=True))


def _failures(study: str, whose: str, notebook: str, *, cases: str = "test images",
              each: str = "with their probabilities") -> Artifact:
    """A classifier's failure gallery (medrepro.reporting.explorer.gallery)."""
    return Artifact(f"{study}.fig_failures", study, "figure",
                    f"Failure gallery of {whose}: the most confident wrong {cases}, then the "
                    f"least confident right ones, {each}", notebook, beyond=True)


_ENTRIES: list[Artifact] = [
    # ---- A: LSTM-CNN, Sartaj
    Artifact("A.fig1", "A", "figure", "Sample images per class", _NB1),
    Artifact("A.fig2", "A", "figure", "Training vs testing image counts", _NB1),
    Artifact("A.fig3", "A", "figure", "Training images per class", _NB1),
    Artifact("A.fig4", "A", "figure", "Testing images per class", _NB1),
    Artifact("A.fig9", "A", "figure", "LSTM-CNN model diagram", _NB3),
    Artifact("A.table1", "A", "table", "LSTM head model summary (layer, output shape, params)",
             _NB3, reported=_A_TABLE1),
    Artifact("A.fig11", "A", "figure", "Confusion matrix of the LSTM-CNN on the test split", _NB3),
    Artifact("A.table2", "A", "table", "Classification report of the LSTM-CNN (test split)", _NB3,
             reported=_A_TABLE2),
    Artifact("A.fig12", "A", "figure", "Training / validation accuracy curves", _NB3),
    Artifact("A.fig13", "A", "figure", "Training / validation loss curves", _NB3),
    Artifact("A.fig14", "A", "figure", "Predictions on random test images (true vs predicted)",
             _NB3),
    Artifact("A.table3", "A", "table", "Literature comparison (accuracy %), with our row", _NB3,
             reported=_A_TABLE3, static=True, notes=_A_TABLE3_NOTES),
    # ---- B: lightweight CNN, RSNA
    Artifact("B.fig1", "B", "figure", "One example per haemorrhage type, windowed", _NB1),
    Artifact("B.table1", "B", "table", "Images per class and split (50/25/25)", _NB2,
             reported=_B_TABLE1),
    Artifact("B.fig3", "B", "figure", "DICOM -> brain/subdural/bone windows -> RGB", _NB2),
    Artifact("B.fig4", "B", "figure", "Proposed lightweight CNN: diagram / summary", _NB4),
    Artifact("B.fig5", "B", "figure", "Proposed model: training / validation loss", _NB4),
    Artifact("B.fig6", "B", "figure", "Proposed model: training / validation accuracy", _NB4),
    Artifact("B.table2", "B", "table", "Proposed model (batch 32): accuracy and loss per split",
             _NB4, reported=_B_TABLE2, notes=_B_TABLE2_NOTES),
    Artifact("B.table3", "B", "table", "Parameters and accuracy per model (batch 8)", _NB4,
             reported=_B_TABLE3),
    Artifact("B.table4", "B", "table", "Training wall time and images/s per model", _NB4,
             reported=_B_TABLE4),
    Artifact("B.table5", "B", "table", "Weighted precision / recall / F1 on test per model", _NB4,
             reported=_B_TABLE5),
    Artifact("B.table6", "B", "table", "Test confusion matrix, proposed model (S1..S6)", _NB4,
             reported=_B_CMS["proposed"]),
    Artifact("B.table7", "B", "table", "Test confusion matrix, DenseNet121 (S1..S6)", _NB4,
             reported=_B_CMS["densenet121"]),
    Artifact("B.table8", "B", "table", "Test confusion matrix, MobileNet (S1..S6)", _NB4,
             reported=_B_CMS["mobilenet"]),
    Artifact("B.table9", "B", "table", "Test confusion matrix, Inception V1 (S1..S6)", _NB4,
             reported=_B_CMS["inception_v1"]),
    # ---- C: Sequential CNN with MSE, Masoud
    Artifact("C.table1", "C", "table", "The five training trials with their results", _NB3,
             reported=_C_TABLE1, notes="the paper reports settings only, no results"),
    Artifact("C.fig1", "C", "figure", "Training curves of trial 1", _NB3),
    Artifact("C.fig2", "C", "figure", "Training curves of trial 3", _NB3),
    Artifact("C.fig3", "C", "figure", "Training curves of the final model", _NB3),
    Artifact("C.fig4", "C", "figure", "Confusion matrix of the final model", _NB3),
    Artifact("C.table2", "C", "table", "Per-class accuracy, precision, recall", _NB3),
    Artifact("C.fig5", "C", "figure", "Random test images, true vs predicted", _NB3),
    # ---- D: 3D CNN, MosMed
    Artifact("D.fig3_2", "D", "figure", "A sample CT slice", _NB1),
    Artifact("D.fig4_2", "D", "figure", "Augmentation effect on one volume", _NB5),
    Artifact("D.fig4_3", "D", "figure", "The 64 slices of a volume as a montage", _NB5),
    Artifact("D.fig4_5", "D", "figure", "3D CNN model summary table", _NB5),
    Artifact("D.table4_1", "D", "table", "Training accuracy, s/epoch, loss, MSE per scenario", _NB5,
             reported=_D_TABLE4_1, notes=_D_TABLE4_1_NOTES),
    Artifact("D.fig4_6", "D", "figure", "Bar chart of D.table4_1", _NB5),
    Artifact("D.table4_2", "D", "table", "Validation accuracy, loss, MSE per scenario", _NB5,
             reported=_D_TABLE4_2),
    Artifact("D.fig4_7", "D", "figure", "Bar chart of D.table4_2", _NB5),
    Artifact("D.table4_3", "D", "table", "Validation accuracy, precision, recall, F1 (%)", _NB5,
             reported=_D_TABLE4_3),
    Artifact("D.fig4_8", "D", "figure", "Bar chart of D.table4_3", _NB5),
    Artifact("D.fig4_9", "D", "figure", "Lung vs non-lung slice; loss curve of the best model",
             _NB5),
    Artifact("D.fig4_10", "D", "figure", "Accuracy curves of the best model", _NB5),
    Artifact("D.fig4_11", "D", "figure", "Train and test confusion matrices per scenario", _NB5),
    # ---- E: explained CNN, Masoud
    Artifact("E.fig1", "E", "figure", "Training curves", _NB3),
    Artifact("E.fig2", "E", "figure", "Confusion matrix", _NB3),
    Artifact("E.table1", "E", "table", "Classification report (test)", _NB3, reported=_E_TABLE1,
             notes=f"also reported: {E_HEADLINE}"),
    Artifact("E.performance", "E", "table",
             "Best validation accuracy, test accuracy and test loss (E:43-45), the loss as "
             "plain cross-entropy and as the smoothed training objective", _NB3,
             reported=[{"source": "paper", "best_val_accuracy": E_HEADLINE["best_val_acc"],
                        "test_accuracy": E_HEADLINE["test_acc"],
                        "test_loss_cross_entropy": E_HEADLINE["test_loss"], "n_test": 1405}]),
    Artifact("E.fig3", "E", "figure", "Grad-CAM overlays", _NB3),
    Artifact("E.fig4", "E", "figure", "Eigen-CAM overlays", _NB3),
    Artifact("E.fig5", "E", "figure", "Integrated Gradients maps", _NB3),
    # ---- beyond the papers
    Artifact("X.inventory", "X", "table", "Dataset inventory beside the official counts", _NB1,
             beyond=True),
    Artifact("X.audit", "X", "table",
             "Leakage audit: duplicate groups within/across splits and across classes", _NB1,
             beyond=True),
    Artifact("B.skips", "B", "table", "Files skipped by the RSNA cache build, with reasons", _NB2,
             beyond=True),
    Artifact("B.cache", "B", "table", "RSNA cache summary (images, bytes, wall time)", _NB2,
             beyond=True),
    Artifact("B.table1_patient", "B", "table", "Images per class and split, patient-level split",
             _NB2, beyond=True),
    *_calibration("A", "The LSTM-CNN (paper split)", _NB3),
    Artifact("A.splits", "A", "table",
             "LSTM-CNN and standard CNN on the paper, official and duplicate-free splits", _NB3,
             beyond=True),
    Artifact("A.mcnemar", "A", "table", "McNemar test: LSTM-CNN vs standard CNN", _NB3,
             beyond=True),
    Artifact("B.mcnemar", "B", "table", "McNemar test: proposed model vs each comparison model",
             _NB4, beyond=True),
    Artifact("B.patient_split", "B", "table", "All models on the patient-level split", _NB4,
             beyond=True),
    *_calibration("B", "The proposed model, batch 32", _NB4),
    Artifact("B.per_class", "B", "table",
             "Per-class precision / recall / F1 with 95% bootstrap CIs, every trained model", _NB4,
             beyond=True),
    Artifact("C.leakage", "C", "table",
             "Final model on the whole and the duplicate-free test set", _NB3, beyond=True),
    *_calibration("C", "Final model", _NB3),
    *_calibration("E", "The CNN", _NB3),
    Artifact("E.leakage", "E", "table",
             "The CNN on the whole and the duplicate-free test set", _NB3, beyond=True),
    Artifact("D.gradcam3d", "D", "figure", "3-D Grad-CAM of one volume", _NB5, beyond=True),
    *_calibration("D", "The 25-epoch augmented scenario, 70/20/10 variant", _NB5),
    Artifact("D.heldout", "D", "table",
             "The 70/20/10 variant: validation and held-out test results per scenario", _NB5,
             beyond=True),
    Artifact("D.xai_score", "D", "table",
             "Pointing game of the 3-D Grad-CAM on phantom lesion masks: hit rate (95% CI) vs "
             "chance", _NB5, beyond=True),
    Artifact("D.fig_xai_score", "D", "figure",
             "Pointing game hits and misses of the 3-D Grad-CAM (slice through the maximum)", _NB5,
             beyond=True),
    Artifact("E.xai_score", "E", "table",
             "Pointing game of Grad-CAM, Eigen-CAM and Integrated Gradients on phantom lesion "
             "masks: hit rate (95% CI) vs chance", _NB3, beyond=True),
    Artifact("E.fig_xai_score", "E", "figure",
             "Pointing game hits and misses: maps, lesion outlines and maxima", _NB3, beyond=True),
    *_xai_eval("D", "The 3-D Grad-CAM", "voxel", _NB5),
    *_xai_eval("E", "Grad-CAM, Eigen-CAM and Integrated Gradients", "point", _NB3),
    _failures("E", "the CNN", _NB3,
              each="with their maps and probabilities (the explorer's static form)"),
    _failures("B", "the proposed model (main run)", _NB4),
    _failures("C", "the final model", _NB3),
    _failures("D", "the 70/20/10 variant's 25-epoch augmented model", _NB5,
              cases="held-out test volumes", each="each by the slice through its 3-D Grad-CAM "
              "maximum, with its probabilities (the explorer's static form)"),
    Artifact("X.ledger", "X", "table",
             "The claim ledger: every headline number's verdict by the rules of "
             "analysis.verdicts, with its band over seeds", _NB6, beyond=True),
    Artifact("X.compare", "X", "table",
             "Every headline number per seed: reported vs reproduced, 95% CI, the seeds' mean, "
             "SD and range, source, profile", _NB6),
    Artifact("X.mcnemar", "X", "table", "McNemar tests of the papers' 'X beats Y' claims", _NB6,
             beyond=True),
    Artifact("X.leakage", "X", "table", "Effect of the leakage audit: paper vs duplicate-free split",
             _NB6, beyond=True),
    Artifact("X.consistency", "X", "table",
             "The papers' internal consistency: published numbers recomputed from each other",
             _NB6, beyond=True),
    Artifact("X.fig_compare", "X", "figure", "Reported vs reproduced headline metrics, all studies",
             _NB6, beyond=True),
]

ARTIFACTS: dict[str, Artifact] = {a.id: a for a in _ENTRIES}
assert len(ARTIFACTS) == len(_ENTRIES), "duplicate artifact id in the manifest"


@dataclass(frozen=True)
class Excluded:
    """A figure of a paper the kit does not make: its caption (English) and why not."""

    id: str
    study: str
    caption: str
    reason: str


_TEXTBOOK = "a textbook schematic of a general method, not a result of this study"
_SAME_MODEL_A = ("the paper's own drawing of its model; the drawing is an image the text does not "
                 "describe, and the model it shows is made from the built model: A.table1 (Table 1) "
                 "and A.fig9 (Fig 9, Keras' plot of the same model)")
_SAME_MODEL_D = "the proposed model again: D.fig4_5, the built model's layer-by-layer summary"
# Every numbered figure of the papers is either an artifact (ARTIFACTS) or listed here; the
# report page shows this list. C and E number no figures.
EXCLUDED: tuple[Excluded, ...] = (
    Excluded("A.fig5", "A", "CNN architecture", _TEXTBOOK),
    Excluded("A.fig6", "A", "LSTM working principle", _TEXTBOOK),
    Excluded("A.fig7", "A", "The CNN-LSTM architecture", _SAME_MODEL_A),
    Excluded("A.fig8", "A", "Block diagram of the proposed model", _SAME_MODEL_A),
    Excluded("A.fig10", "A", "Confusion-matrix example (TP/TN/FP/FN)", _TEXTBOOK),
    Excluded("B.fig2", "B", "The method, as a block diagram",
             "a flow chart of the method (windowing, RGB, resize, CNN, evaluation); each step "
             "is made from the data or the model instead: B.fig3 (DICOM to three windows to RGB), "
             "B.fig4 (the model), B.table1-B.table9 (the results)"),
    Excluded("D.fig1_1", "D", "VoxNet architecture (literature)", "another work's figure"),
    Excluded("D.fig1_2", "D", "VoxNet architecture (literature)", "another work's figure"),
    Excluded("D.fig1_3", "D", "VoxNet architecture (literature)", "another work's figure"),
    Excluded("D.fig3_1", "D", "Block diagram of 3-D image processing with deep networks",
             "a flow chart of the thesis' stages; each stage is made from the data or the "
             "model instead: D.fig3_2 (a slice), D.fig4_2 and D.fig4_3 (augmentation, the 64 "
             "slices), D.fig4_5 (the model), D.table4_1-D.table4_3 (results)"),
    Excluded("D.fig3_3", "D", "The MosMed dataset's structure (folders CT-0 to CT-4)",
             "a picture of the full release's folder layout; the kit uses its CT-0 and CT-23 "
             "archives (the Keras example's packaging the thesis downloads), whose volumes "
             "X.inventory counts"),
    Excluded("D.fig3_4", "D", "COVID-19 severity examples, CT-1 (mild) to CT-4 (critical)",
             "needs CT-1 and CT-4 volumes: the data the thesis uses (CT-0.zip, CT-23.zip) holds "
             "none, nor does the kit's phantom (normal and CT-2/CT-3-like volumes only) or the "
             "real sample data (lesion masks without their CT volumes)"),
    *(Excluded(f"D.fig3_{n}", "D", caption, _TEXTBOOK) for n, caption in (
        (5, "3-D CNN for classification"), (6, "3-D convolution"),
        (7, "The movement of the filter (kernel)"), (8, "Max pooling"),
        (9, "Max vs average pooling"), (10, "A CNN ending in a dense layer and a sigmoid"),
        (11, "Dense layer"), (12, "Dropout layer"))),
    Excluded("D.fig3_13", "D", "The proposed 3-D CNN model", _SAME_MODEL_D),
    Excluded("D.fig4_4", "D", "The 3-D CNN's architecture, drawn",
             "the thesis' drawing of its model; the built model is shown instead as D.fig4_5, "
             "its layer-by-layer summary at the paper's input (214,817 parameters, as Fig 4.5)"),
    Excluded("D.fig4_1", "D", "Applying the augmentation to a sample of the dataset",
             "the code step that D.fig4_2 shows the result of, on a volume of the run's data"),
)
EXCLUDED_IDS = {e.id: e for e in EXCLUDED}
assert len(EXCLUDED_IDS) == len(EXCLUDED), "duplicate excluded figure id"
assert not set(EXCLUDED_IDS) & set(ARTIFACTS), "a figure both made and excluded"
# The numbered figures of each paper, as its original text prints them (papers/*.txt).
PAPER_FIGURES = {
    "A": tuple(f"A.fig{n}" for n in range(1, 15)),
    "B": tuple(f"B.fig{n}" for n in range(1, 7)),
    "D": (*(f"D.fig1_{n}" for n in range(1, 4)), *(f"D.fig3_{n}" for n in range(1, 14)),
          *(f"D.fig4_{n}" for n in range(1, 12))),
}

# Headline numbers for X.compare: (study, metric, reported value, artifact the number comes from).
HEADLINES: list[dict[str, Any]] = [
    {"study": "A", "metric": "test accuracy (LSTM-CNN, paper split)", "reported": 0.981,
     "artifact": "A.table2"},
    {"study": "A", "metric": "test macro-F1 (LSTM-CNN, paper split)", "reported": 0.98,
     "artifact": "A.table2"},
    {"study": "B", "metric": "test accuracy (proposed, batch 32)", "reported": 0.9263,
     "artifact": "B.table2"},
    {"study": "B", "metric": "test accuracy (proposed, batch 8)", "reported": 0.9281,
     "artifact": "B.table3"},
    {"study": "B", "metric": "test accuracy (DenseNet121)", "reported": 0.8816,
     "artifact": "B.table3"},
    {"study": "B", "metric": "test accuracy (MobileNet)", "reported": 0.9087,
     "artifact": "B.table3"},
    {"study": "B", "metric": "test accuracy (Inception V1)", "reported": 0.9221,
     "artifact": "B.table3"},
    {"study": "B", "metric": "test weighted F1 (proposed)", "reported": 0.9246,
     "artifact": "B.table5"},
    {"study": "C", "metric": "test accuracy (final trial)", "reported": None,
     "artifact": "C.table1"},
    {"study": "D", "metric": "validation accuracy (25 epochs, augmentation)", "reported": 0.70,
     "artifact": "D.table4_3"},
    {"study": "D", "metric": "validation accuracy (5 epochs, augmentation)", "reported": 0.575,
     "artifact": "D.table4_3"},
    {"study": "E", "metric": "test accuracy", "reported": 0.9445, "artifact": "E.table1"},
    {"study": "E", "metric": "test macro-F1", "reported": 0.94, "artifact": "E.table1"},
]


class UnknownArtifactError(KeyError):
    """An artifact id that the manifest does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def get(artifact_id: str) -> Artifact:
    """The manifest entry for ``artifact_id``; ``UnknownArtifactError`` names close matches."""
    try:
        return ARTIFACTS[artifact_id]
    except KeyError:
        close = difflib.get_close_matches(artifact_id, ARTIFACTS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownArtifactError(
            f"unknown artifact id {artifact_id!r}: not in medrepro.core.manifest{hint}") from None


def for_notebook(notebook: str) -> list[Artifact]:
    """Every artifact that ``notebook`` (e.g. ``"03_lstm_cnn_mri"``) must produce."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {notebook!r}; expected one of {', '.join(NOTEBOOKS)}")
    return [a for a in _ENTRIES if a.notebook == notebook]


def reported_frame(artifact_id: str):
    """The paper's values of a table artifact as a ``pandas.DataFrame`` (None if none)."""
    import pandas as pd

    art = get(artifact_id)
    if art.reported is None:
        return None
    if art.id in {"B.table6", "B.table7", "B.table8", "B.table9"}:
        return pd.DataFrame(art.reported, index=[f"S{i + 1} {c}" for i, c in
                                                 enumerate(RSNA_CLASSES)],
                            columns=[f"S{i + 1}" for i in range(len(RSNA_CLASSES))])
    return pd.DataFrame(art.reported)
