"""The epoch loop shared by training (``engine.trainer.Trainer``) and search (``nas.searcher.Searcher``).

One loop: restore the latest checkpoint (weights, optimizers, counters, the loop's JSON state);
per epoch: ``begin_epoch`` (learning rate, search phase), the task's ``before_epoch`` hook on a
fresh epoch only (e.g. ITM hard-negative mining; its result is checkpointed, so a mid-epoch resume
does not redo it), the epoch's dataset ``dataset_fn(epoch)`` (seeded by the epoch, so a restarted
run rebuilds the same order) with the iterator position restored when resuming mid-epoch, steps
until the data ends or ``steps_per_epoch``, a checkpoint every ``checkpoint_every_steps`` global
steps (with the iterator position), then ``end_epoch`` and a checkpoint at the epoch end.

Subclasses implement ``train_step_on`` and the epoch hooks (``begin_epoch``, ``on_epoch_start``,
``end_epoch``, ``after_save``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from mmnas_tf.engine.checkpoint import Checkpointer, TrainingState
from mmnas_tf.engine.distribute import distribute_dataset

DatasetFn = Callable[[int], tf.data.Dataset]


class EpochLoop:
    """Runs epochs with exact resume; the subclass supplies what one step and one epoch do.

    Subclasses set, before :meth:`run_epochs`: ``strategy``, ``state`` (a ``TrainingState``),
    ``checkpointer`` (a ``Checkpointer`` holding ``state``), ``total_epochs``,
    ``steps_per_epoch`` (None = until the data ends), ``checkpoint_every_steps`` (0 = epoch ends
    only) and ``before_epoch`` (``fn(epoch)`` or None).
    """

    strategy: tf.distribute.Strategy
    state: TrainingState
    checkpointer: Checkpointer
    total_epochs: int
    steps_per_epoch: int | None = None
    checkpoint_every_steps: int = 0
    before_epoch: Callable[[int], None] | None = None
    restored_from: str | None = None

    # ---- what a subclass does ------------------------------------------------------------------
    def begin_epoch(self, epoch: int, resumed_mid_epoch: bool) -> None:
        """Before the task's ``before_epoch`` hook (learning rate, search phase)."""

    def on_epoch_start(self, epoch: int, resumed_mid_epoch: bool) -> None:
        """After the task's ``before_epoch`` hook, before the data is read (callbacks, metrics)."""

    def train_step_on(self, iterator, epoch: int, in_epoch: int) -> dict:
        """One step on ``iterator``; raises ``StopIteration`` when the epoch's data ends."""
        raise NotImplementedError

    def end_epoch(self, epoch: int, steps: int, seconds: float, logs: dict) -> Any:
        """After the epoch's last step, before the epoch-end checkpoint (state the checkpoint
        must hold is set here); returns the epoch's result."""
        return logs

    def after_save(self, epoch: int, result: Any) -> None:
        """After the epoch-end checkpoint (files, summaries, log lines)."""

    def stopped(self) -> bool:
        """Whether the run ends before ``total_epochs`` (e.g. the search's early stop)."""
        return False

    # ---- the loop ------------------------------------------------------------------------------
    def restore(self, log: Callable[[str], None] = print) -> dict[str, int]:
        """Restores the latest checkpoint (if any; its path in ``restored_from``); returns the
        counters."""
        restored = self.restored_from = self.checkpointer.restore()
        counters = self.state.counters()
        if restored:
            log(f"resumed from {restored} at epoch {counters['epoch']} step {counters['step']}")
        return counters

    def run_epochs(self, dataset_fn: DatasetFn, counters: dict[str, int]) -> list:
        """Runs the epochs left after ``counters`` (from :meth:`restore`); returns their results."""
        epoch, results = counters["epoch"], []
        mid_epoch = counters["step_in_epoch"] > 0
        while epoch < self.total_epochs and not self.stopped():
            results.append(self.run_epoch(epoch, dataset_fn, mid_epoch))
            mid_epoch = False
            epoch += 1
        return results

    def run_epoch(self, epoch: int, dataset_fn: DatasetFn, resumed_mid_epoch: bool) -> Any:
        self.begin_epoch(epoch, resumed_mid_epoch)
        if self.before_epoch is not None and not resumed_mid_epoch:
            self.before_epoch(epoch)
        self.on_epoch_start(epoch, resumed_mid_epoch)
        iterator = iter(distribute_dataset(self.strategy, dataset_fn(epoch)))
        if resumed_mid_epoch and not self.checkpointer.restore_iterator(iterator):
            raise RuntimeError("the checkpoint is mid-epoch but holds no iterator state")
        in_epoch, steps, logs = int(self.state.step_in_epoch.numpy()), 0, {}
        start = time.perf_counter()
        while self.steps_per_epoch is None or in_epoch < self.steps_per_epoch:
            try:
                logs = self.train_step_on(iterator, epoch, in_epoch)
            except StopIteration:
                break
            self.state.step.assign_add(1)
            self.state.step_in_epoch.assign_add(1)
            in_epoch, steps = in_epoch + 1, steps + 1
            step = int(self.state.step.numpy())
            if self.checkpoint_every_steps and step % self.checkpoint_every_steps == 0:
                self.checkpointer.save(iterator)
        result = self.end_epoch(epoch, steps, time.perf_counter() - start, logs)
        self.state.epoch.assign_add(1)
        self.state.step_in_epoch.assign(0)
        self.checkpointer.save()
        self.after_save(epoch, result)
        return result
