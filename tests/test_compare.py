import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from medrepro.reporting import compare, plots, report, results
from medrepro.core import manifest


@pytest.fixture
def run(tmp_path):
    return report.start_run("03_lstm_cnn_mri", profile="smoke", seed=3, reports_root=tmp_path)


def _metric(study, metric, value, source="phantom", ci=(0.1, 0.9)):
    return {"study": study, "metric": metric, "value": value, "ci_low": ci[0], "ci_high": ci[1],
            "n": 10, "artifact": "A.table2", "notes": "", "data_source": source,
            "phantom": source == "phantom", "profile": "demo", "seed": 1,
            "git_commit": "abc123def4567", "date_utc": "2026-11-23T10:00:00+00:00"}


def test_compare_table_joins_reported_and_reproduced():
    head = manifest.HEADLINES[0]
    df = compare.compare_table([_metric(head["study"], head["metric"], 0.5),
                                _metric("A", "our extra metric", 0.25)])
    row = df[df["metric"] == head["metric"]].iloc[0]
    assert row["reported"] == head["reported"] and row["reproduced"] == 0.5
    assert row["difference"] == pytest.approx(0.5 - head["reported"])
    assert row["reported_in_ci"] is False  # 0.981 is outside (0.1, 0.9)
    extra = df[df["metric"] == "our extra metric"].iloc[0]
    assert pd.isna(extra["reported"]) and extra["reproduced"] == 0.25
    untouched = df[df["metric"] == manifest.HEADLINES[-1]["metric"]].iloc[0]
    assert pd.isna(untouched["reproduced"])
    assert len(df) == len(manifest.HEADLINES) + 1


def test_index_lists_missing_and_present(run, tmp_path):
    fig, _ = plt.subplots()
    report.save_figure(fig, "A.fig11", source="phantom")
    plt.close(fig)
    index = compare.artifact_index(profile="smoke", reports_root=tmp_path,
                                   notebooks=["03_lstm_cnn_mri"])
    assert index.set_index("id").loc["A.fig11", "status"] == "ok"
    assert (index["status"] == "missing").sum() == len(index) - 1
    html_path, md_path = compare.write_index(index, profile="smoke", reports_root=tmp_path)
    page = html_path.read_text()
    assert re.search(r"href=['\"]figures/A.fig11.png['\"]", page) and "PHANTOM" in page
    assert "| A.table2 |" in md_path.read_text() and "missing" in md_path.read_text()


def test_results_markdown_ignores_phantom_and_readme_update(tmp_path):
    head = manifest.HEADLINES[0]
    assert "No real-data run" in compare.results_markdown([_metric("A", head["metric"], 0.9)])
    md = compare.results_markdown([_metric("A", head["metric"], 0.9, source="brain_tumor_sartaj")])
    assert "brain_tumor_sartaj" in md and "0.900 (0.100–0.900)" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{compare.README_START}\nold\n{compare.README_END}\ntail\n")
    compare.update_readme(md, readme=readme)
    text = readme.read_text()
    assert "old" not in text and "0.900" in text and text.endswith("tail\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        compare.update_readme(md, readme=readme)


def test_gather_tables_and_plot(run, tmp_path):
    report.save_table(pd.DataFrame({"p_value": [0.5]}), "A.mcnemar", source="phantom")
    both = compare.gather_tables(["A.mcnemar", "B.mcnemar"], profile="smoke",
                                 reports_root=tmp_path)
    assert list(both["artifact"]) == ["A.mcnemar"] and both["p_value"].iloc[0] == 0.5
    assert compare.gather_tables(["B.mcnemar"], profile="smoke", reports_root=tmp_path) is None
    head = manifest.HEADLINES[0]
    fig = plots.plot_compare(compare.compare_table([_metric("A", head["metric"], 0.5)]))
    assert len(fig.axes[0].get_yticklabels()) == 1
    plt.close(fig)


def test_compare_table_paper_consistency_column():
    df = compare.compare_table([]).set_index(["study", "metric"])
    dn = df.loc[("B", "test accuracy (DenseNet121)"), "paper_consistency"]
    assert dn.startswith("CONTRADICTION") and "0.8816 vs 0.9131" in dn
    assert df.loc[("B", "test accuracy (MobileNet)"), "paper_consistency"].startswith("consistent")
    d5 = df.loc[("D", "validation accuracy (5 epochs, augmentation)"), "paper_consistency"]
    assert "57.50 vs 62.50" in d5
    assert df.loc[("C", "test accuracy (final trial)"), "paper_consistency"] == ""
    notes = compare.compare_notes()
    assert "0.8816 vs 0.9131" in notes and "contradict themselves in" in notes


def test_compare_table_leakage_columns_from_the_duplicate_free_metric():
    head = "test accuracy"
    free = _metric("E", head + results.DUPLICATE_FREE, 0.40, ci=(0.3, 0.5))
    free["dropped"] = 7
    df = compare.compare_table([_metric("E", head, 0.45), free])
    assert not df["metric"].str.endswith(results.DUPLICATE_FREE).any()  # no row of its own
    row = df[(df["study"] == "E") & (df["metric"] == head)].iloc[0]
    assert row["reproduced"] == 0.45 and row["duplicate_free"] == 0.40
    assert row["test_with_train_duplicate"] == 7
    assert (row["duplicate_free_ci_low"], row["duplicate_free_ci_high"]) == (0.3, 0.5)
    other = df[(df["study"] == "E") & (df["metric"] == "test macro-F1")].iloc[0]
    assert pd.isna(other["duplicate_free"])
    md = compare.results_markdown([{**m, "data_source": "brain_tumor_sartaj", "phantom": False}
                                   for m in (_metric("E", head, 0.45), free)])
    assert "0.400 (7 dropped)" in md


def test_record_metric_keeps_extra_fields(run, tmp_path):
    report.record_metric("A", "x" + results.DUPLICATE_FREE, 0.5, source="phantom",
                         artifact="A.splits", extra={"dropped": 3})
    rec = report.read_metrics(profile="smoke", reports_root=tmp_path)
    assert rec[0]["dropped"] == 3 and rec[0]["value"] == 0.5
    with pytest.raises(ValueError, match=r"extra fields \['value'\] would overwrite"):
        report.record_metric("A", "y", 0.5, source="phantom", artifact="A.splits",
                             extra={"value": 1.0})
