"""Observability: a progress bar, TensorBoard scalars and a profiler window.

All three are ``keras.callbacks.Callback`` subclasses, so they work in ``model.fit`` (the search
loop) and in :class:`mmnas_tf.engine.trainer.Trainer`, which calls the same hooks. They read these
``logs`` keys when present: ``loss`` (and any other scalar), ``learning_rate``, ``examples`` (the
global batch of the step; otherwise the ``batch_size`` given to the callback).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

import keras
import tensorflow as tf


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


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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
    """One self-overwriting line per epoch: step, loss, examples/s and ETA.

    Args:
      every_steps: int, refresh interval in steps.
      batch_size: int, examples per step when the logs carry no ``examples``.
      stream: where to write (stderr).
    """

    def __init__(
        self, every_steps: int = 10, batch_size: int | None = None, stream: TextIO | None = None
    ):
        super().__init__()
        self.every_steps = max(1, every_steps)
        self.batch_size = batch_size
        self.stream = stream or sys.stderr
        self._meter = _Throughput()
        self.last_line = ""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self._meter.reset()
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        rate = self._meter.add(int(logs.get("examples", self.batch_size or 0)))
        self._seen = batch + 1
        if self._seen % self.every_steps:
            return
        steps = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs") if self.params else None
        parts = [f"epoch {self._epoch + 1}" + (f"/{epochs}" if epochs else "")]
        parts.append(f"step {self._seen}" + (f"/{steps}" if steps else ""))
        parts += [
            f"{k} {float(v):.4g}" for k, v in logs.items()
            if k not in ("examples", "step") and _is_scalar(v)
        ]  # fmt: skip
        if rate:
            parts.append(f"{rate:.1f} ex/s")
        if steps:
            elapsed = time.perf_counter() - self._epoch_start
            parts.append("ETA " + _format_seconds(elapsed / self._seen * (steps - self._seen)))
        self.last_line = " - ".join(parts)
        self.stream.write("\r" + self.last_line + " ")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        took = time.perf_counter() - getattr(self, "_epoch_start", time.perf_counter())
        summary = " - ".join(f"{k} {float(v):.4g}" for k, v in logs.items() if _is_scalar(v))
        self.stream.write(f"\repoch {epoch + 1} done in {_format_seconds(took)}: {summary}\n")
        self.stream.flush()


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
