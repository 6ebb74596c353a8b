"""Server-side batching: merge concurrent requests into one model call, like TF Serving's batcher.

Requests wait in a queue; a worker takes the oldest one plus every queued request with the same
per-example shapes, up to ``max_batch_size`` rows, waiting at most ``batch_timeout_micros`` after
the oldest arrived for the batch to fill. The merged outputs are split back per request.
Parameters are read from TF Serving's ``batching_parameters.txt`` text format.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Mapping

import grpc
import numpy as np

from mmnas_tf.serving.errors import ServingError

Arrays = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """The subset of TF Serving's BatchingParameters that this server honours.

    Args:
      max_batch_size: int, most rows in one merged model call.
      batch_timeout_micros: int, longest wait after the oldest queued request for a batch to fill.
      max_enqueued_batches: int, queue bound in batches; beyond it requests get UNAVAILABLE.
      num_batch_threads: int, workers running merged batches concurrently.
      allowed_batch_sizes: batch sizes a merged call is padded up to (empty: any size), as in TF
        Serving; the last must equal ``max_batch_size``.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError(f"batching sizes and thread counts must be >= 1: {self}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(
                f"allowed_batch_sizes must increase and end with max_batch_size "
                f"({self.max_batch_size}), got {sizes}"
            )


_VALUE = r'("[^"]*"|[\w.+-]+)'
_WRAPPED = re.compile(r"(\w+)\s*\{\s*value\s*:\s*" + _VALUE + r"\s*\}")
_PLAIN = re.compile(r"(\w+)\s*:\s*" + _VALUE)
# BatchingParameters fields TF Serving has and this server has no use for: accepted and ignored so
# one file serves both.
_IGNORED = {
    "thread_pool_name",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
    "batch_padding_policy",
    "mixed_priority_batching_policy",
}


def parse_batching_parameters(text: str) -> BatchingOptions:
    """Reads TF Serving's text proto (``max_batch_size { value: 32 }``, ``allowed_batch_sizes: 8``)."""
    text = re.sub(r"#.*", "", text)
    ints = {f.name for f in dataclasses.fields(BatchingOptions)} - {"allowed_batch_sizes"}
    values: dict[str, object] = {}
    allowed: list[int] = []
    entries = _WRAPPED.findall(text) + _PLAIN.findall(_WRAPPED.sub("", text))
    for name, value in entries:
        if name in _IGNORED:
            continue
        if name not in ints | {"allowed_batch_sizes"}:
            raise ValueError(
                f"unknown batching parameter '{name}'; known: {sorted(ints)}, allowed_batch_sizes"
            )
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"batching parameter '{name}' needs an integer, got {value}") from None
        if name == "allowed_batch_sizes":
            allowed.append(number)
        else:
            values[name] = number
    if allowed:
        values["allowed_batch_sizes"] = tuple(allowed)
    return BatchingOptions(**values)


def batch_size_of(inputs: Arrays) -> int:
    return int(next(iter(inputs.values())).shape[0])


@dataclasses.dataclass(eq=False)  # identity: tasks hold arrays, and `in` must not compare them
class _Task:
    inputs: Arrays
    rows: int
    key: tuple
    enqueued: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


def _shape_key(inputs: Arrays) -> tuple:
    return tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in inputs.items()))


class Batcher:
    """Queues calls of ``run`` (arrays in, arrays out, batch first) and runs them merged."""

    def __init__(self, run: Callable[[Arrays], dict[str, np.ndarray]], options: BatchingOptions):
        self._run = run
        self.options = options
        self._timeout = options.batch_timeout_micros / 1e6
        self._queue: list[_Task] = []
        self._cv = threading.Condition()
        self._closed = False
        self.batches_run = 0  # merged model calls, for tests and the benchmark report
        self._threads = [
            threading.Thread(target=self._loop, name=f"batcher-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    def submit(self, inputs: Arrays) -> dict[str, np.ndarray]:
        rows = batch_size_of(inputs)
        if rows > self.options.max_batch_size:
            # TF Serving refuses these unless large-batch splitting is on; running them alone is
            # simpler and keeps the result the same.
            return self._run(inputs)
        task = _Task(inputs=inputs, rows=rows, key=_shape_key(inputs), enqueued=time.monotonic())
        with self._cv:
            if self._closed:  # the version is being unloaded: finish this request unbatched
                return self._run(inputs)
            limit = self.options.max_enqueued_batches * self.options.max_batch_size
            if sum(t.rows for t in self._queue) + rows > limit:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"batch queue full ({self.options.max_enqueued_batches} batches); retry later",
                )
            self._queue.append(task)
            self._cv.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for t in self._threads:
            t.join()

    def _take(self) -> list[_Task] | None:
        with self._cv:
            while True:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return None
                first = self._queue[0]
                deadline = first.enqueued + self._timeout
                while not self._closed and first in self._queue:
                    rows = sum(t.rows for t in self._queue if t.key == first.key)
                    left = deadline - time.monotonic()
                    if rows >= self.options.max_batch_size or left <= 0:
                        break
                    self._cv.wait(left)
                if first not in self._queue:  # another worker took it meanwhile
                    continue
                taken, rows = [], 0
                for t in self._queue:
                    if t.key == first.key and rows + t.rows <= self.options.max_batch_size:
                        taken.append(t)
                        rows += t.rows
                for t in taken:
                    self._queue.remove(t)
                return taken

    def _loop(self) -> None:
        while (tasks := self._take()) is not None:
            try:
                merged = {k: np.concatenate([t.inputs[k] for t in tasks]) for k in tasks[0].inputs}
                rows = sum(t.rows for t in tasks)
                padded = self._pad(merged, rows)
                outputs = self._run(padded)
                self.batches_run += 1
                start = 0
                for t in tasks:
                    t.result = {k: v[start : start + t.rows] for k, v in outputs.items()}
                    start += t.rows
            except BaseException as e:  # noqa: BLE001 - handed to every waiting request
                for t in tasks:
                    t.error = e
            for t in tasks:
                t.done.set()

    def _pad(self, merged: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        target = next((s for s in self.options.allowed_batch_sizes if s >= rows), rows)
        if target == rows:
            return merged
        # Like TF Serving, pad with copies of the first row; their outputs are dropped.
        return {
            k: np.concatenate([v, np.repeat(v[:1], target - rows, axis=0)])
            for k, v in merged.items()
        }
