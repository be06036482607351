"""The report page a reader opens first: ``reports/<profile>/index.html``.

One self-contained HTML file (inline CSS, no script, no external resource; every link relative,
so the folder can be zipped, shared or kept as a Kaggle output) with:

- the run: date, commit, platform and device, profile, data, seed;
- the claim ledger first (:mod:`medrepro.reporting.ledger`): the verdicts counted per study,
  then every headline claim with its verdict, reasons, band over seeds and notes;
- wall time, status and a link to the executed notebook (``.html``, ``.ipynb``) per notebook
  (from ``run_summary.json``);
- the input files each notebook skipped, counted per dataset and problem, the first named;
- reported vs reproduced: every headline number per seed with its 95% CI and the seeds' spread,
  data source, profile;
- per study (A–E, and X for the cross-study artifacts): a banner saying whether it ran on
  phantom or real data, a thumbnail per figure (a click opens the full-size PNG), each table
  rendered (first :data:`MAX_TABLE_ROWS` rows, with links to its CSV and Markdown), and the
  provenance of each (source, seed, commit, date, device, dtype policy);
- the papers' figures the kit does not make, each with its reason (``manifest.EXCLUDED``);
- the artifacts the manifest expects but the run did not make.

:func:`write_page` is called by ``06_compare`` (``compare.write_index``) and again by the runner
at the end of ``./run_all.sh``, so the wall times include every notebook.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from medrepro.core import devrun, manifest, paths
from medrepro.reporting import ledger, report, results
from medrepro.core.fileio import atomic_path

PAGE_NAME = "index.html"
MAX_TABLE_ROWS = 40
THUMB_WIDTH_PX = 260
STUDY_ORDER = ("A", "B", "C", "D", "E", "X")
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 16px 40px;color:#1b1b1b;line-height:1.45}
h1{margin-bottom:4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:6px 10px;border-radius:4px;font-weight:600;margin:8px 0}
.phantom{background:#b22222;color:#fff}.real{background:#1e6b34;color:#fff}
.devrun{background:#ffa500}
.none{background:#777;color:#fff}.failed{background:#fdd}.missing{background:#fdd}
.meta{color:#555;font-size:12px}.figs{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;width:THUMBpx}figure img{width:100%;border:1px solid #ccc;background:#fff}
figcaption{font-size:12px}details{margin:10px 0}summary{cursor:pointer;font-weight:600}
.tablewrap{overflow-x:auto;max-width:100%}
""".replace("THUMB", str(THUMB_WIDTH_PX))


def write_page(*, profile: str, reports_root: str | os.PathLike | None = None) -> Path:
    """Write ``reports/<profile>/index.html`` from what is on disk; return its path."""
    base = paths.reports_dir(profile, root=reports_root)
    summary = _read_json(base / "run_summary.json") or {}
    index = _artifact_rows(profile, reports_root)
    metrics = report.read_metrics(profile=profile, reports_root=reports_root)
    skips = report.read_skips(profile=profile, reports_root=reports_root,
                              notebooks=summary.get("status") or None)
    parts = [_header(profile, summary, index), _ledger_section(metrics),
             _notebooks_section(base, summary), _skips_section(skips), _compare_section(metrics)]
    for study in STUDY_ORDER:
        rows = [r for r in index if r["study"] == study]
        if rows:
            parts.append(_study_section(study, rows, base))
    parts.append(_excluded_section())
    parts.append(_missing_section(index))
    title = f"medrepro report — profile {profile}"
    page = (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    path = base / PAGE_NAME
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- data
def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _artifact_rows(profile: str, reports_root) -> list[dict[str, Any]]:
    """Every manifest artifact with its files (relative to the page) and its sidecar."""
    base = paths.reports_dir(profile, root=reports_root)
    rows = []
    for art in manifest.ARTIFACTS.values():
        files = report.artifact_paths(art.id, profile=profile, reports_root=reports_root)
        meta = _read_json(files[0].with_suffix(".json"))
        present = meta is not None and all(f.is_file() and f.stat().st_size > 0 for f in files)
        rows.append({"id": art.id, "study": art.study, "kind": art.kind,
                     "description": art.description, "notebook": art.notebook,
                     "present": present, "meta": meta or {},
                     "files": [f.relative_to(base).as_posix() for f in files],
                     "csv": files[0] if art.kind == "table" else None})
    return rows


# ---------------------------------------------------------------------------- sections
def _header(profile: str, summary: dict, index: list[dict]) -> str:
    metas = [r["meta"] for r in index if r["present"]]
    dev = next((m.get("device") for m in metas if m.get("device")), {}) or {}
    commit = summary.get("git_commit") or next((m.get("git_commit") for m in metas), "unknown")
    date = summary.get("date_utc") or max((m.get("date_utc", "") for m in metas), default="")
    device_text = summary.get("device") or _device_text(dev)
    facts = [("run date (UTC)", date or "unknown"), ("commit", commit or "unknown"),
             ("platform", summary.get("platform") or dev.get("platform", "unknown")),
             ("device", device_text), ("dtype policy", _policies(metas)),
             ("profile", profile), ("data", summary.get("data", "see each study")),
             ("seed", summary.get("seed", "see each artifact"))]
    total = summary.get("total_seconds")
    if total is not None:
        facts.append(("total wall time", f"{total:.0f} s"))
    skipped = (summary.get("skipped_inputs") or {}).get("total")
    if skipped is not None:
        facts.append(("input files skipped", f"{skipped} (see 'Input files skipped')"
                      if skipped else "none"))
    dl = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    n_present = sum(r["present"] for r in index)
    phantom = any(m.get("phantom") for m in metas)
    warn = (f"<p class='banner phantom'>Some results come from phantom data. "
            f"{_e(report.PHANTOM_LABEL)}.</p>" if phantom else "")
    if summary.get("fast_dev_run") or any(m.get("fast_dev_run") for m in metas):
        warn += f"<p class='banner devrun'>{_e(devrun.LABEL)}.</p>"
    reduced = ("" if profile == "paper" else
               f"<p class='banner none'>Profile '{_e(profile)}' uses reduced sizes and epochs: "
               "its numbers are not the papers' protocol.</p>")
    return (f"<h1>medrepro report — profile {_e(profile)}</h1>"
            f"<p class='meta'>{n_present} of {len(index)} manifest artifacts present.</p>"
            f"{warn}{reduced}<table>{dl}</table>")


def _device_text(dev: dict) -> str:
    gpus = dev.get("gpus") or []
    if not gpus:
        return "CPU" if dev else "unknown"
    return "; ".join(f"{g.get('name')} ({g.get('memory_mib') or '?'} MiB, cc "
                     f"{'.'.join(map(str, g.get('capability') or [])) or '?'})" for g in gpus)


def _policies(metas: list[dict]) -> str:
    found = sorted({(m.get("device") or {}).get("dtype_policy") or "" for m in metas} - {""})
    return ", ".join(found) or "float32 (Keras default)"


def _notebooks_section(base: Path, summary: dict) -> str:
    wall = summary.get("wall_seconds") or {}
    status = summary.get("status") or {}
    rss = summary.get("peak_rss_mib") or {}
    names = list(dict.fromkeys([*manifest.NOTEBOOKS, *wall]))
    rows = []
    for nb in names:
        html_file, ipynb = base / f"{nb}.html", base / f"{nb}.ipynb"
        if nb not in wall and not ipynb.is_file():
            continue
        state = status.get(nb, "passed" if nb in wall else "not in this run's summary")
        links = " ".join(f"<a href='{_e(p.name)}'>{p.suffix[1:]}</a>"
                         for p in (html_file, ipynb) if p.is_file())
        seconds = f"{wall[nb]:.1f} s" if nb in wall else ""
        cls = " class='failed'" if str(state).startswith("failed") else ""
        memory = f"{rss[nb]:,.0f} MiB" if rss.get(nb) is not None else ""
        rows.append(f"<tr{cls}><td>{_e(nb)}</td><td>{_e(state)}</td>"
                    f"<td class='num'>{seconds}</td><td class='num'>{memory}</td>"
                    f"<td>{links}</td></tr>")
    if not rows:
        return "<h2>Notebooks</h2><p>No executed notebooks in this folder.</p>"
    return ("<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>wall time</th>"
            f"<th>peak memory (RSS)</th><th>executed copy</th></tr>{''.join(rows)}</table>")


def _skips_section(records: list[dict]) -> str:
    """The input files each notebook skipped (``report.record_skips``), per dataset and problem,
    with the first files named; "none" when every file checked was used. The total counts each
    dataset's files once."""
    if not records:
        return ""
    total = sum(report.skips_by_dataset(records).values())
    rows = []
    for r in records:
        problems = "; ".join(f"{k}: {v}" for k, v in r.get("by_problem", {}).items())
        names = "<br>".join(f"{_e(Path(f['path']).name)} — {_e(f['problem'])}: {_e(f['detail'])}"
                            for f in r.get("files", [])[:10])
        more = (f"<br>… {r['skipped'] - 10} more" if r["skipped"] > 10 else "")
        cls = " class='failed'" if r["skipped"] else ""
        rows.append(f"<tr{cls}><td>{_e(r['notebook'])}</td><td>{_e(r['dataset'])}</td>"
                    f"<td>{_e(r['source'])}</td><td class='num'>{_e(_txt(r.get('files_checked')))}"
                    f"</td><td class='num'>{r['skipped']}</td><td>{_e(problems)}</td>"
                    f"<td>{names}{more}</td></tr>")
    return (f"<h2 id='skipped'>Input files skipped ({total})</h2><p class='meta'>Files the "
            "run could not use, each with its reason (medrepro.data.images for MRI folders); "
            "the rest was used.</p><table><tr><th>notebook</th><th>dataset</th><th>source</th>"
            "<th>files checked</th><th>skipped</th><th>problems</th><th>files</th></tr>"
            f"{''.join(rows)}</table>")


VERDICT_CLASS = {"reproduced": "real", "not reproduced": "phantom", "inconclusive": "none",
                 "not comparable": "none"}


def _ledger_section(metrics: list[dict]) -> str:
    """The claim ledger: verdict counts per study, then one row per claim."""
    book = ledger.ledger_table(metrics)
    counts = ledger.verdict_counts(book)
    head = "".join(f"<th>{_e(c)}</th>" for c in ["study", *counts.columns])
    body = "".join("<tr><td>" + _e(study) + "</td>" + "".join(
        f"<td class='num'>{int(x)}</td>" for x in row) + "</tr>" for study, row in counts.iterrows())
    rows = []
    for r in book.itertuples():
        band = "" if r.n_seeds == 0 else f"{r.band_lo:.3f}–{r.band_hi:.3f}"
        sd = "" if r.seed_sd is None or pd.isna(r.seed_sd) else f" ± {r.seed_sd:.3f}"
        spread = "" if r.n_seeds == 0 else (f"{r.seed_mean:.3f}{sd} "
                                            f"[{r.seed_min:.3f}–{r.seed_max:.3f}]")
        why = r.reasons + (f"; the band alone: {r.band_verdict}" if r.band_verdict else "")
        rows.append(f"<tr><td>{_e(r.study)}</td><td>{_e(r.metric)}</td>"
                    f"<td class='num'>{_num(r.reported)}</td><td><span class='banner "
                    f"{VERDICT_CLASS[r.verdict]}'>{_e(r.verdict)}</span></td>"
                    f"<td class='num'>{band}</td><td>{_e(r.seeds)}</td>"
                    f"<td class='num'>{spread}</td><td>{_e(why)}</td><td>{_e(r.notes)}</td></tr>")
    claims = ("<tr><th>study</th><th>claim</th><th>reported</th><th>verdict</th><th>band</th>"
              "<th>seeds</th><th>seed mean ± SD [range]</th><th>why</th><th>notes</th></tr>")
    return ("<h2 id='ledger'>Claim ledger</h2><p class='meta'>Every headline number of the "
            "papers judged by rules fixed before any run (medrepro.analysis.verdicts; "
            "docs/verdicts.md).</p>"
            f"<table><tr>{head}</tr>{body}</table><div class='tablewrap'><table>{claims}"
            f"{''.join(rows)}</table></div>")


def _compare_section(metrics: list[dict]) -> str:
    table = results.compare_table(metrics)
    rows = []
    for r in table.itertuples():
        ci = ("" if pd.isna(r.ci_low) or pd.isna(r.ci_high)
              else f"{r.ci_low:.3f}–{r.ci_high:.3f}")
        inside = "" if r.reported_in_ci is None or pd.isna(r.reported_in_ci) else (
            "yes" if r.reported_in_ci else "no")
        source = "" if not isinstance(r.data_source, str) else r.data_source
        label = f"{source} (PHANTOM)" if source and report.is_phantom(source) else source
        rows.append(f"<tr><td>{_e(r.study)}</td><td>{_e(r.metric)}</td>"
                    f"<td class='num'>{_num(r.reported)}</td>"
                    f"<td class='num'>{_num(r.reproduced)}</td><td class='num'>{ci}</td>"
                    f"<td>{inside}</td><td>{_e(label)}</td><td>{_e(_txt(r.profile))}</td>"
                    f"<td>{_e(_txt(r.seed))}</td><td class='num'>{_e(_txt(r.n))}</td>"
                    f"<td>{_e(_contradictions(r.paper_consistency))}</td>"
                    f"<td class='num'>{_e(_txt(r.test_with_train_duplicate))}</td>"
                    f"<td class='num'>{_num(r.duplicate_free)}</td>"
                    f"<td>{_e(_txt(r.notes))}</td></tr>")
    head = ("<tr><th>study</th><th>metric</th><th>reported</th><th>reproduced</th>"
            "<th>95% CI</th><th>reported in CI</th><th>data</th><th>profile</th><th>seed</th>"
            "<th>n</th><th>paper's own consistency</th><th>test images with a training "
            "duplicate</th><th>duplicate-free</th><th>notes</th></tr>")
    return (f"<h2>Reported vs reproduced</h2><div class='tablewrap'><table>{head}{''.join(rows)}"
            "</table></div>")


def _contradictions(text: Any) -> str:
    """The contradiction items of a ``paper_consistency`` cell (``"; "``-separated checks), or
    ``"consistent (N checks)"``; the full list is the ``X.consistency`` table."""
    checks = [c for c in _txt(text).split("; ") if c]
    bad = [c.removeprefix("CONTRADICTION: ") for c in checks if c.startswith("CONTRADICTION")]
    if bad:
        return "contradicts itself: " + "; ".join(bad)
    return f"consistent ({len(checks)} checks)" if checks else ""


def _study_section(study: str, rows: list[dict], base: Path) -> str:
    info = manifest.STUDIES.get(study)
    title = f"{study} — {info['title']}" if info else f"{study} — across studies"
    present = [r for r in rows if r["present"]]
    sources = sorted({r["meta"].get("data_source") for r in present} - {None})
    if not present:
        banner = "<p class='banner none'>Not run: no artifact of this study in this folder.</p>"
    elif any(r["meta"].get("phantom") for r in present):
        banner = (f"<p class='banner phantom'>PHANTOM data ({_e(', '.join(sources))}): "
                  f"{_e(report.PHANTOM_LABEL)}.</p>")
    else:
        banner = f"<p class='banner real'>Real data: {_e(', '.join(sources))}.</p>"
    figs = [_figure(r) for r in present if r["kind"] == "figure"]
    tables = [_table(r) for r in present if r["kind"] == "table"]
    body = f"<h2 id='study-{_e(study)}'>{_e(title)}</h2>{banner}"
    if figs:
        body += f"<h3>Figures</h3><div class='figs'>{''.join(figs)}</div>"
    if tables:
        body += "<h3>Tables</h3>" + "".join(tables)
    return body


def _provenance(meta: dict) -> str:
    dev = meta.get("device") or {}
    bits = [f"source {meta.get('data_source')}", f"profile {meta.get('profile')}",
            f"seed {meta.get('seed')}", f"commit {str(meta.get('git_commit', ''))[:12]}",
            str(meta.get("date_utc", ""))]
    if dev:
        bits.append(f"{dev.get('platform')}, {dev.get('gpu_count', 0)} GPU(s), "
                    f"policy {dev.get('dtype_policy') or 'float32'}")
    return " · ".join(bits)


def _figure(row: dict) -> str:
    png = row["files"][0]
    return (f"<figure><a href='{_e(png)}'><img src='{_e(png)}' alt='{_e(row['id'])}' "
            f"></a><figcaption><b>{_e(row['id'])}</b> {_e(row['description'])}"
            f"<br><span class='meta'>{_e(_provenance(row['meta']))}</span></figcaption></figure>")


def _table(row: dict) -> str:
    try:
        df = pd.read_csv(row["csv"])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return f"<p>{_e(row['id'])}: could not read {_e(row['files'][0])} ({_e(exc)})</p>"
    shown = df.head(MAX_TABLE_ROWS)
    more = (f"<p class='meta'>first {MAX_TABLE_ROWS} of {len(df)} rows; all in the CSV.</p>"
            if len(df) > MAX_TABLE_ROWS else "")
    links = " ".join(f"<a href='{_e(f)}'>{Path(f).suffix[1:]}</a>" for f in row["files"])
    return (f"<details open><summary>{_e(row['id'])}: {_e(row['description'])}</summary>"
            f"<p class='meta'>{_e(_provenance(row['meta']))} · {links}</p>"
            f"<div class='tablewrap'>{shown.to_html(index=False, na_rep='', border=0)}</div>"
            f"{more}</details>")


def _excluded_section() -> str:
    """The papers' figures the kit does not make (``manifest.EXCLUDED``), each with its reason."""
    items = "".join(f"<tr><td>{_e(x.id)}</td><td>{_e(x.caption)}</td><td>{_e(x.reason)}</td></tr>"
                    for x in manifest.EXCLUDED)
    return (f"<h2 id='excluded'>Figures of the papers not made ({len(manifest.EXCLUDED)})</h2>"
            "<p class='meta'>Every other numbered figure of the papers is an artifact above.</p>"
            f"<table><tr><th>figure</th><th>caption</th><th>why not made</th></tr>{items}</table>")


def _missing_section(index: list[dict]) -> str:
    missing = [r for r in index if not r["present"]]
    if not missing:
        return "<h2>Missing artifacts</h2><p>None: every manifest artifact is present.</p>"
    items = "".join(f"<tr class='missing'><td>{_e(r['id'])}</td><td>{_e(r['notebook'])}</td>"
                    f"<td>{_e(r['description'])}</td></tr>" for r in missing)
    return (f"<h2>Missing artifacts ({len(missing)})</h2><table><tr><th>id</th><th>notebook</th>"
            f"<th>description</th></tr>{items}</table>")


# ---------------------------------------------------------------------------- helpers
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _txt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return f"{float(value):.4g}"
