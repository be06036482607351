"""benchmarks/gpu_check.py: refuses clearly without a GPU; the CPU dry run exercises every path."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def test_without_a_gpu_it_exits_non_zero_with_the_reason(tmp_path):
    if _has_gpu():
        pytest.skip("this machine has a GPU: the refusal path does not apply")
    out = tmp_path / "benchmarks.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert "gpu_check: no GPU visible to TensorFlow" in proc.stderr
    assert "--cpu-dry-run" in proc.stderr
    assert not out.exists()


def test_projection_arithmetic():
    gc = _module()
    names = [m["name"] for m in gc.model_specs(gc.DRY_SIZES)]
    rates = {n: {"train_img_s": 10.0, "infer_img_s": 20.0} for n in names}
    by_nb = {p["notebook"]: p["minutes"] for p in gc.projections(rates)}
    d_epochs = 5 + 10 + 15 + 25 + 5 + 25  # the paper profile's six scenarios
    want_d = d_epochs * (gc.MOSMED_VOLUMES * 0.7 / 10 + gc.MOSMED_VOLUMES * 0.2 / 20) / 60
    assert by_nb["05_3dcnn_mosmed"] == pytest.approx(want_d)
    per_b_run = 9 * (gc.RSNA_TRAIN / 10 + gc.RSNA_VAL / 20) / 60
    assert by_nb["04_lightweight_ct"] == pytest.approx(9 * per_b_run)  # 1 + 4 + 4 runs
    assert by_nb["03_lstm_cnn_mri"] > 0


def test_cpu_dry_run_measures_models_and_the_pipeline_and_keeps_other_results(tmp_path):
    """Two studies' models (the code path is the same for all; the full dry run takes ~1.5 min
    on 2 cores, most of it DenseNet121 and ResNet50 run eagerly) and the RSNA pipeline."""
    out = tmp_path / "benchmarks.json"
    out.write_text(json.dumps({"benchmarks": {"kept": 1}}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-dry-run", "--steps", "1",
                           "--only", "C", "D", "--out", str(out)], capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["benchmarks"] == {"kept": 1} and "gpu_check" not in data
    res = data["gpu_check_dry_run"]
    assert res["mode"] == "cpu-dry-run" and res["dtype_policy"] == "float32"
    assert [m["model"] for m in res["models"]] == ["C.seq_cnn", "D.cnn3d"]
    for m in res["models"]:
        assert m["infer_img_s"] > 0 and m["train_img_s"] > 0 and m["params"] > 0
        assert m["xla"] is False  # the dry run runs eagerly
    assert res["models"][1]["params"] == 214_817  # the paper's 3D CNN, at the dry-run input
    assert res["pipeline"]["read_img_s"] > 0 and res["pipeline"]["source"] == "phantom"
    assert res["pipeline"]["cache_images"] > 0
    assert "projected_paper_runs" not in res  # needs every model: only without --only


def test_every_study_has_a_paper_model():
    gc = _module()
    specs = gc.model_specs(gc.PAPER_SIZES)
    assert {s["study"] for s in specs} == set("ABCDE")
    names = [s["name"] for s in specs]
    assert {"B.proposed.b32", "B.proposed.b8", "B.densenet121.b8", "B.mobilenet.b8",
            "B.inception_v1.b8"} <= set(names)
    assert next(s for s in specs if s["name"] == "D.cnn3d")["shape"] == (128, 128, 64, 1)
    assert next(s for s in specs if s["name"] == "A.lstm_head")["shape"] == (1, 100_352)
