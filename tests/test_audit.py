"""medrepro.data.audit: exact and near duplicate groups, tables, duplicate-free sets, saved lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from medrepro.data import audit
from medrepro.core import paths
from medrepro.data.audit import AuditError


def _picture(seed: int, size: int = 160) -> np.ndarray:
    """A seeded smooth random 8-bit picture with a bright disc (distinct per seed)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)), sigma=size / 12)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    field += 3 * field.std() * ((yy - cy) ** 2 + (xx - cx) ** 2 < (size / 6) ** 2)
    field = (field - field.min()) / np.ptp(field)
    return (field * 255).astype(np.uint8)


def _save(arr: np.ndarray, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


@pytest.fixture
def images(tmp_path):
    """Training/Testing/<class>/ files with planted exact and near copies.

    a: original (Training/glioma); a_copy: same bytes (Testing/glioma);
    a_small: resized + re-encoded (Testing/meningioma: a copy spanning classes);
    b: original (Training/glioma); b_rgb: RGB re-encoded at quality 80 (Training/glioma);
    c, c_copy: byte-identical, both in Testing/notumor; d, e: distinct singletons.
    """
    r = tmp_path / "ds"
    files = {}
    files["a"] = _save(_picture(1), r / "Training/glioma/a.jpg", quality=95)
    files["a_copy"] = r / "Testing/glioma/a_copy.jpg"
    files["a_copy"].parent.mkdir(parents=True)
    shutil.copyfile(files["a"], files["a_copy"])
    small = np.asarray(Image.fromarray(_picture(1)).resize((130, 130), Image.BILINEAR))
    files["a_small"] = _save(small, r / "Testing/meningioma/a_small.jpg", quality=85)
    files["b"] = _save(_picture(2), r / "Training/glioma/b.jpg", quality=95)
    rgb = np.repeat(_picture(2)[..., None], 3, axis=2)
    files["b_rgb"] = _save(rgb, r / "Training/glioma/b_rgb.jpg", quality=80)
    files["c"] = _save(_picture(3), r / "Testing/notumor/c.png")
    files["c_copy"] = r / "Testing/notumor/c_copy.png"
    shutil.copyfile(files["c"], files["c_copy"])
    files["d"] = _save(_picture(4), r / "Training/notumor/d.jpg")
    files["e"] = _save(_picture(5), r / "Testing/glioma/e.jpg")
    return r, files


def _names(groups):
    return sorted(sorted(p.stem for p in g) for g in groups)


def test_exact_groups_are_byte_identical_files_only(images):
    _, f = images
    groups = audit.find_duplicates(f.values())
    assert _names(groups) == [["a", "a_copy"], ["c", "c_copy"]]
    assert all(g == sorted(g) for g in groups)


def test_near_adds_resized_and_recoded_copies_not_distinct_images(images):
    _, f = images
    groups = audit.find_duplicates(f.values(), near=True)
    assert _names(groups) == [["a", "a_copy", "a_small"], ["b", "b_rgb"], ["c", "c_copy"]]


def test_hamming_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    bits = rng.random((300, 64)) < 0.5
    bits[7] = bits[3]
    bits[9] = bits[3]
    bits[9, :3] ^= True  # distance 3 from row 3
    got = {tuple(p) for p in audit.hamming_pairs(bits, max_distance=4)}
    want = {(i, j) for i in range(300) for j in range(i + 1, 300)
            if np.count_nonzero(bits[i] != bits[j]) <= 4}
    assert got == want and {(3, 7), (3, 9), (7, 9)} <= got


def test_near_pairs_need_both_hashes_close():
    p = np.zeros((3, 128), dtype=bool)
    p[1, 64:74] = True  # same pHash, dHash 10 bits away
    p[2, 64:66] = True  # same pHash, dHash 2 bits away
    p[1, 0] = p[1, 1] = True  # and pHash 2 bits away from rows 0 and 2 (all pass pHash <= 4)
    # (0, 2): dHash 2 -> near; (0, 1): dHash 10 and (1, 2): dHash 8 exceed NEAR_DHASH = 6
    assert audit.near_pairs(p).tolist() == [[0, 2]]
    assert audit.near_pairs(p, max_dhash=10).tolist() == [[0, 1], [0, 2], [1, 2]]


def test_union_find_joins_chains():
    files = [Path(f"/x/{k}.jpg") for k in "abcde"]
    assert audit._groups_from(files, [(0, 1), (1, 2), (3, 4)]) == [files[:3], files[3:]]


def test_unreadable_and_undecodable_files_are_skipped_and_reported(images, caplog):
    root, f = images
    broken = root / "Training/glioma/broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    res = audit.audit_files([*f.values(), broken, root / "missing.jpg"], near=True)
    reasons = {p.name: why for p, why in res.skipped}
    assert set(reasons) == {"broken.jpg", "missing.jpg"}
    assert "cannot decode" in reasons["broken.jpg"] and "unreadable" in reasons["missing.jpg"]
    assert _names(res.groups) == [["a", "a_copy", "a_small"], ["b", "b_rgb"], ["c", "c_copy"]]
    assert _names(res.exact_groups) == [["a", "a_copy"], ["c", "c_copy"]]
    assert "skipped" in caplog.text and res.n_files == len(f) + 2


def test_summarise_counts_scopes(images):
    root, f = images
    groups = audit.find_duplicates(f.values(), near=True)
    s = audit.summarise(groups, root=root, label="exact+near").set_index("scope")
    assert s.loc["within Training", "groups"] == 1 and s.loc["within Training", "files"] == 2
    assert s.loc["within Testing", "groups"] == 1  # c, c_copy
    assert s.loc["across splits", "groups"] == 1 and s.loc["across splits", "files"] == 3
    assert s.loc["across splits", "test_files_with_train_duplicate"] == 2
    assert s.loc["spanning classes", "groups"] == 1  # a_small is under meningioma
    assert set(s["duplicates"]) == {"exact+near"}


def test_describe_labels_exact_and_near(images):
    root, f = images
    res = audit.audit_files(f.values(), near=True)
    d = audit.describe(res.groups, root=root, exact_groups=res.exact_groups)
    kinds = d.groupby("group")["kind"].first().tolist()
    assert sorted(kinds) == ["exact", "near", "near"]
    row = d[d["path"] == "Testing/meningioma/a_small.jpg"].iloc[0]
    assert (row["split"], row["class"]) == ("Testing", "meningioma")


def test_duplicate_free_drops_test_files_with_a_training_copy(images):
    root, f = images
    groups = audit.find_duplicates(f.values(), near=True)
    train = sorted((root / "Training").rglob("*.*"))
    test = sorted((root / "Testing").rglob("*.*"))
    clean = audit.duplicate_free(test, groups, reference=train)
    assert sorted(p.stem for p in clean) == ["c", "c_copy", "e"]  # test-only copies stay


def test_save_and_load_duplicates(images, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    root, f = images
    res = audit.audit_files(f.values(), near=True)
    out = audit.save_duplicates(res.groups, "brain_tumor_masoud", root=root, source="phantom",
                                exact_groups=res.exact_groups)
    assert out == paths.processed_dir("brain_tumor_masoud") / "duplicates.csv"
    back = audit.load_duplicates("brain_tumor_masoud", root=root, source="phantom")
    assert back == res.groups
    with pytest.raises(AuditError, match="made on.*phantom.*not on 'brain_tumor_masoud'"):
        audit.load_duplicates("brain_tumor_masoud", root=root, source="brain_tumor_masoud")
    with pytest.raises(AuditError, match="no duplicate list"):
        audit.load_duplicates("brain_tumor_sartaj", root=root)


def test_real_masoud_testing_exact_duplicates():
    shared = paths.shared_data_dir()
    if shared is None or not (shared / "brain_tumor_masoud" / "Testing").is_dir():
        pytest.skip("../shared/data/brain_tumor_masoud is not present")
    root = shared / "brain_tumor_masoud"
    groups = audit.find_duplicates(sorted((root / "Testing").rglob("*.jpg")))
    s = audit.summarise(groups, root=root, splits=("Testing",)).set_index("scope")
    # Measured once (21 groups of 51 files, none spanning classes); the data are fixed.
    assert (s.loc["within Testing", "groups"], s.loc["within Testing", "files"]) == (21, 51)
    assert s.loc["spanning classes", "groups"] == 0


def test_audit_resolved_saves_used_list_and_audits_found_partial(images, monkeypatch, tmp_path):
    from medrepro.data.datasets import ResolvedDataset

    monkeypatch.setenv("MEDREPRO_DATA", str(tmp_path / "data"))
    root, _ = images
    # the fixture's class folders are Masoud's; its "Testing" alone stands for found real data
    used = ResolvedDataset("brain_tumor_masoud", root, source="phantom", is_phantom=True,
                           origin="phantom", splits_present=("Training", "Testing"),
                           found_root=root, found_splits=("Testing",))
    table = audit.audit_resolved(used)
    assert list(table["source"].unique()) == ["phantom", "brain_tumor_masoud"]
    assert table["used_by_studies"].tolist() == [True] * 4 + [False] * 3
    ph = table[table["source"] == "phantom"].set_index("scope")
    assert ph.loc["across splits", "exact_groups"] == 1 and ph.loc["across splits",
                                                                    "near_groups"] == 1
    assert ph.loc["across splits", "test_with_train_copy_near"] == 2
    assert ph.loc["across splits", "test_with_train_copy_exact"] == 1
    assert ph.loc["within Training", "near_files"] == 2 and ph.loc["within Training",
                                                                   "exact_files"] == 0
    real = table[table["source"] == "brain_tumor_masoud"].set_index("scope")
    # the files the studies read (the one image rule: .png too) are the files audited
    assert real.loc["within Testing", ["exact_groups", "near_groups"]].tolist() == [1, 2]
    assert real["files_audited"].iloc[0] == 5  # a_copy, a_small, e, c, c_copy
    saved = audit.load_duplicates("brain_tumor_masoud", root=root, source="phantom")
    assert _names(saved) == [["a", "a_copy", "a_small"], ["b", "b_rgb"], ["c", "c_copy"]]


def test_audit_table_leaves_non_applicable_cells_blank(images):
    root, f = images
    res = audit.audit_files(f.values(), near=True)
    t = audit.audit_table(res, root=root, dataset="brain_tumor_masoud", source="phantom",
                          splits=("Training", "Testing")).set_index("scope")
    assert t.loc["within Training", "test_with_train_copy_exact"] == ""
    assert t.loc["across splits", "test_with_train_copy_exact"] == 1  # a_copy
    assert "<NA>" not in t.to_markdown()
