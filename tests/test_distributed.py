"""``medrepro.training.train.fit`` under ``tf.distribute.MirroredStrategy`` on two logical CPU devices.

Logical devices must be configured before TensorFlow initialises its runtime, which this
test session has usually done already: the training runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from medrepro.data import pipeline
    from medrepro.training import train

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax", dtype="float32"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="categorical_crossentropy", metrics=["accuracy"])
    before = [w.numpy().copy() for w in model.trainable_weights]
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 3), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    from medrepro.data import brain_mri

    aug = brain_mri.augmenter(**brain_mri.C_AUGMENT_INTENSITY, seed=0)  # applied in each replica's step
    train_ds = pipeline.from_arrays(x, y, batch_size=8, shuffle=True, seed=0, augment=aug)
    val_ds = pipeline.from_arrays(x[:16], y[:16], batch_size=8)
    history = train.fit(model, train_ds, val_ds, train.FitConfig(epochs=2, patience=3),
                        run_dir=sys.argv[1], verbose=0)

    def draws(batch):  # as the training step draws them, in each replica
        ctx = tf.distribute.get_replica_context()
        return aug(batch, step=3, replica=ctx.replica_id_in_sync_group,
                   replicas=ctx.num_replicas_in_sync)

    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x[:8]).batch(8))))
    per_replica = strategy.experimental_local_results(strategy.run(draws, args=(batch,)))
    replicated = np.concatenate([np.asarray(t) for t in per_replica])
    aug_diff = float(np.abs(replicated - np.asarray(aug(x[:8], step=3))).max())
    kernel = model.trainable_variables[0].value  # the tf variable: mirrored, one copy per device
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    print("RESULT " + json.dumps({
        "replicas": strategy.num_replicas_in_sync, "devices": devices,
        "loss": [float(v) for v in history["loss"]],
        "val_loss": [float(v) for v in history["val_loss"]],
        "changed": changed, "aug_diff": aug_diff, "aug_rows": len(replicated),
        "variable_devices": sorted({c.device for c in getattr(kernel, "values", [kernel])}),
    }))
""")


def test_fit_runs_under_mirrored_strategy_on_two_cpu_devices(tmp_path):
    pytest.importorskip("medrepro.training.train")
    result = _run_script(SCRIPT, tmp_path / "run")
    assert result["replicas"] == 2
    assert len(result["devices"]) == 2
    assert len(result["variable_devices"]) == 2  # one mirrored copy per logical device
    assert len(result["loss"]) == 2
    assert all(math.isfinite(v) for v in result["loss"] + result["val_loss"])
    assert all(result["changed"]), result["changed"]
    assert (tmp_path / "run" / "history.csv").is_file()
    # each replica augments its rows of the global batch as one device would: replicas change
    # no draw
    assert result["aug_rows"] == 8 and result["aug_diff"] < 1e-5


UNEVEN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from medrepro.data import pipeline
    from medrepro.training import train

    # As notebook.setup does with several GPUs: the default strategy, no scope in the caller.
    tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")]))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax", dtype="float32")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((25, 8, 8, 3), dtype=np.float32)  # batches of 8: the last holds 1 item
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 25)]
    history = train.fit(model, pipeline.from_arrays(x, y, batch_size=8, shuffle=True, seed=0),
                        pipeline.from_arrays(x, y, batch_size=8), train.FitConfig(epochs=2),
                        run_dir=sys.argv[1], verbose=0)
    test_ds = pipeline.from_arrays(x, y, batch_size=8)
    proba = train.predict_proba(model, test_ds)
    loss, acc = train.evaluate(model, test_ds)
    reference = np.concatenate([np.asarray(model(x[i:i + 5], training=False))
                                for i in range(0, 25, 5)])
    print("RESULT " + json.dumps({
        "loss": [float(v) for v in history["loss"]],
        "val_loss": [float(v) for v in history["val_loss"]],
        "rows": len(proba), "max_diff": float(np.abs(proba - reference).max()),
        "eval_acc": acc, "numpy_acc": float(np.mean(proba.argmax(1) == y.argmax(1))),
        "eval_loss": loss}))
""")


def test_uneven_batches_under_mirrored_strategy(tmp_path):
    """An epoch's last batch of 1 item over 2 replicas: training stays finite (no replica without
    items), predictions keep every row once, and evaluate counts every test item once."""
    result = _run_script(UNEVEN, tmp_path / "run")
    assert all(math.isfinite(v) for v in result["loss"] + result["val_loss"]), result
    assert result["rows"] == 25
    assert result["max_diff"] < 1e-5
    assert result["eval_acc"] == pytest.approx(result["numpy_acc"])
    assert math.isfinite(result["eval_loss"])


SETUP = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from medrepro.reporting import report
    from medrepro.run import notebook

    run = notebook.setup(sys.argv[2], profile="paper", data="phantom", seed=0,
                         reports=sys.argv[1])
    import tensorflow as tf
    report.save_table(pd.DataFrame({"x": [1]}), sys.argv[3], source="phantom")
    side = report.read_sidecar(sys.argv[3], profile="paper", reports_root=sys.argv[1])
    report.record_metric(sys.argv[3][0], "m", 0.5, source="phantom", artifact=sys.argv[3])
    record = report.read_metrics(profile="paper", reports_root=sys.argv[1])[0]
    print("RESULT " + json.dumps({
        "replicas": run.replicas, "in_sync": tf.distribute.get_strategy().num_replicas_in_sync,
        "settings": {name: {k: getattr(row, k) for k in row.BATCHES}
                     for name, row in run.settings.items()},
        "reason": run.batching.reason, "sidecar": side["batch"],
        "deviations": record["deviations"]}))
""")


def test_paper_batch_is_the_global_batch_over_two_replicas(tmp_path):
    """Two logical CPU devices stand for Kaggle's T4 x2: the paper profile trains with the
    paper's batch as the global batch, half of it on each replica, and the sidecars say so."""
    from medrepro.core import profiles

    paper = profiles.settings("B", "paper")
    out = _run_script(SETUP, tmp_path / "reports", "04_lightweight_ct", "B.table2",
                      env={"MEDREPRO_MIRROR_CPUS": "2"})
    assert out["replicas"] == out["in_sync"] == 2 and out["reason"] == ""
    assert paper.batch_main == 32  # the paper's batch
    assert out["settings"]["B"] == {"batch_main": 32, "batch_compare": paper.batch_compare}
    assert out["sidecar"]["rule"] == profiles.GLOBAL_RULE and out["sidecar"]["replicas"] == 2
    assert out["sidecar"]["global"] == {"B.batch_main": 32, "B.batch_compare": 8}
    assert out["sidecar"]["per_replica"] == {"B.batch_main": 16, "B.batch_compare": 4}
    assert out["deviations"] == []  # the paper's batch: no departure for the ledger


def test_the_doubled_batch_is_an_explicit_labelled_option(tmp_path):
    out = _run_script(SETUP, tmp_path / "reports", "04_lightweight_ct", "B.table2",
                      env={"MEDREPRO_MIRROR_CPUS": "2", "MEDREPRO_BATCH_PER_REPLICA": "1"})
    assert out["replicas"] == 2 and out["settings"]["B"]["batch_main"] == 64
    assert out["sidecar"]["rule"].startswith("per replica") and "not the papers'" in \
        out["sidecar"]["rule"]
    assert out["sidecar"]["per_replica"]["B.batch_main"] == 32
    assert [d for d in out["deviations"] if d.startswith("a changed batch")]  # not comparable


def test_a_batch_that_does_not_divide_trains_on_one_replica_and_says_why(tmp_path):
    out = _run_script(SETUP, tmp_path / "reports", "05_3dcnn_mosmed", "D.table4_1",
                      env={"MEDREPRO_MIRROR_CPUS": "3"})
    assert out["replicas"] == out["in_sync"] == 1
    assert "batch 4 does not divide over 3 replicas" in out["reason"]
    assert out["settings"]["D"] == {"batch": 4}
    assert out["sidecar"]["available_replicas"] == 3 and out["sidecar"]["per_replica"] == {
        "D.batch": 4}


def _run_script(script: str, run_dir, *args: str, env: dict | None = None) -> dict:
    """Run ``script`` in a fresh CPU-only Python (logical devices need a fresh runtime) with
    ``run_dir`` and ``args`` as arguments; return the JSON it printed after ``RESULT ``."""
    inherited = {k: v for k, v in os.environ.items() if k not in (
        "MEDREPRO_BATCH_PER_REPLICA", "MEDREPRO_MIRROR_CPUS", "MEDREPRO_MIRROR")}
    env = {**inherited, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, "-c", script, str(run_dir), *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))
