"""medrepro.data.rsna's cache: the resumable build (``cache``), its files (``layout``), the tf.data
reader (``reader``) and the tables made from it (``tables``), on one built cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medrepro.data import dicom, registry, rsna

SUBTYPES = rsna.SUBTYPES


def _write_labels(path: Path, labels: dict[str, tuple[int, ...]], *, duplicate: bool = True):
    """RSNA-format rows ``ID_<image>_<subtype>,Label``; ``labels[id]`` = the five subtypes."""
    lines = ["ID,Label"]
    for image_id, lab in labels.items():
        for sub, v in zip(SUBTYPES, lab):
            lines.append(f"{image_id}_{sub},{v}")
        lines.append(f"{image_id}_any,{int(any(lab))}")
    if duplicate:
        lines.append(lines[1])
    path.write_text("\n".join(lines) + "\n")


def write_rsna(root: Path, n: int, *, size: int = 32, seed: int = 0, bad: int = 1) -> dict:
    """A tiny RSNA folder: ``n`` images (one in three with one subtype, one with two), one
    patient per four images, and ``bad`` zero-byte files among them."""
    rng = np.random.default_rng(seed)
    labels = {}
    for i in range(n):
        image_id = f"ID_{i:09x}"
        lab = [0] * 5
        if i % 3 == 0:
            lab[i // 3 % 5] = 1
        if i == 4:
            lab[0] = lab[1] = 1  # two subtypes: not selected
        labels[image_id] = tuple(lab)
        st = rng.integers(-1024, 2000, (size, size)).astype(np.int16)
        dicom.write_slice(root / rsna.IMAGES_DIR / f"{image_id}.dcm", st,
                          patient_id=f"ID_p{i // 4:04d}")
    for i in range(1, 1 + bad):
        (root / rsna.IMAGES_DIR / f"ID_{i:09x}.dcm").write_bytes(b"")
    _write_labels(root / registry.RSNA_LABELS_CSV, labels)
    return labels


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rsna")
    write_rsna(root, 24)
    return root


@pytest.fixture(scope="module")
def built(rsna_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "c"
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    rsna.write_splits(out, rsna_root / registry.RSNA_LABELS_CSV, seed=3)
    return out


def _cache_files(out: Path) -> dict[str, bytes]:
    names = [p for p in out.iterdir() if p.name.startswith("shard-") or p.name == "manifest.csv"]
    return {p.name: p.read_bytes() for p in sorted(names)}


# ---------------------------------------------------------------------------- the cache

def test_cache_content_manifest_and_skips(built, rsna_root):
    man = rsna.load_manifest(built)
    selected = rsna.selected_images(rsna_root)
    assert list(man["image_id"]) == list(selected)  # image 4 (two subtypes) left out
    assert "ID_000000004" not in set(man["image_id"])
    bad = man[man["status"] == "skipped"]
    assert list(bad["image_id"]) == ["ID_000000001"] and list(bad["problem"]) == ["empty file"]
    ok = man[man["status"] == "ok"]
    images = rsna.load_images(built, ok)
    assert images.shape == (len(ok), 16, 16, 3) and images.dtype == np.uint8
    for i in (0, len(ok) - 1):
        path = rsna_root / rsna.IMAGES_DIR / f"{ok['image_id'].iloc[i]}.dcm"
        np.testing.assert_array_equal(images[i], dicom.read_rgb(path, size=16))
    assert set(ok["patient_id"]) >= {"ID_p0000", "ID_p0005"}
    skips = rsna.skips_table(built)
    assert list(skips["problem"]) == ["empty file", "total"] and list(skips["files"]) == [1, 1]
    summary = rsna.cache_table(built).iloc[0]
    assert (summary["images"], summary["cached"], summary["skipped"]) == (len(man), len(ok), 1)
    assert summary["shards"] == int(np.ceil(len(man) / 4)) and summary["bytes"] > 0


def test_second_build_is_a_no_op(built, rsna_root):
    before = {p.name: p.stat().st_mtime_ns for p in built.iterdir()}
    rsna.build_cache(rsna_root, built, workers=1, image_size=16, shard_size=4, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in built.iterdir()} == before


def test_parallel_build_equals_serial(built, rsna_root, tmp_path):
    out = rsna.build_cache(rsna_root, tmp_path / "par", workers=2, image_size=16, shard_size=4,
                           progress=False)
    assert _cache_files(out) == _cache_files(built)
    assert rsna.read_summary(out)["workers"] == 2


def test_other_inputs_rebuild_and_other_roots_get_other_folders(built, rsna_root, tmp_path):
    out = tmp_path / "c"
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    rsna.build_cache(rsna_root, out, workers=1, image_size=8, shard_size=4, progress=False)
    assert rsna.load_images(out, rsna.load_manifest(out).iloc[:1]).shape[1:] == (8, 8, 3)
    a = SimpleNamespace(root=rsna_root, source="phantom")
    b = SimpleNamespace(root=tmp_path, source="phantom")
    c = SimpleNamespace(root=rsna_root, source="rsna_ich")
    dirs = {rsna.cache_dir(x, profile="smoke") for x in (a, b, c)}
    assert len(dirs) == 3 and rsna.cache_dir(a, profile="smoke").name.startswith("phantom-smoke-")


_KILL_SCRIPT = """
import sys, time
from medrepro.data.rsna import cache
build = cache.build_shard
def slow(job):
    out = build(job)
    time.sleep(0.4)
    return out
cache.build_shard = slow
cache.build_cache(sys.argv[1], sys.argv[2], workers=1, image_size=16, shard_size=4,
                 progress=False)
"""


def test_sigkill_midway_then_resume_equals_an_uninterrupted_build(built, rsna_root, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(rsna_root), str(out)],
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 60
    while len(list(out.glob("shard-*.csv"))) < 2:
        assert proc.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline, "no shard written in 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list(out.glob("shard-*.csv")))
    assert 2 <= n_done < rsna.read_summary(built)["shards"] and not rsna.is_complete(out)
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    assert _cache_files(out) == _cache_files(built)
    assert rsna.read_summary(out)["resumed"] is True
    assert not list(out.glob(".*.tmp"))


def test_incomplete_cache_is_refused(tmp_path):
    with pytest.raises(rsna.CacheError, match="not a complete RSNA cache"):
        rsna.load_manifest(tmp_path)
    with pytest.raises(rsna.CacheError, match="no split file"):
        rsna.load_split(tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        rsna.load_split(tmp_path, kind="study")


# ---------------------------------------------------------------------------- splits on disk

def test_splits_on_disk_and_table1(built):
    df = rsna.load_split(built)
    assert list(df.columns[:5]) == ["image_id", "label", "label_name", "patient_id", "split"]
    assert set(df["split"]) <= set(rsna.SPLITS) and df["label"].between(0, 5).all()
    assert "ID_000000001" not in set(df["image_id"])  # skipped files are not in any split
    pat = rsna.load_split(built, kind="patient")
    assert (pat.groupby("patient_id")["split"].nunique() == 1).all()
    assert sorted(pat["image_id"]) == sorted(df["image_id"])
    t1 = rsna.table1(df)
    assert list(t1["class"]) == ["epidural", "intraparenchymal", "intraventricular",
                                 "subarachnoid", "subdural", "none", "total"]
    assert t1.iloc[-1]["total"] == len(df) and t1.iloc[-1]["paper_total"] == 720_733
    none = t1[t1["class"] == "none"].iloc[0]
    assert none["total"] == (df["label"] == 0).sum() and none["paper_train"] == 322_440
    assert "paper_train" not in rsna.table1(pat, with_paper=False).columns
    meta = json.loads((built / "splits.json").read_text())
    assert meta["seed"] == 3 and rsna.split_notes(built)["image"]


def test_make_dataset_batches_images_and_one_hot_labels(built):
    df = rsna.load_split(built)
    train = df[df["split"] == "train"]
    ds = rsna.make_dataset(built, df, split="train", batch_size=5, image_size=16)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.float32 and x.shape == (len(train), 16, 16, 3)
    assert xs[0].shape[0] == 5 and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x * 255, rsna.load_images(built, train), atol=1e-3)
    np.testing.assert_array_equal(y.argmax(1), train["label"])
    assert (y.sum(1) == 1).all()
    shuffled = rsna.make_dataset(built, df, split="train", batch_size=100, image_size=16,
                                 shuffle=True, seed=1)
    _, ys2 = next(iter(shuffled))
    assert sorted(ys2.numpy().argmax(1)) == sorted(train["label"])
    small = rsna.make_dataset(built, df, split="train", batch_size=4)  # resized to 224
    assert next(iter(small))[0].shape == (4, 224, 224, 3)
    with pytest.raises(ValueError, match="split must be one of"):
        rsna.make_dataset(built, df, split="holdout", batch_size=4)


def test_touched_labels_keep_the_cache_changed_labels_rebuild(tmp_path):
    root = tmp_path / "r"
    labels = write_rsna(root, 8, bad=0)
    out = tmp_path / "c"
    rsna.build_cache(root, out, workers=1, image_size=8, progress=False)
    shard = out / "shard-00000.mrz"
    before = shard.stat().st_mtime_ns
    csv_path = root / registry.RSNA_LABELS_CSV
    os.utime(csv_path, ns=(before + 10**9, before + 10**9))
    rsna.build_cache(root, out, workers=1, image_size=8, progress=False)
    assert shard.stat().st_mtime_ns == before
    labels["ID_000000002"] = (0, 1, 1, 0, 0)  # now two subtypes: leaves the selection
    _write_labels(csv_path, labels)
    rsna.build_cache(root, out, workers=1, image_size=8, progress=False)
    assert "ID_000000002" not in set(rsna.load_manifest(out)["image_id"])
    assert len(rsna.load_manifest(out)) == len(rsna.selected_images(root))


def test_ensure_cache_keeps_the_splits_of_an_earlier_seed_unless_told(rsna_root, monkeypatch,
                                                                      tmp_path):
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    ds = SimpleNamespace(root=rsna_root, source="phantom")
    cache = rsna.ensure_cache(ds, profile="smoke", workers=1, image_size=8, seed=7,
                              progress=False)
    first = rsna.load_split(cache)
    assert cache.parent == tmp_path / "data" / "processed" / "rsna_ich"
    rsna.ensure_cache(ds, profile="smoke", workers=1, image_size=8, progress=False)  # seed None
    assert rsna.load_split(cache).equals(first)
    assert json.loads((cache / "splits.json").read_text())["seed"] == 7
    rsna.ensure_cache(ds, profile="smoke", workers=1, image_size=8, seed=8, progress=False)
    assert json.loads((cache / "splits.json").read_text())["seed"] == 8


def test_figure_sample_prefers_real_samples_and_skips_unreadable(tmp_path, monkeypatch):
    root = tmp_path / "r"
    write_rsna(root, 3, bad=0)
    (root / rsna.IMAGES_DIR / "ID_000000000.dcm").write_bytes(b"")  # first in name order
    ds = SimpleNamespace(root=root, source="phantom")
    monkeypatch.setenv("MEDREPRO_SHARED", str(tmp_path))  # no rsna_ich_samples there
    path, source, note = rsna.figure_sample(ds)
    assert path.name == "ID_000000001.dcm" and source == "phantom" and "phantom" in note
    (tmp_path / "rsna_ich_samples").mkdir()
    real = dicom.write_slice(tmp_path / "rsna_ich_samples" / "ID_real.dcm",
                             np.zeros((8, 8), np.int16))
    path, source, _ = rsna.figure_sample(ds)
    assert path == real and source == "rsna_ich"


# ---------------------------------------------------------------------------- compact format

def test_compact_cache_decodes_to_the_raw_cache_and_read_rgb(built, rsna_root, tmp_path):
    assert json.loads((built / "build.json").read_text())["format"] == "compact"
    raw = rsna.build_cache(rsna_root, tmp_path / "raw", workers=1, image_size=16, shard_size=4,
                           progress=False, format="raw")
    assert sorted(p.suffix for p in raw.glob("shard-00000.*")) == [".csv", ".npy"]
    man = rsna.load_manifest(built)
    ok = man[man["status"] == "ok"]
    assert rsna.load_manifest(raw).equals(man)
    compact_images = rsna.load_images(built, ok)
    np.testing.assert_array_equal(compact_images, rsna.load_images(raw, ok))
    direct = np.stack([dicom.read_rgb(rsna_root / rsna.IMAGES_DIR / f"{i}.dcm", size=16)
                       for i in ok["image_id"]])
    np.testing.assert_array_equal(compact_images, direct)
    assert rsna.read_summary(built)["format"] == "compact"
    assert rsna.cache_table(raw).iloc[0]["format"] == "raw"
    with pytest.raises(ValueError, match="format must be one of compact, raw"):
        rsna.build_cache(rsna_root, tmp_path / "x", format="png")


def test_truncated_or_missing_shard_of_a_complete_cache_is_rebuilt(built, rsna_root, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    shard = out / "shard-00001.mrz"
    shard.write_bytes(shard.read_bytes()[:-50])  # a partial write that survived somehow
    (out / "shard-00002.mrz").unlink()
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    assert _cache_files(out) == _cache_files(built)
    assert rsna.read_summary(out)["built_this_run"] == 8  # only the two bad shards


def test_damaged_shard_is_never_read_and_rebuilt_on_the_next_build(built, rsna_root, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    split = rsna.load_split(out)
    shard = out / "shard-00000.mrz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10  # same size: only the checksums can tell
    shard.write_bytes(bytes(data))
    rows = split[split["shard"] == 0]
    with pytest.raises(rsna.CacheError, match="shard 0 is marked for rebuilding"):
        rsna.load_images(out, rows)
    assert not rsna.is_complete(out) and not (out / "shard-00000.csv").exists()
    ds = rsna.make_dataset(out, split.assign(split="train"), split="train", batch_size=4)
    with pytest.raises(Exception, match="marked for rebuilding"):
        for _ in ds:
            pass
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    assert _cache_files(out) == _cache_files(built)
    np.testing.assert_array_equal(rsna.load_images(out, rows), rsna.load_images(built, rows))


def test_resume_verifies_done_shards_in_full(built, rsna_root, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    for name in ("summary.json", "manifest.csv", "shard-00005.csv", "shard-00005.mrz"):
        (out / name).unlink()  # as after a kill during shard 5
    data = bytearray((out / "shard-00003.mrz").read_bytes())
    data[-30] ^= 0x01
    (out / "shard-00003.mrz").write_bytes(bytes(data))
    rsna.build_cache(rsna_root, out, workers=1, image_size=16, shard_size=4, progress=False)
    assert _cache_files(out) == _cache_files(built)
    # shard 3 (4 images, damaged) and shard 5 (the last: 3 of the 23 selected, missing)
    assert rsna.read_summary(out)["built_this_run"] == 7


def test_reader_keeps_a_bounded_number_of_shards_mapped(built, monkeypatch):
    from medrepro.data.rsna import reader

    monkeypatch.setattr(reader, "MAX_OPEN_SHARDS", 2)
    shards = reader._Shards(built)
    man = rsna.load_manifest(built)
    ok = man[man["status"] == "ok"]
    got = shards.gather(ok["shard"].to_numpy(), ok["row"].to_numpy())
    assert len(shards._maps) == 2 and ok["shard"].nunique() > 2
    np.testing.assert_array_equal(got, rsna.load_images(built, ok))


# ---------------------------------------------------------------------------- labels vs images

def _mismatched_root(root: Path) -> dict:
    """The 24-image folder with two DICOMs whose IDs have no label row (plus a hidden file and
    a text file, not images), two labelled IDs whose DICOMs are absent and one empty DICOM."""
    labels = write_rsna(root, 24)
    images = root / rsna.IMAGES_DIR
    for name in ("ID_extra0001", "ID_extra0002"):
        dicom.write_slice(images / f"{name}.dcm", np.zeros((8, 8), np.int16), patient_id="P")
    (images / ".ID_hidden.dcm").write_bytes(b"x")
    (images / "README.txt").write_text("not an image")
    for i in (3, 6):  # both selected, one subtype each
        (images / f"ID_{i:09x}.dcm").unlink()
    return labels


def test_images_without_labels_and_labels_without_images_are_named_and_counted(
        tmp_path, monkeypatch, caplog):
    from medrepro.reporting import report, report_page
    from medrepro.run import runner

    root = tmp_path / "r"
    _mismatched_root(root)
    out = tmp_path / "c"
    with caplog.at_level("WARNING", logger="medrepro.data.rsna.cache"):
        rsna.build_cache(root, out, workers=2, image_size=8, shard_size=4, progress=False)
    assert rsna.unlabelled_images(root, rsna.read_labels(root / registry.RSNA_LABELS_CSV)
                                  ["image_id"]) == ["ID_extra0001", "ID_extra0002"]
    man = rsna.load_manifest(out)
    bad = man[man["status"] == "skipped"].set_index("image_id")
    assert bad["problem"].to_dict() == {"ID_000000001": "empty file",
                                        "ID_000000003": rsna.NO_IMAGE,
                                        "ID_000000006": rsna.NO_IMAGE,
                                        "ID_extra0001": rsna.NO_LABEL,
                                        "ID_extra0002": rsna.NO_LABEL}
    assert "no stage_2_train/ID_000000003.dcm" in bad.loc["ID_000000003", "detail"]
    assert (bad.loc["ID_extra0001", ["shard", "row"]] == -1).all()
    n_selected = len(rsna.selected_images(root))
    assert len(man) == n_selected + 2
    assert "no label: ID_extra0001, ID_extra0002" in caplog.text
    assert "2 file(s) skipped, no image: ID_000000003, ID_000000006" in caplog.text

    skips = rsna.skips_table(out).set_index("problem")
    assert skips["files"].to_dict() == {"empty file": 1, rsna.NO_IMAGE: 2, rsna.NO_LABEL: 2,
                                        "total": 5}
    assert skips.loc[rsna.NO_LABEL, "examples"] == "ID_extra0001, ID_extra0002"
    assert skips.loc["total", "detail"] == (f"of {n_selected} selected images and 2 DICOM(s) "
                                            "without a label")
    assert rsna.cache_table(out).iloc[0]["skipped"] == 5

    # the splits hold only the images that were read; the missing ones are in no split
    rsna.write_splits(out, root / registry.RSNA_LABELS_CSV, seed=0)
    split = rsna.load_split(out)
    assert len(split) == n_selected - 3 and not set(split["image_id"]) & set(bad.index)

    # the run summary and the report page count and name them as every other skip
    monkeypatch.setenv("MEDREPRO_REPORTS", str(tmp_path / "reports"))
    record = rsna.skip_record(out)
    assert record["n_files"] == n_selected + 2
    assert record["skipped"]["path"].iloc[-1] == str(root / rsna.IMAGES_DIR / "ID_extra0002.dcm")
    report.record_skips(rsna.DATASET_ID, **record, source="phantom",  # not an earlier test's run
                        notebook="02_preprocess_rsna", profile="smoke", seed=0,
                        reports_root=tmp_path / "reports")
    summary = runner.skip_summary("smoke", ["02_preprocess_rsna"])
    entry = summary["by_notebook"]["02_preprocess_rsna"][0]
    assert summary["total"] == 5 and entry["files_checked"] == n_selected + 2
    assert entry["by_problem"] == {"empty file": 1, rsna.NO_IMAGE: 2, rsna.NO_LABEL: 2}
    page = report_page.write_page(profile="smoke").read_text()
    assert "Input files skipped (5)" in page
    assert "ID_extra0001.dcm — no label: stage_2_train/ID_extra0001.dcm has no row" in page
    assert "ID_000000003.dcm — no image: labelled in stage_2_train.csv" in page


def test_skips_that_empty_a_class_stop_the_split_naming_class_and_counts(tmp_path):
    root = tmp_path / "r"
    write_rsna(root, 24, bad=0)
    for i in (0, 15):  # the two epidural images: one absent, one empty
        (root / rsna.IMAGES_DIR / f"ID_{i:09x}.dcm").unlink()
    (root / rsna.IMAGES_DIR / f"ID_{15:09x}.dcm").write_bytes(b"")
    out = rsna.build_cache(root, tmp_path / "c", workers=1, image_size=8, progress=False)
    with pytest.raises(rsna.RsnaDataError,
                       match=r"rsna_ich: .*class S2 epidural has 0 usable of 2 selected "
                             r"image\(s\); 2 of \d+ selected image\(s\) skipped \(e\.g\. "
                             r"ID_000000000, ID_00000000f\)"):
        rsna.write_splits(out, root / registry.RSNA_LABELS_CSV, seed=0)
    assert not (out / "split_image.csv").exists()
