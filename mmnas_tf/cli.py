"""The command-line convention of every entry point (``python -m mmnas_tf.<name>``).

An entry point module defines ``define_flags(fv)`` (its absl flags, on the ``FlagValues`` it is
given), ``main(argv)`` (parses ``argv`` with :func:`parse`, runs, returns its result) and ends with
``if __name__ == "__main__": cli.run(main)``. Nothing is defined or run at import: each ``main``
parses its OWN ``FlagValues`` rather than the global ``FLAGS``, so the quickstart and the tests call
several entry points' ``main(argv)`` in one process without duplicate-flag errors. :func:`run` is
``absl.app.run`` with absl's own flags at their defaults and absl logging at WARNING (TF's
per-checkpoint INFO lines drown the progress bar). A flag an entry point does not use is not
defined, so passing it fails with the list of accepted flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from absl import app, flags, logging

from mmnas_tf.engine.distribute import STRATEGIES
from mmnas_tf.experiments import (
    ExperimentConfig,
    apply_overrides,
    experiment_names,
    get_experiment,
    split_overrides,
)


def define_experiment_flags(
    fv: flags.FlagValues, genotype: bool = True, strategy: bool = True
) -> None:
    """--config, --override, --data_dir, --seed, and --genotype / --strategy where the driver uses
    them (a search has no genotype to take; evaluation runs on one device)."""
    flags.DEFINE_string(
        "config", None,
        f"Experiment: a name ({', '.join(experiment_names())}) or a recipe file (.py defining "
        "get_config(), see mmnas_tf.experiments).",
        flag_values=fv,
    )  # fmt: skip
    flags.DEFINE_multi_string(
        "override", [],
        "section.field=value overrides, e.g. --override=model.hidden_size=64 "
        "--override='train.epochs=2;data.batch_size=16'.",
        flag_values=fv,
    )  # fmt: skip
    if genotype:
        flags.DEFINE_string(
            "genotype",
            None,
            "Architecture JSON (ours or the original's); default: the experiment's.",
            flag_values=fv,
        )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Dataset folder (manifest.json + shards); overrides data.data_dir.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "seed", None, "Overrides data.seed (also seeds initialisation and dropout).", flag_values=fv
    )
    if strategy:
        flags.DEFINE_enum(
            "strategy",
            "default",
            list(STRATEGIES),
            "tf.distribute strategy (multi_worker reads TF_CONFIG).",
            flag_values=fv,
        )
    flags.mark_flag_as_required("config", flag_values=fv)


def experiment_from_flags(fv: flags.FlagValues, extra: Sequence[str] = ()) -> ExperimentConfig:
    """The experiment named by --config with --override, --data_dir, --seed and ``extra``
    overrides applied (validated)."""
    overrides = split_overrides(fv.override) + list(extra)
    if fv.data_dir:
        overrides.append(f"data.data_dir={fv.data_dir}")
    if fv.seed is not None:
        overrides.append(f"data.seed={fv.seed}")
    return apply_overrides(get_experiment(fv.config), overrides)


def flag_overrides(fv: flags.FlagValues, pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``field=value`` overrides from convenience flags: ``pairs`` of (flag name, config field);
    flags left at None are skipped."""
    return [f"{key}={getattr(fv, flag)}" for flag, key in pairs if getattr(fv, flag) is not None]


def parse(define: Callable[[flags.FlagValues], None], argv: Sequence[str]) -> flags.FlagValues:
    """Parses ``argv`` (program name first) with a fresh FlagValues; ``--help`` prints the flags
    and exits."""
    fv = flags.FlagValues()
    define(fv)
    if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
        print(fv.get_help())
        raise SystemExit(0)
    try:
        rest = fv(list(argv))
    except flags.UnrecognizedFlagError as e:
        accepted = ", ".join(f"--{name}" for name in sorted(fv))
        raise app.UsageError(f"{e}; {argv[0]} accepts {accepted}") from e
    except flags.Error as e:
        raise app.UsageError(str(e)) from e
    if len(rest) > 1:
        raise app.UsageError(f"unexpected positional arguments {rest[1:]}")
    return fv


def run(main: Callable[[list[str]], object]) -> None:
    """``app.run`` that leaves flag parsing to ``main`` (its own FlagValues)."""

    def parser(argv: list[str]) -> list[str]:
        flags.FLAGS(argv[:1])  # absl's own flags keep their defaults; ours are parsed by main
        logging.set_verbosity(
            logging.WARNING
        )  # TF's per-checkpoint INFO lines drown the progress bar
        return list(argv)

    app.run(lambda argv: main(argv) and None, flags_parser=parser)
