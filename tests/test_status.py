import json

import pytest
from medrepro.core import manifest
from medrepro.reporting import status

HEAD = manifest.HEADLINES[0]  # study A's test accuracy


def _summary(profile, data, date, *, commit="0fde7f0c5addf00b13e87ea9e50d13e73a2c299d",
             failed=None):
    wall = {"01_download": 12.5, "03_lstm_cnn_mri": 431.0}
    st = {nb: "passed" for nb in wall}
    if failed:
        st[failed] = "failed: RuntimeError: boom"
    return {"profile": profile, "data": data, "seed": 42, "wall_seconds": wall, "status": st,
            "total_seconds": sum(wall.values()), "failed": failed, "cpu_count": 2,
            "git_commit": commit, "date_utc": date, "device": "CPU only (2 cores)",
            "platform": "local"}


def _metric(value, source, profile, date):
    return {"study": HEAD["study"], "metric": HEAD["metric"], "value": value, "ci_low": value - 0.1,
            "ci_high": value + 0.1, "n": 40, "artifact": HEAD["artifact"],
            "notebook": "03_lstm_cnn_mri", "notes": "", "data_source": source,
            "phantom": source == "phantom", "profile": profile, "seed": 42,
            "git_commit": "0fde7f0c5addf00b13e87ea9e50d13e73a2c299d", "date_utc": date}


def _write_run(root, summary, metrics=()):
    folder = root / summary["profile"]
    (folder / "metrics").mkdir(parents=True)
    (folder / "run_summary.json").write_text(json.dumps(summary))
    if metrics:
        (folder / "metrics" / "03_lstm_cnn_mri.json").write_text(json.dumps(list(metrics)))
    return folder


def test_runs_from_several_roots_go_on_one_page_newest_first(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    _write_run(old, _summary("smoke", "phantom", "2026-12-01T10:00:00+00:00"),
               [_metric(0.25, "phantom", "smoke", "2026-12-01T10:00:00+00:00")])
    _write_run(new, _summary("demo", "../shared/data", "2026-12-06T09:00:00+00:00",
                             failed="03_lstm_cnn_mri"),
               [_metric(0.475, "brain_tumor_sartaj", "demo", "2026-12-06T09:00:00+00:00")])
    runs = status.find_runs([old, new])
    assert [r.summary["profile"] for r in runs] == ["demo", "smoke"]
    page = status.status_markdown(runs, command="python -m medrepro.reporting.status old new")
    overview = page[page.index("## Runs"):page.index("### ")]
    assert overview.index("2026-12-06") < overview.index("2026-12-01")
    assert "| demo | ../shared/data | 42 | `0fde7f0c5a` |" in overview
    assert "1 of 2 passed" in overview and "2 of 2 passed" in overview
    assert "7 min 24 s" in overview  # 12.5 + 431.0 s
    demo = page[page.index("### demo"):page.index("### smoke")]
    assert "| 03_lstm_cnn_mri | failed: RuntimeError: boom | 7 min 11 s | — |" in demo
    assert f"| A | {HEAD['metric']} | 42 | {HEAD['reported']:.4g} | 0.475 (0.375–0.575) |" in demo
    assert "PHANTOM DATA" not in demo
    smoke = page[page.index("### smoke"):]
    assert "0.250 (0.150–0.350)" in smoke and "PHANTOM DATA" in smoke
    assert "python -m medrepro.reporting.status old new" in page
    assert "No benchmark record" in page


def test_overview_links_each_run_section(tmp_path):
    _write_run(tmp_path, _summary("demo", "phantom", "2026-12-07T05:40:11+00:00"))
    run, = status.find_runs([tmp_path])
    page = status.status_markdown([run])
    assert f"(#{status.anchor(run)})" in page
    assert status.anchor(run) == "demo-phantom-seed-42-2026-12-07t0540110000"
    assert "### demo phantom seed 42 2026-12-07T05:40:11+00:00" in page
    assert "No headline number was found" in page


def test_a_fast_dev_run_is_marked_and_its_resumed_notebook_passed(tmp_path):
    summary = _summary("paper", "phantom", "2026-12-07T12:43:28+00:00")
    summary["fast_dev_run"] = True
    summary["status"]["03_lstm_cnn_mri"] = "passed (killed once mid-training, then resumed)"
    summary["peak_rss_mib"] = {"01_download": 2494.4, "03_lstm_cnn_mri": 11055.3}
    _write_run(tmp_path, summary)
    run, = status.find_runs([tmp_path])
    page = status.status_markdown([run])
    assert "| paper fast dev run | phantom | 42 |" in page and "2 of 2 passed" in page
    assert "### paper fast dev run phantom seed 42" in page
    assert "| 03_lstm_cnn_mri | passed (killed once mid-training, then resumed) | 7 min 11 s | 10.8 GiB |" in page
    assert "| **all** | 2 of 2 passed | **7 min 24 s** | 10.8 GiB |" in page
    assert status.anchor(run).startswith("paper-fast-dev-run-phantom-seed-42-")


def test_a_profile_folder_is_a_root_too(tmp_path):
    folder = _write_run(tmp_path, _summary("smoke", "phantom", "2026-12-07T04:54:25+00:00"))
    assert [r.folder for r in status.find_runs([folder])] == [folder]


def test_write_pages_renders_the_benchmark_record_beside_the_runs(tmp_path):
    _write_run(tmp_path, _summary("demo", "phantom", "2026-12-07T05:40:11+00:00"))
    bench = {"machine": {"platform": "Linux-x86_64", "cpu_count": 2}, "git_commit": "abc1234",
             "date_utc": "2026-12-07T06:00:00Z",
             "benchmarks": {"bench_dicom": {"speedup_vs_naive": 3.25,
                                            "rows": [{"size": 64, "img_per_s": 812.5}]}}}
    (tmp_path / "benchmarks.json").write_text(json.dumps(bench))
    out, bench_out = tmp_path / "docs" / "status.md", tmp_path / "docs" / "benchmarks.md"
    written = status.write_pages([tmp_path], out=out, benchmarks_out=bench_out)
    assert written == [out, bench_out]
    assert "bench_dicom" in out.read_text() and "[benchmarks.md](benchmarks.md)" in out.read_text()
    text = bench_out.read_text()
    assert "- **speedup_vs_naive**: 3.25" in text and "812.5" in text and "## bench_dicom" in text


def test_a_long_failure_is_clipped_to_one_table_cell(tmp_path):
    summary = _summary("demo", "phantom", "2026-12-07T05:40:11+00:00", failed="03_lstm_cnn_mri")
    summary["status"]["03_lstm_cnn_mri"] = "failed: RuntimeError: a | b\n" + "x" * 300
    _write_run(tmp_path, summary)
    row = next(line for line in status.status_markdown(status.find_runs([tmp_path])).splitlines()
               if line.startswith("| 03_lstm_cnn_mri |"))
    assert "a / b x" in row and row.count("|") == 5 and "…" in row and len(row) < 160


def test_a_summary_kept_on_its_own_and_its_seed_runs(tmp_path):
    summary = _summary("demo", "/work/shared/data", "2026-12-07T06:59:30+00:00")
    summary |= {"studies": ["E"], "seeds": [42, 1, 2], "seed_runs": [
        {"notebook": "03_lstm_cnn_mri", "seed": 1, "primary": False, "seconds": 1032.0,
         "status": "passed"},
        {"notebook": "03_lstm_cnn_mri", "seed": 42, "primary": True, "seconds": 539.5,
         "status": "passed"}]}
    path = tmp_path / "real_run_summary.json"
    path.write_text(json.dumps(summary))
    run, = status.find_runs([path])
    assert run.folder == path and run.metrics == []
    section = "\n".join(status.run_section(run))
    assert "- studies: E" in section
    assert "03_lstm_cnn_mri seed 1 passed in 17 min 12 s" in section
    assert "seed 42 (primary) passed in 9 min 0 s" in section
    assert "No headline number was found beside this record" in section


def test_format_seconds():
    assert status.format_seconds(42.26) == "42.3 s"
    assert status.format_seconds(444.4) == "7 min 24 s"
    assert status.format_seconds(3725) == "1 h 2 min"


def test_a_root_without_runs_is_named(tmp_path):
    with pytest.raises(status.StatusRecordError, match=r"empty: no run_summary\.json"):
        status.find_runs([tmp_path / "empty"])


def test_a_broken_summary_is_named_with_what_is_wrong(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "run_summary.json").write_text("{not json")
    with pytest.raises(status.StatusRecordError, match=r"demo/run_summary\.json: not a readable"):
        status.find_runs([tmp_path])
    (folder / "run_summary.json").write_text(json.dumps({"profile": "demo", "data": "phantom"}))
    with pytest.raises(status.StatusRecordError, match=r"run summary without seed, wall_seconds"):
        status.find_runs([tmp_path])


def test_main_exits_with_the_reason(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        status.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "s.md")])
    assert exc.value.code == 2
    assert "nowhere: no run_summary.json" in capsys.readouterr().err
    assert not (tmp_path / "s.md").exists()
