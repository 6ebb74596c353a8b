"""Import an original MMnas (PyTorch) checkpoint and write a SavedModel for TF Serving.

    python -m mmnas_tf.import_official --task=vqa --checkpoint=epoch13.pkl \
        --arch=arch/mmnas_vqa.json --export_dir=/models/vqa --version=1 --answer_vocab=answers.txt

Every size is inferred from the checkpoint's tensors and the head size from the architecture's op
names; ``max_tokens`` / ``max_regions`` (the padded input sizes) default to the task's. The
checkpoint may be in either ``torch.save`` format (zip, torch >= 1.6, or the legacy format of
torch 0.4 - 1.5), saved from CPU or GPU, with or without DataParallel ``module.`` prefixes; it is
read without torch and only tensors and plain containers are unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli, precision


def define_flags(fv: flags.FlagValues) -> None:
    from mmnas_tf.tasks import task_names

    flags.DEFINE_enum("task", None, list(task_names()), "Task of the checkpoint.", flag_values=fv)
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Original checkpoint (.pkl written by torch.save, zip or legacy format) or an .npz of its "
        "state dict.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "arch",
        None,
        "Original architecture JSON (arch/*.json) or our genotype JSON.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "arch_epoch", None, "Which 'epochK' of --arch (default: the last one).", flag_values=fv
    )
    flags.DEFINE_integer(
        "max_tokens",
        None,
        "Most tokens m a request may send (default: the task's).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_regions",
        None,
        "Most regions n a request may send (default: the task's).",
        flag_values=fv,
    )
    cli.define_saved_model_flags(fv)
    flags.mark_flags_as_required(["task", "checkpoint", "arch", "export_dir"], flag_values=fv)


def main(argv: Sequence[str]) -> str:
    """Imports and exports; returns the SavedModel path."""
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.compat import import_original
    from mmnas_tf.serving.export import export_saved_model
    from mmnas_tf.tasks import get_task

    overrides = {}
    if fv.max_tokens:
        overrides["max_tokens"] = fv.max_tokens
    if fv.max_regions:
        overrides["max_regions"] = fv.max_regions
    print(precision.apply(fv.dtype_policy), flush=True)
    model, config = import_original(fv.task, fv.checkpoint, fv.arch, fv.arch_epoch, **overrides)
    if fv.answer_vocab and get_task(fv.task).uses_answer_vocabulary:
        with open(fv.answer_vocab, encoding="utf-8") as f:
            count = sum(1 for line in f if line.strip())
        if count != model.num_outputs:
            raise ValueError(
                f"--answer_vocab has {count} answers but the checkpoint has {model.num_outputs}"
            )
    if fv.vocab:  # the original's embedding has one row per token of its rebuilt table
        with open(fv.vocab, encoding="utf-8") as f:
            count = sum(1 for line in f if line.strip())
        if count != config.vocab_size:
            raise ValueError(
                f"--vocab {fv.vocab} has {count} tokens but the checkpoint's embedding has "
                f"{config.vocab_size} rows: rebuild it with mmnas_tf.convert from the same files "
                "the original read (tfrecords/README.md)"
            )
    path = export_saved_model(
        model,
        fv.task,
        config,
        fv.export_dir,
        fv.version,
        vocab_file=fv.vocab,
        answers_file=fv.answer_vocab,
        overwrite=fv.overwrite,
        fixed_shapes=fv.fixed_shapes,
    )
    print(
        f"imported {fv.task} model: d={config.hidden_size} heads={config.heads} "
        f"M/N={config.num_encoder_blocks}/{config.num_decoder_blocks} "
        f"genotype {config.genotype} params={model.count_params():,}"
    )
    print(f"SavedModel written to {path}")
    return path


if __name__ == "__main__":
    cli.run(main)
