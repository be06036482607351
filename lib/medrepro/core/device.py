"""The machine a run is on: platform (Kaggle, Colab, local), GPUs, and the dtype policy chosen.

- :func:`detect_platform` reads the environment variables Kaggle and Colab set
  (``KAGGLE_KERNEL_RUN_TYPE``, ``COLAB_RELEASE_TAG``/``COLAB_GPU``).
- :func:`list_gpus` asks ``nvidia-smi`` (name, memory, compute capability; no TensorFlow start-up),
  else TensorFlow's device details.
- :func:`choose_precision`: ``mixed_float16`` only where every GPU has compute capability
  >= 7.0 (tensor cores: T4, V100, A100, L4, H100); ``float32`` on older GPUs (P100: 6.0) and on
  CPU, where float16 is slower, not faster.
- :func:`configure_precision` sets Keras' global policy to that choice and remembers it, so the
  provenance sidecars of :mod:`medrepro.reporting.report` record it (:func:`summary`).
- :func:`print_setup` is what a notebook's first cell prints: platform, device, dtype policy.
- :func:`cpu_count` (the cores this process may use), :func:`machine` (the plan's and the rates
  table's view of the accelerator), :func:`available_replicas` (what a strategy would mirror
  over) and :func:`activate_strategy`: every other module takes its device facts from here.
"""

from __future__ import annotations

import os
import platform as _platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

MIXED_POLICY = "mixed_float16"
FLOAT32_POLICY = "float32"
MIN_MIXED_CAPABILITY = (7, 0)  # tensor cores; P100 (6.0) gains nothing from float16
NVIDIA_SMI_TIMEOUT_S = 10.0
KAGGLE, COLAB, LOCAL = "kaggle", "colab", "local"

_policy_chosen: str | None = None
# model name -> {"jit_compile": bool, "why": str}: what medrepro.training.xla chose in this process
_jit_compile: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Gpu:
    """One GPU: ``memory_mib`` in MiB (None if unknown), ``capability`` as ``(major, minor)``."""

    name: str
    memory_mib: int | None
    capability: tuple[int, int] | None

    def describe(self) -> str:
        mem = f"{self.memory_mib / 1024:.0f} GiB" if self.memory_mib else "memory unknown"
        cc = ".".join(map(str, self.capability)) if self.capability else "unknown"
        return f"{self.name}, {mem}, compute capability {cc}"


def detect_platform(environ: dict[str, str] | None = None) -> str:
    """``"kaggle"`` (a Kaggle notebook), ``"colab"`` or ``"local"``, from the environment."""
    env = os.environ if environ is None else environ
    if env.get("KAGGLE_KERNEL_RUN_TYPE") or env.get("KAGGLE_URL_BASE"):
        return KAGGLE
    if env.get("COLAB_RELEASE_TAG") or env.get("COLAB_GPU") or "google.colab" in sys.modules:
        return COLAB
    return LOCAL


def list_gpus() -> list[Gpu]:
    """The visible GPUs (``CUDA_VISIBLE_DEVICES=-1`` or ``""``: none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    gpus = _gpus_from_nvidia_smi()
    if gpus is None and "tensorflow" in sys.modules:  # no nvidia-smi: ask TF if it is loaded
        return _gpus_from_tensorflow()
    return gpus or []


def _gpus_from_nvidia_smi() -> list[Gpu] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = "--query-gpu=name,memory.total,compute_cap"
    try:
        out = subprocess.run([exe, query, "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [parse_nvidia_smi_line(line) for line in out.splitlines() if line.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:  # nvidia-smi lists every GPU of the machine; CUDA sees only these
        wanted = [int(i) for i in visible.split(",") if i.strip().isdigit()]
        gpus = [g for i, g in enumerate(gpus) if i in wanted] if wanted else gpus
    return gpus


def parse_nvidia_smi_line(line: str) -> Gpu:
    """``"Tesla T4, 15360, 7.5"`` → ``Gpu("Tesla T4", 15360, (7, 5))`` (unknown fields: None)."""
    name, memory, cap = ([p.strip() for p in line.rsplit(",", 2)] + ["", ""])[:3]
    mem = int(float(memory)) if memory.replace(".", "", 1).isdigit() else None
    return Gpu(name=name, memory_mib=mem, capability=_parse_capability(cap))


def _parse_capability(text: str) -> tuple[int, int] | None:
    major, _, minor = str(text).partition(".")
    if not (major.isdigit() and (minor or "0").isdigit()):
        return None
    return int(major), int(minor or 0)


def _gpus_from_tensorflow() -> list[Gpu]:
    try:
        import tensorflow as tf
    except ImportError:
        return []
    out = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        cap = details.get("compute_capability")
        out.append(Gpu(name=details.get("device_name", dev.name), memory_mib=None,
                       capability=tuple(cap) if cap else None))
    return out


def choose_precision(gpus: list[Gpu]) -> str:
    """``mixed_float16`` if there are GPUs and all have compute capability >= 7.0, else float32."""
    if gpus and all(g.capability is not None and g.capability >= MIN_MIXED_CAPABILITY
                    for g in gpus):
        return MIXED_POLICY
    return FLOAT32_POLICY


def configure_precision(*, force: str | None = None, gpus: list[Gpu] | None = None) -> str:
    """Set Keras' global dtype policy to :func:`choose_precision` (or ``force``); return it.

    ``mixed_float16`` on GPUs of compute capability >= 7.0, ``float32`` on older GPUs and CPU.
    ``force`` sets a policy explicitly (tests, or ``"float32"`` on a GPU). Model builders keep
    their output layer in float32 (``dtype="float32"``), so losses and softmax stay numerically
    safe under mixed precision.
    """
    global _policy_chosen
    import keras

    policy = force or choose_precision(list_gpus() if gpus is None else gpus)
    keras.mixed_precision.set_global_policy(policy)
    _policy_chosen = policy
    return policy


def current_policy() -> str | None:
    """The policy :func:`configure_precision` set, else Keras' global one if Keras is loaded."""
    if _policy_chosen is not None:
        return _policy_chosen
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return keras.mixed_precision.global_policy().name
    except AttributeError:
        return None


def record_jit_compile(model_name: str, jit_compile: bool, why: str) -> None:
    """Remember the XLA setting a model trained with (:mod:`medrepro.training.xla`)."""
    _jit_compile[model_name] = {"jit_compile": bool(jit_compile), "why": why}


def summary(gpus: list[Gpu] | None = None) -> dict[str, Any]:
    """Platform, GPUs, dtype policy and the XLA setting of every model trained so far in this
    process (``jit_compile``: ``{model: {"jit_compile", "why"}}``), as a JSON-able dict (what
    the sidecars record)."""
    gpus = _cached_gpus() if gpus is None else gpus
    return {"platform": detect_platform(), "gpu_count": len(gpus),
            "gpus": [asdict(g) for g in gpus], "replicas": replicas_in_sync(),
            "dtype_policy": current_policy(),
            "jit_compile": {k: dict(v) for k, v in sorted(_jit_compile.items())}}


def cpu_count() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def machine(gpus: list[Gpu] | None = None) -> dict[str, Any]:
    """The accelerator a run would use, without importing TensorFlow: ``kind`` ("gpu" or
    "cpu"), ``name``, ``count``, ``memory_mib``, ``cpus`` and a one-line ``description``
    (:func:`list_gpus`; none when ``nvidia-smi`` is absent or ``CUDA_VISIBLE_DEVICES`` hides
    them). The plan and the measured-rates table key on it."""
    gpus = list_gpus() if gpus is None else gpus
    cpus = cpu_count()
    if gpus:
        name, mem = gpus[0].name, gpus[0].memory_mib or 0
        return {"kind": "gpu", "name": name, "count": len(gpus), "memory_mib": mem, "cpus": cpus,
                "description": f"{len(gpus)}x {name} ({mem} MiB), {cpus} CPUs"}
    proc = _platform.processor() or _platform.machine()
    return {"kind": "cpu", "name": proc, "count": 0, "memory_mib": 0, "cpus": cpus,
            "description": f"CPU only ({cpus} cores, {proc}), no GPU"}


def describe(gpus: list[Gpu] | None = None) -> str:
    """One line: ``"2 x Tesla T4, 15 GiB, compute capability 7.5"`` or ``"CPU only"``."""
    gpus = _cached_gpus() if gpus is None else gpus
    if not gpus:
        return f"CPU only ({os.cpu_count()} cores)"
    names = {g.describe() for g in gpus}
    return "; ".join(f"{sum(g.describe() == n for g in gpus)} x {n}" for n in sorted(names))


_gpu_cache: list[Gpu] | None = None


def _cached_gpus() -> list[Gpu]:
    global _gpu_cache
    if _gpu_cache is None:
        _gpu_cache = list_gpus()
    return _gpu_cache


def print_setup() -> dict[str, Any]:
    """Print the platform, the device and the dtype policy that will be chosen.

    The data source is not printed here: this runs before papermill injects the parameters, so
    :func:`medrepro.run.notebook.setup` prints it once it is known.
    """
    gpus = _cached_gpus()
    info = summary(gpus)
    print(f"medrepro on {info['platform']}: {describe(gpus)}")
    print(f"dtype policy: {current_policy() or choose_precision(gpus)}"
          f" (mixed_float16 only at compute capability >= "
          f"{'.'.join(map(str, MIN_MIXED_CAPABILITY))})")
    return info


# Tests: mirror over this many logical CPU devices, to exercise the multi-GPU path without GPUs.
MIRROR_CPUS_ENV = "MEDREPRO_MIRROR_CPUS"
# "0": stay on one device even with several GPUs (medrepro.training.train pads the batches that would
# split unevenly over the replicas, see pipeline.even_batches).
MIRROR_ENV = "MEDREPRO_MIRROR"


def available_replicas() -> int:
    """The replicas :func:`activate_strategy` would mirror over, without importing TensorFlow:
    ``$MEDREPRO_MIRROR_CPUS`` logical CPU devices (tests), else the GPUs when there are several,
    else 1 (also with ``$MEDREPRO_MIRROR=0``)."""
    n_cpus = int(os.environ.get(MIRROR_CPUS_ENV) or 0)
    if os.environ.get(MIRROR_ENV) == "0":
        return 1
    if n_cpus >= 2:
        return n_cpus
    n_gpus = len(_cached_gpus())
    return n_gpus if n_gpus >= 2 else 1


def activate_strategy() -> int:
    """With several GPUs, make ``tf.distribute.MirroredStrategy`` the default strategy; return
    the number of replicas (1: the single-device path, unchanged, TensorFlow not even imported).

    Uses ``tf.distribute.experimental_set_strategy``, so every model built and trained later in
    the process (the notebooks' training cells, ``medrepro.training.train.fit``) is mirrored without a
    ``with strategy.scope():`` in each cell. ``$MEDREPRO_MIRROR_CPUS=N`` splits the CPU into N
    logical devices and mirrors over them instead (tests); ``$MEDREPRO_MIRROR=0`` keeps one
    device. Call it before TensorFlow runs any operation (``notebook.setup`` does, in the
    notebook's first cells).
    """
    if available_replicas() < 2:
        return 1
    import tensorflow as tf

    n_cpus = int(os.environ.get(MIRROR_CPUS_ENV) or 0)
    if tf.distribute.has_strategy():  # set earlier in this kernel
        return tf.distribute.get_strategy().num_replicas_in_sync
    if n_cpus >= 2:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n_cpus)])
        strategy = tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = distribution_strategy()
    tf.distribute.experimental_set_strategy(strategy)
    return strategy.num_replicas_in_sync


def distribution_strategy():
    """``tf.distribute.MirroredStrategy`` over all GPUs when there are several, else the default.

    Usage: ``with distribution_strategy().scope(): model = build(); model.compile(...)``.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def replicas_in_sync() -> int:
    """Replicas of the current default strategy (1 when none was set or TF is not loaded)."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not tf.distribute.has_strategy():
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync
