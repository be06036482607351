"""medrepro.run.resume: a paper run over two Kaggle sessions, the second seeing the first's
output only as a read-only input, ends as one uninterrupted run."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from medrepro.core import paths
from medrepro.run import resume
from medrepro.training import train
from test_train import _lr_cut_epoch, _resume_job

NOTEBOOK, RUN = "03_lstm_cnn_mri", "paper-brain_tumor_sartaj-seed7"
JOB = Path(__file__).with_name("resume_job.py")


def _digest(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(tree.rglob("*")) if p.is_file()}


def _read_only(tree: Path) -> None:
    for p in [tree, *tree.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted session: the in-progress model trained to its end, and a finished one."""
    job = _resume_job()
    runs = tmp_path_factory.mktemp("reference")
    model, history = job.run(runs / "A_lstm")
    return job, runs, model, history


def test_second_session_continues_from_the_first_sessions_attached_output(
        reference, tmp_path, monkeypatch):
    job, ref_runs, ref_model, ref = reference
    # session 1 (its /kaggle/working): one model finished with fit_once, one SIGKILLed when the
    # session ended, just after a learning-rate cut
    working1 = tmp_path / "session1" / "kaggle" / "working" / "medrepro"
    runs1 = working1 / "data" / "runs" / NOTEBOOK / RUN
    finished = job.model()
    fin_history = train.fit_once(finished, *job.data(), train.FitConfig(epochs=3, seed=job.SEED),
                                 run_dir=runs1 / "A_standard", identity={"kind": "standard"}, verbose=0)
    epoch = _lr_cut_epoch(ref)
    proc = subprocess.run([sys.executable, str(JOB), str(runs1 / "A_lstm"), "end", str(epoch)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # session 2: a fresh machine; session 1's saved output attached read-only
    attached = tmp_path / "kaggle" / "input" / "notebooks" / "someone" / "medrepro-paper"
    attached.parent.mkdir(parents=True)
    (tmp_path / "session1" / "kaggle" / "working").rename(attached)
    _read_only(attached)
    before = _digest(attached)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "kaggle" / "input"))
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "session2" / "working" / "data"))
    monkeypatch.delenv(resume.RESUME_ENV, raising=False)
    monkeypatch.delenv("MEDREPRO_STATE", raising=False)

    seeded = resume.seed_from_earlier(NOTEBOOK, profile="paper", seed=7)
    assert {s.model.rsplit("/", 1)[1]: s.state for s in seeded} == {
        "A_lstm": f"in progress (epoch {epoch - 1} done)", "A_standard": "finished (3 epochs)"}
    runs2 = paths.runs_dir(NOTEBOOK, profile="paper", source="brain_tumor_sartaj", seed=7)
    assert runs2.is_relative_to(tmp_path / "session2")
    # the finished model is not trained again
    again = job.model()
    reused = train.fit_once(again, *job.data(), train.FitConfig(epochs=3, seed=job.SEED),
                            run_dir=runs2 / "A_standard", identity={"kind": "standard"}, verbose=0)
    assert reused.attrs["reused"] is True
    pd.testing.assert_frame_equal(reused, fin_history)
    for got, want in zip(again.get_weights(), finished.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    # the interrupted one continues and ends as the uninterrupted run
    model, history = job.run(runs2 / "A_lstm")
    columns = [c for c in ref.columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(history[columns], ref[columns], check_exact=False, atol=1e-6,
                                  rtol=0)
    for got, want in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    best, ref_best = (keras.models.load_model(d / "best.keras")
                      for d in (runs2 / "A_lstm", ref_runs / "A_lstm"))
    for got, want in zip(best.get_weights(), ref_best.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert _digest(attached) == before  # the earlier output was only read
    # a third session finds nothing further on in that output: nothing is copied again
    assert resume.seed_from_earlier(NOTEBOOK, profile="paper", seed=7) == []


def test_an_option_names_the_earlier_output_and_a_missing_one_is_an_error(tmp_path, monkeypatch):
    earlier = tmp_path / "drive" / "medrepro-state"
    done = earlier / "runs" / NOTEBOOK / RUN / "A_lstm"
    done.mkdir(parents=True)
    (done / train.DONE_MARKER).write_text('{"epochs_run": 4}')
    (earlier / "runs" / NOTEBOOK / "demo-phantom-seed7" / "A_lstm").mkdir(parents=True)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv(resume.RESUME_ENV, str(earlier))
    seeded = resume.seed_from_earlier(NOTEBOOK, profile="paper", seed=7)
    assert [s.model for s in seeded] == [f"{NOTEBOOK}/{RUN}/A_lstm"]  # not the demo run
    assert (paths.runs_root() / NOTEBOOK / RUN / "A_lstm" / train.DONE_MARKER).is_file()
    monkeypatch.setenv(resume.RESUME_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(resume.ResumeError, match="MEDREPRO_RESUME_FROM=.*nowhere: no such folder"):
        resume.seed_from_earlier(NOTEBOOK, profile="paper", seed=7)


def test_without_an_option_nothing_is_looked_for_off_kaggle(monkeypatch):
    monkeypatch.delenv(resume.RESUME_ENV, raising=False)
    for var in ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE"):
        monkeypatch.delenv(var, raising=False)
    assert resume.search_bases() == []


def test_the_state_dir_holds_runs_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREPRO_STATE", str(tmp_path / "drive"))
    monkeypatch.delenv("MEDREPRO_REPORTS", raising=False)
    assert paths.runs_dir(NOTEBOOK, profile="paper", source="x", seed=1).is_relative_to(
        tmp_path / "drive" / "runs")
    assert paths.reports_root() == (tmp_path / "drive" / "reports").resolve()
