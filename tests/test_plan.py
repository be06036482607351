"""medrepro.run.plan: what a run will find, write and take, refused before anything is written."""

from __future__ import annotations

import json
import os
from collections import namedtuple
from pathlib import Path

import pytest
from medrepro.core import device, paths
from medrepro.run import plan, runner
from medrepro.data import registry, rsna

CPU = {"kind": "cpu", "name": "x86_64", "count": 0, "memory_mib": 0, "cpus": 2,
       "description": "CPU only (2 cores), no GPU"}
GPU = {"kind": "gpu", "name": "Tesla T4", "count": 2, "memory_mib": 15360, "cpus": 4,
       "description": "2x Tesla T4 (15360 MiB), 4 CPUs"}
Usage = namedtuple("Usage", "total used free")


@pytest.fixture()
def empty_data(tmp_path, monkeypatch) -> Path:
    """A fresh data folder, no cache override, no confirmation in the environment."""
    data = tmp_path / "data"
    monkeypatch.setenv("MEDREPRO_DATA", str(data))
    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "reports"))
    monkeypatch.delenv("MEDREPRO_CACHE_DIR", raising=False)
    monkeypatch.delenv("MEDREPRO_YES", raising=False)
    return data


def _free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(plan.shutil, "disk_usage", lambda p: Usage(free * 2, free, free))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_smoke_plan_lists_data_writes_and_fits_without_writing_anything(empty_data):
    p = plan.make_plan(profile="smoke", data="phantom", only=["02", "04"], device=CPU,
                       rates={"machines": {}})
    assert [nb.name for nb in p.notebooks] == ["02_preprocess_rsna", "04_lightweight_ct"]
    nb02 = p.notebooks[0]
    assert nb02.datasets[0].source == "phantom" and nb02.datasets[0].files == 96
    what = [w.what for w in nb02.writes]
    assert what[0].startswith("rsna_ich phantom (96 files)")
    assert what[1].startswith("RSNA cache, compact, 92 images")  # 96 x the selected fraction
    assert nb02.writes[1].path.parent == empty_data / "processed" / "rsna_ich"
    # the phantom 02 writes is not counted again for 04
    assert not any("phantom" in w.what for w in p.notebooks[1].writes)
    assert p.problems == [] and len(p.disks) == 1
    plan.check(p)  # smoke on a CPU needs no confirmation
    text = plan.format_plan(p)
    assert "no measured rates for cpu:2" in text and "/kaggle/working persistent" in text
    assert "/kaggle/tmp scratch" in text and "/content scratch" in text
    assert _files(empty_data) == []


def test_paper_phantom_is_refused_with_what_is_missing_and_the_options(empty_data, monkeypatch):
    _free(monkeypatch, 50 * 10**9)
    p = plan.make_plan(profile="paper", data="phantom", only=["02"], device=GPU,
                       rates={"machines": {}})
    phantom = p.notebooks[0].writes[0]
    assert phantom.what.startswith("rsna_ich phantom (720,733 files)")
    assert phantom.bytes > 350 * 10**9
    with pytest.raises(plan.PlanError, match=r"GB missing") as info:
        plan.check(p)
    msg = str(info.value)
    assert "50.0 GB free" in msg and "--cache-dir" in msg and "--only" in msg
    assert "--data kaggle or --data PATH with the real RSNA set" in msg
    assert _files(empty_data) == []


def test_a_data_folder_without_rsna_falls_back_to_the_phantom_in_the_plan(empty_data, tmp_path):
    (tmp_path / "datasets" / "other").mkdir(parents=True)
    found = plan.survey_dataset("rsna_ich", data=str(tmp_path / "datasets"), profile="paper")
    assert found.source == "phantom" and found.files == 720_733
    assert "its phantom is used" in found.note and "to generate" in found.note


def test_real_folder_and_kaggle_input_are_counted_not_read(empty_data, tmp_path, monkeypatch):
    root = tmp_path / "in" / "rsna-intracranial-hemorrhage-detection"  # Kaggle's folder name
    (root / rsna.IMAGES_DIR).mkdir(parents=True)
    (root / registry.RSNA_LABELS_CSV).write_text("ID,Label\n")
    for i in range(5):
        (root / rsna.IMAGES_DIR / f"ID_{i}.dcm").write_bytes(b"x" * 1000)
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "in"))
    found = plan.survey_dataset("rsna_ich", data="kaggle", profile="paper")
    assert (found.source, found.files, found.bytes) == ("real", 5, 5000)
    assert found.root == root.resolve()
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "nowhere"))
    down = plan.survey_dataset("rsna_ich", data="kaggle", profile="paper")
    assert down.source == "download" and down.files == registry.RSNA_ALL_IMAGES
    p = plan.make_plan(profile="smoke", data="kaggle", only=["02"], device=CPU,
                       rates={"machines": {}})
    assert "estimate" in p.notebooks[0].writes[0].what and not p.notebooks[0].writes[0].checked
    assert p.problems == []  # the download's size is shown, the disk check is kagglehub's
    mri = plan.survey_dataset("brain_tumor_sartaj", data=str(tmp_path / "in"), profile="smoke")
    assert mri.source == "phantom"


def test_paper_without_a_gpu_needs_confirmation(empty_data, monkeypatch):
    _free(monkeypatch, 10**15)
    p = plan.make_plan(profile="paper", data="phantom", only=["06"], device=CPU,
                       rates={"machines": {}})
    assert "without a GPU" in p.warnings[0]
    with pytest.raises(plan.PlanError, match="--yes or MEDREPRO_YES=1"):
        plan.check(p)
    plan.check(p, yes=True)
    monkeypatch.setenv("MEDREPRO_YES", "1")
    plan.check(p)
    on_gpu = plan.make_plan(profile="paper", data="phantom", only=["06"], device=GPU,
                            rates={"machines": {}})
    assert on_gpu.warnings == []
    plan.check(on_gpu, yes=False)


def test_projection_from_measured_rates_and_complete_cache_skipped(empty_data, monkeypatch):
    rates = {"machines": {"cpu:2": {"cache": {
        "compact_bytes_per_image": 30_000, "compact_build_img_s_per_worker": 46.0,
        "build_efficiency": 1.0, "cpus": 2}}}}
    p = plan.make_plan(profile="smoke", data="phantom", only=["02"], device=CPU, rates=rates)
    nb = p.notebooks[0]
    assert nb.seconds == pytest.approx(92 / (46.0 * 2))  # smoke: 2 workers
    assert nb.writes[1].bytes == 92 * 30_000 and "measured on this machine" in p.rates_note
    cache = nb.writes[1].path
    cache.mkdir(parents=True)
    (cache / "summary.json").write_text("{}")
    again = plan.make_plan(profile="smoke", data="phantom", only=["02"], device=CPU,
                           rates=rates).notebooks[0]
    assert again.writes[1].done and any("RSNA cache complete" in d for d in again.done)


def test_cache_dir_moves_the_caches(empty_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREPRO_CACHE_DIR", str(tmp_path / "scratch"))
    p = plan.make_plan(profile="smoke", data="phantom", only=["02"], device=CPU,
                       rates={"machines": {}})
    assert p.notebooks[0].writes[1].path.parent == (tmp_path / "scratch" / "rsna_ich").resolve()
    assert paths.processed_dir("mosmed") == (tmp_path / "scratch" / "mosmed").resolve()


def test_record_and_read_rates(tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "rates_path", lambda: tmp_path / "rates.json")
    plan.record_rates("cache", {"compact_read_img_s": 1234.0}, device=CPU)
    plan.record_rates("train", {"models": []}, device=CPU)
    stored = json.loads((tmp_path / "rates.json").read_text())
    entry = stored["machines"]["cpu:2"]
    assert entry["cache"]["compact_read_img_s"] == 1234.0 and "train" in entry
    assert entry["description"] == CPU["description"] and entry["cache"]["date_utc"]
    rates, note = plan.rates_for({**CPU, "cpus": 16})
    assert rates["cache"]["compact_read_img_s"] == 1234.0 and "cpu:2" in note
    assert plan.rates_for(GPU) == (
        {}, "no measured rates for gpu:Tesla T4 (run ./run_all.sh --bench on it)")


def test_the_device_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    dev = device.machine()
    assert dev["kind"] == "cpu" and dev["cpus"] >= 1 and plan.machine_key(dev).startswith("cpu:")


def test_runner_prints_the_plan_and_refuses_before_writing(empty_data, tmp_path, monkeypatch,
                                                           capsys):
    assert runner.main(["--plan", "--profile", "smoke", "--only", "02"]) == 0
    out = capsys.readouterr().out
    assert "medrepro plan: profile smoke" in out and "02_preprocess_rsna" in out
    _free(monkeypatch, 10**6)
    assert runner.main(["--profile", "smoke", "--only", "02"]) == 2
    assert "GB missing" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists() and _files(empty_data) == []
    assert runner.main(["--plan", "--profile", "smoke", "--only", "02"]) == 1


def test_the_device_has_the_gpus_of_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'Tesla T4, 15360, 7.5'\necho 'Tesla T4, 15360, 7.5'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    dev = device.machine()
    assert (dev["kind"], dev["name"], dev["count"], dev["memory_mib"]) == ("gpu", "Tesla T4", 2,
                                                                          15360)
    assert plan.machine_key(dev) == "gpu:Tesla T4"


def test_every_profile_row_plans_its_own_writes(empty_data):
    from medrepro.core import profiles

    assert set(plan.row_planners()) == set(profiles.PROFILES)
    p = plan.make_plan(profile="paper", data="phantom", only=["03", "05", "06"], device=GPU,
                       rates={"machines": {}})
    nb03, nb05, nb06 = p.notebooks
    assert [w.what for w in nb03.writes if "checkpoints" in w.what] == [
        "study A checkpoints (LSTM head + ResNet50)"]
    assert all(f"study {s}" in nb03.time_note for s in "ACE") and nb03.seconds is None
    assert nb05.writes[-1].what == "MosMed volume cache (200 x 128x128x64 float32)"
    assert nb05.writes[-1].bytes == 200 * 128 * 128 * 64 * 4
    assert (nb06.seconds, nb06.writes) == (10.0, [])
    smoke = plan.make_plan(profile="smoke", data="phantom", only=["03"], device=CPU,
                           rates={"machines": {}})
    assert not any("checkpoints" in w.what for w in smoke.notebooks[0].writes)  # in memory
    assert _files(empty_data) == []
