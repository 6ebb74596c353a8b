"""Evaluate a trained model (docs/original_behaviour.md, "Metrics"): the official VQA accuracy
(``overall`` and per answer type, as ``vqaEval.py`` computes it from the challenge-format results
file written next to it), ITM retrieval R@1/5/10 and ranks, VG accuracy at IoU >= 0.5.

python -m mmnas_tf.evaluate --config=vqa --data_dir=tfrecords/vqa --checkpoint=runs/vqa

The model is rebuilt from the ``run.json`` that training wrote next to its checkpoints (falling
back to --config/--genotype); metrics go to ``<output_dir>/metrics_<split>.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli, precision

#: The convenience flags (``cli.CONVENIENCE_FLAGS``) of an evaluation, besides --data_dir and
#: --seed.
CONVENIENCE = ("eval_batch_size",)


def define_flags(fv: flags.FlagValues) -> None:
    cli.define_experiment_flags(fv, strategy=False)
    flags.DEFINE_string(
        "checkpoint", None, "Checkpoint directory (its latest) or prefix.", flag_values=fv
    )
    flags.DEFINE_string(
        "split", None, "Split to evaluate (default: data.eval_split).", flag_values=fv
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Where metrics/results go (default: CHECKPOINT_DIR/eval).",
        flag_values=fv,
    )
    cli.define_convenience_flags(fv, CONVENIENCE, renamed={"batch_size": "eval_batch_size"})
    cli.define_progress_flag(fv)
    cli.define_dtype_policy_flag(fv, default="auto")
    cli.define_machine_flags(fv)
    flags.mark_flag_as_required("checkpoint", flag_values=fv)


def main(argv: Sequence[str]) -> dict:
    """Evaluates; returns the metrics dict (also written as JSON)."""
    fv = cli.parse(define_flags, argv)
    exp = cli.experiment_from_flags(fv)
    return evaluate(exp, fv.checkpoint, fv.genotype, fv.split, fv.output_dir, fv.dtype_policy)


def evaluate(
    exp,
    checkpoint: str,
    genotype_path: str | None = None,
    split: str | None = None,
    output_dir: str | None = None,
    dtype_policy: str = "auto",
) -> dict:
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.runs import find_run, run_experiment, say_sizes
    from mmnas_tf.tasks import get_task

    exp = run_experiment(exp)  # the data's sizes, for a model not bound to a run.json
    split = split or exp.data.eval_split
    task = get_task(exp.task)
    run = find_run(checkpoint)
    if run is not None and genotype_path is None:
        config = run["model"]
    else:
        config = exp.model_config(exp.load_genotype(genotype_path))
    print(precision.apply(dtype_policy, precision.hidden_size_of(config)), flush=True)
    bound = "checkpoint" if run is not None and genotype_path is None else "model"
    say_sizes(exp.data.data_dir, [split], config, fix=bound)
    model = task.build_model(config)
    path = restore_model(model, checkpoint)
    print(f"evaluating {path} on {exp.data.data_dir}/{split}")
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    output_dir = output_dir or os.path.join(folder, "eval")
    os.makedirs(output_dir, exist_ok=True)
    metrics = task.evaluate(model, exp.data, config, split, output_dir)
    _write_tensorboard(folder, split, path, metrics)
    metrics_path = os.path.join(output_dir, f"metrics_{split}.json")
    with open(metrics_path, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, sort_keys=True)
    print(json.dumps(metrics, indent=1, sort_keys=True))
    return metrics


def _write_tensorboard(run_dir: str, split: str, checkpoint: str, metrics: dict) -> None:
    """Scalars under RUN_DIR/tensorboard as ``eval_<split>/<name>`` at the checkpoint's step, next
    to the training curves."""
    from mmnas_tf.engine.callbacks import TensorBoardScalars

    step = checkpoint.rsplit("-", 1)[-1]
    board = TensorBoardScalars(os.path.join(run_dir, "tensorboard"))
    board.write(metrics, int(step) if step.isdigit() else 0, f"eval_{split}/")
    board.on_train_end()


if __name__ == "__main__":
    cli.run(main)
