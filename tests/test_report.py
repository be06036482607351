import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from medrepro.core import manifest
from medrepro.reporting import report


@pytest.fixture
def run(tmp_path):
    return report.start_run("03_lstm_cnn_mri", profile="smoke", seed=7, reports_root=tmp_path)


def test_save_table_writes_csv_md_and_sidecar(run, tmp_path):
    df = pd.DataFrame({"class": ["glioma", "pituitary"], "f1": [0.5, 0.75]})
    csv = report.save_table(df, "A.table2", source="phantom")
    assert csv == tmp_path / "smoke" / "tables" / "A.table2.csv"
    back = pd.read_csv(csv)
    assert list(back["f1"]) == [0.5, 0.75]
    assert set(back["data_source"]) == {"phantom"}
    md = csv.with_suffix(".md").read_text()
    assert "PHANTOM DATA" in md and "profile: **smoke**" in md and "| glioma" in md
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["id"] == "A.table2" and meta["study"] == "A"
    assert meta["profile"] == "smoke" and meta["seed"] == 7 and meta["phantom"] is True
    assert meta["versions"]["numpy"] != "not installed"
    assert meta["git_commit"] and meta["date_utc"].startswith("20")


def test_real_source_table_has_no_phantom_banner(run):
    df = pd.DataFrame({"a": [1]})
    md = report.save_table(df, "A.table2", source="brain_tumor_sartaj").with_suffix(".md")
    assert "PHANTOM" not in md.read_text()


def test_save_figure_labels_phantom(run, tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = report.save_figure(fig, "A.fig11", source="phantom")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(report.PHANTOM_LABEL in t.get_text() for t in fig.texts)
    assert report.read_sidecar("A.fig11", profile="smoke", reports_root=tmp_path)["phantom"]
    plt.close(fig)


def test_unknown_id_is_an_error(run):
    with pytest.raises(manifest.UnknownArtifactError, match="A.fig99.*did you mean"):
        report.save_table(pd.DataFrame({"a": [1]}), "A.fig99", source="phantom")


def test_kind_mismatch_and_empty_table_are_errors(run):
    with pytest.raises(ValueError, match="figure in the manifest, not a table"):
        report.save_table(pd.DataFrame({"a": [1]}), "A.fig11", source="phantom")
    with pytest.raises(ValueError, match="empty table"):
        report.save_table(pd.DataFrame({"a": []}), "A.table2", source="phantom")


def test_missing_artifacts_lists_what_is_absent(run, tmp_path):
    expected = {a.id for a in manifest.for_notebook("03_lstm_cnn_mri")}
    assert set(report.missing_artifacts(["03_lstm_cnn_mri"], profile="smoke",
                                        reports_root=tmp_path)) == expected
    report.save_table(pd.DataFrame({"a": [1]}), "A.table2", source="phantom")
    missing = report.missing_artifacts(["03_lstm_cnn_mri"], profile="smoke", reports_root=tmp_path)
    assert "A.table2" not in missing and len(missing) == len(expected) - 1


def test_failed_write_leaves_previous_file(run):
    df = pd.DataFrame({"a": [1]})
    csv = report.save_table(df, "A.table2", source="phantom")
    before = csv.read_bytes()

    class Boom(pd.DataFrame):
        def to_markdown(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        report.save_table(Boom({"a": [2]}), "A.table2", source="phantom")
    assert csv.read_bytes() == before
    assert not list(csv.parent.glob(".*.tmp"))


def test_save_without_run_explains():
    report._current = None
    with pytest.raises(RuntimeError, match="start_run"):
        report.save_table(pd.DataFrame({"a": [1]}), "A.table2", source="phantom")


def test_record_metric_replaces_and_reads_back(run, tmp_path):
    report.record_metric("A", "test accuracy", 0.5, source="phantom", artifact="A.table2",
                         ci=(0.4, 0.6), n=10)
    report.record_metric("A", "test accuracy", 0.75, source="phantom", artifact="A.table2")
    report.record_metric("A", "test macro-F1", 0.7, source="phantom", artifact="A.table2")
    rows = report.read_metrics(profile="smoke", reports_root=tmp_path)
    assert [(r["metric"], r["value"]) for r in rows] == [("test accuracy", 0.75),
                                                        ("test macro-F1", 0.7)]
    assert rows[0]["ci_low"] is None and rows[0]["phantom"] and rows[0]["seed"] == 7
    with pytest.raises(manifest.UnknownArtifactError):
        report.record_metric("A", "x", 1.0, source="phantom", artifact="A.nope")


def test_record_metric_keeps_one_record_per_seed_and_one_data_source(run, tmp_path):
    def record(value, seed, source="brain_tumor_sartaj", **kw):
        report.record_metric("E", "test accuracy", value, source=source, artifact="E.table1",
                             seed=seed, reports_root=tmp_path, profile="smoke", **kw)

    record(0.80, 42)
    record(0.82, 1, deviations=["a changed batch"])
    record(0.81, 42)  # a re-run of seed 42 replaces its record only
    rows = report.read_metrics(profile="smoke", reports_root=tmp_path)
    assert [(r["seed"], r["value"]) for r in rows] == [(1, 0.82), (42, 0.81)]
    assert rows[0]["deviations"] == ["a changed batch"] and rows[1]["deviations"] == []
    record(0.5, 42, source="phantom")  # other data: the band never mixes datasets
    rows = report.read_metrics(profile="smoke", reports_root=tmp_path)
    assert [(r["seed"], r["data_source"]) for r in rows] == [(42, "phantom")]


def test_run_deviations_enter_every_record(tmp_path):
    report.start_run("03_lstm_cnn_mri", profile="smoke", seed=3, reports_root=tmp_path,
                     deviations=["a changed batch: x 2 replicas"])
    report.record_metric("E", "test accuracy", 0.9, source="phantom", artifact="E.table1",
                         deviations=["ImageNet weights unavailable"])
    (row,) = report.read_metrics(profile="smoke", reports_root=tmp_path)
    assert row["deviations"] == ["a changed batch: x 2 replicas", "ImageNet weights unavailable"]


def test_combined_sources_keep_the_phantom_label():
    assert report.combine_sources(["phantom", "brain_tumor_sartaj", None]) == (
        "brain_tumor_sartaj+phantom")
    assert report.is_phantom("brain_tumor_sartaj+phantom")
    assert not report.is_phantom(report.combine_sources(["brain_tumor_sartaj", "rsna_ich"]))
    assert report.combine_sources([]) == "none"


def test_disk_checks_use_the_reports_root_not_the_last_run(run, tmp_path, monkeypatch):
    report.save_table(pd.DataFrame({"a": [1]}), "A.table2", source="phantom")
    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "elsewhere"))
    assert "A.table2" in report.missing_artifacts(["03_lstm_cnn_mri"], profile="smoke")
    assert "A.table2" not in report.missing_artifacts(["03_lstm_cnn_mri"], profile="smoke",
                                                      reports_root=tmp_path)
