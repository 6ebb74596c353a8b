"""mmnas_tf.console: TensorFlow's C++ log lines filtered by --verbosity, and the one progress line
(terminal: self-updating with rate and ETA; not a terminal: one line per pass; --noprogress:
nothing)."""

import functools
import io
import os
import subprocess
import sys
import textwrap

import pytest

from mmnas_tf import console

# What TensorFlow 2.21 writes to stderr on a CPU machine: import-time lines (absl's notice, oneDNN,
# CUDA stub, CPU features with a continuation line), a run-time error advisory and Grappler's
# multi-line type-inference dump, after a line that is no log message.
SAMPLE = textwrap.dedent(
    """\
    ours before
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796405684.975879    6800 port.cc:153] oneDNN custom operations are on.
    I0000 00:00:1796405684.976218    6800 cudart_stub.cc:31] Could not find cuda drivers
    I0000 00:00:1796405685.150623    6800 cpu_feature_guard.cc:227] This TensorFlow binary is optimized
    To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.
    E0000 00:00:1796405690.325638    6800 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR
    W0000 00:00:1796405709.752174    6800 type_inference.cc:340] Type inference failed. Error:
    type_id: TFT_OPTIONAL
    args {
      type_id: TFT_PRODUCT
    }
    2024-01-02 03:04:05.678901: W tensorflow/core/framework/op_kernel.cc:1816] an old-style line
    \tfor Tuple type inference function 0
    """
)


def _kept(text):
    return [line.split("]")[0].split()[-1] if "]" in line else line for line in text.splitlines()]


def test_verbosity_0_keeps_no_cpp_line():
    assert console.filter_cpp_log(SAMPLE, 0) == "ours before\n"


def test_verbosity_1_adds_cpp_warnings_and_errors_with_their_continuations():
    kept = console.filter_cpp_log(SAMPLE, 1)
    assert "InitializeLog" not in kept and "port.cc" not in kept and "AVX2" not in kept
    assert _kept(kept) == [
        "ours before",
        "cuda_platform.cc:52",
        "type_inference.cc:340",
        "type_id: TFT_OPTIONAL",
        "args {",
        "  type_id: TFT_PRODUCT",
        "}",
        "tensorflow/core/framework/op_kernel.cc:1816",
        "\tfor Tuple type inference function 0",
    ]


def test_verbosity_2_keeps_everything():
    assert console.filter_cpp_log(SAMPLE, 2) == SAMPLE


@pytest.mark.parametrize(
    "argv, want",
    [
        ([], None),
        (["--config=x", "--verbosity=2"], 2),
        (["--verbosity", "1", "--config=x"], 1),
        (["--verbosity=loud"], None),  # the flag parser names the bad value later
        (["--verbosityx=2"], None),
    ],
)
def test_verbosity_is_read_from_the_command_line(argv, want):
    assert console.verbosity_from_argv(argv) == want


@pytest.mark.parametrize(
    "flag, env, want",
    [
        (None, {}, 0),
        (2, {}, 2),
        (None, {"TF_CPP_MIN_LOG_LEVEL": "0"}, 2),
        (None, {"TF_CPP_MIN_LOG_LEVEL": "1"}, 1),
        (None, {"TF_CPP_MIN_LOG_LEVEL": "3"}, 0),
        (1, {"TF_CPP_MIN_LOG_LEVEL": "0"}, 1),
        (7, {}, 2),
    ],
)
def test_the_flag_wins_over_an_exported_level_which_wins_over_the_default(flag, env, want):
    assert console.resolve_verbosity(flag, env) == want


def test_quiet_start_keeps_an_exported_level_unless_the_flag_is_given(monkeypatch):
    imported = []
    monkeypatch.setattr(console, "import_quietly", lambda *args: imported.append(args))
    start = functools.partial(console.quiet_start, machine_settings=False)  # oneDNN: test_machine
    env = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert start(["prog", "--config=x"], env) == 1
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert start(["prog", "--verbosity=0"], env) == 0
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    env = {}
    assert start(["prog"], env) == 0
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    assert imported == [("tensorflow", 1), ("tensorflow", 0), ("tensorflow", 0)]


def test_quiet_start_leaves_onednn_alone_for_a_pinned_program(monkeypatch):
    """The benchmark's table builders start quietly but keep TensorFlow's own oneDNN default,
    which their protocol pins, even when --onednn_opts is on their command line."""
    monkeypatch.setattr(console, "import_quietly", lambda *args: None)
    env = {}
    console.quiet_start(["prog", "--onednn_opts=off"], env, machine_settings=False)
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    console.quiet_start(["prog", "--onednn_opts=off"], env)
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


@pytest.mark.parametrize("program", ["mmnas_tf.train", "mmnas_tf.serve"])
def test_quiet_start_takes_the_machines_onednn_choice_of_the_program(monkeypatch, program):
    """A program gets the machine's oneDNN choice; the local server a serving program's (on AVX2:
    TensorFlow's default, the faster at batch 1)."""
    from mmnas_tf import machine

    monkeypatch.setattr(console, "import_quietly", lambda *args: None)
    monkeypatch.setattr(console, "main_module", lambda: program)
    env = {}
    console.quiet_start(["prog"], env)
    chosen = machine.choose(serving=program == "mmnas_tf.serve").onednn_opts
    assert env.get("TF_ENABLE_ONEDNN_OPTS") == chosen
    assert program != "mmnas_tf.serve" or chosen is None


NOISY = """\
import os, sys
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written\\n")
os.write(2, b"I0000 00:00:1.5   12 port.cc:153] chatter\\n")
os.write(2, b"E0000 00:00:1.6   12 cuda_platform.cc:52] advisory\\n")
sys.stderr.write("a Python line\\n")
"""


@pytest.mark.parametrize(
    "verbosity, want",
    [
        (0, "a Python line\n"),
        (1, "a Python line\nE0000 00:00:1.6   12 cuda_platform.cc:52] advisory\n"),
    ],
)
def test_an_import_s_file_descriptor_writes_are_filtered(
    tmp_path, monkeypatch, capfd, verbosity, want
):
    module = f"noisy_module_{verbosity}"
    (tmp_path / f"{module}.py").write_text(NOISY)
    monkeypatch.syspath_prepend(str(tmp_path))
    capfd.readouterr()
    console.import_quietly(module, verbosity)
    assert module in sys.modules
    assert capfd.readouterr().err == want


def test_verbosity_2_brings_tensorflow_s_log_lines_back():
    # the same process start as the quickstart's (tests/engine/test_quickstart.py), where the
    # default verbosity shows none of them; TF_CPP_MIN_LOG_LEVEL unset as a user's shell has it
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "mmnas_tf.export", "--verbosity=2", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "--verbosity" in proc.stdout
    shown = proc.stderr.splitlines()
    assert sum(bool(console.CPP_LINE.match(line)) for line in shown) >= 2, proc.stderr
    assert console.filter_cpp_log(proc.stderr, 0) == ""  # nothing else was written


# ---- progress -----------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _progress(tty, enabled=True, total=10, **kw):
    stream, clock = io.StringIO(), Clock()
    bar = console.Progress(
        total, "search", enabled, unit="cycles", stream=stream, clock=clock, is_tty=tty, **kw
    )
    return bar, stream, clock


def test_terminal_line_has_count_fields_rate_and_eta():
    bar, stream, clock = _progress(tty=True)
    bar.update(phase="warmup")  # first update: tracing, not in the rate
    clock.now += 2.0
    bar.update(2, loss=1.23456)
    assert bar.rate() == pytest.approx(1.0)  # 2 cycles in 2 s
    assert bar.eta() == pytest.approx(7.0)
    assert stream.getvalue().split("\r")[1:] == [
        "search: 1/10 - phase warmup",
        "search: 3/10 - phase warmup - loss 1.235 - 1.0 cycles/s - ETA 0:07",
    ]
    clock.now += 0.1  # within the refresh interval: no rewrite
    bar.update()
    assert stream.getvalue().count("\r") == 2
    clock.now += 6.9
    bar.update(6)  # the last unit always shows; no ETA once done
    last = stream.getvalue().split("\r")[-1]
    assert last.rstrip() == "search: 10/10 - phase warmup - loss 1.235 - 1.0 cycles/s"
    assert bar.close() == "search: 10/10 - phase warmup - loss 1.235 - 1.0 cycles/s"
    assert stream.getvalue().endswith("\n")


def test_a_shorter_line_blanks_the_longer_one_it_replaces():
    bar, stream, clock = _progress(tty=True, interval=0.0)
    bar.update(note="a long note " * 4)
    clock.now += 1
    bar.update(note=None)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip() == "search: 2/10 - 1.0 cycles/s - ETA 0:08"


def test_not_a_terminal_writes_one_line_per_pass():
    bar, stream, clock = _progress(tty=False)
    for _ in range(10):
        clock.now += 0.5
        bar.update(loss=2.0)
    assert stream.getvalue() == ""
    bar.write_line("epoch 1/3 search loss 2")
    bar.close()
    assert stream.getvalue() == "epoch 1/3 search loss 2\nsearch: 10/10 - loss 2 - 2.0 cycles/s\n"


@pytest.mark.parametrize("tty", [True, False])
def test_noprogress_writes_nothing(tty):
    console.set_progress(False)
    try:
        bar, stream, clock = _progress(tty=tty, enabled=None)
        for _ in range(10):
            clock.now += 1
            bar.update()
        bar.write_line("epoch 1")
        bar.close()
    finally:
        console.set_progress(True)
    assert stream.getvalue() == ""
    assert console.Progress(1, "x").enabled  # the default is back


def test_unknown_total_shows_count_and_rate_without_eta():
    bar, stream, clock = _progress(tty=True, total=None, interval=0.0)
    bar.update()
    clock.now += 4
    bar.update(8)
    assert bar.eta() is None
    assert stream.getvalue().split("\r")[-1] == "search: 9 - 2.0 cycles/s"


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.6, "1:00"), (3725, "1:02:05")])
def test_format_seconds(seconds, text):
    assert console.format_seconds(seconds) == text
