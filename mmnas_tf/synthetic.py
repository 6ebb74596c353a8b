"""Writes the built-in synthetic benchmark in the TFRecord format of a task.

python -m mmnas_tf.synthetic --task=vqa --out_dir=tfrecords/synthetic_vqa --size=tiny
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    from mmnas_tf.tasks import task_names

    flags.DEFINE_enum(
        "task",
        task_names()[0],
        list(task_names()),
        "Task whose record format to write.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "out_dir", None, "Output folder (shards, manifest.json, vocab files).", flag_values=fv
    )
    flags.DEFINE_enum(
        "size",
        "tiny",
        ["tiny", "full", "quick"],
        "tiny: laptop/CI seconds; full: 10-100 regions, 2048-d; quick: 3-5 objects in at most 6 "
        "regions (the quickstart's).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_images", None, "Training images (val gets a fifth). Default by size.", flag_values=fv
    )
    flags.DEFINE_integer("seed", 0, "Scene / text seed (the feature map is fixed).", flag_values=fv)
    flags.DEFINE_enum(
        "feature_dtype", "float16", ["float16", "float32"], "Stored feature type.", flag_values=fv
    )
    flags.DEFINE_integer(
        "feature_dim",
        None,
        "Region feature width (default: tiny 128, full 2048).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_shards",
        None,
        "Shards per split (default: one per 500 images, <= 8).",
        flag_values=fv,
    )
    cli.define_progress_flag(fv)
    flags.mark_flag_as_required("out_dir", flag_values=fv)
    flags.DEFINE_enum(
        "question_set",
        "standard",
        ["standard", "structured", "attributes"],
        "VQA questions: standard, structured (families whose needs differ: two hops, size "
        "comparison, relational counting; docs/synthetic_benchmark.md) or attributes (standard's "
        "non-relational families only: the quickstart's).",
        flag_values=fv,
    )


def main(argv: Sequence[str]) -> dict:
    """Writes the benchmark; returns its manifest."""
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.data import writer
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    manifest = benchmark.generate(
        get_task(fv.task),
        fv.out_dir,
        fv.size,
        fv.num_images,
        fv.seed,
        fv.feature_dtype,
        fv.num_shards,
        fv.feature_dim,
        progress=fv.progress,
        question_set=fv.question_set,
    )
    print("\n".join(writer.summary_lines(manifest, fv.out_dir)))
    return manifest


if __name__ == "__main__":
    cli.run(main)
