"""Which precision a run computes in: the bf16 hardware of this machine and the Keras dtype policy.

``hardware_path()`` reads the CPU flags (``/proc/cpuinfo`` on Linux) and, when TensorFlow is
already imported, the GPUs' compute capability, and says which path bfloat16 takes here:

- ``"bf16 via GPU"``: a GPU of compute capability >= 8.0 (Ampere or newer) has bf16 tensor cores;
- ``"bf16 via AMX"``: an Intel CPU with AMX-BF16 tiles (oneDNN runs bf16 matmuls on them);
- ``"bf16 via AVX512_BF16"``: a CPU with the AVX-512 bf16 dot-product instructions but no AMX:
  bf16 runs, but TensorFlow's oneDNN bf16 matmul was measured 1.3-1.8x SLOWER than float32 there
  (``bench/bf16_matmul_isa.py``), so the default stays float32;
- ``"fp32: no bf16 hardware"``: bf16 would be emulated (slower than float32), so the default is
  float32.

``resolve_policy("auto", path)`` turns the ``--dtype_policy`` flag into a Keras policy name: "auto"
is ``mixed_bfloat16`` on the AMX and GPU paths and ``float32`` otherwise. Under ``mixed_bfloat16`` variables,
gradients and optimizer state stay float32 and activations are bfloat16; the layers keep LayerNorm
statistics, softmax, the LSTM cell state, the heads and every loss in float32
(docs/performance.md, "bfloat16").

Nothing here imports TensorFlow or Keras at module level: the core layer of the package stays light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys

FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"
AUTO = "auto"
#: What ``--dtype_policy`` accepts.
POLICY_CHOICES = (AUTO, FLOAT32, MIXED_BFLOAT16)

AMX = "bf16 via AMX"
AVX512_BF16 = "bf16 via AVX512_BF16"
GPU = "bf16 via GPU"
NO_BF16 = "fp32: no bf16 hardware"


@dataclasses.dataclass(frozen=True)
class HardwarePath:
    """The precision path of a machine.

    Attributes:
      name: one of ``AMX``, ``AVX512_BF16``, ``GPU``, ``NO_BF16``.
      detail: what was found (CPU flags, GPU names and capabilities), for the run's first line.
    """

    name: str
    detail: str = ""

    @property
    def has_bf16(self) -> bool:
        return self.name != NO_BF16

    @property
    def default_policy(self) -> str:
        """``mixed_bfloat16`` where bf16 was measured faster than float32 (AMX, GPU), else
        ``float32`` (AVX512_BF16 alone: slower; no bf16 hardware: emulated)."""
        return MIXED_BFLOAT16 if self.name in (AMX, GPU) else FLOAT32


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU feature flags of ``cpuinfo`` (the text of ``/proc/cpuinfo``; read when None).

    Empty when the file does not exist (not Linux) or has no ``flags`` line.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def gpu_capabilities() -> list[tuple[str, tuple[int, int] | None]]:
    """``(device name, compute capability or None)`` of each visible GPU.

    Only asks TensorFlow when it is already imported (importing it just to look would cost seconds
    in processes that never use it); an empty list otherwise or when there is no GPU.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return []
    found = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        except (ValueError, RuntimeError):
            capability = None
        found.append((device.name, tuple(capability) if capability else None))
    return found


def hardware_path(
    flags: frozenset[str] | set[str] | None = None,
    gpus: list[tuple[str, tuple[int, int] | None]] | None = None,
) -> HardwarePath:
    """The bf16 path of this machine (or of the given CPU ``flags`` and ``gpus``, for tests).

    A GPU with compute capability >= 8.0 wins (the model then runs there); otherwise the CPU's
    ``amx_bf16`` flag, then ``avx512_bf16``; otherwise float32.
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    gpus = gpu_capabilities() if gpus is None else gpus
    bf16_gpus = [f"{n} (compute {c[0]}.{c[1]})" for n, c in gpus if c and tuple(c) >= (8, 0)]
    if bf16_gpus:
        return HardwarePath(GPU, ", ".join(bf16_gpus))
    if "amx_bf16" in flags:
        return HardwarePath(AMX, "CPU flags amx_bf16, amx_tile")
    if "avx512_bf16" in flags:
        return HardwarePath(AVX512_BF16, "CPU flag avx512_bf16, no amx_bf16")
    other = [f"{n} (compute {c[0]}.{c[1]})" if c else n for n, c in gpus]
    why = "GPUs without bf16: " + ", ".join(other) if other else "no amx_bf16 / avx512_bf16"
    return HardwarePath(NO_BF16, why)


#: "auto" picks bf16 only for models at least this wide: below it the casts cost more than the
#: bf16 matmuls save (docs/performance.md, "bfloat16": slower at d=48, faster at d=512).
BF16_MIN_HIDDEN_SIZE = 256


def resolve_policy(
    requested: str, path: HardwarePath | None = None, hidden_size: int | None = None
) -> str:
    """The Keras policy name for ``--dtype_policy=requested``.

    "auto" is the hardware's default (:attr:`HardwarePath.default_policy`), except that a model
    narrower than :data:`BF16_MIN_HIDDEN_SIZE` (``hidden_size``) stays float32; an explicit policy
    is kept as asked.
    """
    if requested not in POLICY_CHOICES:
        raise ValueError(
            f"dtype_policy must be one of {', '.join(POLICY_CHOICES)}; got {requested!r}"
        )
    if requested != AUTO:
        return requested
    if hidden_size is not None and hidden_size < BF16_MIN_HIDDEN_SIZE:
        return FLOAT32
    return (path or hardware_path()).default_policy


def describe(policy: str, path: HardwarePath | None = None) -> str:
    """The one line a run prints first: the policy it computes in and the machine's bf16 path."""
    path = path or hardware_path()
    line = f"precision: {policy} ({path.name}; {path.detail})"
    if policy == MIXED_BFLOAT16 and not path.has_bf16:
        line += "; bf16 is emulated here and slower than float32"
    elif policy == MIXED_BFLOAT16 and path.name == AVX512_BF16:
        line += "; bf16 matmuls without AMX were measured slower than float32"
    return line


def hidden_size_of(config) -> int | None:
    """``hidden_size`` of a ``ModelConfig`` or of its dict form (``run.json``)."""
    if isinstance(config, dict):
        return config.get("hidden_size")
    return getattr(config, "hidden_size", None)


def apply(requested: str, hidden_size: int | None = None) -> str:
    """Resolves ``--dtype_policy`` for a model of ``hidden_size``, sets it as Keras's global policy
    (models built afterwards compute in it) and returns the line the run prints first."""
    path = hardware_path()
    policy = resolve_policy(requested, path, hidden_size)
    set_policy(policy)
    line = describe(policy, path)
    if requested == AUTO and policy == FLOAT32 and path.default_policy == MIXED_BFLOAT16:
        line += f"; auto keeps float32 below d={BF16_MIN_HIDDEN_SIZE}"
    return line


def set_policy(policy: str) -> None:
    """Sets Keras's global dtype policy (models built afterwards compute in it)."""
    import keras

    keras.config.set_dtype_policy(resolve_policy(policy))


@contextlib.contextmanager
def policy_scope(policy: str | None):
    """Builds models inside under ``policy`` (None: leave the current one), then restores it.

    A layer keeps the policy it was built with, so the model computes in it after the scope too.
    """
    if policy is None:
        yield
        return
    import keras

    before = keras.config.dtype_policy()
    set_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
