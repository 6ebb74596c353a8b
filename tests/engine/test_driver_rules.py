"""The rules the drivers (train, search, evaluate) share: one resolver of the data's sizes, one
rule for XLA under a distribution strategy, no config field an entry point ignores
(``train.jit_compile`` reaches the search too), one style of convenience flag (each is sugar for
one ``--override`` key, listed in one table that the README repeats)."""

from __future__ import annotations

import pathlib
import re

import pytest
from absl import app

from mmnas_tf import cli, evaluate, search, train
from mmnas_tf.experiments import apply_overrides, get_experiment
from mmnas_tf.runs import data_sizes, resolve_experiment
from mmnas_tf.tasks import get_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
DRIVERS = {"train": train, "search": search, "evaluate": evaluate}
#: the flags each driver needs to parse, whatever the test adds.
REQUIRED = {
    "train": ["--config=vqa_tiny", "--model_dir=m"],
    "search": ["--config=vqa_tiny", "--model_dir=m"],
    "evaluate": ["--config=vqa_tiny", "--checkpoint=m"],
}
XLA_REFUSED = (
    r"train\.jit_compile=true \(--jit_compile\) is refused with a distribution strategy "
    r"\(TwoReplicas, 2 replicas\).*--strategy=default"
)


class _Stop(Exception):
    """Raised by a stand-in to end a driver once it has shown what the test checks."""


class TwoReplicas:
    """A stand-in distribution strategy of two replicas (a real one needs two devices, set up
    before TensorFlow starts)."""

    num_replicas_in_sync = 2


@pytest.fixture(scope="module")
def vqa_data(tmp_path_factory):
    from mmnas_tf.synthbench import benchmark

    out = str(tmp_path_factory.mktemp("vqa_data"))
    benchmark.generate(get_task("vqa"), out, "tiny", 12, 0, "float16", None, 32)
    return out


def _experiment(data_dir):
    return apply_overrides(get_experiment("vqa_tiny"), [f"data.data_dir={data_dir}"])


def _experiment_of(name, *argv):
    fv = cli.parse(DRIVERS[name].define_flags, [name, *REQUIRED[name], *argv])
    if name == "search":
        return search.experiment_from_flags(fv)
    return cli.experiment_from_flags(fv)


def _run_driver(name, exp, tmp_path):
    if name == "train":
        return train.train(exp, str(tmp_path / "train"), progress=False)
    if name == "search":
        return search.search(exp, str(tmp_path / "search"), tensorboard=False)
    return evaluate.evaluate(exp, str(tmp_path / "no_checkpoint"))


# ---- one resolver of the data's sizes ------------------------------------------------------------
SIZES = ("feature_size", "vocab_size", "num_answers", "max_regions", "max_tokens")


@pytest.mark.parametrize("name", DRIVERS)
def test_every_driver_builds_its_model_with_the_data_s_sizes(name, vqa_data, tmp_path, monkeypatch):
    """Train, search and evaluate (a model not bound to a run.json) take the same sizes from the
    data, answer count included: ``runs.resolve_experiment``'s."""
    built = []

    def build_model(self, config):
        built.append(config)
        raise _Stop

    monkeypatch.setattr(type(get_task("vqa")), "build_model", build_model)
    exp = _experiment(vqa_data)
    with pytest.raises(_Stop):
        _run_driver(name, exp, tmp_path)
    resolved = resolve_experiment(exp)
    want = {k: getattr(resolved.model, k) for k in SIZES}
    assert {k: getattr(built[0], k) for k in SIZES} == want
    sizes = data_sizes(vqa_data)
    assert (want["feature_size"], want["vocab_size"], want["num_answers"]) == (
        sizes["feature_size"],
        sizes["vocab_size"],
        sizes["num_answers"],
    )
    assert exp.model.num_answers is None and want["num_answers"] > 1


@pytest.mark.parametrize("name", DRIVERS)
def test_every_driver_refuses_an_experiment_without_data(name, tmp_path):
    with pytest.raises(ValueError, match="no data: pass --data_dir"):
        _run_driver(name, get_experiment("vqa_tiny"), tmp_path)


# ---- XLA under a distribution strategy -----------------------------------------------------------
def test_xla_under_a_distribution_strategy_is_refused_naming_the_flags():
    import tensorflow as tf

    from mmnas_tf.engine.distribute import check_jit_compile

    with pytest.raises(ValueError, match=XLA_REFUSED):
        check_jit_compile(True, TwoReplicas())
    check_jit_compile(False, TwoReplicas())
    check_jit_compile(True, tf.distribute.get_strategy())  # one device: XLA is fine


def test_the_trainer_and_the_searcher_apply_the_same_rule():
    from mmnas_tf.engine.trainer import Trainer
    from mmnas_tf.nas.searcher import Searcher

    with pytest.raises(ValueError, match=XLA_REFUSED):
        Trainer(get_task("vqa"), None, None, "m", 1, strategy=TwoReplicas(), jit_compile=True)
    with pytest.raises(ValueError, match=XLA_REFUSED):
        Searcher(None, None, "m", strategy=TwoReplicas(), jit_compile=True)


@pytest.mark.parametrize("name", ["train", "search"])
def test_a_driver_refuses_xla_with_a_strategy_before_writing_anything(
    name, vqa_data, tmp_path, monkeypatch
):
    from mmnas_tf.engine import distribute

    monkeypatch.setattr(distribute, "make_strategy", lambda name: TwoReplicas())
    model_dir = tmp_path / "run"
    argv = [name, "--config=vqa_tiny", f"--data_dir={vqa_data}", f"--model_dir={model_dir}"]
    with pytest.raises(ValueError, match=XLA_REFUSED):
        DRIVERS[name].main(argv + ["--strategy=mirrored", "--jit_compile"])
    assert not model_dir.exists()


def test_evaluate_runs_on_one_device_without_xla():
    for flag in ("--strategy=mirrored", "--jit_compile"):
        with pytest.raises(app.UsageError, match="Unknown command line flag"):
            _experiment_of("evaluate", flag)


# ---- no config field an entry point ignores: train.jit_compile -----------------------------------
@pytest.mark.parametrize(
    "name, where",
    [("train", "mmnas_tf.engine.trainer.Trainer"), ("search", "mmnas_tf.nas.searcher.Searcher")],
)
@pytest.mark.parametrize("flag", ["--jit_compile", "--override=train.jit_compile=true", None])
def test_train_and_search_compile_as_train_jit_compile_says(
    name, where, flag, vqa_data, tmp_path, monkeypatch
):
    seen = []

    def loop(*args, jit_compile=False, **kwargs):
        seen.append(jit_compile)
        raise _Stop

    monkeypatch.setattr(where, loop)
    argv = [name, "--config=vqa_tiny", f"--data_dir={vqa_data}", f"--model_dir={tmp_path / 'm'}"]
    argv += ["--dtype_policy=float32", "--noprogress"] + ([flag] if flag else [])
    if name == "search":
        argv.append("--tensorboard=false")
    with pytest.raises(_Stop):
        DRIVERS[name].main(argv)
    assert seen == [flag is not None]


@pytest.mark.parametrize("flag", [None, "--nojit_compile"])
def test_training_takes_the_machines_xla_choice_when_jit_compile_is_unset(
    flag, vqa_data, tmp_path, monkeypatch, capsys
):
    """On a (faked) AVX2-only CPU a float32 model of d >= 256 trains XLA-compiled unless
    --jit_compile says otherwise; run.json records what the run took; the search stays in graph
    mode (tests/engine: the search case of the test above)."""
    import json

    from mmnas_tf import machine

    real = machine.choose
    monkeypatch.setattr(machine, "choose", lambda *a, **k: real({"avx2"}, *a[1:], **k))
    seen = []

    def loop(*args, jit_compile=False, **kwargs):
        seen.append(jit_compile)
        raise _Stop

    monkeypatch.setattr("mmnas_tf.engine.trainer.Trainer", loop)
    model_dir = tmp_path / "m"
    argv = ["train", "--config=vqa_tiny", f"--data_dir={vqa_data}", f"--model_dir={model_dir}"]
    argv += ["--dtype_policy=float32", "--noprogress", "--override=model.hidden_size=256"]
    with pytest.raises(_Stop):
        train.main(argv + ([flag] if flag else []))
    assert seen == [flag is None]
    out = capsys.readouterr().out
    line = "training step: XLA (the machine's choice on AVX2 for float32 models of d >= 256; d=256)"
    assert (line in out) == (flag is None)
    recorded = json.loads((model_dir / "run.json").read_text())["experiment"]["train"]
    assert recorded["jit_compile"] is (flag is None)


def test_jit_compile_accepts_true_false_or_none_only():
    exp = get_experiment("vqa_tiny")
    assert exp.train.jit_compile is None  # the machine's choice
    assert apply_overrides(exp, ["train.jit_compile=false"]).train.jit_compile is False
    with pytest.raises(ValueError, match=r"train.jit_compile must be true, false or none .*got 1"):
        apply_overrides(exp, ["train.jit_compile=1"])


# ---- one style of convenience flag ---------------------------------------------------------------
def _other_value(row, current):
    """A value of ``row``'s kind that differs from ``current``, as command-line text."""
    if row.kind == "bool":
        return "false" if current else "true"
    if row.kind == "enum":
        return next(c for c in row.choices() if c != current)
    if row.kind == "string":
        return "/tmp/elsewhere"
    if row.kind == "float":
        return "0.5" if current != 0.5 else "0.25"
    return "3" if current != 3 else "4"


def _field(exp, key):
    value = exp
    for part in key.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("name", DRIVERS)
def test_each_convenience_flag_is_its_override(name):
    import absl.flags

    fv = absl.flags.FlagValues()
    DRIVERS[name].define_flags(fv)
    rows = [row for row in cli.CONVENIENCE_FLAGS if row.name in fv]
    assert {"data_dir", "seed"} <= {row.name for row in rows}
    base = _experiment_of(name)
    for row in rows:
        if name == "evaluate" and row.name == "batch_size":
            continue  # renamed: refused, below
        value = _other_value(row, _field(base, row.key))
        by_flag = _experiment_of(name, f"--{row.name}={value}")
        assert by_flag == _experiment_of(name, f"--override={row.key}={value}"), row.name
        assert by_flag != base, row.name
        assert f"Sugar for --override={row.key}=VALUE" in fv[row.name].help, row.name


def test_a_convenience_flag_wins_over_override():
    exp = _experiment_of("train", "--override=train.epochs=7", "--epochs=2")
    assert exp.train.epochs == 2


def test_the_old_evaluate_batch_size_is_refused_naming_its_replacement():
    assert _experiment_of("evaluate", "--eval_batch_size=5").data.eval_batch_size == 5
    with pytest.raises(
        app.UsageError,
        match=r"--batch_size is now --eval_batch_size \(sugar for --override=data.eval_batch_size=VALUE\)",
    ):
        _experiment_of("evaluate", "--batch_size=5")


def test_the_readme_table_is_the_convenience_flags():
    import absl.flags

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `--(\w+)` \| `([\w.]+)` \| ([\w, ]+) \|$", text, re.M)
    takers = {}
    for name, module in DRIVERS.items():
        fv = absl.flags.FlagValues()
        module.define_flags(fv)
        for row in cli.CONVENIENCE_FLAGS:
            if row.name in fv and f"Sugar for --override={row.key}=" in fv[row.name].help:
                takers.setdefault(row.name, []).append(name)
    want = [(r.name, r.key, ", ".join(takers[r.name])) for r in cli.CONVENIENCE_FLAGS]
    assert rows == want
