"""The verdict rules of the claim ledger, fixed before any result is seen.

Every headline number of the papers (``manifest.HEADLINES``) gets one of four verdicts:
**reproduced**, **not reproduced**, **inconclusive** or **not comparable**, by these rules and no
others (``docs/verdicts.md`` is the same text for readers; the tests produce each verdict):

1. **The band.** Each seed of ours gives a value with its 95% CI (a seed without a CI counts
   as its value alone). The band is ``[min over seeds of the CI's low end, max over seeds of the
   CI's high end]``: it holds every seed's value and uncertainty. Beside it the ledger shows the
   mean, standard deviation (``ddof=1``) and range of the seeds' values.
2. **The tolerance** (:func:`rule_for`): an absolute difference in the metric's own units that
   counts as a different result, and the widest band that can still confirm a value. Test-set
   accuracies and F1 scores (hundreds of images or more): tolerance 0.02, band at most 0.10 wide.
   Study D's validation accuracies (40 volumes, one volume = 0.025): tolerance 0.05, band at most
   0.30 wide.
3. **The paper's own values.** Where ``X.consistency`` finds the claim contradicted by the
   paper's other numbers (:mod:`medrepro.analysis.consistency`), the recomputed values are the
   paper's other values for it. A disagreement larger than the tolerance is *material*.
4. **What the band says** (:func:`band_verdict`):
   - *reproduced*: the band contains the reported value, is no wider than the widest band
     allowed, and the paper does not contradict the value materially;
   - *not reproduced*: the whole band lies more than the tolerance away from the reported value
     and from every other value the paper gives for it;
   - *inconclusive* otherwise: the band misses the value by less than the tolerance, is too wide
     to tell, or the paper's own values disagree materially (it cannot be "reproduced" then);
   - no run of ours measured the claim: *inconclusive* ("no run"); the paper gives no number:
     *not comparable* ("nothing reported").
5. **Not comparable** (:func:`departures`) whenever our run differs from the paper's
   conditions: phantom data; a stand-in dataset (e.g. Sartaj's set for Masoud's); a reduced
   profile (``smoke``, ``demo``); a departure the study recorded (weights unavailable, a
   changed batch, ...). The reasons are listed, and the band's own verdict is still shown
   (``band_verdict``), so a reader sees what the numbers would say.
6. **Notes** that do not change the verdict: a contradiction within the tolerance; a dataset
   that matches no known published version (:mod:`medrepro.data.identity`); seeds from several
   commits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_COMPARABLE)
PAPER_PROFILE = "paper"


@dataclass(frozen=True)
class Rule:
    """The tolerance of a claim (absolute, in the metric's units), the widest band that can
    confirm it, and why."""

    tolerance: float
    max_band: float
    why: str


TEST_METRIC_RULE = Rule(0.02, 0.10, "a test-set accuracy or F1 on hundreds of images or more: "
                                    "2 points is a different result")
SMALL_VALIDATION_RULE = Rule(0.05, 0.30, "a validation accuracy on 40 volumes: one volume is "
                                         "0.025, two volumes a different result")


def rule_for(study: str, metric: str) -> Rule:
    """The :class:`Rule` of the claim ``(study, metric)``."""
    if study == "D" and metric.startswith("validation accuracy"):
        return SMALL_VALIDATION_RULE
    return TEST_METRIC_RULE


@dataclass(frozen=True)
class SeedResult:
    """One seed's value of a claim with its 95% CI (``lo``/``hi`` None: no CI)."""

    seed: int
    value: float
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class Band:
    """The band over seeds (rule 1) and the seeds' mean, SD and range."""

    lo: float
    hi: float
    mean: float
    sd: float
    min: float
    max: float
    seeds: tuple[int, ...]

    @property
    def width(self) -> float:
        return self.hi - self.lo


def band_of(results: Sequence[SeedResult]) -> Band:
    """Rule 1; raises ``ValueError`` for no results."""
    if not results:
        raise ValueError("band_of: no seed results")
    values = np.array([r.value for r in results], dtype=float)
    lows = [r.value if r.lo is None else min(r.lo, r.value) for r in results]
    highs = [r.value if r.hi is None else max(r.hi, r.value) for r in results]
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return Band(float(min(lows)), float(max(highs)), float(values.mean()), sd,
                float(values.min()), float(values.max()), tuple(r.seed for r in results))


@dataclass(frozen=True)
class Disagreement:
    """The paper's other value for a claim (in the claim's units) and the check that gave it."""

    value: float
    text: str
    material: bool


def paper_disagreements(study: str, metric: str, reported: float | None, *,
                        rule: Rule | None = None) -> list[Disagreement]:
    """Rule 3: the contradictions of ``X.consistency`` about this claim, as values in the
    claim's units (a check printed in percent is divided by 100)."""
    from medrepro.analysis import consistency

    if reported is None:
        return []
    rule = rule or rule_for(study, metric)
    out = []
    for c in consistency.checks():
        if c.study != study or c.headline != metric or c.consistent:
            continue
        scale = 0.01 if abs(c.published - 100 * reported) < abs(c.published - reported) else 1.0
        others = [c.recomputed * scale]
        if abs(c.published * scale - reported) > 1e-9:  # a printed value other than the claim's
            others.append(c.published * scale)
        value = max(others, key=lambda v: abs(v - reported))
        out.append(Disagreement(value, c.summary().removeprefix("CONTRADICTION: "),
                                abs(value - reported) > rule.tolerance))
    return out


def contradiction_note(disagreements: Sequence[Disagreement], reported: float,
                       rule: Rule) -> str:
    """One note for a claim's contradictions: how many, the largest gap and its check."""
    worst = max(disagreements, key=lambda d: abs(d.value - reported))
    gap = abs(worst.value - reported)
    size = "material" if worst.material else f"within ±{rule.tolerance:g}"
    return (f"the paper contradicts itself in {len(disagreements)} check(s) of X.consistency, "
            f"the largest by {gap:.3f} ({size}): {worst.text}")


@dataclass(frozen=True)
class Conditions:
    """How our run of a claim was made, against the paper's: the data source and the dataset
    the paper used, the profile, the departures the study recorded, and the dataset's version
    (:func:`medrepro.data.identity.match_version` sentences)."""

    data_source: str
    paper_dataset: str
    phantom: bool
    profile: str
    deviations: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    commits: tuple[str, ...] = ()


def departures(c: Conditions) -> list[str]:
    """Rule 5: why the run is not comparable with the paper (empty: comparable)."""
    out = []
    if c.phantom:
        out.append("phantom data")
    elif c.data_source != c.paper_dataset:
        out.append(f"stand-in dataset: {c.data_source} instead of {c.paper_dataset}")
    if c.profile != PAPER_PROFILE:
        out.append(f"reduced profile '{c.profile}'")
    out += [d for d in dict.fromkeys(c.deviations) if d]
    return out


def condition_notes(c: Conditions) -> list[str]:
    """Rule 6's notes about the conditions."""
    out = [f"dataset {v}" for v in dict.fromkeys(c.versions) if "NO known" in v]
    if len(set(c.commits)) > 1:
        out.append(f"seeds from {len(set(c.commits))} commits")
    return out


def band_verdict(reported: float, band: Band, rule: Rule,
                 disagreements: Iterable[Disagreement] = ()) -> tuple[str, str]:
    """Rule 4: ``(verdict, reason)`` of a band against the reported value."""
    material = [d for d in disagreements if d.material]
    values = [reported, *(d.value for d in material)]
    inside = band.lo <= reported <= band.hi
    if not inside and all(band.hi < v - rule.tolerance or band.lo > v + rule.tolerance
                          for v in values):
        gap = min(abs(v - (band.hi if band.hi < v else band.lo)) for v in values)
        return NOT_REPRODUCED, (f"the band {band.lo:.3f}–{band.hi:.3f} lies {gap:.3f} or more "
                                "from the paper's " + ("values" if material else f"{reported:.4g}")
                                + f", beyond the tolerance ±{rule.tolerance:g}")
    if inside and material:
        worst = max(material, key=lambda d: abs(d.value - reported))
        return INCONCLUSIVE, (f"the paper's own numbers disagree by {abs(worst.value - reported):.3f}"
                              f" (> ±{rule.tolerance:g}): {worst.text}")
    if inside and band.width > rule.max_band:
        return INCONCLUSIVE, (f"the band {band.lo:.3f}–{band.hi:.3f} is {band.width:.3f} wide, "
                              f"wider than {rule.max_band:g}: too wide to tell")
    if inside:
        return REPRODUCED, (f"{reported:.4g} lies inside the band {band.lo:.3f}–{band.hi:.3f}")
    return INCONCLUSIVE, (f"the band {band.lo:.3f}–{band.hi:.3f} misses {reported:.4g} by less "
                          f"than the tolerance ±{rule.tolerance:g}" + (
                              "" if not material else " or lies near another of its values"))


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict with its reasons (why this verdict), the band, what the band alone
    says (``band_verdict``, also where the claim is not comparable) and the notes."""

    verdict: str
    reasons: tuple[str, ...]
    band: Band | None = None
    band_verdict: str = ""
    notes: tuple[str, ...] = field(default=())
    rule: Rule = TEST_METRIC_RULE
    band_reason: str = ""


def judge(study: str, metric: str, reported: float | None,
          results: Sequence[SeedResult], conditions: Conditions | None) -> Verdict:
    """The verdict of one claim by rules 1–6. ``conditions`` None: no run of ours."""
    rule = rule_for(study, metric)
    disagreements = paper_disagreements(study, metric, reported, rule=rule)
    notes = [contradiction_note(disagreements, reported, rule)] if disagreements else []
    if reported is None or (isinstance(reported, float) and math.isnan(reported)):
        band = band_of(results) if results else None
        return Verdict(NOT_COMPARABLE, ("nothing reported: the paper gives no number",), band,
                       "", tuple(notes), rule)
    if not results or conditions is None:
        return Verdict(INCONCLUSIVE, ("no run: no result of ours for this claim",), None, "",
                       tuple(notes), rule)
    band = band_of(results)
    said, why = band_verdict(reported, band, rule, disagreements)
    notes += condition_notes(conditions)
    away = departures(conditions)
    if away:
        return Verdict(NOT_COMPARABLE, tuple(away), band, said, tuple(notes), rule, why)
    return Verdict(said, (why,), band, said, tuple(notes), rule, why)
