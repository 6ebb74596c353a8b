"""Exports a model trained by this project as a TF Serving SavedModel version.

    python -m mmnas_tf.export --task=vqa --checkpoint=runs/vqa --export_dir=/models/vqa [--version=2]

``--checkpoint`` is the training model directory (its latest checkpoint) or a prefix such as
``runs/vqa/ckpt-1200``; the model is rebuilt from the ``run.json`` beside it. The version defaults
to one more than the newest under ``--export_dir``. Original PyTorch checkpoints: use
``python -m mmnas_tf.import_official``.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    from mmnas_tf.tasks import task_names

    flags.DEFINE_enum("task", None, list(task_names()), "Task of the model.", flag_values=fv)
    flags.DEFINE_string(
        "checkpoint", None, "Training model directory or checkpoint prefix.", flag_values=fv
    )
    flags.DEFINE_bool(
        "explain",
        False,
        "Add the 'explain' signature: outputs plus attention weights (docs/explain.md).",
        flag_values=fv,
    )
    cli.define_saved_model_flags(fv, vocab_dir="the run's data_dir")
    cli.define_machine_flags(fv)
    flags.mark_flags_as_required(["task", "checkpoint", "export_dir"], flag_values=fv)


def main(argv: Sequence[str]) -> str:
    """Exports; returns (and prints) the version directory written."""
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.runs import say_run_sizes
    from mmnas_tf.serving.from_checkpoint import export_checkpoint

    say_run_sizes(fv.checkpoint)
    path = export_checkpoint(
        fv.task,
        fv.checkpoint,
        fv.export_dir,
        fv.version,
        vocab_file=fv.vocab,
        answers_file=fv.answer_vocab,
        overwrite=fv.overwrite,
        fixed_shapes=fv.fixed_shapes,
        explain=fv.explain,
        dtype_policy=fv.dtype_policy,
    )
    print(f"SavedModel written to {path}")
    return path


if __name__ == "__main__":
    cli.run(main)
