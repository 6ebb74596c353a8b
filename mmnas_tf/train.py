"""Retrain a genotype from scratch with the original recipe (docs/original_behaviour.md, "Training
recipe").

python -m mmnas_tf.train --config=vqa --genotype=mmnas_tf/genotypes/mmnas_vqa.json \
    --data_dir=tfrecords/vqa --model_dir=runs/vqa

Restarting the same command continues from the latest checkpoint (bit-exact on one device).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli, precision

#: The convenience flags (``cli.CONVENIENCE_FLAGS``) of a training, besides --data_dir and --seed.
CONVENIENCE = ("epochs", "batch_size", "steps_per_epoch", "checkpoint_every_steps", "jit_compile")


def define_flags(fv: flags.FlagValues) -> None:
    cli.define_experiment_flags(fv)
    flags.DEFINE_string(
        "model_dir", None, "Checkpoints, run.json and TensorBoard events.", flag_values=fv
    )
    cli.define_convenience_flags(fv, CONVENIENCE)
    flags.DEFINE_string(
        "profile_steps",
        "",
        "Profile global steps a..b ('a,b') into MODEL_DIR/tensorboard; view in TensorBoard's "
        "Profile tab, which needs the optional extra tensorboard-plugin-profile "
        "(pip install 'mmnas-tf[profile]').",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "init_from_supernet",
        None,
        "Search checkpoint (dir or prefix) whose chosen candidates initialise the model (the "
        "search and retrain sizes must then agree).",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "deterministic",
        False,
        "Also run TF ops in deterministic mode (tf.config.experimental.enable_op_determinism; "
        "slower). The data order never depends on it: it follows --seed.",
        flag_values=fv,
    )
    cli.define_progress_flag(fv)
    cli.define_dtype_policy_flag(fv, default="auto")
    cli.define_machine_flags(fv)
    flags.mark_flag_as_required("model_dir", flag_values=fv)


def main(argv: Sequence[str]) -> list[dict]:
    """Trains; returns the per-epoch logs of this invocation."""
    fv = cli.parse(define_flags, argv)
    exp = cli.experiment_from_flags(fv)
    return train(
        exp,
        fv.model_dir,
        fv.genotype,
        fv.strategy,
        fv.profile_steps,
        fv.init_from_supernet,
        fv.deterministic,
        fv.progress,
        fv.dtype_policy,
    )


def train(
    exp,
    model_dir: str,
    genotype_path: str | None = None,
    strategy_name: str = "default",
    profile_steps: str = "",
    init_from_supernet: str | None = None,
    deterministic: bool = False,
    progress: bool = True,
    dtype_policy: str = "auto",
) -> list[dict]:
    """The driver body: ``exp`` is a validated ``ExperimentConfig``; ``dtype_policy`` as
    ``--dtype_policy`` (sets the process's Keras policy, :func:`mmnas_tf.precision.apply`)."""
    import keras
    import tensorflow as tf

    from mmnas_tf.engine import callbacks as cb
    from mmnas_tf.engine.distribute import check_jit_compile, make_strategy, worker_info
    from mmnas_tf.engine.optimizers import make_adam
    from mmnas_tf.engine.trainer import Trainer
    from mmnas_tf.machine import choose, resolve_train_xla
    from mmnas_tf.runs import (
        keep_recorded_generator,
        load_embeddings,
        run_experiment,
        save_run,
        say_sizes,
    )
    from mmnas_tf.tasks import get_task

    exp = run_experiment(exp)  # the data's sizes, for the model and its inputs
    exp, resumed_line = keep_recorded_generator(exp, model_dir)
    profile = cb.parse_profile_steps(profile_steps)
    strategy = make_strategy(strategy_name)
    check_jit_compile(exp.train.jit_compile, strategy)  # before anything is written
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(exp.data.seed)
    task = get_task(exp.task)
    genotype = exp.load_genotype(genotype_path)
    config = exp.model_config(genotype)
    print(precision.apply(dtype_policy, config.hidden_size), flush=True)
    jit_compile, xla_line = resolve_train_xla(
        exp.train.jit_compile,
        choose(),
        config.hidden_size,
        strategy.num_replicas_in_sync,
        keras.config.dtype_policy().compute_dtype,
    )
    exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, jit_compile=jit_compile))
    if xla_line:
        print(xla_line, flush=True)
    if resumed_line:
        print(resumed_line, flush=True)
    say_sizes(exp.data.data_dir, [exp.data.train_split], config)
    _, is_chief = worker_info()
    if is_chief:
        save_run(model_dir, exp, genotype, config, keras.config.dtype_policy().name)
    print(f"{exp.name}: {genotype}  d={config.hidden_size} heads={config.heads}")
    with strategy.scope():
        model = task.build_model(config)
        optimizer = make_adam(
            exp.train.schedule()(0), exp.train.beta_1, exp.train.beta_2, exp.train.epsilon
        )
    load_embeddings(model, exp.data.data_dir)
    if init_from_supernet:
        _inherit(task, model, config, init_from_supernet)
    print(f"parameters: {model.count_params():,}")

    hooks = task.epoch_hooks(exp, config, model)  # e.g. ITM hard-negative mining
    callbacks = []
    if progress and is_chief:  # one progress line for a multi-worker run
        every, batch = exp.train.log_every_steps or 10, exp.data.batch_size
        callbacks.append(cb.ProgressBar(every, batch, steps_per_epoch=steps_estimate(exp)))
    callbacks.append(
        cb.TensorBoardScalars(
            os.path.join(model_dir, "tensorboard"),
            exp.train.log_every_steps or 50,
            exp.data.batch_size,
            enabled=is_chief,
        )
    )
    if profile:
        callbacks.append(cb.ProfilerWindow(os.path.join(model_dir, "tensorboard"), profile))
    trainer = Trainer(
        task,
        model,
        exp.train.schedule(),
        model_dir,
        exp.train.epochs,
        optimizer=optimizer,
        clip_norm=exp.train.clip_norm,
        strategy=strategy,
        jit_compile=exp.train.jit_compile,
        steps_per_epoch=exp.train.steps_per_epoch,
        checkpoint_every_steps=exp.train.checkpoint_every_steps,
        max_to_keep=exp.train.max_to_keep,
        callbacks=callbacks,
        hooks=hooks,
    )
    return trainer.fit(train_dataset_fn(exp))


def steps_estimate(exp) -> int | None:
    """Steps of a training epoch, for the run's ETA before the first epoch ends: the step cap,
    else the split's examples over the batch size (None when the manifest does not say)."""
    from mmnas_tf.data.writer import split_examples

    examples = split_examples(exp.data.data_dir, exp.data.train_split)
    steps = -(-examples // exp.data.batch_size) if examples else None
    cap = exp.train.steps_per_epoch
    return min(cap, steps) if cap and steps else cap or steps


def train_dataset_fn(exp):
    """``fn(epoch)`` -> the training split's dataset of global batches, shuffled with seed + epoch.

    The parallel shard reads and maps keep their order (``deterministic=True``): with tf.data free
    to reorder them, two runs with the same seed, or a resumed run, saw different batches and
    ended with different weights."""
    from mmnas_tf.tasks import get_task

    task = get_task(exp.task)

    def make(epoch: int):
        return task.build_inputs(
            exp.data,
            exp.model,
            exp.data.train_split,
            training=True,
            seed=exp.data.seed + epoch,
            deterministic=True,
        )

    return make


def _inherit(task, model, config, path):
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.nas.inherit import inherit_from_supernet

    supernet = task.build_model(config.replace(genotype=None))
    restore_model(supernet, path)  # the task model alone, or inside a search model
    copied = inherit_from_supernet(model, supernet)
    print(f"inherited {len(copied)} weights from the supernet at {path}")


if __name__ == "__main__":
    cli.run(main)
