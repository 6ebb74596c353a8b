"""The training progress line (engine.callbacks.ProgressBar on console.Progress): the run's ETA in
every configuration, one line per epoch when stderr is not a terminal, nothing under
--noprogress. A fake clock: one second per step."""

import io

import pytest

from mmnas_tf import console
from mmnas_tf.engine.callbacks import ProgressBar


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _bar(tty, steps=None, estimate=None, epochs=3):
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(1, 8, steps_per_epoch=estimate, stream=stream, clock=clock, is_tty=tty)
    bar.set_params({"epochs": epochs, "steps": steps})
    return bar, stream, clock


def _epoch(bar, clock, epoch, steps, first=0):
    bar.on_epoch_begin(epoch)
    for b in range(first, steps):
        bar.on_train_batch_end(b, {"loss": 2.0, "step": b + 1})
        clock.now += 1
    clock.now -= 1  # the epoch ends with its last step
    bar.on_epoch_end(epoch, {"loss": 1.5})
    clock.now += 1


def _screen(stream):
    """The terminal's lines: each carriage return starts the line over."""
    return [line.split("\r")[-1].rstrip() for line in stream.getvalue().split("\n")]


def test_run_eta_from_the_first_step_with_the_split_s_estimate():
    bar, stream, clock = _bar(tty=True, steps=None, estimate=10)
    bar.on_epoch_begin(0)
    for b in range(4):
        bar.on_train_batch_end(b, {"loss": 2.0})
        clock.now += 1
    # 3 steps in the 3 s after the first (tracing) one; 6 left of this epoch + 2 epochs of 10
    assert bar.bar.last_line == ("epoch 1/3: 4/10 - loss 2 - ex/s 8 - 1.0 steps/s - ETA run 0:26")


def test_without_an_estimate_the_eta_starts_with_the_measured_second_epoch():
    bar, stream, clock = _bar(tty=True, steps=None, estimate=None)
    bar.on_epoch_begin(0)
    for b in range(3):
        bar.on_train_batch_end(b, {"loss": 2.0})
        clock.now += 1
    assert "ETA" not in bar.bar.last_line and bar.bar.last_line.startswith("epoch 1/3: 3 - ")
    for b in range(3, 5):
        bar.on_train_batch_end(b, {"loss": 2.0})
        clock.now += 1
    clock.now -= 1
    bar.on_epoch_end(0, {"loss": 1.5})
    # 5 steps measured: 2 epochs of 5 left at 1 step/s
    assert bar.lines == ["epoch 1/3 done in 0:04 - loss 1.5 - 1 steps/s - 8.0 ex/s - ETA run 0:10"]
    clock.now += 1
    bar.on_epoch_begin(1)
    bar.on_train_batch_end(0, {"loss": 2.0})
    clock.now += 1
    bar.on_train_batch_end(1, {"loss": 2.0})
    assert bar.bar.last_line.startswith("epoch 2/3: 2/5 - ") and "ETA run 0:08" in bar.bar.last_line


def test_terminal_shows_the_line_then_keeps_each_epoch_s_summary():
    bar, stream, clock = _bar(tty=True, steps=4, epochs=2)
    _epoch(bar, clock, 0, 4)
    _epoch(bar, clock, 1, 4)
    assert "\repoch 1/2: 2/4 - loss 2 - ex/s 8 - 1.0 steps/s - ETA run 0:06" in stream.getvalue()
    assert _screen(stream) == [
        "epoch 1/2 done in 0:03 - loss 1.5 - 1 steps/s - 8.0 ex/s - ETA run 0:04",
        "epoch 2/2 done in 0:03 - loss 1.5 - 1 steps/s - 8.0 ex/s",  # the run is over: no ETA
        "",
    ]


def test_not_a_terminal_writes_one_line_per_epoch():
    bar, stream, clock = _bar(tty=False, steps=4, epochs=2)
    _epoch(bar, clock, 0, 4)
    _epoch(bar, clock, 1, 4)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == bar.lines and len(bar.lines) == 2


def test_a_run_resumed_mid_epoch_counts_from_its_position():
    bar, stream, clock = _bar(tty=True, steps=10, epochs=2)
    bar.on_epoch_begin(0)
    for b in range(6, 9):  # resumed at step 7 of epoch 1
        bar.on_train_batch_end(b, {"loss": 2.0})
        clock.now += 1
    assert bar.bar.last_line.startswith("epoch 1/2: 9/10 - ")
    assert bar.bar.last_line.endswith("1.0 steps/s - ETA run 0:11")


@pytest.mark.parametrize("tty", [True, False])
def test_noprogress_writes_nothing(tty):
    console.set_progress(False)
    try:
        bar, stream, clock = _bar(tty=tty, steps=4, epochs=2)
        _epoch(bar, clock, 0, 4)
    finally:
        console.set_progress(True)
    assert stream.getvalue() == ""


def test_the_epoch_line_says_each_quantity_once():
    """The trainer's epoch logs carry the epoch number and a whole-epoch rate; the line already
    has its heading and its own ex/s, so neither appears a second time under another name."""
    bar, stream, clock = _bar(tty=False, steps=4, epochs=1)
    bar.on_epoch_begin(0)
    for b in range(4):
        bar.on_train_batch_end(b, {"loss": 2.0})
        clock.now += 1
    clock.now -= 1
    logs = {"epoch": 1, "loss": 1.5, "steps": 4, "examples_per_sec": 6.0}
    bar.on_epoch_end(0, logs)
    assert bar.lines == ["epoch 1/1 done in 0:03 - loss 1.5 - steps 4 - 1 steps/s - 8.0 ex/s"]
