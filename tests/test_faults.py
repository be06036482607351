"""Faults: a full disk (a real small tmpfs), damaged state and caches, two runs at once (a second
process), read-only inputs, odd --data folders and archives.

Each writer that fills the disk stops with DiskFullError naming the folder and the bytes; what
was written before is intact, and the next run, with space, continues.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bad_files import fill_disk, picture, small_disk
from medrepro.core import locks
from medrepro.core.fileio import CorruptFileError, DiskFullError, atomic_path, read_json
from medrepro.data import datasets
from medrepro.data.registry import DatasetError


@pytest.fixture
def disk(tmp_path):
    """An 8 MiB tmpfs."""
    with small_disk(tmp_path / "disk") as where:
        yield where


# ---------------------------------------------------------------------------- full disk
def test_atomic_write_on_a_full_disk_names_folder_and_bytes_keeps_the_old_file(disk):
    target = disk / "sub" / "table.csv"
    with atomic_path(target) as tmp:
        Path(tmp).write_text("old\n")
    ballast = fill_disk(disk)
    with pytest.raises(DiskFullError, match=rf"disk full in {disk / 'sub'}: writing table.csv "
                                            r"needs 3,000,000 bytes; [\d,]+ bytes free"):
        with atomic_path(target, needed=3_000_000) as tmp:
            Path(tmp).write_bytes(b"x" * 3_000_000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]  # no temporary left
    ballast.unlink()
    with atomic_path(target) as tmp:
        Path(tmp).write_text("new\n")
    assert target.read_text() == "new\n"


def test_tables_figures_and_the_report_page_on_a_full_disk(disk):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medrepro.reporting import report, report_page

    report.start_run("03_lstm_cnn_mri", profile="smoke", seed=1, reports_root=disk)
    report.save_table(pd.DataFrame({"a": [1]}), "A.table2", source="phantom")
    csv = disk / "smoke" / "tables" / "A.table2.csv"
    before = csv.read_bytes()
    ballast = fill_disk(disk)
    with pytest.raises(DiskFullError, match=r"tables: writing A\.table2\.csv needs more than"):
        report.save_table(pd.DataFrame({"a": range(50_000)}), "A.table2", source="phantom")
    fig = plt.figure()
    plt.plot(np.arange(10))
    with pytest.raises(DiskFullError, match=r"figures: writing A\.fig11\.png"):
        report.save_figure(fig, "A.fig11", source="phantom", show=False)
    with pytest.raises(DiskFullError, match=r"smoke: writing index\.html"):
        report_page.write_page(profile="smoke", reports_root=disk)
    assert csv.read_bytes() == before
    ballast.unlink()
    assert report_page.write_page(profile="smoke", reports_root=disk).stat().st_size > 0


def test_a_phantom_on_a_full_disk_leaves_nothing_half_made(disk, monkeypatch):
    monkeypatch.setenv("MEDREPRO_DATA", str(disk / "data"))
    (disk / "data").mkdir()
    ballast = fill_disk(disk, leave=64 * 1024)
    with pytest.raises(DiskFullError, match=r"disk full in .*phantom/smoke: writing the "
                                            r"brain_tumor_sartaj phantom"):
        datasets.make_phantom("brain_tumor_sartaj", profile="smoke")
    root = datasets.phantom_root("brain_tumor_sartaj", profile="smoke")
    assert not root.exists() and not [p for p in root.parent.iterdir() if p.is_dir()]
    ballast.unlink()
    rd = datasets.make_phantom("brain_tumor_sartaj", profile="smoke")
    assert datasets.phantom_record(rd.root) is not None


def _fill_before(disk, epoch: int):
    """A Keras callback that fills the disk at the start of epoch ``epoch`` (0-based)."""
    import keras

    class Fill(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            if e == epoch:
                fill_disk(disk)

    return Fill()


def test_training_on_a_full_disk_stops_then_resumes_exactly(disk, tmp_path):
    from test_train import _datasets, _model

    from medrepro.training import train

    train_ds, val_ds = _datasets()
    run_dir = disk / "run"
    with pytest.raises(DiskFullError, match=rf"disk full in {run_dir}: writing history\.csv"):
        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                  run_dir=run_dir, verbose=0, callbacks=[_fill_before(disk, 2)], progress=False)
    saved = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert set(saved) == {"history.csv", "best.keras", "state.npz"}  # epoch 2's, whole
    assert len(pd.read_csv(run_dir / "history.csv")) == 2
    (disk / "ballast").unlink()
    resumed = train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                        run_dir=run_dir, verbose=0, progress=False)
    whole = train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=4),
                      run_dir=tmp_path / "whole", verbose=0, progress=False)
    cols = [c for c in whole.columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols], check_exact=False, atol=1e-6)


def test_a_checkpoint_on_a_full_disk_keeps_the_previous_best(disk):
    from test_train import _model

    from medrepro.training import callbacks

    model = _model()
    ckpt = callbacks.AtomicBestCheckpoint(disk / "best.keras")
    ckpt.set_model(model)
    ckpt.on_epoch_end(0, {"val_loss": 1.0})
    before = (disk / "best.keras").read_bytes()
    fill_disk(disk)
    with pytest.raises(DiskFullError, match=r"writing best\.keras needs [\d,]+ bytes"):
        ckpt.on_epoch_end(1, {"val_loss": 0.5})
    assert (disk / "best.keras").read_bytes() == before


def test_disk_full_error_crosses_process_boundaries():
    import pickle

    err = pickle.loads(pickle.dumps(DiskFullError("/x/y", what="shard-1.mrz", needed=10)))
    assert isinstance(err, DiskFullError) and "disk full in /x/y" in str(err)


# ---------------------------------------------------------------------------- damaged state
def test_damaged_state_npz_is_refused_by_name(tmp_path):
    from test_train import _datasets, _model

    from medrepro.training import callbacks, train

    train_ds, val_ds = _datasets()
    with pytest.raises(KeyboardInterrupt):
        from test_train import _StopAfter

        train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=3),
                  run_dir=tmp_path, verbose=0, callbacks=[_StopAfter(2)], progress=False)
    state = tmp_path / "state.npz"
    data = bytearray(state.read_bytes())
    for damage in (bytes(data[: len(data) // 2]),  # truncated
                   bytes(data[:200]) + b"\xff" * 64 + bytes(data[264:])):  # garbled inside
        state.write_bytes(damage)
        with pytest.raises(callbacks.ResumeError, match=r"state\.npz: unreadable training state"):
            train.fit(_model(), train_ds, val_ds, train.FitConfig(epochs=3),
                      run_dir=tmp_path, verbose=0, progress=False)


@pytest.mark.parametrize("damage", ["done.json", "config.json", "best.keras"])
def test_a_damaged_finished_run_is_trained_again(tmp_path, monkeypatch, damage):
    from test_train import _datasets, _model

    from medrepro.training import train

    train_ds, val_ds = _datasets()
    train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=2),
                   run_dir=tmp_path, verbose=0, progress=False)
    path = tmp_path / damage
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    calls = []
    real = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: calls.append(1) or real(*a, **k))
    history = train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=2),
                             run_dir=tmp_path, verbose=0, progress=False)
    assert calls == [1] and history.attrs["reused"] is False and len(history) == 2
    assert train.read_done(tmp_path)["epochs_run"] == 2


def test_read_json_names_a_damaged_file(tmp_path):
    (tmp_path / "done.json").write_text('{"epochs_run": 3')
    with pytest.raises(CorruptFileError, match=r"done\.json: unreadable JSON"):
        read_json(tmp_path / "done.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(CorruptFileError, match=r"list\.json: expected a JSON dict, found list"):
        read_json(tmp_path / "list.json")


def test_damaged_feature_cache_and_sidecar_are_computed_again(tmp_path):
    from medrepro.studies import a

    path = tmp_path / "resnet50_random_224_abc.npy"
    np.save(path, np.zeros((3, 1, 5), np.float16))
    (path.with_suffix(".json")).write_text(json.dumps({"n_features": 5, "dtype": "float16"}))
    assert a._read_features(path, n_images=3).shape == (3, 1, 5)
    with pytest.warns(RuntimeWarning, match="damaged feature cache"):
        assert a._read_features(path, n_images=4) is None  # another image list
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=r"abc\.npy: damaged feature cache"):
        assert a._read_features(path, n_images=3) is None
    np.save(path, np.zeros((3, 1, 5), np.float16))
    path.with_suffix(".json").write_text("{")
    with pytest.warns(RuntimeWarning, match="unreadable JSON"):
        assert a._read_features(path, n_images=3) is None


def test_damaged_volume_cache_is_rebuilt(tmp_path):
    import nibabel as nib

    from medrepro.data import volumes

    src = tmp_path / "study_0001.nii.gz"
    nib.save(nib.Nifti1Image(np.full((8, 8, 6), -500, np.int16), np.eye(4)), src)
    folder = tmp_path / "cache"
    assert volumes.build_cache([src], folder=folder, shape=(4, 4, 4)).built == 1
    (folder / "cache.json").write_text("{garbled")
    cached = volumes.cached_path(folder, src)
    cached.write_bytes(cached.read_bytes()[:60])  # truncated after the header
    summary = volumes.build_cache([src], folder=folder, shape=(4, 4, 4))
    assert (summary.built, summary.reused) == (1, 0)
    assert read_json(folder / "cache.json") == {"shape": [4, 4, 4]}
    x, _ = volumes.load_cached(pd.DataFrame({"path": [src], "label": [0]}), folder=folder)
    assert x.shape == (1, 4, 4, 4)
    cached.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(volumes.VolumeError, match=r"study_0001\.npy: unreadable cached volume"):
        volumes.load_cached(pd.DataFrame({"path": [src], "label": [0]}), folder=folder)


# ---------------------------------------------------------------------------- two runs at once
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from medrepro.core import locks
    with locks.hold(Path(sys.argv[1]), what="a test holder", wait=0):
        Path(sys.argv[2]).write_text("held")
        time.sleep(float(sys.argv[3]))
""")


def _hold_in_another_process(target: Path, flag: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(target), str(flag), str(seconds)])
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the holder did not start"
        time.sleep(0.05)
    return proc


def test_a_second_trainer_of_the_same_run_folder_stops_naming_the_holder(tmp_path):
    from test_train import _datasets, _model

    from medrepro.training import train

    run_dir = tmp_path / "runs" / "C_trial1"
    proc = _hold_in_another_process(run_dir, tmp_path / "held", 60)
    try:
        train_ds, val_ds = _datasets()
        with pytest.raises(locks.LockedError,
                           match=rf"C_trial1 is in use by pid {proc.pid} on .*a training run"):
            train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=1),
                           run_dir=run_dir, verbose=0)
        assert not run_dir.exists()  # this process wrote nothing there
    finally:
        proc.kill()
        proc.wait()
    train_ds, val_ds = _datasets()  # the holder gone (killed: the OS released its lock)
    assert len(train.fit_once(_model(), train_ds, val_ds, train.FitConfig(epochs=1),
                              run_dir=run_dir, verbose=0, progress=False)) == 1


def test_a_cache_lock_makes_the_second_process_wait(tmp_path, capfd):
    target = tmp_path / "cache"
    proc = _hold_in_another_process(target, tmp_path / "held", 3)
    start = time.monotonic()
    with locks.hold(target, what="a cache", wait=60):
        waited = time.monotonic() - start
    proc.wait()
    assert waited > 1.5
    assert f"waiting for {target} (a cache): in use by pid {proc.pid}" in capfd.readouterr().err
    with pytest.raises(locks.LockedError, match=r"waited 2 s"):
        proc = _hold_in_another_process(target, tmp_path / "held2", 30)
        try:
            with locks.hold(target, what="a cache", wait=2):
                pass
        finally:
            proc.kill()
            proc.wait()


def test_two_processes_make_one_phantom(tmp_path):
    code = ("from medrepro.data import datasets; "
            "print(datasets.make_phantom('brain_tumor_masoud', profile='smoke').root)")
    env = {**os.environ, "MEDREPRO_DATA": str(tmp_path / "data")}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0]
    root = Path(outs[0][0].strip())
    assert datasets.phantom_record(root) is not None
    assert [p for p in root.parent.iterdir() if p.is_dir()] == [root]  # no half-made copy


def test_a_second_run_all_of_the_same_profile_stops_at_once(tmp_path, monkeypatch, capsys):
    from medrepro.core import paths
    from medrepro.run import runner

    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setattr(runner, "_print_plan", lambda *args: "")
    proc = _hold_in_another_process(paths.reports_dir("smoke"), tmp_path / "held", 60)
    try:
        assert runner.main(["--profile", "smoke", "--only", "01"]) == 3
    finally:
        proc.kill()
        proc.wait()
    assert "not started" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "smoke" / "run_summary.json").exists()


# ---------------------------------------------------------------------------- inputs
@pytest.fixture
def read_only(tmp_path):
    """A read-only copy of a small data folder (a read-only bind mount as root, else chmod),
    as /kaggle/input is."""
    src = tmp_path / "src"
    sartaj = src / "brain_tumor_sartaj"
    from PIL import Image

    for split in ("Training", "Testing"):
        for k, cls in enumerate(("glioma_tumor", "meningioma_tumor", "no_tumor",
                                 "pituitary_tumor")):
            (sartaj / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(picture(k * 3 + i)).save(sartaj / split / cls / f"x ({i}).jpg")
    (sartaj / "Training" / "glioma_tumor" / "broken (1).jpg").write_bytes(b"")
    mos = src / "mosmed"
    import nibabel as nib

    for part in ("CT-0", "CT-2", "CT-3"):
        (mos / part).mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.eye(4)),
                 mos / part / f"study_{part[-1]}.nii.gz")
    ro = tmp_path / "input"
    ro.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "--bind", str(src), str(ro)], capture_output=True).returncode == 0 and \
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)],
                       capture_output=True).returncode == 0
    if not mounted:
        subprocess.run(["umount", str(ro)], capture_output=True)
        shutil.rmtree(ro)
        shutil.copytree(src, ro, symlinks=True)
        subprocess.run(["chmod", "-R", "a-w", str(ro)], check=True)
    yield ro
    if mounted:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    else:
        subprocess.run(["chmod", "-R", "u+w", str(ro)], check=True)


def _tree(root: Path) -> list:
    return sorted((str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns)
                  for p in root.rglob("*"))


def test_read_only_inputs_are_read_in_place_and_never_written(read_only, tmp_path, monkeypatch):
    from medrepro.data import audit, brain_mri

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    before = _tree(read_only)
    with pytest.raises(OSError):  # really read-only
        (read_only / "probe").write_text("x")
    rd = datasets.resolve("brain_tumor_sartaj", data=str(read_only), profile="smoke")
    assert not rd.is_phantom and rd.root == (read_only / "brain_tumor_sartaj").resolve()
    assert len(brain_mri.list_images(rd.root, rd.dataset_id)) == 24
    inv = datasets.inventory([rd])
    assert inv["skipped"].sum() == 1
    audit.audit_resolved(rd)
    mos = datasets.resolve("mosmed", data=str(read_only), profile="smoke")  # a composed view
    assert (mos.root / "CT-23").is_dir() and str(mos.root).startswith(str(tmp_path / "data"))
    assert _tree(read_only) == before


def test_odd_data_sources_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty.*is an empty folder"):
        datasets.resolve("brain_tumor_sartaj", data=str(tmp_path / "empty"), profile="smoke")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(DatasetError, match=r"a symbolic link that loops or points nowhere"):
        datasets.resolve("brain_tumor_sartaj", data=str(tmp_path / "loop"), profile="smoke")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    with pytest.raises(DatasetError, match=r"empty\.zip: an empty archive"):
        datasets.resolve("brain_tumor_sartaj", data=str(tmp_path / "empty.zip"),
                         profile="smoke")
    with tarfile.open(tmp_path / "good.tar.gz", "w:gz") as tf:
        tf.add(__file__, arcname="brain_tumor_sartaj/x.py")
    (tmp_path / "cut.tar.gz").write_bytes((tmp_path / "good.tar.gz").read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"cut\.tar\.gz: (a damaged archive|not a zip)"):
        datasets.resolve("brain_tumor_sartaj", data=str(tmp_path / "cut.tar.gz"),
                         profile="smoke")


def test_an_unreadable_data_folder_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "brain_tumor_sartaj").mkdir()
    real = os.scandir

    def scandir(path="."):  # root reads any folder: the refusal a user would get
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(datasets.os, "scandir", scandir)
    with pytest.raises(DatasetError, match=r"cannot read .*locked \(Permission denied\)"):
        datasets.resolve("brain_tumor_sartaj", data=str(folder), profile="smoke")


def test_names_with_spaces_parentheses_and_non_ascii(tmp_path, monkeypatch):
    from PIL import Image

    from medrepro.data import brain_mri

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    base = tmp_path / "Mes données (copie) 2"
    for split in ("Training", "Testing"):
        for k, cls in enumerate(brain_mri.CLASS_DIRS["brain_tumor_sartaj"]):
            (base / "brain_tumor_sartaj" / split / cls).mkdir(parents=True)
            Image.fromarray(picture(k)).save(base / "brain_tumor_sartaj" / split / cls /
                                             "görüntü (1) ç.jpg")
    shutil.make_archive(str(tmp_path / "Beyin MR (1) ğ"), "zip", base)
    for source in (base, tmp_path / "Beyin MR (1) ğ.zip"):
        rd = datasets.resolve("brain_tumor_sartaj", data=str(source), profile="smoke")
        assert not rd.is_phantom
        frame = brain_mri.list_images(rd.root, rd.dataset_id)
        assert len(frame) == 8 and frame["path"].map(lambda p: "ç" in p.name).all()
        assert brain_mri.load_images(frame, image_size=8).shape == (8, 8, 8, 3)
