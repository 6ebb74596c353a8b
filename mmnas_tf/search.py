"""Search an architecture with the supernet (paper Algorithm 1; docs/original_behaviour.md,
"Search").

python -m mmnas_tf.search --config=vqa --data_dir=tfrecords/vqa --model_dir=runs/vqa_search

Runs the search recipe ``--recipe`` (default ``mmnas_tf.nas.recipes.DEFAULT_RECIPE``);
``--override`` and the convenience flags (``cli.CONVENIENCE_FLAGS``, README "Convenience flags")
then set single fields. XLA: ``--jit_compile`` (``train.jit_compile``, the training's field too).

Writes MODEL_DIR/genotypes.json (the original's ``{"epochK": {"enc": ..., "dec": ...}}``, readable
by ``--genotype`` of ``mmnas_tf.train``), MODEL_DIR/theta_history.json (softmax(theta) per block and
the evaluation of the argmax architecture on D_a, per epoch), checkpoints and TensorBoard events
(entropies, genotype text, theta heatmap); with an estimator that ends with a selection step
(``uniform``, ``gumbel_selection``) also MODEL_DIR/selection.json (the genotype chosen by scoring
candidates with the supernet's inherited weights on D_a, and every candidate; genotypes.json then
ends with it). Restarting the same command continues from the latest
checkpoint and ends with the same genotype and weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from absl import flags

from mmnas_tf import cli, precision
from mmnas_tf.nas import recipes

#: The convenience flags (``cli.CONVENIENCE_FLAGS``) of a search, besides --data_dir and --seed.
CONVENIENCE = (
    "estimator",
    "arch_paths",
    "warmup_epochs",
    "search_epochs",
    "early_stop_patience",
    "weight_steps",
    "prior_logit",
    "batch_size",
    "steps_per_epoch",
    "checkpoint_every_steps",
    "jit_compile",
)


def define_flags(fv: flags.FlagValues) -> None:
    cli.define_experiment_flags(fv, genotype=False)
    flags.DEFINE_string("model_dir", None, "Checkpoints, histories, TensorBoard.", flag_values=fv)
    flags.DEFINE_enum(
        "recipe",
        recipes.DEFAULT_RECIPE,
        recipes.recipe_names(),
        "The search recipe (mmnas_tf.nas.recipes) applied to the experiment before --override "
        "and the convenience flags.",
        flag_values=fv,
    )
    cli.define_convenience_flags(fv, CONVENIENCE)
    flags.DEFINE_bool("tensorboard", True, "Write TensorBoard summaries.", flag_values=fv)
    flags.DEFINE_string(
        "profile_steps",
        "",
        "Profile global cycles a..b ('a,b') into MODEL_DIR/tensorboard (TensorBoard's Profile tab; "
        "pip install 'mmnas-tf[profile]').",
        flag_values=fv,
    )
    cli.define_progress_flag(fv)
    cli.define_dtype_policy_flag(fv, default="auto")
    cli.define_machine_flags(fv)
    flags.mark_flag_as_required("model_dir", flag_values=fv)


def experiment_from_flags(fv: flags.FlagValues):
    """The experiment of ``--config``, through the recipe ``--recipe``, then ``--override`` and
    the convenience flags."""
    return cli.experiment_from_flags(fv, recipes.get_recipe(fv.recipe).apply)


def main(argv: Sequence[str]) -> dict:
    """Searches; returns the JSON state (history, early-stop counter)."""
    fv = cli.parse(define_flags, argv)
    exp = experiment_from_flags(fv)
    return search(exp, fv.model_dir, fv.strategy, fv.tensorboard, fv.profile_steps, fv.dtype_policy)


@dataclasses.dataclass
class SearchHooks:
    """What a caller of :func:`search` (a benchmark) may plug in; every field is optional.

    Attributes:
      datasets: ``fn(exp) -> (cycles_fn, eval_fn)`` in place of
        :func:`search_datasets` (e.g. a benchmark's own D_m / D_a of its generated data).
      before_selection: ``fn(search_model, status)`` after the last search epoch, before an
        estimator's selection step (e.g. to record the argmax or the CPU time of the theta search).
      searched: ``fn(search_model, status)`` at the end (e.g. to score genotypes with the
        supernet's inherited weights).
    """

    datasets: Callable | None = None
    before_selection: Callable | None = None
    searched: Callable | None = None


def search(
    exp,
    model_dir: str,
    strategy_name: str = "default",
    tensorboard: bool = True,
    profile_steps: str = "",
    dtype_policy: str = "auto",
    hooks: SearchHooks | None = None,
) -> dict:
    """The driver body: ``exp`` is a validated ``ExperimentConfig`` (XLA: ``train.jit_compile``);
    ``dtype_policy`` as ``--dtype_policy`` (sets the process's Keras policy,
    :func:`mmnas_tf.precision.apply`); ``hooks`` (:class:`SearchHooks`) for callers that record
    more."""
    import keras

    from mmnas_tf.config import keep_dropout_generator
    from mmnas_tf.engine import callbacks as cb
    from mmnas_tf.engine.distribute import check_jit_compile, make_strategy
    from mmnas_tf.nas.estimators import get_estimator
    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.nas.searcher import Searcher, recorded_dropout_generator
    from mmnas_tf.runs import load_embeddings, run_experiment, say_sizes
    from mmnas_tf.tasks import get_task

    caller = hooks or SearchHooks()
    exp = run_experiment(exp)  # the data's sizes, for the model and its inputs
    profile = cb.parse_profile_steps(profile_steps)
    strategy = make_strategy(strategy_name)
    check_jit_compile(exp.train.jit_compile, strategy)
    config = exp.search_model
    print(precision.apply(dtype_policy, config.hidden_size), flush=True)
    config, line = keep_dropout_generator(
        config, recorded_dropout_generator(model_dir), "this search began (its checkpoint)"
    )
    if line:
        print(line, flush=True)
    say_sizes(exp.data.data_dir, [exp.data.train_split], config, fix="search_model")
    keras.utils.set_random_seed(exp.data.seed)
    task = get_task(exp.task)
    s = exp.search
    with strategy.scope():
        model = task.build_model(config)
        search_model = SearchModel(
            task,
            model,
            estimator=s.estimator,
            weight_steps=s.weight_steps_per_arch_step,
            warmup="prior" if s.prior_logit else "uniform",
            prior_logit=s.prior_logit or 1.0,
            clip_norm=exp.train.clip_norm,
            seed=exp.data.seed,
            arch_paths=s.arch_paths,
        )
    load_embeddings(model, exp.data.data_dir)
    # e.g. ITM: hard negatives re-mined each epoch by the argmax architecture
    hooks = task.epoch_hooks(exp, config, search_model)
    search_model.batch_fn = hooks.batch_fn
    searcher = Searcher(
        search_model,
        s,
        model_dir,
        strategy=strategy,
        jit_compile=bool(exp.train.jit_compile),  # None: graph mode (XLA not measured here)
        steps_per_epoch=exp.train.steps_per_epoch,
        checkpoint_every_steps=exp.train.checkpoint_every_steps,
        max_to_keep=exp.train.max_to_keep,
        tensorboard=tensorboard,
        hooks=hooks,
        cycles_per_epoch=cycles_estimate(exp),
        callbacks=[cb.ProfilerWindow(os.path.join(model_dir, "tensorboard"), profile)]
        if profile
        else (),
    )
    print(
        f"{exp.name}: search d={config.hidden_size} heads={config.heads} M/N {config.num_encoder_blocks}/{config.num_decoder_blocks} estimator={s.estimator} arch_paths={s.arch_paths}",
        flush=True,
    )
    cycles_fn, eval_fn = (caller.datasets or search_datasets)(exp)
    status = searcher.run(cycles_fn, eval_fn)
    estimator = get_estimator(s.estimator)
    if estimator.ends_with_selection:  # choose by inherited-weight D_a scores
        from mmnas_tf.nas import selection

        if caller.before_selection:
            caller.before_selection(search_model, status)
        batches = list(eval_fn())
        result = estimator.select(search_model, batches, exp.data.seed, s)
        status = selection.select_and_write(search_model, batches, model_dir, status, result)
        print(
            f"{s.estimator}: selected {status['selection']['genotype']} of {len(status['selection']['candidates'])} candidates (selection.json)",
            flush=True,
        )
    if caller.searched:
        caller.searched(search_model, status)
    return status


def cycles_estimate(exp) -> int | None:
    """Cycles of a search epoch before the first one ends (the phase's ETA): D_m's share of the
    training split's examples over u batches (None when the manifest does not say)."""
    from mmnas_tf.data.writer import split_examples

    d = exp.data
    examples = split_examples(d.data_dir, d.train_split)
    if not examples:
        return None
    dm = examples * d.search_ratio[0] // sum(d.search_ratio)
    return -(-dm // d.batch_size) // exp.search.weight_steps_per_arch_step or None


def search_datasets(exp):
    """``(cycles_fn(epoch), eval_fn())``: D_m / D_a of the training split (split by image id,
    ``data.search_ratio``), shuffled with seed + epoch; one cycle = u D_m batches + one D_a batch;
    the evaluation reads every D_a example once, in evaluation batches."""
    from mmnas_tf.nas.search_model import cycle_dataset
    from mmnas_tf.tasks import get_task

    d, task = exp.data, get_task(exp.task)

    def pipeline(subset: str, seed: int, repeat: bool, training: bool = True):
        return task.build_inputs(
            d,
            exp.search_model,
            d.train_split,
            training=training,
            seed=seed,
            deterministic=True,
            subset=subset,
            repeat=repeat,
            bucket_boundaries=None,
        )

    def cycles_fn(epoch: int):
        dm = pipeline("dm", d.seed + epoch, False)
        da = pipeline("da", d.seed + 7919 + epoch, True)
        return cycle_dataset(dm, da, exp.search.weight_steps_per_arch_step)

    def eval_fn():  # every D_a example once (no partial batch dropped), in a fixed order
        return pipeline("da", d.seed, False, training=False)

    return cycles_fn, eval_fn


if __name__ == "__main__":
    cli.run(main)
