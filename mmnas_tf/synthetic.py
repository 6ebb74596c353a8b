"""Writes the built-in synthetic benchmark in the TFRecord format of a task.

python -m mmnas_tf.synthetic --task=vqa --out_dir=tfrecords/synthetic_vqa --size=tiny
"""

from __future__ import annotations

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    from mmnas_tf.tasks import task_names

    flags.DEFINE_enum(
        "task", task_names()[0], list(task_names()), "Task whose record format to write."
    )
    flags.DEFINE_string("out_dir", None, "Output folder (shards, manifest.json, vocab files).")
    flags.DEFINE_enum(
        "size", "tiny", ["tiny", "full"], "tiny: laptop/CI seconds; full: 10-100 regions, 2048-d."
    )
    flags.DEFINE_integer("num_images", None, "Training images (val gets a fifth). Default by size.")
    flags.DEFINE_integer("seed", 0, "Scene / text seed (the feature map is fixed).")
    flags.DEFINE_enum("feature_dtype", "float16", ["float16", "float32"], "Stored feature type.")
    flags.DEFINE_integer(
        "feature_dim", None, "Region feature width (default: tiny 128, full 2048)."
    )
    flags.DEFINE_integer(
        "num_shards", None, "Shards per split (default: one per 500 images, <= 8)."
    )
    flags.DEFINE_enum(
        "question_set", "standard", ["standard", "structured"],
        "VQA questions: standard, or structured (families whose needs differ: two hops, size "
        "comparison, relational counting; docs/synthetic_benchmark.md).",
    )  # fmt: skip
    flags.mark_flag_as_required("out_dir")


def main(argv: list[str]) -> None:
    del argv
    from mmnas_tf.data import benchmark, writer
    from mmnas_tf.tasks import get_task

    manifest = benchmark.generate(
        get_task(FLAGS.task), FLAGS.out_dir, FLAGS.size, FLAGS.num_images, FLAGS.seed,
        FLAGS.feature_dtype, FLAGS.num_shards, FLAGS.feature_dim, progress=True,
        question_set=FLAGS.question_set,
    )  # fmt: skip
    print("\n".join(writer.summary_lines(manifest, FLAGS.out_dir)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
