"""The search loop: epochs of cycles, per-epoch genotype / theta / evaluation, early stop, resume.

Per epoch e (0-based): phase ``warmup`` for e < T_w, else ``search``; the W learning rate from the
recipe's schedule, the Gumbel temperature from its schedule over search epochs; the cycles of
``cycles_fn(e)`` (seeded by e: a restarted run rebuilds the same order) until the data ends or
``steps_per_epoch`` cycles; then the argmax genotype, softmax(theta), the loss (and task metric)
of the argmax architecture on D_a with the inherited weights, the history files and a checkpoint.
Early stop: the argmax genotype unchanged for ``early_stop_patience`` consecutive search epochs.

Checkpoints (the engine's ``Checkpointer``): weights, theta, both optimizers, the sampler
counter/seed and the phase (variables of the search model), dropout RNG states, epoch/step
counters, the iterator position mid-epoch, and the history + early-stop state as JSON.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.config import LEGACY_DROPOUT_GENERATOR
from mmnas_tf.console import Progress
from mmnas_tf.engine.checkpoint import Checkpointer, TrainingState, saved_json_state
from mmnas_tf.engine.distribute import check_jit_compile, distribute_dataset, worker_info
from mmnas_tf.engine.loop import DatasetFn, EpochLoop
from mmnas_tf.nas import reporting
from mmnas_tf.nas.search_model import (
    SearchModel,
    default_arch_optimizer,
    default_weight_optimizer,
)
from mmnas_tf.tasks import EpochHooks


class _Outputs:
    """A stand-in model returning precomputed outputs, so ``task.compute_loss`` does not run the
    network a second time for the metric."""

    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, inputs, training=None, arch=None):
        return self.outputs


#: The key of the search's JSON state (in every checkpoint) naming the supernet's dropout
#: generator; a search begun before it existed trained with ``"uniform"``.
GENERATOR_KEY = "dropout_generator"


def recorded_dropout_generator(model_dir: str) -> str | None:
    """The dropout generator of the search whose latest checkpoint is in ``model_dir`` (so that a
    restart keeps the random stream it began with), or None without a checkpoint."""
    state = saved_json_state(model_dir)
    return None if state is None else state.get(GENERATOR_KEY, LEGACY_DROPOUT_GENERATOR)


class Searcher(EpochLoop):
    """Runs (or continues) a search with exact resume (the shared ``engine.loop.EpochLoop``).

    Args:
      search_model: a ``SearchModel`` built under ``strategy.scope()`` (not compiled).
      config: the experiment's ``SearchConfig``.
      model_dir: checkpoints, ``genotypes.json``, ``theta_history.json``, ``tensorboard/``.
      strategy: a ``tf.distribute.Strategy`` (default: the current one).
      jit_compile: XLA for the cycle (refused under a distribution strategy).
      steps_per_epoch: optional cap on cycles per epoch.
      checkpoint_every_steps: mid-epoch checkpoint interval in cycles (0 = epoch ends only).
      max_to_keep: checkpoints kept.
      tensorboard: write TensorBoard summaries (chief only).
      run_eagerly: run cycles and evaluation eagerly (debugging and fast tests).
      log: ``fn(str)`` for the result line of each epoch (default: print).
      cycles_per_epoch: an estimate of the cycles of an epoch without a cap, for the phase's ETA
        before the first epoch ends (afterwards the measured length).
      progress: the progress line on stderr (:class:`mmnas_tf.console.Progress`; default: the
        process's ``--[no]progress``): per cycle on a terminal, one line per epoch otherwise.
      hooks: the task's ``EpochHooks`` (``Task.epoch_hooks``): ``before_epoch`` runs at the start
        of a fresh epoch, not when resuming mid-epoch (ITM: mine hard negatives), and its
        ``trackables`` join the checkpoint.
      callbacks: ``keras.callbacks.Callback`` s told of each cycle's start and end
        (``logs={"step": global cycle}``) and of the run's end (e.g. the profiler window).
    """

    def __init__(
        self,
        search_model: SearchModel,
        config,
        model_dir: str,
        strategy: tf.distribute.Strategy | None = None,
        jit_compile: bool = False,
        steps_per_epoch: int | None = None,
        checkpoint_every_steps: int = 0,
        max_to_keep: int = 3,
        tensorboard: bool = True,
        run_eagerly: bool = False,
        log: Callable[[str], None] = print,
        hooks: EpochHooks | None = None,
        callbacks: Sequence = (),
        cycles_per_epoch: int | None = None,
        progress: bool | None = None,
    ):
        hooks = hooks or EpochHooks()
        self.cycles_per_epoch = steps_per_epoch or cycles_per_epoch
        self.progress, self.bar = progress, None
        self.model, self.config, self.model_dir = search_model, config, model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        check_jit_compile(jit_compile, self.strategy)
        self.steps_per_epoch, self.checkpoint_every_steps = steps_per_epoch, checkpoint_every_steps
        self.total_epochs = config.warmup_epochs + config.search_epochs
        self.schedule = config.weight_schedule()
        self.log, self.before_epoch = log, hooks.before_epoch
        self.callbacks = list(callbacks)
        with self.strategy.scope():
            self.weight_optimizer = default_weight_optimizer(self.schedule(0))
            self.arch_optimizer = default_arch_optimizer(
                config.arch_learning_rate, config.arch_beta_1, config.arch_beta_2
            )
            search_model.compile(
                self.weight_optimizer,
                self.arch_optimizer,
                jit_compile=jit_compile,
                run_eagerly=run_eagerly,
            )
            self.metrics = search_model.task.build_metrics()
        self.worker_id, self.is_chief = worker_info()
        self.state = TrainingState()
        self.checkpointer = Checkpointer(
            model_dir,
            search_model,
            max_to_keep=max_to_keep,
            state=self.state,
            is_chief=self.is_chief,
            worker_id=self.worker_id,
            weight_optimizer=self.weight_optimizer,
            arch_optimizer=self.arch_optimizer,
            **hooks.trackables,
        )
        self.writer = (
            tf.summary.create_file_writer(os.path.join(model_dir, "tensorboard"))
            if tensorboard and self.is_chief
            else None
        )
        self._eval_fn = self._train = None
        self.status: dict = {"history": {}, "unchanged": 0, "stopped": False}
        self._cycles_eval = None

    # ---- schedule ------------------------------------------------------------------------------
    def phase(self, epoch: int) -> tuple[str, float]:
        """(phase, Gumbel temperature) of ``epoch``."""
        if epoch < self.config.warmup_epochs:
            return "warmup", self.config.temperature(0)
        return "search", self.config.temperature(epoch - self.config.warmup_epochs)

    # ---- evaluation of the argmax architecture -------------------------------------------------
    def _replica_eval(self, inputs, targets):
        model = self.model
        inputs, targets = model.prepare(inputs, targets)
        outputs = model.task_model(inputs, training=False, arch=model.argmax_arch())
        loss = model.task.compute_loss(_Outputs(outputs), inputs, targets, training=False)
        model.task.update_metrics(self.metrics, outputs, inputs, targets)
        return loss, tf.shape(inputs[names.TEXT_IDS])[0]

    def evaluate(self, dataset: tf.data.Dataset) -> dict:
        """Loss per example (and the task metric) of the argmax architecture, inherited weights."""
        if self._eval_fn is None:

            def step(inputs, targets):
                loss, n = self.strategy.run(self._replica_eval, args=(inputs, targets))
                total = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
                return total, self.strategy.reduce(tf.distribute.ReduceOp.SUM, n, axis=None)

            self._eval_fn = (
                step
                if self.model.run_eagerly
                else tf.function(step, autograph=False, reduce_retracing=True)
            )
        for metric in self.metrics:
            metric.reset_state()
        total, count = 0.0, 0
        for inputs, targets in distribute_dataset(self.strategy, dataset):
            loss, n = self._eval_fn(inputs, targets)
            total, count = total + float(loss), count + int(n)
        out = {"loss": total / max(count, 1), "examples": count}
        out.update({m.name: float(m.result()) for m in self.metrics})
        return out

    # ---- the loop ------------------------------------------------------------------------------
    def run(
        self, cycles_fn: DatasetFn, eval_fn: Callable[[], tf.data.Dataset] | None = None
    ) -> dict:
        """Searches until the last epoch or the early stop; returns the JSON state
        ``{"history": {"epochK": ...}, "unchanged": int, "stopped": bool, "dropout_generator":
        str}`` (no ``dropout_generator`` in a search resumed from before it was recorded)."""
        counters = self.restore(self.log)
        self.status = self.state.json or {"history": {}, "unchanged": 0, "stopped": False}
        if self.restored_from:
            self._write_files(self.status)
        else:  # in the JSON state from the first checkpoint on: a restart reads it
            self.status[GENERATOR_KEY] = self.model.task_model.backbone.config.dropout_generator
            type(self.state).json.fset(self.state, self.status)
        self._cycles_eval = eval_fn
        self.run_epochs(cycles_fn, counters)
        for cb in self.callbacks:
            cb.on_train_end()
        if self.writer is not None:
            self.writer.flush()
        return self.status

    # ---- the epoch hooks of the shared loop ----------------------------------------------------
    def stopped(self) -> bool:
        return self.status["stopped"]

    def begin_epoch(self, epoch: int, resumed_mid_epoch: bool) -> None:
        phase, self._temperature = self.phase(epoch)
        self.model.set_state(phase, self._temperature)
        self.weight_optimizer.learning_rate = self.schedule(epoch)

    def on_epoch_start(self, epoch: int, resumed_mid_epoch: bool) -> None:
        if not resumed_mid_epoch:
            self.model.reset_metrics()
        phase, cycles = self.phase(epoch)[0], self.cycles_per_epoch
        self.bar = Progress(
            cycles,
            f"epoch {epoch + 1}/{self.total_epochs} {phase}",
            self.progress if self.is_chief else False,
            unit="cycles",
            later=self._epochs_after(epoch) * (cycles or 0),
            eta_label=phase,
        )
        self.bar.done = int(self.state.step_in_epoch.numpy())
        self._stop_in = self.epochs_before_early_stop(epoch)

    def _epochs_after(self, epoch: int) -> int:
        """Epochs of ``epoch``'s phase after it."""
        warmup = self.config.warmup_epochs
        return (warmup if epoch < warmup else self.total_epochs) - epoch - 1

    def epochs_before_early_stop(self, epoch: int) -> int | None:
        """The fewest epochs, ``epoch`` included, after which the early stop could fire (the
        argmax genotype unchanged from now on); None when it cannot fire by the last epoch."""
        patience, warmup = self.config.early_stop_patience, self.config.warmup_epochs
        if not patience:
            return None
        if epoch < warmup:  # the first search epoch has no search epoch before it to match
            n = warmup - epoch + 1 + patience
        elif epoch == warmup:
            n = 1 + patience
        else:
            n = patience - self.status["unchanged"]
        return n if n <= self.total_epochs - epoch else None

    def train_step_on(self, iterator, epoch: int, in_epoch: int) -> dict:
        if self._train is None:
            self._train = self.model.make_train_function()
        step = int(self.state.step.numpy()) + 1
        for cb in self.callbacks:
            cb.on_train_batch_begin(in_epoch, {"step": step})
        logs = self._train(iterator)
        for cb in self.callbacks:
            cb.on_train_batch_end(in_epoch, {"step": step})
        fields = {"loss": _number(logs.get("loss"))}
        if self._stop_in is not None:
            fields["early stop in >="] = f"{self._stop_in} epochs"
        self.bar.update(1, **fields)
        return logs

    def end_epoch(self, epoch: int, steps: int, seconds: float, logs: dict) -> dict:
        phase, _ = self.phase(epoch)
        status = self.status
        genotype, table = self.model.genotype(), self.model.theta_table()
        eval_fn = self._cycles_eval
        evaluation = self.evaluate(eval_fn()) if eval_fn is not None else {}
        key = f"epoch{epoch + 1}"
        history = dict(status["history"])
        # only search epochs count: theta does not move during the warm-up
        last = history.get(f"epoch{epoch}", {})
        previous = last.get("genotype") if last.get("phase") == "search" else None
        history[key] = {
            "genotype": genotype.to_original(),
            "theta": table,
            "eval": evaluation,
            "phase": phase,
            "loss": _number(logs.get("loss")),
            "arch_loss": _number(logs.get("arch_loss")) if phase == "search" else None,
        }
        same = phase == "search" and previous == history[key]["genotype"]
        unchanged = status["unchanged"] + 1 if same else 0
        patience = self.config.early_stop_patience
        self.status = {
            **status,  # the dropout generator, when recorded
            "history": history,
            "unchanged": unchanged,
            "stopped": bool(patience and unchanged >= patience),
        }
        # tf.Module.__setattr__ would wrap the dict for tracking before the property sees it
        type(self.state).json.fset(self.state, self.status)
        self._epoch_line = _epoch_line(
            f"epoch {epoch + 1}/{self.total_epochs} {phase}",
            history[key],
            evaluation,
            seconds / max(steps, 1),
            genotype,
        ) + (f" (unchanged {unchanged} epochs: early stop)" if self.status["stopped"] else "")
        self._epoch_summary = (epoch, history[key], self._temperature, steps, seconds)
        return self.status

    def after_save(self, epoch: int, result: dict) -> None:
        pictures = self._write_files(result)
        self._summaries(*self._epoch_summary, pictures)
        self._close_bar(epoch)
        self.log(self._epoch_line)

    def _close_bar(self, epoch: int) -> None:
        """The epoch's progress line stays, its phase ETA from the measured epoch length."""
        bar = self.bar
        measured = bar.done or self.cycles_per_epoch
        self.cycles_per_epoch = self.steps_per_epoch or measured
        bar.total = bar.done
        bar.later = 0 if self.status["stopped"] else self._epochs_after(epoch) * (measured or 0)
        bar.fields.pop("early stop in >=", None)
        bar.close()

    def _write_files(self, status: dict) -> dict | None:
        """Writes the history files and pictures (chief only); returns the pictures."""
        if self.is_chief:
            reporting.write_history(self.model_dir, status["history"])
            return reporting.pictures(status["history"], self.model_dir)
        return None

    def _summaries(self, epoch, record, temperature, cycles, took, pictures=None) -> None:
        if self.writer is None:
            return
        table = record["theta"]
        with self.writer.as_default(step=epoch + 1):
            for name in ("loss", "arch_loss"):
                if record[name] is not None:
                    tf.summary.scalar(f"search/{name}", record[name])
            for name, value in record["eval"].items():
                tf.summary.scalar(f"eval/{name}", value)
            tf.summary.scalar("search/temperature", temperature)
            tf.summary.scalar("search/seconds_per_cycle", took / max(cycles, 1))
            ent = reporting.entropies(table)
            for i, value in enumerate(ent):
                stage = "encoder" if i < len(table["encoder"]) else "decoder"
                index = i if stage == "encoder" else i - len(table["encoder"])
                tf.summary.scalar(f"entropy/{stage}_{index}", value)
            tf.summary.scalar("entropy/mean", float(np.mean(ent)))
            genotype = record["genotype"]
            tf.summary.text(
                "genotype",
                f"enc: {[g[0] for g in genotype['enc']]}  \ndec: {[g[0] for g in genotype['dec']]}",
            )
            if pictures is None:  # no drawing libraries: the unlabelled grid
                tf.summary.image("theta_heatmap", reporting.heatmap(table)[None])
            for name, image in (pictures or {}).items():
                tf.summary.image(name, image[None])
        self.writer.flush()


def _number(value) -> float | None:
    """A JSON-safe float (None for a missing or non-finite value)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


#: How the epoch line shows a loss that is NaN or infinite (the history holds None for it).
NOT_FINITE = "not finite"
#: What the epoch line adds after a NaN or infinite loss.
NOT_FINITE_HINT = (
    "a loss is NaN or infinite: the weights trained on it are no longer usable; check the data "
    "(e.g. examples whose every image region is masked) or lower the weight learning rate"
)


def _value(value) -> str:
    """A loss or score for the epoch line: 4 significant digits, :data:`NOT_FINITE` for None
    (what :func:`_number` keeps of NaN or inf) or a non-finite float."""
    if value is None or not np.isfinite(value):
        return NOT_FINITE
    return f"{value:.4g}"


def _epoch_line(head: str, record: dict, evaluation: dict, seconds_per_cycle: float, genotype):
    """``epoch 2/3 search - loss 1.234 - arch loss 1.3 - eval loss 1.2 in_vocabulary_accuracy 0.415
    (310 examples) - 0.21 s/cycle - enc[SA] dec[GA RSA]``; a NaN or infinite loss (e.g. batches
    whose every image region is masked) reads ``loss not finite`` and the line ends with a hint."""
    parts = [head, f"loss {_value(record['loss'])}"]
    if record.get("arch_loss") is not None or record.get("phase") == "search":
        parts.append(f"arch loss {_value(record.get('arch_loss'))}")
    if evaluation:
        scores = " ".join(f"{k} {_value(v)}" for k, v in evaluation.items() if k != "examples")
        parts.append(f"eval {scores} ({evaluation['examples']} examples)")
    parts += [f"{seconds_per_cycle:.3g} s/cycle", str(genotype)]
    line = " - ".join(parts)
    if NOT_FINITE in line:
        line += f" ({NOT_FINITE_HINT})"
    return line
