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
    assert "/kaggle/temp scratch" in text and "/content scratch" in text
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


def test_a_fast_dev_run_of_the_paper_profile_plans_a_few_items(empty_data, monkeypatch):
    """The same disk that refuses the paper phantom takes its dev run: every row's counts capped."""
    from medrepro.core import devrun, profiles

    _free(monkeypatch, 50 * 10**9)
    monkeypatch.setenv(devrun.ENV, "1")
    p = plan.make_plan(profile="paper", data="phantom", device=GPU, rates={"machines": {}})
    writes = [w.what for nb in p.notebooks for w in nb.writes]
    assert f"rsna_ich phantom ({devrun.CAPS['phantoms']['rsna_images']} files)" in " ".join(writes)
    assert p.problems == [] and sum(w.bytes for nb in p.notebooks for w in nb.writes) < 20 * 10**9
    plan.check(p)
    b, d = profiles.settings("B", "paper"), profiles.settings("D", "paper")
    assert (b.max_train, b.image_size, b.batch_compare) == (devrun.CAPS["B"]["max_train"], 224, 8)
    assert d.max_per_class == devrun.CAPS["D"]["max_per_class"] and d.volume_shape == (128, 128, 64)
    monkeypatch.delenv(devrun.ENV)
    assert profiles.settings("B", "paper").max_train is None  # outside a dev run: the profile's
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
    for var in ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "KAGGLEHUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    _free(monkeypatch, 100 * 10**9)  # Colab's disk
    p = plan.make_plan(profile="smoke", data="kaggle", only=["02"], device=CPU,
                       rates={"machines": {}})
    archive, extracted = p.notebooks[0].writes[:2]
    assert "kagglehub download, archive" in archive.what and "estimate" in archive.what
    assert archive.checked and extracted.checked and archive.bytes == extracted.bytes == down.bytes
    assert extracted.path == tmp_path / "kagglehub" / "competitions" / \
        "rsna-intracranial-hemorrhage-detection"
    assert p.disks[0].needed >= 2 * down.bytes  # both, on the disk they land on
    with pytest.raises(plan.PlanError, match="not starting: the writes need 8.* GB missing"):
        plan.check(p)
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


def test_an_unreadable_data_source_is_refused_before_anything_is_written(empty_data, tmp_path):
    (tmp_path / "empty").mkdir()
    the_plan = plan.make_plan(profile="smoke", data=str(tmp_path / "empty"), only=["01"],
                              device=CPU)
    with pytest.raises(plan.PlanError, match=r"not starting: data source .*empty.* is an empty "
                                             r"folder"):
        plan.check(the_plan)
    assert _files(empty_data) == []
    assert plan.make_plan(profile="smoke", data="phantom", only=["01"],
                          device=CPU).source_problem == ""


# ---------------------------------------------------------------------------- platform limits

@pytest.fixture()
def kaggle(tmp_path, monkeypatch) -> Path:
    """A Kaggle notebook: the checkout in /kaggle/working, RSNA attached (five files)."""
    root = tmp_path / "kaggle"
    monkeypatch.setenv("MEDREPRO_KAGGLE_ROOT", str(root))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("MEDREPRO_DATA", str(root / "working" / "medrepro" / "data"))
    monkeypatch.setenv("MEDREPRO_REPORTS", str(root / "working" / "medrepro" / "reports"))
    for var in ("MEDREPRO_CACHE_DIR", "MEDREPRO_STATE", "MEDREPRO_YES", "DISABLE_KAGGLE_CACHE"):
        monkeypatch.delenv(var, raising=False)
    rsna_root = root / "input" / "competitions" / "rsna-intracranial-hemorrhage-detection" / \
        "rsna-intracranial-hemorrhage-detection"
    (rsna_root / rsna.IMAGES_DIR).mkdir(parents=True)
    (rsna_root / registry.RSNA_LABELS_CSV).write_text("ID,Label\n")
    for i in range(5):
        (rsna_root / rsna.IMAGES_DIR / f"ID_{i}.dcm").write_bytes(b"x" * 525_000)
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(root / "input"))
    (root / "working").mkdir(parents=True)
    _free(monkeypatch, 60 * 10**9)  # what df shows on Kaggle: more than the output keeps
    return root


def _compact(n_bytes: int) -> dict:
    return {"machines": {"gpu:Tesla T4": {"cache": {"compact_bytes_per_image": n_bytes}}}}


def test_on_kaggle_caches_go_to_scratch_and_the_output_cap_refuses_before_writing(
        kaggle, monkeypatch):
    p = plan.make_plan(profile="paper", data="kaggle", only=["02"], device=GPU,
                       rates=_compact(5 * 10**9))  # 5 images x 0.957 -> 5 x 5 GB: 25 GB
    cache = p.notebooks[0].writes[0]
    assert cache.what.startswith("RSNA cache") and cache.path.is_relative_to(kaggle / "temp")
    assert p.problems == []  # scratch: not in the 20 GB of /kaggle/working
    assert "/kaggle/temp scratch" in plan.format_plan(p)
    monkeypatch.setenv("MEDREPRO_CACHE_DIR", str(kaggle / "working" / "cache"))
    p = plan.make_plan(profile="paper", data="kaggle", only=["02"], device=GPU,
                       rates=_compact(5 * 10**9))
    assert len(p.disks) == 1 and not p.disks[0].missing  # df says it fits ...
    with pytest.raises(plan.PlanError, match=r"working would hold 25\.0 GB .*over the 20\.0 GB "
                                             r"Kaggle saves .*keep caches on scratch"):
        plan.check(p)  # ... Kaggle would not keep it
    assert not (kaggle / "working" / "cache").exists()


def test_on_kaggle_what_is_in_working_already_counts(kaggle):
    (kaggle / "working" / "old-output.bin").write_bytes(b"\0" * 1000)
    p = plan.make_plan(profile="smoke", data="kaggle", only=["02"], device=GPU,
                       rates={"machines": {}})
    assert plan.kaggle_output_problems(p) == []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan, "KAGGLE_OUTPUT_CAP_BYTES", 999)
        assert "1.0 kB there now" in plan.kaggle_output_problems(p)[0]


def test_inside_kaggle_a_kagglehub_attachment_is_mounted_not_downloaded(kaggle, monkeypatch):
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(kaggle / "nothing-attached"))
    p = plan.make_plan(profile="paper", data="kaggle", only=["02"], device=GPU,
                       rates=_compact(30_000))
    attach = p.notebooks[0].writes[0]
    assert "mounted by Kaggle, no disk" in attach.what and attach.bytes == 0
    monkeypatch.setenv("DISABLE_KAGGLE_CACHE", "1")  # kagglehub then downloads over HTTP
    p = plan.make_plan(profile="paper", data="kaggle", only=["02"], device=GPU,
                       rates=_compact(30_000))
    assert p.notebooks[0].writes[0].bytes > 300 * 10**9 and p.problems


def test_mosmed_release_archives_and_their_extraction_are_counted(empty_data, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv("MEDREPRO_KAGGLE_INPUT", str(tmp_path / "nowhere"))
    p = plan.make_plan(profile="smoke", data="kaggle", only=["05"], device=CPU,
                       rates={"machines": {}})
    archives, extracted = p.notebooks[0].writes[:2]
    assert archives.path == empty_data / "downloads" and extracted.path == empty_data / "raw" / \
        "mosmed"
    assert archives.bytes == extracted.bytes > 10**9 and archives.checked and extracted.checked


def _b_rates(train_img_s: float) -> dict:
    models = [{"model": m, "train_img_s": train_img_s, "infer_img_s": 10 * train_img_s}
              for m in ("proposed", "densenet121", "inception_v1", "mobilenet")]
    return {"machines": {"gpu:Tesla T4": {
        "train": {"models": models, "size": 224, "batch": 32, "precision": "mixed_float16"},
        "cache": {"compact_build_img_s_per_worker": 200.0, "build_efficiency": 1.0, "cpus": 4,
                  "compact_bytes_per_image": 30_000}}}}


def test_a_paper_run_is_split_into_sessions_and_weeks_of_gpu_quota(kaggle, monkeypatch):
    monkeypatch.setattr(plan, "_real", lambda d, root, sp: plan.DatasetFound(
        d, "real", root, registry.RSNA_ALL_IMAGES, 395 * 10**9))  # the whole competition
    p = plan.make_plan(profile="paper", data="kaggle", only=["02", "04"], device=GPU,
                       rates=_b_rates(100.0))
    nb02, nb04 = (nb.seconds for nb in p.notebooks)
    sessions = next(line for line in p.limit_lines if line.startswith("sessions of 12 h"))
    n04 = plan.sessions_needed(nb04, session_hours=12, per_session_s=nb02)
    assert n04 > 1 and f"04 {n04} (each later one first rebuilds the RSNA cache" in sessions
    assert "02 1" in sessions
    quota = next(line for line in p.limit_lines if line.startswith("GPU quota"))
    hours = (nb02 + nb04 + (n04 - 1) * nb02 + (1 + n04) * plan.SESSION_SETUP_S) / 3600
    assert f"{-(-hours // 30):.0f} week(s)" in quota
    assert "sessions of 12 h on Kaggle" in plan.format_plan(p)


def test_sessions_needed_counts_set_up_and_rebuilds():
    assert plan.sessions_needed(3600, session_hours=12) == 1
    first = 12 * 3600 - plan.SESSION_SETUP_S
    assert plan.sessions_needed(first + 1, session_hours=12, per_session_s=0) == 2
    assert plan.sessions_needed(first + 2 * (first - 600), session_hours=12,
                                per_session_s=600) == 3
    with pytest.raises(plan.PlanError, match="cannot hold"):
        plan.sessions_needed(10 * first, session_hours=12, per_session_s=first)


def test_on_colab_the_plan_states_ram_idle_timeout_and_drive(empty_data, tmp_path, monkeypatch):
    for var in ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MEDREPRO_KAGGLE_ROOT", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    p = plan.make_plan(profile="smoke", data="phantom", only=["06"], device=CPU,
                       rates={"machines": {}})
    text = plan.format_plan(p)
    assert "Colab's free tier has 12.7 GB" in text and "about 90 min" in text
    assert "sessions of 12 h on Kaggle" not in text and "colab (this machine)" in text


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
