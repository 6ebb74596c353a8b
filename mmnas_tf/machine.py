"""The default path per machine kind: what a run takes on the CPU it finds, and what backs it.

``choose()`` reads the CPU flags (``/proc/cpuinfo``, or an injected set) and returns one
:class:`MachineChoice` per kind: ``AMX`` (``amx_bf16``), ``AVX-512`` (``avx512f`` without AMX),
``AVX2`` (``avx2`` without AVX-512) or ``other`` (none of them: another architecture or an older
x86). It covers five settings, and changes one only where a committed report under
``bench/results/`` measured the alternative on that kind (:data:`EVIDENCE`); every other setting
stays what it was before per-kind choices existed, and the run's line says so:

- precision (what ``--dtype_policy=auto`` resolves to for models of d >= 256): ``mixed_bfloat16``
  on AMX (``model_suite.json``: bf16 training b8 0.67x and evaluation b64 0.53x the fp32 time;
  ``bf16_speed.json``), ``float32`` elsewhere (``bf16_speed.json``, ``matmul_isa``: oneDNN's bf16
  matmul capped to AVX512_CORE_BF16 took 1.5x the fp32 time, emulated 3.9-4.2x);
- XLA in evaluation: off on every kind (AMX: ``model_suite.json``, evaluation b64 graph 1.60 s
  against XLA 1.66 s; AVX2: ``model_steps_amd_avx2.json``, XLA 0.96x the graph time at b64 and
  0.79x at b8 per step, kept off because evaluation pads each batch to its own largest region
  count and XLA compiles once per shape, 8-11 s at paper size there; AVX-512: no committed
  report, so off as before);
- XLA in training (``train.jit_compile`` left at none): on for models of d >= 256 on AVX2
  (``side_by_side_xla_amd_avx2.json``, ``side_by_side_xla_default_amd_avx2.json`` and
  ``side_by_side_xla_probe_amd_avx2.json``, three runs side by side with the original: the
  training step b8 XLA + FusedAdam 1.22x, 1.09x and 1.08x the original's examples/s on padded
  inputs where graph + FusedAdam made 1.13x, 0.96x and 0.96x, and 1.74x, 1.67x and 1.67x on
  realistic ones against 1.54x, 1.47x and 1.50x; XLA compiles once per input shape, 23-39 s
  each at d=512 there, paid back within a few hundred steps per shape), off elsewhere (not
  measured side by side); only in float32 on one replica (:func:`resolve_train_xla`);
- ``TF_ENABLE_ONEDNN_OPTS``: ``1`` on AVX2 (``side_by_side_onednn_amd_avx2.json``,
  ``side_by_side_onednn_choice_amd_avx2.json``, control
  ``side_by_side_onednn_unset_amd_avx2.json``: TensorFlow's own default there is off, because its
  x86 build turns oneDNN on by default only on CPUs with one of :data:`TF_ONEDNN_DEFAULT_FLAGS`;
  with it on, TensorFlow's matmul at the model's shape went from 85 to 142-143 GFLOP/s and the
  default path's side-by-side ratios with the original to 1.24x and 1.26x in padded training b8,
  1.96x and 2.00x realistic, 1.55x and 1.62x in padded evaluation b64 and 2.09x and 2.08x
  realistic, against 1.15x, 1.72x, 1.03x and 1.52x in the control run of the same hour with it
  off), TensorFlow's default on every other kind (AMX and the AVX-512 kind measured have ``amx_*``
  / ``avx512_bf16``, so it is on there already; no committed report compares it). A serving program
  (:data:`SERVING_PROGRAMS`) keeps TensorFlow's default on AVX2 too: at batch 1 oneDNN made our
  SavedModel slower there (``serving_latency_onednn_amd_avx2.json`` against
  ``serving_latency_onednn_off_amd_avx2.json``, the same hour: p50 60.0 ms against 55.3, 8 clients
  21.9-23.6 examples/s against 24.9-25.8), although batches of 8 gained. ``--onednn_opts=on|off``
  overrides it. It is set before TensorFlow is imported (:func:`set_onednn_env`, called by
  ``mmnas_tf.console`` when a program starts), and a value exported in the environment is kept
  unless the flag is given;
- threads: TensorFlow's defaults on every kind (AVX2: ``threads_amd_avx2.json``, one inter-op
  thread against the default, per-step medians 0.87-1.00x the default's time in evaluation b64
  and 1.07-1.14x in training b8, so the default is kept; no other kind has a committed report);
  ``--intra_op_threads`` / ``--inter_op_threads`` set them.

Three choices change numerics: precision, which was machine-dependent already, XLA in training
(another summation order than graph mode) and oneDNN on AVX2 (other kernels, other summation
orders, as on the kinds where it is TensorFlow's default). They are pinned where numerics matter:
the reference tests pass explicit policies, build their layers outside the trainer and hold at
tolerances that every kind meets with oneDNN on or off; the search-space table builder computes in
its protocol's ``float32`` with its own graph-mode step and leaves oneDNN at TensorFlow's default
(``machine_settings=False``); and models under d=256 (every test's and the table's) never take XLA
by this choice. Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from mmnas_tf.precision import FLOAT32, MIXED_BFLOAT16, cpu_flags

AMX = "AMX"
AVX512 = "AVX-512"
AVX2 = "AVX2"
OTHER = "other"
KINDS = (AMX, AVX512, AVX2, OTHER)

#: XLA in training is the machine's choice only for models at least this wide (measured at d=512;
#: at the tests' widths a compile costs more than the run).
TRAIN_XLA_MIN_HIDDEN_SIZE = 256

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
#: ``--onednn_opts``: "auto" keeps the kind's choice (on for AVX2, TensorFlow's default elsewhere).
ONEDNN_CHOICES = ("auto", "on", "off")
_ONEDNN_VALUE = {"on": "1", "off": "0"}
#: Programs that answer requests one by one: on AVX2 they keep TensorFlow's oneDNN default (off),
#: the faster at batch 1 there.
SERVING_PROGRAMS = frozenset({"mmnas_tf.serve"})
#: TensorFlow's x86 Linux build turns its oneDNN operations on by default when the CPU has any of
#: these (``/proc/cpuinfo`` names); without them ``TF_ENABLE_ONEDNN_OPTS`` unset means off.
TF_ONEDNN_DEFAULT_FLAGS = frozenset(
    {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
)

#: The reports each kind's choices rest on (files under bench/results/), for the run's line.
EVIDENCE = {
    AMX: "precision and XLA: model_suite.json, bf16_speed.json",
    AVX512: "precision: bf16_speed.json (matmul_isa)",
    AVX2: "precision: no bf16 hardware; oneDNN: side_by_side_onednn_amd_avx2.json, "
    "side_by_side_onednn_choice_amd_avx2.json (on), serving_latency_onednn_off_amd_avx2.json (off "
    "when serving); XLA in evaluation: model_steps_amd_avx2.json (kept off); XLA in training: "
    "side_by_side_xla_amd_avx2.json, side_by_side_xla_default_amd_avx2.json, "
    "side_by_side_xla_probe_amd_avx2.json (on); inter-op threads: threads_amd_avx2.json (1 not "
    "faster, default kept)",
    OTHER: "precision: no bf16 hardware",
}


@dataclasses.dataclass(frozen=True)
class MachineChoice:
    """The settings a run takes on one machine kind.

    Attributes:
      kind: one of :data:`KINDS`.
      detail: the CPU flags that decided the kind.
      precision: what ``--dtype_policy=auto`` resolves to for wide models here.
      eval_xla: whether evaluation is XLA-compiled.
      train_xla: whether the training step is XLA-compiled when ``train.jit_compile`` is none,
        for float32 models of d >= :data:`TRAIN_XLA_MIN_HIDDEN_SIZE` on one replica.
      onednn_opts: ``TF_ENABLE_ONEDNN_OPTS`` to set ("1" / "0"), or None: TensorFlow's default.
      onednn_default: TensorFlow's own default on this CPU (True: on), or None where the rule
        is not known (not x86).
      intra_op_threads, inter_op_threads: thread pools (0: TensorFlow's default).
      overridden: names of the settings a flag set, for the line.
    """

    kind: str
    detail: str
    precision: str
    eval_xla: bool = False
    train_xla: bool = False
    onednn_opts: str | None = None
    onednn_default: bool | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    overridden: tuple[str, ...] = ()


def machine_kind(flags: frozenset[str] | set[str]) -> tuple[str, str]:
    """(kind, the flags that decided it) of a CPU flag set."""
    if "amx_bf16" in flags:
        return AMX, "amx_bf16"
    if "avx512f" in flags:
        bf16 = "avx512_bf16" if "avx512_bf16" in flags else "no avx512_bf16"
        return AVX512, f"avx512f, {bf16}, no amx_bf16"
    if "avx2" in flags:
        return AVX2, "avx2, no avx512f"
    return OTHER, "no avx2"


def tensorflow_onednn_default(flags: frozenset[str] | set[str]) -> bool | None:
    """Whether TensorFlow turns oneDNN on by itself on a CPU with these flags (x86 Linux: when it
    has one of :data:`TF_ONEDNN_DEFAULT_FLAGS`); None when the flags are not x86's."""
    if "sse2" not in flags:
        return None
    return bool(TF_ONEDNN_DEFAULT_FLAGS & set(flags))


def choose(
    flags: frozenset[str] | set[str] | None = None,
    onednn_opts: str = "auto",
    intra_op_threads: int | None = None,
    inter_op_threads: int | None = None,
    serving: bool = False,
) -> MachineChoice:
    """The choice for this machine (or for the given CPU ``flags``), with the flags' overrides:
    ``onednn_opts`` "on" / "off" and explicit thread counts (None: the kind's choice).
    ``serving``: for a program that answers requests one by one (:data:`SERVING_PROGRAMS`)."""
    if onednn_opts not in ONEDNN_CHOICES:
        raise ValueError(
            f"onednn_opts must be one of {', '.join(ONEDNN_CHOICES)}; got {onednn_opts!r}"
        )
    for name, value in (
        ("intra_op_threads", intra_op_threads),
        ("inter_op_threads", inter_op_threads),
    ):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 (0: TensorFlow's default); got {value}")
    flags = cpu_flags() if flags is None else frozenset(flags)
    kind, detail = machine_kind(flags)
    choice = MachineChoice(
        kind,
        detail,
        MIXED_BFLOAT16 if kind == AMX else FLOAT32,
        train_xla=kind == AVX2,
        onednn_opts="1" if kind == AVX2 and not serving else None,
        onednn_default=tensorflow_onednn_default(flags),
    )
    changes, overridden = {}, []
    if onednn_opts != "auto":
        changes["onednn_opts"] = _ONEDNN_VALUE[onednn_opts]
        overridden.append("onednn_opts")
    for name, value in (
        ("intra_op_threads", intra_op_threads),
        ("inter_op_threads", inter_op_threads),
    ):
        if value is not None:
            changes[name] = value
            overridden.append(name)
    return dataclasses.replace(choice, **changes, overridden=tuple(overridden))


def _threads(n: int) -> str:
    return str(n) if n else "TensorFlow's default"


def _onednn_words(choice: MachineChoice, environ: Mapping[str, str] | None) -> str:
    """The oneDNN part of the line: what the run has, and why, given its ``environ`` (None: the
    choice alone, as when the program sets it before importing TensorFlow)."""
    default = "TensorFlow's default"
    if choice.onednn_default is not None:
        default += f" on this CPU: {'on' if choice.onednn_default else 'off'}"
    value = choice.onednn_opts if environ is None else environ.get(ONEDNN_ENV)
    if "onednn_opts" in choice.overridden:
        return f"{ONEDNN_ENV}={choice.onednn_opts}"
    if value is None:
        unset = f"{ONEDNN_ENV} unset ({default}"
        if choice.onednn_opts is None:
            return unset + ")"
        return (
            f"{unset}; the machine's choice, {choice.onednn_opts}, is set only when a program "
            "starts, before TensorFlow is imported)"
        )
    if value == choice.onednn_opts:
        return f"{ONEDNN_ENV}={value} (the machine's choice; {default})"
    chosen = choice.onednn_opts or "unset"
    return f"{ONEDNN_ENV}={value} (from the environment; the machine's choice: {chosen})"


def describe(choice: MachineChoice, environ: Mapping[str, str] | None = None) -> str:
    """The one line a run prints among its first: the kind, each setting, and what backs it.
    ``environ``: the process's environment, to say what oneDNN setting the run really has (an
    exported value, or none when TensorFlow was imported before the program could set it)."""
    onednn = _onednn_words(choice, environ)
    flagged = f"; set by flags: {', '.join(choice.overridden)}" if choice.overridden else ""
    return (
        f"machine: {choice.kind} ({choice.detail}): precision auto = {choice.precision} "
        f"(d >= 256), training "
        f"{f'XLA (d >= {TRAIN_XLA_MIN_HIDDEN_SIZE})' if choice.train_xla else 'in graph mode'}, "
        f"evaluation {'XLA' if choice.eval_xla else 'in graph mode (no XLA)'}, "
        f"{onednn}, threads intra-op {_threads(choice.intra_op_threads)} / inter-op "
        f"{_threads(choice.inter_op_threads)}; measured: {EVIDENCE[choice.kind]} "
        f"(bench/results/); the rest not measured on this kind, kept as before{flagged}"
    )


def resolve_train_xla(
    requested: bool | None,
    choice: MachineChoice,
    hidden_size: int,
    replicas: int,
    compute_dtype: str,
) -> tuple[bool, str | None]:
    """Whether the training step is XLA-compiled, and the line to print when the machine chose
    it (None otherwise). ``requested``: ``train.jit_compile`` (true / false as given; None: the
    machine's choice, which is XLA only where :attr:`MachineChoice.train_xla` holds, for float32
    models of d >= :data:`TRAIN_XLA_MIN_HIDDEN_SIZE` on one replica: XLA with a distribution
    strategy fails on CPU, and only float32 was measured)."""
    if requested is not None:
        return bool(requested), None
    chosen = (
        choice.train_xla
        and hidden_size >= TRAIN_XLA_MIN_HIDDEN_SIZE
        and replicas == 1
        and compute_dtype == "float32"
    )
    if not chosen:
        return False, None
    return True, (
        f"training step: XLA (the machine's choice on {choice.kind} for float32 models of d >= "
        f"{TRAIN_XLA_MIN_HIDDEN_SIZE}; d={hidden_size}): it compiles once per input shape, tens "
        "of seconds each at paper size, before that shape's first step; --jit_compile=false "
        "keeps graph mode"
    )


def onednn_from_argv(argv: Sequence[str]) -> str:
    """The ``--onednn_opts`` value of a command line ("auto" when absent; the flag parser reports
    a bad value)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--onednn_opts="):
            return arg.split("=", 1)[1]
        if arg == "--onednn_opts" and i + 1 < len(argv):
            return argv[i + 1]
    return "auto"


def set_onednn_env(
    argv: Sequence[str],
    environ=os.environ,
    flags: frozenset[str] | None = None,
    serving: bool = False,
) -> None:
    """Sets ``TF_ENABLE_ONEDNN_OPTS`` from ``--onednn_opts`` on ``argv`` (or the machine's choice)
    before TensorFlow is imported, which reads it once; an exported value is kept unless the
    flag is given. ``flags``: the CPU's (None: this machine's); ``serving``: the choice of a
    serving program (:func:`choose`)."""
    requested = onednn_from_argv(argv)
    if requested not in ONEDNN_CHOICES:
        return  # the flag parser refuses it with the accepted values
    if requested == "auto" and ONEDNN_ENV in environ:
        return
    value = choose(flags, onednn_opts=requested, serving=serving).onednn_opts
    if value is not None:
        environ[ONEDNN_ENV] = value


def check_onednn_env(choice: MachineChoice, environ: Mapping[str, str] = os.environ) -> None:
    """Raises ValueError when ``--onednn_opts`` asks for a value TensorFlow was not imported with
    (a library caller that imported TensorFlow first: the variable is read at import). The
    machine's own choice is not checked: the line says what the run has instead."""
    if "onednn_opts" not in choice.overridden:
        return
    if environ.get(ONEDNN_ENV) != choice.onednn_opts:
        raise ValueError(
            f"--onednn_opts={'on' if choice.onednn_opts == '1' else 'off'} needs "
            f"{ONEDNN_ENV}={choice.onednn_opts} before TensorFlow is imported; give the flag to "
            f"python -m mmnas_tf.<program> or export {ONEDNN_ENV}={choice.onednn_opts}"
        )


def apply_threads(choice: MachineChoice) -> None:
    """Sets TensorFlow's thread pools where the choice names a count (before any op runs)."""
    import tensorflow as tf

    threading = tf.config.threading
    for count, get, set_ in (
        (
            choice.intra_op_threads,
            threading.get_intra_op_parallelism_threads,
            threading.set_intra_op_parallelism_threads,
        ),
        (
            choice.inter_op_threads,
            threading.get_inter_op_parallelism_threads,
            threading.set_inter_op_parallelism_threads,
        ),
    ):
        if count and get() != count:
            try:
                set_(count)
            except RuntimeError as e:
                raise ValueError(
                    f"thread counts can only be set before TensorFlow runs its first op ({e}); "
                    "give --intra_op_threads / --inter_op_threads on the command line"
                ) from e
