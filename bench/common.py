"""Shared helpers of the benchmark suite: statistics, the matmul peak probe, machine facts.

Everything that imports TensorFlow does it inside a function: ``python -m bench.run`` starts
without TensorFlow and loads it only in the (sub)process that measures.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from mmnas_tf.machine import ONEDNN_ENV

#: Square sizes of the matmul peak. Above 3072 this 2-core machine gets slower (cache misses).
PEAK_SIZES = (2048, 3072)
#: The size of the matmul probe interleaved with model steps (0.17 s at ~100 GFLOP/s).
PROBE_SIZE = 2048


def summary(values: list[float]) -> dict:
    """Median, min, max and count of a list of measurements (empty list -> count 0 only)."""
    if not values:
        return {"n": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def peak_rss_mb() -> float:
    """Peak resident set size of THIS process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by ``fn()``; ``fn`` must block until its result exists (call ``.numpy()``)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_lscpu(text: str) -> dict:
    """``lscpu``'s model name and CPU flags: ``{"lscpu_model_name": str, "lscpu_flags": [...]}``
    (``"not recorded"`` / ``[]`` for a field the text lacks)."""
    fields = dict(
        (key.strip(), value.strip())
        for key, sep, value in (line.partition(":") for line in text.splitlines())
        if sep
    )
    return {
        "lscpu_model_name": fields.get("Model name") or "not recorded",
        "lscpu_flags": sorted(fields.get("Flags", "").split()),
    }


def lscpu() -> dict:
    """:func:`parse_lscpu` of this machine's ``lscpu`` (``not recorded`` without ``lscpu``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    return parse_lscpu(out)


def report_context(module: str, args: list[str] | None = None) -> dict:
    """What every committed report must say about its run (the documentation tables print it):
    the machine (``lscpu`` model name and flags, core count), the 1-minute load average now and
    the command line ``python -m <module> <args>`` (``args`` defaults to ``sys.argv[1:]``)."""
    args = sys.argv[1:] if args is None else args
    return {
        "machine": {**lscpu(), "cores": os.cpu_count()},
        "load_average_1min": load_average(),
        "command": " ".join(["python", "-m", module, *map(shlex.quote, args)]),
    }


def onednn_record() -> dict:
    """This process's oneDNN setting, for a report: ``onednn_env``, ``TF_ENABLE_ONEDNN_OPTS`` as
    it saw it, and ``onednn_on``, whether its TensorFlow runs its oneDNN operations (what the
    variable and the CPU decided at import; None when TensorFlow does not say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        on = None
    else:
        on = bool(_pywrap_util_port.IsMklEnabled())
    return {"onednn_env": os.environ.get(ONEDNN_ENV, "unset"), "onednn_on": on}


def machine() -> dict:
    """CPU model, core count, TensorFlow/Keras versions, oneDNN flag and load average."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or "unknown"
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("unknown", "x86_64", ""):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "simd": sorted(f for f in flags if f.startswith(("avx512", "avx2", "fma", "amx"))),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        **onednn_record(),
        "load_average_1min": load_average(),
    }


#: Dtypes of the matmul peak and probes: a mixed_bfloat16 step computes in bfloat16 (oneDNN runs
#: its matmuls on AMX where the CPU has it), so its share is taken against the bfloat16 matmul.
PROBE_DTYPES = ("float32", "bfloat16")


def compute_dtype() -> str:
    """The compute dtype of Keras's global policy (``float32``, ``bfloat16`` or ``float16``)."""
    import keras

    return keras.mixed_precision.global_policy().compute_dtype


class MatmulProbe:
    """Matmul FLOP/s of ``dtype`` in a ``tf.function``: the machine's reference limit.

    Square (``size`` x ``size``) by default, or ``shape=(m, k, n)``: an [m, k] x [k, n] product
    (e.g. the model's own feed-forward matmul); ``jit_compile`` probes XLA's kernel instead of
    the graph's. Called between model steps so the peak and the model share the same (noisy,
    shared) machine state; ratios are taken against the median of the probes of the same process.
    """

    def __init__(
        self,
        size: int = PROBE_SIZE,
        dtype: str = "float32",
        shape: tuple[int, int, int] | None = None,
        jit_compile: bool = False,
    ):
        import tensorflow as tf

        self.size, self.dtype = size, dtype
        self.shape = shape or (size, size, size)
        m, k, n = self.shape
        self.a = tf.cast(tf.random.normal((m, k), seed=1), dtype)
        self.b = tf.cast(tf.random.normal((k, n), seed=2), dtype)
        self.fn = tf.function(tf.matmul, jit_compile=jit_compile)
        self.fn(self.a, self.b).numpy()  # trace + warm-up (oneDNN builds its kernel; XLA compiles)
        self.samples: list[float] = []

    def measure(self, repeats: int = 1) -> float:
        """Runs ``repeats`` matmuls and records each one's GFLOP/s; returns the last."""
        m, k, n = self.shape
        flops = 2.0 * m * k * n
        for _ in range(repeats):
            seconds = timed(lambda: self.fn(self.a, self.b).numpy())
            self.samples.append(flops / seconds / 1e9)
        return self.samples[-1]

    def result(self) -> dict:
        return {"size": self.size, "dtype": self.dtype, "gflops": summary(self.samples)}


class Probes:
    """One :class:`MatmulProbe` per dtype (each entry's own compute dtype and float32), measured
    together between steps; ``own`` is the dtype the entry's shares are taken against."""

    def __init__(self, size: int, own: str):
        self.own = own
        dtypes = (own,) + tuple(d for d in PROBE_DTYPES if d != own)
        self.probes = {d: MatmulProbe(size, d) for d in dtypes}

    def measure(self) -> None:
        for probe in self.probes.values():
            probe.measure()

    def result(self) -> dict:
        return {d: p.result() for d, p in self.probes.items()}

    def gflops(self, dtype: str | None = None) -> dict:
        return summary(self.probes[dtype or self.own].samples)


def matmul_peak(
    sizes: tuple[int, ...] = PEAK_SIZES, repeats: int = 7, dtypes: tuple[str, ...] = PROBE_DTYPES
) -> dict:
    """Peak GFLOP/s per dtype: the best median over ``sizes``, every (dtype, size) interleaved
    round by round. ``peak_gflops`` is float32's, ``peak_gflops_<dtype>`` the others'."""
    probes = [MatmulProbe(size, dtype) for dtype in dtypes for size in sizes]
    for _ in range(repeats):
        for probe in probes:
            probe.measure()
    out: dict = {"per_dtype": {}}
    for dtype in dtypes:
        per_size = {str(p.size): summary(p.samples) for p in probes if p.dtype == dtype}
        best = max(per_size.values(), key=lambda s: s["median"])
        out["per_dtype"][dtype] = {
            "per_size": per_size,
            "peak_gflops": best["median"],
            "peak_gflops_max": best["max"],
        }
    fp32 = out["per_dtype"].get("float32", next(iter(out["per_dtype"].values())))
    out.update(per_size=fp32["per_size"], peak_gflops=fp32["peak_gflops"])
    out["peak_gflops_max"] = fp32["peak_gflops_max"]
    for dtype in dtypes:
        if dtype != "float32":
            out[f"peak_gflops_{dtype}"] = out["per_dtype"][dtype]["peak_gflops"]
    return out


def run_program(main: Callable, machine_settings: bool = True) -> None:
    """Runs a benchmark program's ``main(argv)`` as ``python -m`` does and exits with its status:
    TensorFlow's start-up and run-time chatter hidden as in the library's programs
    (``mmnas_tf.console.quiet_start``). ``machine_settings=False`` leaves oneDNN at TensorFlow's
    default, for programs whose numerics a protocol pins (the search-space table builders)."""
    from mmnas_tf import console

    console.quiet_start(sys.argv, machine_settings=machine_settings)
    sys.exit(main(sys.argv[1:]))
