"""Which notebook runs for which seed and studies: the schedule of ``./run_all.sh --seeds``.

- Seeds: ``--seeds 42 1 2`` runs the study notebooks once per seed. The first seed is the
  primary one: its artifacts are what ``reports/<profile>/`` holds (it runs last, so they are
  not overwritten by another seed's) and only it runs ``01_download`` and ``06_compare``; every
  seed's headline numbers are recorded beside the others' (``report.record_metric`` keeps one
  record per seed) and the ledger forms its band from them (:mod:`medrepro.analysis.verdicts`).
  Training runs live in per-seed folders (``paths.runs_dir``), so a seed finished earlier is
  reused (``train.fit_once``), not trained again.
- Without ``--seeds``: one seed (``--seed``, default 42), except in the ``paper`` profile, where
  the cheap studies (:data:`SEVERAL_SEEDS_STUDIES`: C, D, E) run for :data:`PAPER_SEEDS` and A
  and B for the primary seed only.
- Studies: ``--studies E`` runs only study E's sections of a notebook that holds several
  studies (``03`` holds A, C and E). A section runs from its ``## Study X`` heading to the next
  such heading; the cells before the first one (set-up, imports, parameters) always run. A
  notebook none of whose studies is asked for is left out (``01``, ``02`` and ``06`` hold no
  study and are kept).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medrepro.core import manifest
from medrepro.core.seeds import DEFAULT_SEED

PAPER_SEEDS = (DEFAULT_SEED, 1, 2)
SEVERAL_SEEDS_STUDIES = ("C", "D", "E")
STUDY_HEADING = re.compile(r"^## Study ([A-Z])\b")
PREPARATION = {"02_preprocess_rsna": "B"}  # a preparation notebook and the study it serves
ONCE = ("01_download", "06_compare")  # the primary seed's only


@dataclass(frozen=True)
class SeedRun:
    """One execution: ``notebook`` (stem) with ``seed``; ``studies`` None: the whole notebook."""

    notebook: str
    seed: int
    studies: tuple[str, ...] | None = None
    primary: bool = True

    @property
    def output_name(self) -> str:
        """The executed copy's file name: ``03_x.ipynb`` (primary), ``03_x.seed1.ipynb``."""
        return f"{self.notebook}.ipynb" if self.primary else f"{self.notebook}.seed{self.seed}.ipynb"

    @property
    def label(self) -> str:
        part = "" if self.studies is None else f" (studies {', '.join(self.studies)})"
        return f"{self.notebook} seed {self.seed}{part}"


def seeds_of(runs: Sequence[SeedRun]) -> list[int]:
    """The seeds of a schedule, the primary first."""
    primary = [r.seed for r in runs if r.primary][:1]
    return list(dict.fromkeys([*primary, *(r.seed for r in runs)]))


def notebook_studies(notebook: str) -> tuple[str, ...]:
    """The studies whose notebook is ``notebook`` (``"03_lstm_cnn_mri"`` -> A, C, E)."""
    return tuple(sorted(s for s, info in manifest.STUDIES.items() if info["notebook"] == notebook))


def default_seeds(profile: str, seed: int = DEFAULT_SEED) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """``(seeds, studies that run for every seed)`` when ``--seeds`` is not given: the paper
    profile's :data:`PAPER_SEEDS` (``seed`` first) for :data:`SEVERAL_SEEDS_STUDIES`, else
    ``seed`` alone."""
    if profile != "paper":
        return (seed,), ()
    seeds = (seed, *[s for s in PAPER_SEEDS if s != seed])[:len(PAPER_SEEDS)]
    return seeds, SEVERAL_SEEDS_STUDIES


def make_schedule(notebooks: Sequence[str], *, seeds: Sequence[int],
                  studies: Sequence[str] | None = None,
                  several_seed_studies: Sequence[str] | None = None) -> list[SeedRun]:
    """The executions of ``notebooks`` (stems, in number order) for ``seeds`` (primary first).

    ``studies``: only these studies (None: all). ``several_seed_studies``: the studies the
    seeds after the first run (None: every study asked for). The other seeds run first, the
    primary seed last; ``06_compare`` after everything.
    """
    if not seeds:
        raise ValueError("make_schedule: no seed given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {' '.join(map(str, seeds))}: a seed is given twice")
    asked = None if studies is None else tuple(s.upper() for s in studies)
    unknown = sorted(set(asked or ()) - set(manifest.STUDIES))
    if unknown:
        raise ValueError(f"--studies: unknown study {', '.join(unknown)}; expected "
                         f"{', '.join(manifest.STUDIES)}")
    primary, *others = [int(s) for s in seeds]
    extra = asked if several_seed_studies is None else tuple(
        s for s in several_seed_studies if asked is None or s in asked)
    runs = [r for seed in others for r in _runs(notebooks, seed, extra, primary=False)]
    runs += _runs([n for n in notebooks if n != "06_compare"], primary, asked, primary=True)
    runs += [SeedRun("06_compare", primary) for n in notebooks if n == "06_compare"]
    return runs


def _runs(notebooks: Sequence[str], seed: int, studies: tuple[str, ...] | None, *,
          primary: bool) -> list[SeedRun]:
    out = []
    for nb in notebooks:
        if not primary and nb in ONCE:
            continue
        own = notebook_studies(nb)
        served = PREPARATION.get(nb)
        if studies is None:
            out.append(SeedRun(nb, seed, None, primary))
        elif own:
            keep = tuple(s for s in own if s in studies)
            if keep:
                out.append(SeedRun(nb, seed, None if keep == own else keep, primary))
        elif served is None or served in studies:
            out.append(SeedRun(nb, seed, None, primary))
    return out


def study_sections(cells: Sequence[dict]) -> list[str | None]:
    """The study of each cell of a notebook (``cells``: nbformat cell dicts): the letter of the
    last ``## Study X`` heading above it (the heading's own cell included), None before the
    first."""
    current: str | None = None
    out = []
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            match = STUDY_HEADING.match("".join(cell.get("source", "")))
            if match:
                current = match.group(1)
        out.append(current)
    return out


def select_studies(notebook: str | Path, studies: Sequence[str], out: str | Path) -> Path:
    """Write to ``out`` the notebook ``notebook`` with only the set-up cells and the sections of
    ``studies``; raises ``ValueError`` naming the file when it has no section of them."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    sections = study_sections(nb.cells)
    if not set(studies) & set(sections):
        raise ValueError(f"{notebook}: no '## Study X' section for studies "
                         f"{', '.join(studies)} (found {sorted(set(sections) - {None})})")
    nb.cells = [c for c, s in zip(nb.cells, sections) if s is None or s in studies]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out
