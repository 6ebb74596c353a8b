"""The default path per machine kind (``mmnas_tf.machine``): the kind and the choice from faked
CPU flags (``/proc/cpuinfo`` texts of the three kinds CI runs on, and one of none), the line a
run prints, the flags' overrides, and ``--onednn_opts`` taking effect before TensorFlow is
imported in a real program."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mmnas_tf import machine
from mmnas_tf.precision import cpu_flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpuinfo(model: str, flags: str) -> str:
    return f"processor\t: 0\nvendor_id\t: x\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"


BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx fma"
CPUINFO = {
    machine.AVX2: _cpuinfo("AMD EPYC 7B12", f"{BASE} avx2"),
    machine.AVX512: _cpuinfo(
        "AMD EPYC 9B14", f"{BASE} avx2 avx512f avx512dq avx512_bf16 avx512_vnni"
    ),
    machine.AMX: _cpuinfo(
        "Intel(R) Xeon(R) Processor", f"{BASE} avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
    ),
    machine.OTHER: "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\n",
}
TAIL = (
    "training {training}, evaluation in graph mode (no XLA), {onednn}, "
    "threads intra-op TensorFlow's default / inter-op TensorFlow's default; measured: {evidence} "
    "(bench/results/); the rest not measured on this kind, kept as before"
)
LINES = {
    machine.AVX2: "machine: AVX2 (avx2, no avx512f): precision auto = float32 (d >= 256), "
    + TAIL.format(
        training="XLA (d >= 256)",
        onednn="TF_ENABLE_ONEDNN_OPTS=1 (the machine's choice; TensorFlow's default on this CPU: "
        "off)",
        evidence="precision: no bf16 hardware; oneDNN: side_by_side_onednn_amd_avx2.json, "
        "side_by_side_onednn_choice_amd_avx2.json (on), serving_latency_onednn_off_amd_avx2.json "
        "(off when serving); XLA in evaluation: model_steps_amd_avx2.json "
        "(kept off); XLA in training: side_by_side_xla_amd_avx2.json, "
        "side_by_side_xla_default_amd_avx2.json, side_by_side_xla_probe_amd_avx2.json (on); "
        "inter-op threads: threads_amd_avx2.json (1 not faster, default kept)",
    ),
    machine.AVX512: "machine: AVX-512 (avx512f, avx512_bf16, no amx_bf16): precision auto = "
    "float32 (d >= 256), "
    + TAIL.format(
        training="in graph mode",
        onednn="TF_ENABLE_ONEDNN_OPTS unset (TensorFlow's default on this CPU: on)",
        evidence="precision: bf16_speed.json (matmul_isa)",
    ),
    machine.AMX: "machine: AMX (amx_bf16): precision auto = mixed_bfloat16 (d >= 256), "
    + TAIL.format(
        training="in graph mode",
        onednn="TF_ENABLE_ONEDNN_OPTS unset (TensorFlow's default on this CPU: on)",
        evidence="precision and XLA: model_suite.json, bf16_speed.json",
    ),
    machine.OTHER: "machine: other (no avx2): precision auto = float32 (d >= 256), "
    + TAIL.format(
        training="in graph mode",
        onednn="TF_ENABLE_ONEDNN_OPTS unset (TensorFlow's default)",
        evidence="precision: no bf16 hardware",
    ),
}


@pytest.mark.parametrize("kind", machine.KINDS)
def test_each_kind_is_detected_and_printed_from_faked_cpu_flags(kind):
    choice = machine.choose(cpu_flags(CPUINFO[kind]))
    assert choice.kind == kind
    assert choice.precision == ("mixed_bfloat16" if kind == machine.AMX else "float32")
    # precision and XLA in training differ between kinds: no committed report backs another
    # setting yet
    assert choice.train_xla == (kind == machine.AVX2)
    assert (choice.eval_xla, choice.intra_op_threads) == (False, 0)
    # oneDNN: on where TensorFlow leaves it off and a side-by-side run measured it (AVX2)
    assert choice.onednn_opts == ("1" if kind == machine.AVX2 else None)
    assert (choice.inter_op_threads, choice.overridden) == (0, ())
    assert machine.describe(choice) == LINES[kind]


def test_training_xla_is_the_machines_choice_only_where_measured_and_asked_for_by_none():
    avx2, avx512 = (machine.choose(cpu_flags(CPUINFO[k])) for k in (machine.AVX2, machine.AVX512))
    resolve = machine.resolve_train_xla
    xla, line = resolve(None, avx2, 512, 1, "float32")
    assert xla is True
    assert line.startswith(
        "training step: XLA (the machine's choice on AVX2 for float32 models of d >= 256; d=512)"
    )
    assert line.endswith("--jit_compile=false keeps graph mode")
    # graph mode: narrower models, several replicas, bf16, other kinds
    for args in ((None, avx2, 128, 1, "float32"), (None, avx2, 512, 2, "float32")):
        assert resolve(*args) == (False, None)
    assert resolve(None, avx2, 512, 1, "bfloat16") == (False, None)
    assert resolve(None, avx512, 512, 1, "float32") == (False, None)
    # an explicit train.jit_compile is kept, without a line
    assert resolve(False, avx2, 512, 1, "float32") == (False, None)
    assert resolve(True, avx512, 64, 1, "float32") == (True, None)


def test_avx512_without_bf16_says_so():
    choice = machine.choose({"avx2", "avx512f"})
    assert (choice.kind, choice.detail) == (machine.AVX512, "avx512f, no avx512_bf16, no amx_bf16")


def test_flags_override_the_choice_and_the_line_says_which():
    choice = machine.choose(cpu_flags(CPUINFO[machine.AMX]), "off", 3, None)
    assert (choice.onednn_opts, choice.intra_op_threads, choice.inter_op_threads) == ("0", 3, 0)
    line = machine.describe(choice)
    assert "TF_ENABLE_ONEDNN_OPTS=0, threads intra-op 3 / inter-op TensorFlow's default" in line
    assert line.endswith("; set by flags: onednn_opts, intra_op_threads")
    assert machine.choose(set(), "on").onednn_opts == "1"


def test_bad_overrides_name_the_accepted_values():
    with pytest.raises(ValueError, match=r"onednn_opts must be one of auto, on, off; got 'yes'"):
        machine.choose(set(), "yes")
    with pytest.raises(ValueError, match=r"intra_op_threads must be >= 0 .*got -1"):
        machine.choose(set(), intra_op_threads=-1)


def test_tensorflows_own_onednn_default_is_predicted_from_the_cpu_flags():
    """The rule the line states (oneDNN on by default only with VNNI, AVX512-BF16 or AMX) is
    TensorFlow's on this machine: a process with the variable unset says the same."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = "from tensorflow.python.util import _pywrap_util_port as p; print(p.IsMklEnabled())"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.stdout.split()[-1] == str(machine.tensorflow_onednn_default(cpu_flags()))
    faked = {k: machine.tensorflow_onednn_default(cpu_flags(v)) for k, v in CPUINFO.items()}
    assert faked == {machine.AVX2: False, machine.AVX512: True, machine.AMX: True, "other": None}
    assert machine.tensorflow_onednn_default({"sse2", "avx2", "avx_vnni"}) is True


def test_the_line_says_what_onednn_setting_the_process_really_has():
    avx2 = machine.choose(cpu_flags(CPUINFO[machine.AVX2]))
    chosen = "TF_ENABLE_ONEDNN_OPTS=1 (the machine's choice; TensorFlow's default on this CPU: off)"
    assert chosen in machine.describe(avx2, {"TF_ENABLE_ONEDNN_OPTS": "1"})
    exported = "TF_ENABLE_ONEDNN_OPTS=0 (from the environment; the machine's choice: 1)"
    assert exported in machine.describe(avx2, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    # a library caller that imported TensorFlow before any program could set the variable
    assert (
        "TF_ENABLE_ONEDNN_OPTS unset (TensorFlow's default on this CPU: off; the machine's choice, "
        "1, is set only when a program starts, before TensorFlow is imported)"
    ) in machine.describe(avx2, {})
    amx = machine.choose(cpu_flags(CPUINFO[machine.AMX]))
    assert "TF_ENABLE_ONEDNN_OPTS=0 (from the environment; the machine's choice: unset)" in (
        machine.describe(amx, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    )
    # only a flag's value is enforced; the machine's own choice is reported, not checked
    machine.check_onednn_env(avx2, {})


def test_the_machines_onednn_choice_is_set_before_import_unless_exported():
    avx2, amx = (cpu_flags(CPUINFO[k]) for k in (machine.AVX2, machine.AMX))
    environ = {}
    machine.set_onednn_env(["--config=vqa"], environ, avx2)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    machine.set_onednn_env(["--config=vqa"], environ, avx2)  # an exported value is kept
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    machine.set_onednn_env(["--onednn_opts=on"], environ, avx2)  # unless the flag is given
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    environ = {}
    machine.set_onednn_env(["--config=vqa"], environ, amx)  # TensorFlow's default there
    assert environ == {}
    # a serving program keeps TensorFlow's default on AVX2 too (oneDNN was slower at batch 1)
    machine.set_onednn_env(["--port=8500"], environ, avx2, serving=True)
    assert environ == {} and machine.choose(avx2, serving=True).onednn_opts is None
    machine.set_onednn_env(["--onednn_opts=on"], environ, avx2, serving=True)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}


def test_onednn_env_is_set_from_the_command_line_before_import():
    environ = {}
    machine.set_onednn_env(["--config=vqa", "--onednn_opts", "off"], environ)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    machine.set_onednn_env(["--config=vqa"], environ)  # no flag: an exported value is kept
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    machine.set_onednn_env(["--onednn_opts=on"], environ)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    machine.check_onednn_env(machine.choose(set(), "on"), environ)
    with pytest.raises(ValueError, match="needs TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow"):
        machine.check_onednn_env(machine.choose(set(), "off"), environ)


@pytest.mark.parametrize("name", ["train", "search", "evaluate", "export"])
def test_entry_points_take_the_overrides(name):
    import importlib

    from absl import flags

    fv = flags.FlagValues()
    importlib.import_module(f"mmnas_tf.{name}").define_flags(fv)
    assert fv["onednn_opts"].default == "auto" and fv["intra_op_threads"].default is None
    assert "inter_op_threads" in fv


def test_a_program_prints_the_line_first_with_onednn_set_before_import(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmnas_tf.evaluate",
            "--config=vqa_tiny",
            "--onednn_opts=off",
            f"--checkpoint={tmp_path}/none",
            f"--data_dir={tmp_path}/none",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    kind, _ = machine.machine_kind(cpu_flags())
    assert lines[0].startswith(f"machine: {kind} (") and "TF_ENABLE_ONEDNN_OPTS=0" in lines[0]
    assert lines[0].endswith("; set by flags: onednn_opts")
    assert proc.returncode == 1 and "mmnas_tf.evaluate: error:" in proc.stderr
