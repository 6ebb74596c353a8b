"""The generic retrain loop: one task, one optimizer, the original recipe, exact resume.

Step (``Trainer.train_step``): ``loss = task.compute_loss(model, inputs, targets, training=True)``
(sum-reduced, as the original) -> gradients -> all-reduce SUM over replicas -> clip by global norm
(of the global gradient) -> Adam. Keras 3's TF optimizer sums replica gradients again inside
``apply``; dividing the already-summed gradient by the replica count before ``apply`` makes that
second sum restore it, so a MirroredStrategy step equals the single-device step on the same global
batch (tested).

Epochs: the shared ``engine.loop.EpochLoop`` (restore, the task's per-epoch hooks, mid-epoch
resume, periodic and epoch-end checkpoints); the learning rate is set at each epoch start from the
schedule; ``dataset_fn(epoch)`` builds the epoch's dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from mmnas_tf.engine.checkpoint import Checkpointer, TrainingState
from mmnas_tf.engine.distribute import check_jit_compile, worker_info
from mmnas_tf.engine.loop import DatasetFn, EpochLoop
from mmnas_tf.engine.optimizers import global_sum_gradients, make_adam
from mmnas_tf.engine.schedules import EpochSchedule
from mmnas_tf.tasks.base import EpochHooks, Task


class Trainer(EpochLoop):
    """Trains ``model`` on ``task`` with exact checkpoint/resume.

    Args:
      task: the ``Task`` (its ``compute_loss`` is the objective).
      model: the task model, built under ``strategy.scope()``.
      schedule: ``EpochSchedule`` of the learning rate.
      model_dir: checkpoints and TensorBoard events go here.
      epochs: int.
      optimizer: defaults to :func:`make_adam` with the schedule's epoch-0 rate (created in scope).
      clip_norm: global-norm clip (1.0; 0 = off).
      strategy: a ``tf.distribute.Strategy`` (default: the current one).
      jit_compile: XLA for the step (refused under a distribution strategy:
        ``engine.distribute.check_jit_compile``).
      steps_per_epoch: optional cap on steps per epoch.
      checkpoint_every_steps: mid-epoch checkpoint interval (0 = epoch ends only).
      max_to_keep: checkpoints kept.
      callbacks: ``keras.callbacks.Callback`` s (progress bar, TensorBoard, profiler).
      hooks: the task's ``EpochHooks`` (``task.epoch_hooks(...)``, e.g. ITM mining): its
        ``before_epoch(epoch)`` runs at a fresh epoch start, not again when resuming mid-epoch;
        its ``batch_fn`` maps each per-replica batch in-graph; its ``trackables`` join the
        checkpoint.
    """

    def __init__(
        self,
        task: Task,
        model: keras.Model,
        schedule: EpochSchedule,
        model_dir: str,
        epochs: int,
        optimizer: keras.optimizers.Optimizer | None = None,
        clip_norm: float = 1.0,
        strategy: tf.distribute.Strategy | None = None,
        jit_compile: bool = False,
        steps_per_epoch: int | None = None,
        checkpoint_every_steps: int = 0,
        max_to_keep: int = 3,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        hooks: EpochHooks | None = None,
    ):
        hooks = hooks or EpochHooks()
        self.task, self.model, self.schedule = task, model, schedule
        self.epochs = self.total_epochs = epochs
        self.strategy = strategy or tf.distribute.get_strategy()
        check_jit_compile(jit_compile, self.strategy)
        self.clip_norm, self.jit_compile = clip_norm, jit_compile
        self.steps_per_epoch, self.checkpoint_every_steps = steps_per_epoch, checkpoint_every_steps
        self.callbacks = list(callbacks)
        self.before_epoch, self.batch_fn = hooks.before_epoch, hooks.batch_fn
        with self.strategy.scope():
            self.optimizer = optimizer or make_adam(schedule(0))
            self.optimizer.build(model.trainable_variables)
        self.worker_id, self.is_chief = worker_info()
        self.state = TrainingState()
        self.checkpointer = Checkpointer(
            model_dir,
            model,
            max_to_keep=max_to_keep,
            state=self.state,
            is_chief=self.is_chief,
            worker_id=self.worker_id,
            optimizer=self.optimizer,
            **hooks.trackables,
        )
        self._step_fn = None
        self.history: list[dict] = []

    # ---- the step ------------------------------------------------------------------------------
    def _replica_step(self, inputs, targets):
        if self.batch_fn is not None:
            inputs, targets = self.batch_fn(inputs, targets)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.task.compute_loss(self.model, inputs, targets, training=True)
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads, norm = global_sum_gradients([g for g, _ in pairs], self.clip_norm)
        self.optimizer.apply(grads, [v for _, v in pairs])
        return loss, norm

    def _build_step(self):
        def step(inputs, targets):
            loss, norm = self.strategy.run(self._replica_step, args=(inputs, targets))
            loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            norm = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None)
            return {"loss": loss, "grad_norm": norm}

        return tf.function(step, jit_compile=self.jit_compile, reduce_retracing=True)

    def train_step(self, inputs, targets) -> dict:
        """One optimizer step on a (distributed) batch; returns ``{"loss", "grad_norm"}`` tensors."""
        if self._step_fn is None:
            self._step_fn = self._build_step()
        return self._step_fn(inputs, targets)

    # ---- the loop ------------------------------------------------------------------------------
    def _set_params(self):
        for cb in self.callbacks:
            cb.set_model(self.model)
            cb.set_params({"epochs": self.epochs, "steps": self.steps_per_epoch, "verbose": 1})

    def fit(self, dataset_fn: DatasetFn) -> list[dict]:
        """Trains (or continues) until ``epochs``; returns one logs dict per epoch trained now."""
        counters = self.restore(lambda line: print(line, flush=True))
        self._set_params()
        for cb in self.callbacks:
            cb.on_train_begin()
        trained = self.run_epochs(dataset_fn, counters)
        for cb in self.callbacks:
            cb.on_train_end()
        self.history.extend(trained)
        return trained

    # ---- the epoch hooks of the shared loop ----------------------------------------------------
    def begin_epoch(self, epoch: int, resumed_mid_epoch: bool) -> None:
        self._lr = self.schedule(epoch)
        self.optimizer.learning_rate = self._lr
        self._losses, self._norms, self._examples = [], [], 0

    def on_epoch_start(self, epoch: int, resumed_mid_epoch: bool) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, {"learning_rate": self._lr})

    def train_step_on(self, iterator, epoch: int, in_epoch: int) -> dict:
        inputs, targets = next(iterator)
        step = int(self.state.step.numpy()) + 1
        for cb in self.callbacks:
            cb.on_train_batch_begin(in_epoch, {"step": step})
        out = self.train_step(inputs, targets)
        loss = float(out["loss"])
        if not np.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss} at epoch {epoch} step {step}")
        batch = _global_batch(inputs)
        self._losses.append(loss)
        self._norms.append(float(out["grad_norm"]))
        self._examples += batch
        logs = {
            "loss": loss,
            "grad_norm": self._norms[-1],
            "learning_rate": self._lr,
            "examples": batch,
            "step": step,
        }
        for cb in self.callbacks:
            cb.on_train_batch_end(in_epoch, logs)
        return logs

    def end_epoch(self, epoch: int, steps: int, seconds: float, logs: dict) -> dict:
        losses, norms = self._losses, self._norms
        return {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "grad_norm": float(np.mean(norms)) if norms else float("nan"),
            "learning_rate": self._lr,
            "steps": len(losses),
            "examples_per_sec": self._examples / max(seconds, 1e-9),
        }

    def after_save(self, epoch: int, result: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, dict(result))


def _global_batch(inputs) -> int:
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    if hasattr(first, "values"):  # PerReplica
        return int(sum(int(v.shape[0]) for v in first.values))
    return int(first.shape[0])
