"""``./run_all.sh --profile smoke --data kaggle`` as it runs on Kaggle and on Colab, emulated.

- Kaggle: ``KAGGLE_KERNEL_RUN_TYPE`` set, ``MEDREPRO_KAGGLE_INPUT`` a tree with Kaggle's own folder
  names (Sartaj under its slug, MosMed as the full-release mirror under the newer
  ``datasets/<owner>/<slug>/`` mount), RSNA not attached (kagglehub refuses: rules not accepted),
  and two logical CPU devices standing in for T4 ×2 (``MEDREPRO_MIRROR_CPUS=2``).
  ``--only 02 05``: 02 (needs RSNA) fails with the reason, 05 trains every scenario under
  ``MirroredStrategy`` on the attached MosMed mirror.
- Colab: ``COLAB_RELEASE_TAG`` set, no Kaggle inputs, a stub kagglehub (first on ``PYTHONPATH``)
  that returns its own cache folders (never an ``output_dir``), and no internet (MosMed's
  release URLs unreachable). ``--only 01``: 01 reads both brain-tumour sets from the kagglehub
  folders and lists RSNA (rules not accepted) and MosMed (offline) as unavailable; it passes.

Both check that no credential reaches any output, that every saved figure is an ``<img>`` in the
notebook's HTML, and that the run streams its epoch lines and ends with the report page's path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from medrepro.core import paths, profiles
from medrepro.data import phantoms
from medrepro.studies import d

SECRET = "s3cr3t-kaggle-key-value"
RUN_TIMEOUT_S = 900
STUB = textwrap.dedent('''
    """Stand-in kagglehub: serves folders of $STUB_KAGGLEHUB_CACHE, records every call."""
    import os
    import pathlib

    __version__ = "1.0.3"
    CACHE = pathlib.Path(os.environ["STUB_KAGGLEHUB_CACHE"])


    def _get(kind, handle, kwargs):
        with open(CACHE / "calls.log", "a") as log:
            log.write(f"{kind} {handle} {sorted(kwargs)}\\n")
        folder = CACHE / kind / handle / "versions" / "1"
        if not folder.is_dir():
            raise RuntimeError("403 Client Error: Forbidden" if kind == "competitions"
                               else "Max retries exceeded (offline)")
        return str(folder)


    def dataset_download(handle, path=None, **kwargs):
        return _get("datasets", handle, kwargs)


    def competition_download(handle, path=None, **kwargs):
        return _get("competitions", handle, kwargs)
''')


def _mri(root: Path, layout: str) -> None:
    s = profiles.settings("phantoms", "smoke")
    phantoms.make_mri(root, layout=layout, n_per_class=s.mri_train_per_class,
                      n_test_per_class=s.mri_test_per_class, size=s.mri_size, seed=42)


def _mosmed_full_release(root: Path) -> None:
    """MosMedData as the full release: CT-0 and the abnormal volumes split into CT-2 and CT-3."""
    s = profiles.settings("phantoms", "smoke")
    tmp = root.with_name(root.name + ".tmp")
    phantoms.make_mosmed(tmp, n_per_class=s.mosmed_per_class, size=s.mosmed_size, seed=42)
    (root / "CT-1").mkdir(parents=True)  # mild cases: not part of the studies' CT-23
    shutil.move(tmp / "CT-0", root / "CT-0")
    abnormal = sorted((tmp / "CT-23").glob("*.nii.gz"))
    for i, f in enumerate(abnormal):
        dest = root / ("CT-2" if i % 2 == 0 else "CT-3")
        dest.mkdir(exist_ok=True)
        shutil.move(f, dest / f.name)
    shutil.rmtree(tmp)


@pytest.fixture
def listener():
    """A local TCP port that accepts connections: the 'reachable kaggle.com' of the emulation."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"127.0.0.1:{s.getsockname()[1]}"


# An emulated machine whose disks have 2 TB free (shutil.disk_usage, as the plan reads it).
BIG_DISK = """import collections, shutil
_Usage = collections.namedtuple("usage", "total used free")
shutil.disk_usage = lambda path: _Usage(4 * 10**12, 2 * 10**12, 2 * 10**12)
"""


def _run(tmp: Path, env_extra: dict[str, str], only: list[str]) -> subprocess.CompletedProcess:
    stub = tmp / "stub"
    (stub / "kagglehub").mkdir(parents=True, exist_ok=True)
    (stub / "kagglehub" / "__init__.py").write_text(STUB)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE", "COLAB", "MEDREPRO_"))}
    env.update({"PYTHON": sys.executable, "PYTHONPATH": str(stub),
                "MEDREPRO_DATA": str(tmp / "data"), "MEDREPRO_REPORTS": str(tmp / "reports"),
                "MEDREPRO_KAGGLE_ROOT": str(tmp / "kaggle"),
                "STUB_KAGGLEHUB_CACHE": str(tmp / "kagglehub-cache"),
                "KAGGLE_USERNAME": "someone", "KAGGLE_KEY": SECRET,
                "CUDA_VISIBLE_DEVICES": "-1", "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2",
                # nothing leaves the machine: MosMed's release URLs fail at once
                "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
                **env_extra})
    (tmp / "kagglehub-cache").mkdir(exist_ok=True)
    cmd = [str(paths.project_root() / "run_all.sh"), "--profile", "smoke", "--data", "kaggle",
           "--only", *only]
    return subprocess.run(cmd, cwd=paths.project_root(), env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)


def _reports(tmp: Path) -> Path:
    return tmp / "reports" / "smoke"


def _sidecar(tmp: Path, kind: str, artifact: str) -> dict:
    return json.loads((_reports(tmp) / kind / f"{artifact}.json").read_text())


def _assert_no_secret(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    for f in _reports(tmp).rglob("*"):
        if f.is_file() and f.suffix in (".json", ".csv", ".md", ".html", ".ipynb"):
            assert SECRET not in f.read_text(errors="replace"), f"credential in {f}"


def _assert_figures_inline(tmp: Path, notebook: str) -> None:
    figures = [p for p in (_reports(tmp) / "figures").glob("*.json")
               if json.loads(p.read_text())["notebook"] == notebook]
    page = (_reports(tmp) / f"{notebook}.html").read_text()
    assert figures, f"{notebook} saved no figure"
    assert len(re.findall(r"<img\s", page)) >= len(figures), notebook


def _outputs(tmp: Path, notebook: str) -> str:
    nb = nbformat.read(_reports(tmp) / f"{notebook}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)


@pytest.mark.slow
def test_kaggle_emulation_attached_inputs_two_replicas_and_one_failing_study(tmp_path):
    inputs = tmp_path / "kaggle" / "input"
    _mri(inputs / "brain-tumor-classification-mri", "sartaj")
    _mosmed_full_release(inputs / "datasets" / "mathurinache"
                         / "mosmeddata-chest-ct-scans-with-covid19" / "MosMedData")
    # RSNA is not attached: its 21.7 GB cache is planned on /kaggle/temp, which on Kaggle has
    # the room; this host's /tmp may not, so the disks are emulated as Kaggle's (2 TB free)
    (tmp_path / "stub").mkdir(exist_ok=True)
    (tmp_path / "stub" / "sitecustomize.py").write_text(BIG_DISK)
    proc = _run(tmp_path, {"KAGGLE_KERNEL_RUN_TYPE": "Interactive",
                           "MEDREPRO_KAGGLE_INPUT": str(inputs), "MEDREPRO_MIRROR_CPUS": "2"},
                ["02", "05"])
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "FAILED: notebook 02_preprocess_rsna.ipynb" in proc.stderr
    assert "accept the competition rules" in proc.stderr
    summary = json.loads((_reports(tmp_path) / "run_summary.json").read_text())
    assert summary["status"]["05_3dcnn_mosmed"] == "passed"
    assert summary["status"]["02_preprocess_rsna"].startswith("failed: KaggleError")
    assert summary["platform"] == "kaggle"
    # 05 ran on the attached mirror, every scenario under MirroredStrategy with the global batch
    meta = _sidecar(tmp_path, "tables", "D.table4_1")
    assert meta["data_source"] == "mosmed" and not meta["phantom"]
    assert meta["device"]["platform"] == "kaggle" and meta["device"]["replicas"] == 2
    out = _outputs(tmp_path, "05_3dcnn_mosmed")
    trainings = re.findall(r"training \S+: .*", out)
    smoke = profiles.settings("D", "smoke")
    # the scenarios trained (the shorter augmented ones are aug_25's first epochs) + held-out,
    # and D.xai_eval's model trained on shuffled labels
    expected = len(d.nested_plan(smoke.epochs)) + len(d.nested_plan(smoke.heldout_epochs)) + 1
    assert len(trainings) == expected == 5, trainings
    assert out.count("(the first epochs of aug_25's run)") == 3
    assert all("2 replica(s) (MirroredStrategy)" in t for t in trainings), trainings
    batch = smoke.batch  # the global batch, split over the two replicas
    assert f"D.batch: {batch} (global; {batch // 2} per replica × 2 replicas)" in out
    assert "MirroredStrategy over 2 replicas" in out and meta["batch"]["per_replica"] == {
        "D.batch": batch // 2}
    assert "epoch 1/1:" in proc.stdout  # streamed while running
    assert f"report: {_reports(tmp_path) / 'index.html'}" in proc.stdout
    page = (_reports(tmp_path) / "index.html").read_text()
    assert "failed: KaggleError" in page and "05_3dcnn_mosmed.html" in page
    _assert_figures_inline(tmp_path, "05_3dcnn_mosmed")
    _assert_no_secret(tmp_path, proc)


@pytest.mark.slow
def test_colab_emulation_kagglehub_cache_paths_and_unavailable_datasets(tmp_path, listener):
    cache = tmp_path / "kagglehub-cache" / "datasets"
    _mri(cache / "sartajbhuvaji/brain-tumor-classification-mri" / "versions" / "1", "sartaj")
    _mri(cache / "masoudnickparvar/brain-tumor-mri-dataset" / "versions" / "1", "masoud")
    colab = {"COLAB_RELEASE_TAG": "release-colab-emulated",
             "MEDREPRO_KAGGLE_INPUT": str(tmp_path / "no-kaggle-input"),
             "MEDREPRO_KAGGLE_HOST": listener}
    # RSNA not attached: kagglehub would download ~395 GB (and extract as much) into its cache
    # on Colab's disk; the plan refuses before anything is written, naming that download
    refused = _run(tmp_path, colab, ["01"])
    assert refused.returncode == 2 and "not starting: the writes need" in refused.stderr
    assert "rsna_ich kagglehub download" in refused.stdout + refused.stderr
    assert not (tmp_path / "kagglehub-cache" / "calls.log").exists()
    # the same run on a machine whose disk has room (2 TB free, emulated): the acquisition
    (tmp_path / "stub" / "sitecustomize.py").write_text(BIG_DISK)
    proc = _run(tmp_path, colab, ["01"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = (tmp_path / "kagglehub-cache" / "calls.log").read_text().splitlines()
    assert "datasets sartajbhuvaji/brain-tumor-classification-mri []" in calls
    assert "competitions rsna-intracranial-hemorrhage-detection []" in calls  # no output_dir
    inventory = pd.read_csv(_reports(tmp_path) / "tables" / "X.inventory.csv")
    unavailable = inventory[inventory["status"].str.startswith("unavailable")]
    assert set(unavailable["dataset"]) == {"rsna_ich", "mosmed"}
    assert unavailable.loc[unavailable["dataset"] == "rsna_ich", "status"].str.contains(
        "accept the competition rules").all()
    used = inventory[inventory["status"] == "used"]
    assert set(used.loc[used["dataset"] == "brain_tumor_sartaj", "source"]) == {
        "brain_tumor_sartaj"}
    assert _sidecar(tmp_path, "tables", "X.inventory")["device"]["platform"] == "colab"
    meta = _sidecar(tmp_path, "figures", "A.fig1")
    assert meta["data_source"] == "brain_tumor_sartaj" and meta["device"]["replicas"] == 1
    out = _outputs(tmp_path, "01_download")
    assert "medrepro on colab" in out and "UNAVAILABLE mosmed" in out
    assert f"report: {_reports(tmp_path) / 'index.html'}" in proc.stdout
    _assert_figures_inline(tmp_path, "01_download")
    _assert_no_secret(tmp_path, proc)
