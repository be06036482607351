"""medrepro.core.device: platform detection, GPU listing, the precision choice, provenance."""

from __future__ import annotations

import json
import stat

import pytest
from medrepro.core import device, profiles
from medrepro.reporting import report
from medrepro.core.device import Gpu

T4 = Gpu("Tesla T4", 15360, (7, 5))
P100 = Gpu("Tesla P100-PCIE-16GB", 16384, (6, 0))
A100 = Gpu("NVIDIA A100-SXM4-40GB", 40960, (8, 0))


@pytest.mark.parametrize("env, expected", [
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
    ({"COLAB_RELEASE_TAG": "release-colab_20260101-060000_RC00"}, "colab"),
    ({"COLAB_GPU": "1"}, "colab"),
    ({}, "local"),
])
def test_detect_platform(env, expected):
    assert device.detect_platform(env) == expected


@pytest.mark.parametrize("gpus, policy", [
    ([T4, T4], "mixed_float16"), ([A100], "mixed_float16"), ([P100], "float32"),
    ([T4, P100], "float32"), ([], "float32"), ([Gpu("x", None, None)], "float32"),
])
def test_mixed_precision_only_at_compute_capability_7(gpus, policy):
    assert device.choose_precision(gpus) == policy


def test_parse_nvidia_smi_lines():
    assert device.parse_nvidia_smi_line("Tesla T4, 15360, 7.5") == T4
    assert device.parse_nvidia_smi_line("NVIDIA H100 80GB HBM3, 81559, 9.0").capability == (9, 0)
    odd = device.parse_nvidia_smi_line("Some GPU, [N/A], [N/A]")
    assert odd.name == "Some GPU" and odd.memory_mib is None and odd.capability is None


def test_list_gpus_reads_nvidia_smi_and_honours_cuda_visible_devices(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'Tesla T4, 15360, 7.5'\necho 'Tesla P100-PCIE-16GB, 16384, 6.0'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device.list_gpus() == [T4, P100]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert device.list_gpus() == [T4]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert device.list_gpus() == []


def test_describe_groups_identical_gpus():
    assert device.describe([T4, T4]) == "2 x Tesla T4, 15 GiB, compute capability 7.5"
    assert device.describe([]).startswith("CPU only")


def test_configure_precision_sets_keras_policy_and_sidecars_record_it(tmp_path, monkeypatch):
    import keras

    try:
        assert device.configure_precision(gpus=[P100]) == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
        report.start_run("01_download", profile="smoke", seed=3, reports_root=tmp_path)
        import matplotlib.pyplot as plt

        fig, _ = plt.subplots()
        png = report.save_figure(fig, "A.fig2", source="phantom")
        meta = json.loads(png.with_suffix(".json").read_text())
        assert meta["device"]["dtype_policy"] == "float32"
        assert meta["device"]["platform"] in ("local", "kaggle", "colab")
        assert meta["device"]["replicas"] == 1
        assert not plt.fignum_exists(fig.number)  # closed after saving
        assert device.configure_precision(force="mixed_float16") == "mixed_float16"
        assert device.summary(gpus=[])["dtype_policy"] == "mixed_float16"
    finally:
        device.configure_precision(force="float32")


def test_single_device_path_unchanged_and_the_replicas_a_strategy_would_use(monkeypatch):
    monkeypatch.delenv(device.MIRROR_CPUS_ENV, raising=False)
    monkeypatch.delenv(device.MIRROR_ENV, raising=False)
    monkeypatch.setattr(device, "_gpu_cache", [T4])
    assert device.available_replicas() == 1 and device.activate_strategy() == 1
    monkeypatch.setattr(device, "_gpu_cache", [T4, T4])
    assert device.available_replicas() == 2
    monkeypatch.setenv(device.MIRROR_ENV, "0")  # opted out: one device, TF not touched
    assert device.available_replicas() == 1 and device.activate_strategy() == 1
    monkeypatch.delenv(device.MIRROR_ENV)
    monkeypatch.setenv(device.MIRROR_CPUS_ENV, "3")  # tests: logical CPU devices
    assert device.available_replicas() == 3


def test_batches_are_global_split_over_the_replicas_unless_they_do_not_divide():
    a = profiles.settings("A", "paper")
    assert profiles.settings("A", "paper", replicas=2) == a  # the paper's batch stays global
    doubled = profiles.settings("A", "paper", replicas=2, batch_per_replica=True)
    assert doubled.batch == 2 * a.batch == 64 and doubled.epochs == a.epochs  # only batches
    rows = profiles.notebook_settings("03_lstm_cnn_mri", "paper").values()
    two = profiles.choose_batching(rows, 2)
    assert (two.replicas, two.reason) == (2, "")
    assert two.describe(32) == "32 (global; 16 per replica × 2 replicas)"
    d = profiles.notebook_settings("05_3dcnn_mosmed", "paper")
    three = profiles.choose_batching(d.values(), 3)
    assert three.replicas == 1 and "batch 4 does not divide over 3 replicas" in three.reason
    assert three.record(d) == {"rule": profiles.GLOBAL_RULE, "replicas": 1,
                               "available_replicas": 3, "reason": three.reason,
                               "global": {"D.batch": 4}, "per_replica": {"D.batch": 4}}
    option = profiles.choose_batching(d.values(), 3, per_replica_option=True)
    assert option.replicas == 3 and "not the paper's" in option.describe(12)
    assert profiles.batch_per_replica_option({profiles.BATCH_PER_REPLICA_ENV: "1"})
    assert not profiles.batch_per_replica_option({})
    table = profiles.table("D", replicas=2)
    assert table.loc[("05_3dcnn_mosmed", "D", "batch"), "paper"] == "4 (2 per replica × 2)"
    with pytest.raises(ValueError, match="replicas must be >= 1"):
        profiles.settings("D", "smoke", replicas=0)
    with pytest.raises(ValueError, match="available replicas must be >= 1"):
        profiles.choose_batching(d.values(), 0)


def test_precision_and_strategy_on_cpu():
    import keras

    try:
        assert device.configure_precision() == "float32"  # no GPU here
        assert keras.mixed_precision.global_policy().name == "float32"
        assert device.configure_precision(force="mixed_float16") == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert device.distribution_strategy().num_replicas_in_sync == 1
