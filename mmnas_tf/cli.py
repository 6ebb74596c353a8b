"""The command-line convention of every entry point (``python -m mmnas_tf.<name>``).

An entry point module defines ``define_flags(fv)`` (its absl flags, on the ``FlagValues`` it is
given), ``main(argv)`` (parses ``argv`` with :func:`parse`, runs, returns its result) and ends with
``if __name__ == "__main__": cli.run(main)``. Nothing is defined or run at import: each ``main``
parses its OWN ``FlagValues`` rather than the global ``FLAGS``, so the quickstart and the tests call
several entry points' ``main(argv)`` in one process without duplicate-flag errors. :func:`run` is
``absl.app.run`` with absl's own flags at their defaults. A flag an entry point does not use is not
defined, so passing it fails with the list of accepted flags.

Every entry point takes ``--verbosity`` (0 by default: TensorFlow's start-up and C++ log lines and
absl INFO lines are hidden, see :mod:`mmnas_tf.console`, which this module imports before anything
imports TensorFlow); one that shows progress takes ``--[no]progress``
(:func:`define_progress_flag`); one that builds a model takes ``--dtype_policy``
(:func:`define_dtype_policy_flag`) and prints the precision it took first; ``train``, ``search``,
``evaluate`` and ``export`` take the machine-choice overrides (:func:`define_machine_flags`) and
print the machine's choice (:mod:`mmnas_tf.machine`) when their flags are parsed.

Faults (:func:`run_main`, which :func:`run` calls): an error a user can cause or meet -- a bad flag,
a missing or unreadable file, a corrupt or truncated record, a full disk, an unreachable server, an
input our code refuses with a ``ValueError`` -- ends the program with one line on stderr,
``mmnas_tf.<name>: error: <what, naming the file or flag>; <what to do>``, and a non-zero exit
status (2 for a bad flag, 130 for Ctrl-C, else 1); the traceback is printed above it only at
``--verbosity=2``. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from absl import app, flags, logging

from mmnas_tf import console  # first: quiets TensorFlow before it is imported
from mmnas_tf.engine.distribute import STRATEGIES
from mmnas_tf.experiments import (
    ExperimentConfig,
    apply_overrides,
    experiment_names,
    get_experiment,
    split_overrides,
)
from mmnas_tf.machine import (
    ONEDNN_CHOICES,
    ONEDNN_ENV,
    apply_threads,
    check_onednn_env,
    choose,
    describe,
)
from mmnas_tf.nas.choices import ARCH_PATHS, ESTIMATORS
from mmnas_tf.precision import FLOAT32, POLICY_CHOICES


@dataclasses.dataclass(frozen=True)
class ConvenienceFlag:
    """A flag that is sugar for one ``--override`` key: ``--name=V`` is ``--override=key=V``,
    in every entry point that takes it.

    Attributes:
      name: the flag.
      key: the experiment field it sets (``section.field``).
      kind: ``string``, ``integer``, ``float``, ``bool`` or ``enum``.
      help: what the field is.
      choices: the accepted values of an ``enum`` (a callable, asked when the flag is defined:
        an estimator registered later is accepted too).
    """

    name: str
    key: str
    kind: str
    help: str
    choices: Callable[[], Sequence[str]] | None = None


#: Every convenience flag of the drivers (``README.md``, "Convenience flags", is this table).
#: Unset flags leave the experiment's value; set ones apply after ``--override``.
CONVENIENCE_FLAGS = (
    ConvenienceFlag(
        "data_dir", "data.data_dir", "string", "dataset folder (manifest.json + shards)"
    ),
    ConvenienceFlag(
        "seed", "data.seed", "integer", "data order; also seeds initialisation and dropout"
    ),
    ConvenienceFlag("batch_size", "data.batch_size", "integer", "global training batch"),
    ConvenienceFlag("eval_batch_size", "data.eval_batch_size", "integer", "evaluation batch"),
    ConvenienceFlag("epochs", "train.epochs", "integer", "training epochs"),
    ConvenienceFlag(
        "steps_per_epoch",
        "train.steps_per_epoch",
        "integer",
        "cap on steps (search: cycles) per epoch",
    ),
    ConvenienceFlag(
        "checkpoint_every_steps",
        "train.checkpoint_every_steps",
        "integer",
        "mid-epoch checkpoint interval in steps (search: cycles)",
    ),
    ConvenienceFlag(
        "jit_compile",
        "train.jit_compile",
        "bool",
        "XLA for the training step and the search cycle (unset: the machine's choice, XLA for "
        "the training step of float32 models of d >= 256 on AVX2-only CPUs, graph mode "
        "otherwise and for the search); refused with a distribution strategy "
        "(--strategy=mirrored / multi_worker)",
    ),
    ConvenienceFlag("warmup_epochs", "search.warmup_epochs", "integer", "weight-only epochs T_w"),
    ConvenienceFlag("search_epochs", "search.search_epochs", "integer", "alternating epochs"),
    ConvenienceFlag(
        "early_stop_patience",
        "search.early_stop_patience",
        "integer",
        "stop when the argmax genotype is unchanged for this many search epochs (0 = never)",
    ),
    ConvenienceFlag(
        "weight_steps",
        "search.weight_steps_per_arch_step",
        "integer",
        "weight steps u per theta step",
    ),
    ConvenienceFlag(
        "prior_logit",
        "search.prior_logit",
        "float",
        "initial theta of the prior ops; 0 = uniform warm-up sampling",
    ),
    ConvenienceFlag(
        "estimator",
        "search.estimator",
        "enum",
        "gumbel (straight-through Gumbel-softmax), proxyless (the original's binary gates), uniform (random paths, weights only, then a selection step), gumbel_selection (gumbel, then a selection step)",
        lambda: ESTIMATORS,
    ),
    ConvenienceFlag(
        "arch_paths",
        "search.arch_paths",
        "enum",
        "what a gumbel theta step computes: all candidates, or only the sampled one (cheaper but biased)",
        lambda: ARCH_PATHS,
    ),
)
_DEFINERS = {
    "string": flags.DEFINE_string,
    "integer": flags.DEFINE_integer,
    "float": flags.DEFINE_float,
    "bool": flags.DEFINE_bool,
}


def convenience_flag(name: str) -> ConvenienceFlag:
    """The row of :data:`CONVENIENCE_FLAGS` named ``name``."""
    for row in CONVENIENCE_FLAGS:
        if row.name == name:
            return row
    raise ValueError(
        f"no convenience flag {name!r}; accepted: {[r.name for r in CONVENIENCE_FLAGS]}"
    )


def define_convenience_flags(
    fv: flags.FlagValues, names: Sequence[str], renamed: dict[str, str] | None = None
) -> None:
    """Defines the rows of :data:`CONVENIENCE_FLAGS` named ``names`` (each defaults to None:
    the experiment's value). ``renamed``: old flag name -> its convenience flag; the old name is
    refused at parse time with a message naming the new one."""
    for name in names:
        row = convenience_flag(name)
        text = f"Sugar for --override={row.key}=VALUE: {row.help}."
        if row.kind == "enum":
            flags.DEFINE_enum(name, None, list(row.choices()), text, flag_values=fv)
        else:
            _DEFINERS[row.kind](name, None, text, flag_values=fv)
    for old, new in (renamed or {}).items():
        row = convenience_flag(new)
        flags.DEFINE_string(old, None, f"Renamed: --{new} ({row.key}).", flag_values=fv)
        flags.register_validator(
            old,
            lambda value: value is None,
            f"--{old} is now --{new} (sugar for --override={row.key}=VALUE)",
            flag_values=fv,
        )


def convenience_overrides(fv: flags.FlagValues) -> list[str]:
    """The ``key=value`` overrides of the convenience flags set on the command line."""
    return [
        f"{row.key}={fv[row.name].value}"
        for row in CONVENIENCE_FLAGS
        if row.name in fv and fv[row.name].value is not None
    ]


def define_experiment_flags(
    fv: flags.FlagValues, genotype: bool = True, strategy: bool = True
) -> None:
    """--config, --override, --data_dir, --seed (convenience flags), and --genotype / --strategy
    where the driver uses them (a search has no genotype to take; evaluation runs on one
    device)."""
    flags.DEFINE_string(
        "config",
        None,
        f"Experiment: a name ({', '.join(experiment_names())}) or a recipe file (.py defining "
        "get_config(), see mmnas_tf.experiments).",
        flag_values=fv,
    )
    flags.DEFINE_multi_string(
        "override",
        [],
        "section.field=value overrides, e.g. --override=model.hidden_size=64 "
        "--override='train.epochs=2;data.batch_size=16'.",
        flag_values=fv,
    )
    if genotype:
        flags.DEFINE_string(
            "genotype",
            None,
            "Architecture JSON (ours or the original's); default: the experiment's.",
            flag_values=fv,
        )
    define_convenience_flags(fv, ("data_dir", "seed"))
    if strategy:
        flags.DEFINE_enum(
            "strategy",
            "default",
            list(STRATEGIES),
            "tf.distribute strategy (multi_worker reads TF_CONFIG).",
            flag_values=fv,
        )
    flags.mark_flag_as_required("config", flag_values=fv)


def experiment_from_flags(fv: flags.FlagValues, prepare=None) -> ExperimentConfig:
    """The experiment named by --config, through ``prepare(exp) -> exp`` when given (e.g. a search
    recipe), with --override, then the convenience flags set (:func:`convenience_overrides`),
    applied (validated)."""
    overrides = split_overrides(fv.override) + convenience_overrides(fv)
    exp = get_experiment(fv.config)
    return apply_overrides(prepare(exp) if prepare else exp, overrides)


def define_dtype_policy_flag(fv: flags.FlagValues, default: str = FLOAT32) -> None:
    """--dtype_policy: ``auto`` (bf16 where the hardware computes it natively and the model is
    wide enough, see ``mmnas_tf.precision``), ``float32`` or ``mixed_bfloat16``. Training,
    search and evaluation default to ``auto``; exports, imports and predictions to ``float32``
    (reproducible across machines)."""
    flags.DEFINE_enum(
        "dtype_policy",
        default,
        list(POLICY_CHOICES),
        "Precision of the model: auto (mixed_bfloat16 on AMX CPUs and GPUs of "
        "compute capability >= 8.0 for models of d >= 256, else float32), float32, or "
        "mixed_bfloat16 (bf16 matmuls; variables, LayerNorm statistics, softmax, logits and "
        "losses float32). The run's first line says which it took.",
        flag_values=fv,
    )


def define_machine_flags(fv: flags.FlagValues) -> None:
    """--onednn_opts, --intra_op_threads, --inter_op_threads: overrides of the machine's choice
    (:mod:`mmnas_tf.machine`), which :func:`parse` prints in one line and applies."""
    flags.DEFINE_enum(
        "onednn_opts",
        "auto",
        list(ONEDNN_CHOICES),
        f"{ONEDNN_ENV} for this run: auto (the machine's choice: on for AVX2-only CPUs, "
        "TensorFlow's default elsewhere; an exported value is kept), on or off. Read before "
        "TensorFlow is imported.",
        flag_values=fv,
    )
    for pool in ("intra_op", "inter_op"):
        flags.DEFINE_integer(
            f"{pool}_threads",
            None,
            f"TensorFlow's {pool.replace('_', '-')} thread pool size (default: the machine's "
            "choice, TensorFlow's default).",
            lower_bound=0,
            flag_values=fv,
        )


def define_saved_model_flags(fv: flags.FlagValues, vocab_dir: str | None = None) -> None:
    """The flags of an entry point that writes a TF Serving version (``export``,
    ``import_official``): --export_dir, --version, --vocab, --answer_vocab, --overwrite,
    --fixed_shapes and --dtype_policy (default float32). ``vocab_dir``: where the vocabularies
    are read from by default (said in the help), e.g. "the run's data_dir"."""
    where = f" (default: {vocab_dir}/%s)" if vocab_dir else ""
    flags.DEFINE_string(
        "export_dir",
        None,
        "Base directory; the SavedModel goes to <export_dir>/<version>.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "version", None, "Version N (default: newest existing + 1).", flag_values=fv
    )
    flags.DEFINE_string(
        "vocab",
        None,
        "Token vocabulary (one token per line), stored as an asset; with it the export also gets "
        "the predict_text signature" + (where % "vocab.txt" if where else "") + ".",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "answer_vocab",
        None,
        "VQA answers (one per line, line i = answer i)"
        + (where % "answers.txt" if where else "")
        + ".",
        flag_values=fv,
    )
    flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.", flag_values=fv)
    flags.DEFINE_bool(
        "fixed_shapes",
        False,
        "Signatures take exactly max_tokens tokens and max_regions regions (static shapes for "
        "XLA / TPU) instead of any number up to them.",
        flag_values=fv,
    )
    define_dtype_policy_flag(fv)


def define_progress_flag(fv: flags.FlagValues) -> None:
    """--[no]progress, for an entry point that shows progress (:class:`console.Progress`)."""
    flags.DEFINE_bool(
        "progress",
        True,
        "Progress on stderr: a self-updating line on a terminal, one line per epoch (or per "
        "pass) when stderr is not a terminal; --noprogress: none.",
        flag_values=fv,
    )


def parse(define: Callable[[flags.FlagValues], None], argv: Sequence[str]) -> flags.FlagValues:
    """Parses ``argv`` (program name first) with a fresh FlagValues (``define``'s flags and
    ``--verbosity``); ``--help`` prints the flags and exits. Applies ``--verbosity`` to absl
    logging and ``--[no]progress`` (when defined) to :mod:`mmnas_tf.console`."""
    fv, rest = parse_with_arguments(define, argv)
    if rest:
        raise app.UsageError(f"unexpected positional arguments {rest}")
    return fv


def parse_with_arguments(
    define: Callable[[flags.FlagValues], None], argv: Sequence[str], doc: str = ""
) -> tuple[flags.FlagValues, list[str]]:
    """:func:`parse` for an entry point that takes positional arguments: (flags, the positional
    arguments); ``--help`` prints ``doc`` before the flags."""
    fv = flags.FlagValues()
    define(fv)
    flags.DEFINE_integer(
        "verbosity", None, console.VERBOSITY_HELP, lower_bound=0, upper_bound=2, flag_values=fv
    )
    if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
        print((doc + "\n" if doc else "") + fv.get_help())
        raise SystemExit(0)
    try:
        rest = fv(list(argv))
    except flags.UnrecognizedFlagError as e:
        accepted = ", ".join(f"--{name}" for name in sorted(fv))
        raise app.UsageError(f"{e}; {program_name(argv)} accepts {accepted}") from e
    except flags.Error as e:
        raise app.UsageError(str(e)) from e
    verbosity = console.resolve_verbosity(fv.verbosity, os.environ)
    logging.set_verbosity(logging.INFO if verbosity else logging.WARNING)
    if "progress" in fv:
        console.set_progress(fv.progress)
    if "onednn_opts" in fv:
        print(apply_machine_choice(fv), flush=True)
    return fv, rest[1:]


def apply_machine_choice(fv: flags.FlagValues) -> str:
    """The machine's choice with the flags' overrides: checks the oneDNN setting took, sets the
    thread pools, returns the line the run prints among its first."""
    choice = choose(None, fv.onednn_opts, fv.intra_op_threads, fv.inter_op_threads)
    check_onednn_env(choice)
    apply_threads(choice)
    return describe(choice, os.environ)


def run(main: Callable[[list[str]], object]) -> None:
    """``app.run`` that leaves flag parsing to ``main`` (its own FlagValues) and reports faults
    through :func:`run_main`."""

    def parser(argv: list[str]) -> list[str]:
        flags.FLAGS(argv[:1])  # absl's own flags keep their defaults; ours are parsed by main
        logging.set_verbosity(logging.WARNING)  # until main's --verbosity is parsed
        return list(argv)

    app.run(lambda argv: run_main(main, argv), flags_parser=parser)


def run_main(main: Callable[[list[str]], object], argv: Sequence[str]) -> None:
    """Calls ``main(argv)``; a fault (:func:`describe_fault`) raises ``SystemExit`` with its exit
    status after printing ``<program>: error: <message>`` to stderr (the traceback first at
    ``--verbosity=2``). Anything else propagates with its traceback."""
    try:
        main(list(argv))
    except BaseException as e:  # noqa: B036  (Ctrl-C is a fault too)
        fault = describe_fault(e)
        if fault is None:
            raise
        message, status = fault
        flag = console.verbosity_from_argv(argv)
        if console.resolve_verbosity(flag, os.environ) >= 2:
            traceback.print_exc()
        print(f"{program_name(argv)}: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(status) from None


def program_name(argv: Sequence[str]) -> str:
    """``mmnas_tf.train`` for ``argv[0]`` = ``.../mmnas_tf/train.py`` (``python -m``) or ``train``."""
    name = os.path.splitext(os.path.basename(argv[0] if argv else ""))[0] or "mmnas_tf"
    return name if name.startswith("mmnas_tf") else f"mmnas_tf.{name}"


#: The message of an assertion inside a TensorFlow graph: ``assertion failed: [<message>]``.
_TF_ASSERTION = re.compile(r"assertion failed: \[(.*?)\](?:\s*\[\[|\s*$)", re.S)
#: Framing TensorFlow adds around an op's message.
_TF_FRAMING = re.compile(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]|\s*name: ?$", re.S)
_ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
_GRPC_BIND = "Failed to bind to address"
_PORT_IN_USE = "the port is in use (another server?): stop that one or choose another --port"
_RERUN = "run the same command again (a training or search continues from its last checkpoint)"


def tf_message(error: BaseException) -> str:
    """The message of a TensorFlow error without the framing TensorFlow adds (function and node
    names, ``[Op:...]``, a graph's stack of Python frames): the assertion's own text, or the last
    non-empty line."""
    text = getattr(error, "message", None) or str(error)
    match = _TF_ASSERTION.search(text)
    if match:
        return match.group(1).strip()
    lines = [_TF_FRAMING.sub("", line).strip() for line in text.splitlines()]
    return next((line for line in reversed(lines) if line), text.strip())


def describe_fault(error: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit status) for an error a user can cause or meet, else None (a bug).

    The message names the flag or file (the error's own text does, or its ``filename``) and ends
    with what to do."""
    if isinstance(error, app.UsageError | flags.Error):
        return f"{error} (--help lists the flags)", 2
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted; {_RERUN}", 130
    import tensorflow as tf

    if isinstance(error, OSError | tf.errors.OpError):
        message = _file_fault(error, tf)
        return None if message is None else (message, 1)
    client_error = _serving_client_error()
    if client_error is not None and isinstance(error, client_error):
        if error.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return (
                f"no answer from the server ({error}); start it (python -m mmnas_tf.serve or "
                "tensorflow_model_server) or give its host:port with --server (--rest for its "
                "REST port)"
            ), 1
        return str(error), 1
    if isinstance(error, RuntimeError) and str(error).startswith(_GRPC_BIND):
        return f"{str(error).split(';')[0]}: {_PORT_IN_USE}", 1  # gRPC's bind failure
    if isinstance(error, ValueError) or type(error).__name__ == "UnpicklingError":
        return str(error), 1  # our own refusals name the input and the accepted values
    return None


def _file_fault(error: Exception, tf) -> str | None:
    """The message of an OSError or a TensorFlow op error about a file, a disk or memory; None for
    other op errors (a bug: an op refusing a tensor our code made)."""
    if isinstance(error, OSError):
        name, what = error.filename, error.strerror or str(error)
        text = f"{name}: {what}" if name else str(error)
        full = error.errno == errno.ENOSPC
    else:
        text = tf_message(error)
        full = _ENOSPC in text
    if full:
        return (
            f"{text}; free space on that disk (or write elsewhere: --model_dir, --export_dir, "
            f"--out_dir) and {_RERUN}"
        )
    if "corrupt or truncated TFRecord file" in text or isinstance(error, tf.errors.DataLossError):
        return (
            f"{text}; write the data again with the command that made it (mmnas_tf.convert or "
            "mmnas_tf.synthetic)"
        )
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return f"{text}: {_PORT_IN_USE} / --rest_api_port"
    if isinstance(error, FileNotFoundError | tf.errors.NotFoundError):
        return f"{text}; check the path given on the command line (or in the experiment)"
    if isinstance(error, PermissionError | tf.errors.PermissionDeniedError):
        return f"{text}; give this user access to it or choose another path"
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return f"{text}; out of memory: lower the batch size (--batch_size or --override)"
    if isinstance(error, OSError):
        return f"{text}; check the path given on the command line"
    return None


def _serving_client_error() -> type | None:
    """The serving client's error class when a program loaded the client (gRPC is not imported
    for it otherwise)."""
    module = sys.modules.get("mmnas_tf.devserver.client")
    return getattr(module, "ServingClientError", None)
