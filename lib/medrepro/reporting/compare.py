"""Cross-study comparison and the report index (used by ``06_compare``).

- :func:`~medrepro.reporting.results.compare_table` (in :mod:`medrepro.reporting.results`) joins the papers' headline numbers (``manifest.HEADLINES``) with the
  reproduced ones that the notebooks recorded (``report.record_metric``).
- :func:`artifact_index` / :func:`write_index` list every manifest artifact with its provenance;
  missing ones are flagged (and make ``06_compare`` fail).
- :func:`results_markdown` / :func:`update_readme` regenerate the README's results block from
  real-data runs (never from phantoms, never by hand), the claim ledger first::

      python -m medrepro.reporting.compare --update-readme --profile demo
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from medrepro.analysis import consistency
from medrepro.core import manifest, paths
from medrepro.reporting import ledger, report, report_page
from medrepro.core.fileio import atomic_path
from medrepro.reporting.results import compare_table, headline_markdown, recorded_runs

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def compare_notes() -> str:
    """The notes of ``X.compare``: what its columns mean and every contradiction found inside
    the papers (recomputed from their own published numbers)."""
    found = consistency.contradictions()
    return ("reported_in_ci: whether the paper's number lies inside our 95% CI. "
            "paper_consistency: the paper's number checked against its own other published "
            "numbers (medrepro.analysis.consistency, rounding allowed for; all checks in X.consistency). "
            "test_with_train_duplicate / duplicate_free: test images with an exact or near "
            "duplicate among the training images, and the metric without them. "
            f"The papers contradict themselves in {len(found)} checks: " + " | ".join(found))


def gather_tables(artifact_ids: list[str], *, profile: str,
                  reports_root: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Saved table artifacts stacked into one frame with an ``artifact`` column.

    Tables not written by this run are left out (``None`` if none was written).
    """
    frames = []
    for art_id in artifact_ids:
        csv = report.artifact_paths(art_id, profile=profile, reports_root=reports_root)[0]
        if csv.is_file():
            frames.append(pd.read_csv(csv).assign(artifact=art_id))
    return pd.concat(frames, ignore_index=True) if frames else None


def artifact_index(*, profile: str, reports_root: str | os.PathLike | None = None,
                   notebooks: list[str] | None = None) -> pd.DataFrame:
    """Every manifest artifact (of ``notebooks``, default all) with its files and provenance."""
    notebooks = notebooks or list(manifest.NOTEBOOKS)
    missing = set(report.missing_artifacts(notebooks, profile=profile, reports_root=reports_root))
    rows = []
    for nb in notebooks:
        for art in manifest.for_notebook(nb):
            files = report.artifact_paths(art.id, profile=profile, reports_root=reports_root)
            meta: dict[str, Any] = {}
            if art.id not in missing:
                meta = report.read_sidecar(art.id, profile=profile, reports_root=reports_root)
            rows.append({"id": art.id, "study": art.study, "kind": art.kind,
                         "description": art.description, "notebook": nb,
                         "status": "missing" if art.id in missing else "ok",
                         "data_source": meta.get("data_source"), "phantom": meta.get("phantom"),
                         "profile": meta.get("profile"), "seed": meta.get("seed"),
                         "git_commit": meta.get("git_commit"), "date_utc": meta.get("date_utc"),
                         "files": [str(f) for f in files]})
    return pd.DataFrame(rows)


def write_index(index: pd.DataFrame, *, profile: str,
                reports_root: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write ``reports/<profile>/index.md`` linking every artifact, and the report page
    ``index.html`` (:func:`medrepro.reporting.report_page.write_page`)."""
    base = paths.reports_dir(profile, root=reports_root)
    n_missing = int((index["status"] == "missing").sum())
    phantom = any(p is True for p in index["phantom"])
    title = f"medrepro report — profile {profile}"
    md = [f"# {title}", "",
          f"{len(index)} artifacts, {n_missing} missing."]
    if phantom:
        md += ["", f"> **Some artifacts come from phantom data. {report.PHANTOM_LABEL}.**"]
    md += ["", "| id | description | source | seed | status | files |", "|---|---|---|---|---|---|"]
    for r in index.itertuples():
        rel = [Path(f).relative_to(base).as_posix() for f in r.files]
        links_md = " ".join(f"[{Path(x).suffix[1:]}]({x})" for x in rel)
        source = r.data_source if isinstance(r.data_source, str) else ""
        label = f"{source} (PHANTOM)" if r.phantom is True else source
        seed = "" if pd.isna(r.seed) else int(r.seed)
        md.append(f"| {r.id} | {r.description} | {label} | {seed}"
                  f" | {r.status} | {links_md if r.status == 'ok' else ''} |")
    md += ["", "## Figures of the papers not made", "", "| figure | caption | why not made |",
           "|---|---|---|"]
    md += [f"| {x.id} | {x.caption} | {x.reason} |" for x in manifest.EXCLUDED]
    md_path = base / "index.md"
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text("\n".join(md) + "\n", encoding="utf-8")
    return report_page.write_page(profile=profile, reports_root=reports_root), md_path


def results_markdown(metrics: list[dict[str, Any]]) -> str:
    """The README results block from real-data metrics (phantom entries and a fast dev run's
    are left out): the claim ledger first (verdict counts per study, then one row per claim
    measured on real data, :mod:`medrepro.reporting.ledger`), then each run's numbers with
    their CIs."""
    real = [m for m in metrics if not m.get("phantom") and not m.get("fast_dev_run")]
    if not real:
        return "_No real-data run has been recorded yet._"
    measured = {(m["study"], m["metric"]) for m in real}
    claims = [h for h in manifest.HEADLINES if (h["study"], h["metric"]) in measured]
    book = ledger.ledger_table(real, claims=claims)
    lines = ["Generated by `python -m medrepro.reporting.compare --update-readme` from these runs:",
             "", *recorded_runs(real)]
    lines += [f"- data identity: {text}" for text in _identities(real)]
    lines += ["", f"**Claim ledger** (rules: [docs/verdicts.md](docs/verdicts.md)); "
              f"{len(manifest.HEADLINES) - len(claims)} of the {len(manifest.HEADLINES)} "
              "headline claims have no real-data run yet.", "", ledger.ledger_markdown(book)]
    lines += ["", "Each run:", "", *headline_markdown(compare_table(real))]
    return "\n".join(lines)


def _identities(metrics: list[dict[str, Any]]) -> list[str]:
    """One line per dataset behind ``metrics``' data sources (:func:`medrepro.data.identity.summary`)."""
    from medrepro.data import identity

    found = {}
    for m in metrics:
        for ident in (m.get("datasets") or {}).values():
            if ident.get("source") == m["data_source"]:
                found[ident["dataset"], ident.get("content_sha256")] = identity.summary(ident)
    return [found[k] for k in sorted(found, key=str)]


def update_readme(markdown: str, *, readme: str | os.PathLike | None = None) -> Path:
    """Replace the block between the results markers of README.md with ``markdown``."""
    path = Path(readme) if readme else paths.project_root() / "README.md"
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path}: results markers {README_START} / {README_END} not found")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(f"{head}{README_START}\n{markdown}\n{README_END}{tail}",
                             encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medrepro.reporting.compare")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite README.md's results table from this profile's real-data "
                             "metrics")
    args = parser.parse_args(argv)
    metrics = report.read_metrics(profile=args.profile)
    md = results_markdown(metrics)
    print(md)
    if args.update_readme:
        print(f"updated {update_readme(md)}")
    print(json.dumps({"metrics": len(metrics)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def plan(settings, ctx):
    """Notebook 06's part of a run's plan (``settings``: :class:`~medrepro.core.profiles.
    CompareSettings`): nothing written but tables, a few seconds."""
    from medrepro.core.planning import RowPlan

    return RowPlan(seconds=10.0, note="collects recorded results (seconds)")
