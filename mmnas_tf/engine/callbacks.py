"""Observability: a progress bar, TensorBoard scalars and a profiler window.

All three are ``keras.callbacks.Callback`` subclasses, so they work in ``model.fit`` (the search
loop) and in :class:`mmnas_tf.engine.trainer.Trainer`, which calls the same hooks. They read these
``logs`` keys when present: ``loss`` (and any other scalar), ``learning_rate``, ``examples`` (the
global batch of the step; otherwise the ``batch_size`` given to the callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

import keras
import tensorflow as tf

from mmnas_tf.console import Progress, format_seconds


def parse_profile_steps(text: str) -> tuple[int, int] | None:
    """``"a,b"`` -> (a, b): profile global steps a..b inclusive; ``""`` -> None."""
    if not text:
        return None
    parts = text.split(",")
    try:
        start, stop = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"--profile_steps must be 'a,b' (two step numbers), got {text!r}"
        ) from None
    if not 0 < start <= stop:
        raise ValueError(f"--profile_steps needs 0 < a <= b, got {text!r}")
    return start, stop


class _Throughput:
    """Examples per second over the last logging window (excludes the first, compiling step)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.start, self.examples = None, 0

    def add(self, examples: int) -> float | None:
        now = time.perf_counter()
        if self.start is None:  # first step of a window: includes tracing, not counted
            self.start = now
            return None
        self.examples += examples
        return self.examples / max(now - self.start, 1e-9)


class ProgressBar(keras.callbacks.Callback):
    """Training progress (:class:`mmnas_tf.console.Progress` on stderr): per epoch, a line with the
    step, loss and the other scalars, steps/s, examples/s and the ETA of the whole run; at each
    epoch end a line that stays, each quantity once (the logs' ``epoch`` and ``examples_per_sec``
    are left to the heading and the line's ``ex/s``, measured after the first step). When stderr
    is not a terminal only the epoch-end lines are written; under ``--noprogress`` nothing.

    The run's ETA needs the steps of an epoch: the loop's cap (``params["steps"]``), else the
    length of the last epoch seen, else ``steps_per_epoch`` (an estimate from the split's size),
    so every configuration gets one from its first step on.

    Args:
      every_steps: int, refresh interval in steps (a terminal line refreshes at most twice a
        second).
      batch_size: int, examples per step when the logs carry no ``examples``.
      steps_per_epoch: int, the estimate above (None: from the second epoch on).
      stream, clock, is_tty: for tests (default: stderr, ``time.monotonic``, ``stream.isatty()``).
    """

    def __init__(
        self,
        every_steps: int = 10,
        batch_size: int | None = None,
        steps_per_epoch: int | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        is_tty: bool | None = None,
    ):
        super().__init__()
        self.every_steps = max(1, every_steps)
        self.batch_size = batch_size
        self.estimate = steps_per_epoch
        self.stream, self.clock, self.is_tty = stream, clock, is_tty
        self.bar: Progress | None = None
        self.lines: list[str] = []  # the epoch-end lines

    def _epoch_steps(self) -> int | None:
        return (self.params or {}).get("steps") or self.estimate

    def _epochs(self, epoch: int) -> int:
        return (self.params or {}).get("epochs") or epoch + 1

    def on_epoch_begin(self, epoch, logs=None):
        epochs, steps = self._epochs(epoch), self._epoch_steps()
        self._epoch, self._examples = epoch, 0
        self.bar = Progress(
            steps,
            f"epoch {epoch + 1}/{epochs}",
            unit="steps",
            stream=self.stream,
            clock=self.clock,
            is_tty=self.is_tty,
            later=(epochs - epoch - 1) * (steps or 0),
            eta_label="run",
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is None:
            self.on_epoch_begin(0)
        logs, bar = logs or {}, self.bar
        examples = int(logs.get("examples", self.batch_size or 0))
        if bar.done:
            self._examples += examples
        scalars = {
            k: float(v) for k, v in logs.items() if k not in ("examples", "step") and _is_scalar(v)
        }
        if (batch + 1) % self.every_steps == 0 or batch + 1 == bar.total:
            scalars["ex/s"] = self._examples_per_second()
        bar.update(batch + 1 - bar.done, **scalars)

    def _examples_per_second(self) -> float | None:
        """Examples per second after the first (tracing) step."""
        first, now = self.bar.first, self.clock()
        if first is None or now <= first[1] or not self._examples:
            return None
        return self._examples / (now - first[1])

    def on_epoch_end(self, epoch, logs=None):
        bar = self.bar
        if bar is None:
            return
        self.estimate = bar.done or self.estimate  # the measured epoch length for the next ETAs
        epochs = self._epochs(epoch)
        bar.total = bar.done
        bar.later = (epochs - epoch - 1) * (self._epoch_steps() or 0)
        parts = [f"epoch {epoch + 1}/{epochs} done in {format_seconds(self.clock() - bar.start)}"]
        parts += [
            f"{k} {float(v):.4g}"
            for k, v in (logs or {}).items()
            if _is_scalar(v) and k not in _SAID_BY_THE_LINE
        ]
        rate, eta = bar.rate(), bar.eta()
        if rate:
            parts.append(f"{rate:.3g} steps/s")
            parts.append(f"{self._examples_per_second():.1f} ex/s")
        if eta is not None and bar.later:
            parts.append(f"ETA run {format_seconds(eta)}")
        line = " - ".join(parts)
        self.lines.append(line)
        bar.write_line(line)
        self.bar = None


# Log keys the epoch line already says in its own words: the epoch number (its heading) and the
# whole-epoch rate, tracing included (the line's ``ex/s`` is the rate after the first step).
_SAID_BY_THE_LINE = ("epoch", "examples_per_sec")


def _is_scalar(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return getattr(value, "ndim", 0) == 0


class TensorBoardScalars(keras.callbacks.Callback):
    """Writes every scalar of the logs (losses, ``learning_rate``, metrics) and ``examples_per_sec``
    to ``logdir`` every ``every_steps`` steps (x = global step) and at each epoch end (prefixed
    ``epoch/``, x = epoch).

    Args:
      logdir: str, the event-file folder (``tensorboard --logdir``).
      every_steps: int.
      batch_size: int, examples per step when the logs carry no ``examples``.
      enabled: False on non-chief workers.
    """

    def __init__(
        self,
        logdir: str,
        every_steps: int = 50,
        batch_size: int | None = None,
        enabled: bool = True,
    ):
        super().__init__()
        self.logdir = logdir
        self.every_steps = max(1, every_steps)
        self.batch_size = batch_size
        self.enabled = enabled
        self._writer = None
        self._meter = _Throughput()
        self._global_step = 0

    def _get_writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def write(self, scalars: Mapping[str, float], step: int, prefix: str = "") -> None:
        if not self.enabled:
            return
        with self._get_writer().as_default(step=step):
            for k, v in scalars.items():
                if _is_scalar(v):
                    tf.summary.scalar(prefix + k, float(v))
        self._writer.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._meter.reset()

    def on_train_batch_end(self, batch, logs=None):
        logs = dict(logs or {})
        self._global_step = int(logs.pop("step", self._global_step + 1))
        rate = self._meter.add(int(logs.pop("examples", self.batch_size or 0)))
        if self._global_step % self.every_steps == 0:
            if rate:
                logs["examples_per_sec"] = rate
            self.write(logs, self._global_step, "train/")
            self._meter.reset()

    def on_epoch_end(self, epoch, logs=None):
        self.write(logs or {}, epoch + 1, "epoch/")

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class ProfilerWindow(keras.callbacks.Callback):
    """Traces global steps ``start..stop`` with ``tf.profiler.experimental`` into ``logdir``
    (view with TensorBoard's Profile tab: ``pip install mmnas-tf[profile]`` for
    tensorboard-plugin-profile, an optional extra).

    Args:
      logdir: str.
      steps: (start, stop), 1-based global steps, inclusive.
    """

    def __init__(self, logdir: str, steps: Sequence[int]):
        super().__init__()
        self.logdir = logdir
        self.start, self.stop = steps
        self._global_step = 0
        self.active = False
        self.traced = False

    def on_train_batch_begin(self, batch, logs=None):
        step = int((logs or {}).get("step", self._global_step + 1))
        if step == self.start and not self.active and not self.traced:
            tf.profiler.experimental.start(self.logdir)
            self.active = True

    def on_train_batch_end(self, batch, logs=None):
        self._global_step = int((logs or {}).get("step", self._global_step + 1))
        if self.active and self._global_step >= self.stop:
            tf.profiler.experimental.stop()
            self.active, self.traced = False, True

    def on_train_end(self, logs=None):
        if self.active:
            tf.profiler.experimental.stop()
            self.active, self.traced = False, True
