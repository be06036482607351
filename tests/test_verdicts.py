"""medrepro.analysis.verdicts: every verdict can be produced, by the written rules only."""

from __future__ import annotations

import math

import pytest
from medrepro.analysis import verdicts as v
from medrepro.analysis.verdicts import SeedResult

PAPER = v.Conditions(data_source="brain_tumor_masoud", paper_dataset="brain_tumor_masoud",
                     phantom=False, profile="paper")


def _seeds(*triples):
    return [SeedResult(seed, value, lo, hi) for seed, (value, lo, hi) in zip((42, 1, 2), triples)]


def test_reproduced_when_the_band_holds_the_value():
    got = v.judge("E", "test accuracy", 0.9445,
                  _seeds((0.94, 0.928, 0.952), (0.945, 0.933, 0.957)), PAPER)
    assert got.verdict == v.REPRODUCED and "inside the band 0.928–0.957" in got.reasons[0]
    assert got.band.mean == pytest.approx(0.9425) and got.band.seeds == (42, 1)
    assert got.band.sd == pytest.approx(0.003536, abs=1e-6)


def test_not_reproduced_when_the_whole_band_lies_beyond_the_tolerance():
    got = v.judge("E", "test accuracy", 0.9445,
                  _seeds((0.88, 0.86, 0.90), (0.89, 0.87, 0.91), (0.885, 0.865, 0.905)), PAPER)
    assert got.verdict == v.NOT_REPRODUCED
    assert got.band.lo == 0.86 and got.band.hi == 0.91 and got.band.min == 0.88
    assert "or more from the paper's 0.9445, beyond the tolerance ±0.02" in got.reasons[0]


def test_inconclusive_when_the_band_misses_by_less_than_the_tolerance():
    got = v.judge("E", "test accuracy", 0.9445, _seeds((0.925, 0.915, 0.935)), PAPER)
    assert got.verdict == v.INCONCLUSIVE and "by less than the tolerance" in got.reasons[0]
    assert math.isnan(got.band.sd)  # one seed


def test_inconclusive_when_the_band_is_too_wide_to_tell():
    dv = v.Conditions("mosmed", "mosmed", False, "paper")
    got = v.judge("D", "validation accuracy (25 epochs, augmentation)", 0.70,
                  _seeds((0.70, 0.55, 0.82), (0.62, 0.46, 0.76)), dv)
    assert got.rule is v.SMALL_VALIDATION_RULE
    assert got.verdict == v.INCONCLUSIVE and "too wide to tell" in got.reasons[0]
    narrow = v.judge("D", "validation accuracy (25 epochs, augmentation)", 0.70,
                     _seeds((0.70, 0.58, 0.80)), dv)
    assert narrow.verdict == v.REPRODUCED
    assert any("contradicts itself" in n for n in narrow.notes)  # 70 vs 71 %: immaterial


def test_a_material_contradiction_inside_the_paper_blocks_reproduced():
    # B's Table 3 says DenseNet121 0.8816; its own Table 7 matrix gives 0.9131
    b = v.Conditions("rsna_ich", "rsna_ich", False, "paper")
    metric = "test accuracy (DenseNet121)"
    found = v.paper_disagreements("B", metric, 0.8816)
    assert [round(d.value, 4) for d in found] == [0.9131] and found[0].material
    at_table = v.judge("B", metric, 0.8816, _seeds((0.882, 0.876, 0.888)), b)
    assert at_table.verdict == v.INCONCLUSIVE and "disagree by 0.032" in at_table.reasons[0]
    at_matrix = v.judge("B", metric, 0.8816, _seeds((0.913, 0.907, 0.919)), b)
    assert at_matrix.verdict == v.INCONCLUSIVE  # near the paper's other value
    far = v.judge("B", metric, 0.8816, _seeds((0.80, 0.79, 0.81)), b)
    assert far.verdict == v.NOT_REPRODUCED and "the paper's values" in far.reasons[0]


@pytest.mark.parametrize("conditions, reason", [
    (v.Conditions("phantom", "brain_tumor_masoud", True, "paper"), "phantom data"),
    (v.Conditions("brain_tumor_sartaj", "brain_tumor_masoud", False, "paper"),
     "stand-in dataset: brain_tumor_sartaj instead of brain_tumor_masoud"),
    (v.Conditions("brain_tumor_masoud", "brain_tumor_masoud", False, "demo"),
     "reduced profile 'demo'"),
    (v.Conditions("brain_tumor_masoud", "brain_tumor_masoud", False, "paper",
                  deviations=("ImageNet weights unavailable",)), "ImageNet weights unavailable"),
])
def test_not_comparable_names_its_reason_and_keeps_the_bands_verdict(conditions, reason):
    got = v.judge("E", "test accuracy", 0.9445, _seeds((0.88, 0.86, 0.90)), conditions)
    assert got.verdict == v.NOT_COMPARABLE and reason in got.reasons
    assert got.band_verdict == v.NOT_REPRODUCED and "beyond the tolerance" in got.band_reason


def test_nothing_reported_and_no_run():
    c = v.judge("C", "test accuracy (final trial)", None, _seeds((0.69, 0.65, 0.73)), PAPER)
    assert c.verdict == v.NOT_COMPARABLE and c.reasons[0].startswith("nothing reported")
    none = v.judge("B", "test accuracy (MobileNet)", 0.9087, [], None)
    assert none.verdict == v.INCONCLUSIVE and none.reasons[0].startswith("no run")


def test_notes_an_unknown_dataset_version_and_mixed_commits():
    c = v.Conditions("brain_tumor_masoud", "brain_tumor_masoud", False, "paper",
                     versions=("matches NO known published version (v2: Testing has 1,290 "
                               "files, not 1,311)",), commits=("abc", "def"))
    got = v.judge("E", "test accuracy", 0.9445, _seeds((0.94, 0.93, 0.95)), c)
    assert got.verdict == v.REPRODUCED  # notes only
    assert any("matches NO known published version" in n for n in got.notes)
    assert "seeds from 2 commits" in got.notes
