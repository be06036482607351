"""Where each setting of the ``paper`` profile comes from: a line of the original text, our
choice (a decision-record entry), or the kit's own (beyond the paper, or how it runs).

:data:`SOURCES` holds one :class:`Source` per field of every ``paper`` row of
:data:`medrepro.core.profiles.PROFILES`; :func:`table` lists them beside the values and
:func:`markdown` renders ``docs/profiles.md`` (generated: ``python -m
medrepro.core.profile_sources``; never edit it by hand). Text references such as "B:229" are
lines of the original texts (the files are named in ``docs/decisions.md``); a decision id such
as "c3" is the entry ``docs/decisions.md#c3``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from medrepro.core import paths, profiles

TEXT = "text"  # the original text states it (the line cited)
CHOICE = "choice"  # the text is silent or ambiguous: our choice, its evidence in the record
KIT = "kit"  # beyond the paper (the kit's additions) or how the kit runs; changes no paper number
KINDS = {TEXT: "from the text", CHOICE: "our choice", KIT: "the kit's"}
TEXT_REF = re.compile(r"\b[A-E]:[0-9]+")
DECISION_REF = re.compile(r"^[a-ex][0-9]+$")
PAGE = "profiles.md"


@dataclass(frozen=True)
class Source:
    """``kind`` (:data:`TEXT`, :data:`CHOICE`, :data:`KIT`); ``ref``: for a text, the lines
    ("B:229", "D:1686-1688"); for a choice, its decision ids ("c3" or "e4 e6"); for the kit, the
    decision ids if any; ``what``: a few words on what the value is."""

    kind: str
    ref: str = ""
    what: str = ""

    def decisions(self) -> list[str]:
        """The decision ids this source cites (text sources cite lines, and may add ids)."""
        return [r for r in self.ref.replace(",", " ").split() if DECISION_REF.match(r)]


def _t(ref: str, what: str = "") -> Source:
    return Source(TEXT, ref, what)


def _c(ref: str, what: str = "") -> Source:
    return Source(CHOICE, ref, what)


def _k(ref: str = "", what: str = "") -> Source:
    return Source(KIT, ref, what)


_BOOT = _k("x9", "bootstrap resamples of the 95 % CIs (beyond the papers)")
_PHANTOM = "a phantom's size; a real data source ignores it"

SOURCES: dict[str, dict[str, Source]] = {
    "phantoms": {
        "mri_train_per_class": _k("x3", f"{_PHANTOM} (Masoud's Training: 5,712 / 4 classes)"),
        "mri_test_per_class": _k("x3", f"{_PHANTOM} (Masoud's Testing: 1,311 / 4 classes)"),
        "mri_size": _k("x3", f"{_PHANTOM}: 512 px, the real sets' usual side"),
        "rsna_images": _k("", f"{_PHANTOM}: B's 720,733 images (B:116)"),
        "mosmed_per_class": _k("x4", f"{_PHANTOM}: D's 100 + 100 volumes (D:1449-1451)"),
        "mosmed_size": _k("x4", f"{_PHANTOM}: MosMed's 512 px in-plane"),
    },
    "rsna_cache": {
        "max_images": _t("B:116", "every one of the 720,733 selected images"),
        "image_size": _t("B:166-168 b6", "512×512×3 converted to 224×224×3"),
        "workers": _k("", "worker processes (how fast, not what)"),
    },
    "A": {
        "image_size": _c("a2", "ResNet50 at 224 px: what Table 1's parameter count implies"),
        "max_images": _t("A:208 a3", "all 3,264 images, pooled and split 80/20"),
        "epochs": _t("A:504", "50 epochs (Figs 12-13)"),
        "batch": _c("a4", "not given"),
        "lr": _c("a4", "not given (Adam)"),
        "official_lstm": _k("a3", "the LSTM head on the official split too (A.splits)"),
        "checkpoint": _k("a4", "where the kept epoch's weights are held (disk)"),
        "backup": _k("", "a resumable backup of the training state"),
        "n_boot": _BOOT,
    },
    "B": {
        "image_size": _t("B:166-168 b6", "224×224×3"),
        "max_epochs": _t("B:229", "30 epochs, early stopping"),
        "batch_main": _t("B:213-214", "32, the most the proposed model allowed"),
        "batch_compare": _t("B:215 B:360-363", "8, the batch every model trained with"),
        "max_train": _t("B:116 B:132-137 b5", "every image of the 50 % training split"),
        "patience": _t("B:230-231", "stop when the validation loss rose 3 epochs running"),
        "compare_models": _t("B:357 B:375-377 b1 b3", "DenseNet121, MobileNet, Inception V1"),
        "patient_models": _k("b5", "the models trained on the patient split too"),
        "n_boot": _BOOT,
        "init": _c("b1", "ImageNet, keras.applications' default"),
        "lr": _t("B:205-206 B:216", "Adam at 1e-5"),
        "bn_momentum": _t("B:192-194 b9", "BatchNormalization in every block: Keras' 0.99"),
        "inception_init": _c("b10", "not given: Keras' default, Glorot uniform"),
        "inception_max_epochs": _t("B:229", "30, as every model"),
    },
    "C": {
        "image_size": _c("x16", "not given"),
        "max_images": _t("C:7", "all of about 7,023 images"),
        "epochs": _t("C:15-21", "each trial's own epochs (25 or 50)"),
        "batch": _c("c3", "not given; chosen on validation"),
        "patience": _c("c8", "EarlyStopping named (C:9), no settings"),
        "n_boot": _BOOT,
    },
    "D": {
        "volume_shape": _t("D:1686-1688 D:2141", "128×128×64"),
        "max_per_class": _t("D:1449-1451", "100 normal + 100 abnormal volumes"),
        "epochs": _t("D:2536-2556 D:2601-2607 d7 d8", "the scenarios of Tables 4.1-4.3"),
        "batch": _t("D:3330", "4 (the appendix code; chapter 4 shows none)"),
        "patience": _t("D:2346 d4", "EarlyStopping on val_acc, patience 15"),
        "split": _c("d1", "the code's 160/40 (D:1970), not the prose's 70/20/10"),
        "heldout_epochs": _k("d1", "the 70/20/10 variant with a held-out test (D.heldout)"),
        "n_boot": _BOOT,
        "bn_momentum": _t("D:2070-2112 d2", "layers.BatchNormalization(): Keras' 0.99"),
        "xai_sanity": _k("x14", "volumes of the sanity checks (beyond the thesis)"),
        "xai_faith": _k("x15", "volumes of the deletion/insertion curves"),
        "xai_steps": _k("x15", "steps per curve: one slice each"),
        "shuffled_epochs": _k("x14", "the shuffled-label model's epochs"),
    },
    "E": {
        "image_size": _c("x16", "not given"),
        "max_images": _c("e1", "all 7,023 Masoud images: the supports (E:60-63) are 20 % of them"),
        "epochs": _c("x16", "not given; early stopping picked the model (E:49)"),
        "batch": _c("x16", "not given"),
        "patience": _c("e4", "EarlyStopping named (E:25), no settings"),
        "reduce_lr": _c("e4", "ReduceLROnPlateau named (E:25), no settings"),
        "ig_steps": _c("e6", "Integrated Gradients named (E:33), no steps"),
        "n_boot": _BOOT,
        "xai_sanity": _k("x14", "items of the sanity checks (beyond the paper)"),
        "xai_faith": _k("x15", "items of the deletion/insertion curves"),
        "xai_steps": _k("x15", "steps per curve: one row of pixels each"),
        "shuffled_epochs": _k("x14", "the shuffled-label model's epochs (None: E's)"),
        "gallery_wrong": _k("", "images in the failure gallery (display only)"),
        "gallery_unsure": _k("", "images in the failure gallery (display only)"),
    },
    "compare": {
        "require_all_artifacts": _k("", "notebook 06 fails when an artifact is missing"),
    },
}


def source(row: str, setting: str) -> Source:
    """The :class:`Source` of ``row``'s ``paper`` setting; ``KeyError`` naming what is known."""
    if row not in SOURCES:
        raise KeyError(f"no sources for settings row {row!r}; known: {', '.join(SOURCES)}")
    if setting not in SOURCES[row]:
        raise KeyError(f"settings row {row!r} has no source for {setting!r}; known: "
                       f"{', '.join(SOURCES[row])}")
    return SOURCES[row][setting]


def unsourced() -> list[tuple[str, str]]:
    """``(row, setting)`` of every ``paper`` setting without a source, and of every source
    whose setting does not exist (both empty when the table is complete)."""
    fields = {(row, f.name) for row, by_profile in profiles.PROFILES.items()
              for f in dataclasses.fields(by_profile["paper"])}
    given = {(row, name) for row, names in SOURCES.items() for name in names}
    return sorted(fields ^ given)


def table():
    """Every setting of every profile with the ``paper`` value's source: a
    ``pandas.DataFrame`` indexed ``(notebook, settings, setting)`` like
    :func:`medrepro.core.profiles.table`, plus ``source`` (:data:`KINDS`), ``ref`` and
    ``what``."""
    out = profiles.table()
    rows = [source(row, setting) for _, row, setting in out.index]
    return out.assign(source=[KINDS[s.kind] for s in rows], ref=[s.ref for s in rows],
                      what=[s.what for s in rows])


def _ref_cell(ref: str) -> str:
    """Line references as printed, decision ids as links into the record."""
    parts = [f"[{r.upper()}](decisions.md#{r})" if DECISION_REF.match(r) else r
             for r in ref.split()]
    return " ".join(parts) or "—"


def markdown() -> str:
    """The text of ``docs/profiles.md``: one table per settings row."""
    intro = ("`smoke` and `demo` shrink sizes and epochs (their outputs say so); `paper` runs "
             "the papers' protocols. For each `paper` setting the last columns say where it "
             "comes from: **from the text** (the line of the original text: \"B:229\" is line "
             "229 of study B's original, named in [decisions.md](decisions.md)), **our "
             "choice** (the text is silent or ambiguous; the entry gives the evidence) or "
             "**the kit's** (beyond the paper, or how the kit runs; it changes no number the "
             "paper reports). Batch sizes are global (split over the replicas).")
    generated = ("Generated by `python -m medrepro.core.profile_sources` from "
                 "`medrepro.core.profiles.PROFILES` and `medrepro.core.profile_sources.SOURCES`; "
                 "regenerate it, do not edit it.")
    lines = ["# The profiles' settings and where the paper profile's come from", "", generated,
             "", intro, ""]
    frame = table()
    for (notebook, row), part in frame.groupby(level=["notebook", "settings"], sort=False):
        lines += [f"## `{row}` (notebook `{notebook}`)", "",
                  "| setting | smoke | demo | paper | source | reference | what |",
                  "|---|---|---|---|---|---|---|"]
        for (_, _, setting), r in part.iterrows():
            lines.append(f"| `{setting}` | {r['smoke']} | {r['demo']} | {r['paper']} | "
                         f"{r['source']} | {_ref_cell(r['ref'])} | {r['what']} |")
        lines.append("")
    return "\n".join(lines)


def page_path() -> Path:
    return paths.project_root() / "docs" / PAGE


def main(argv: list[str] | None = None) -> int:
    """Write :func:`markdown` to ``docs/profiles.md`` (or ``--out``)."""
    from medrepro.core import fileio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(page_path()))
    args = parser.parse_args(argv)
    with fileio.atomic_path(args.out) as tmp:
        Path(tmp).write_text(markdown() + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
