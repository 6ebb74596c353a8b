"""Converts the datasets users have to mmnas_tf TFRecords (+ vocab.txt, answers.txt, embeddings.npy).

    python -m mmnas_tf.convert --task=vqa --out_dir=tfrecords/vqa --features=feats/train2014,feats/val2014 \\
        --vqa=train:v2_OpenEnded_mscoco_train2014_questions.json:v2_mscoco_train2014_annotations.json \\
        --vqa=vg:VG_questions.json:VG_annotations.json \\
        --vqa=val:v2_OpenEnded_mscoco_val2014_questions.json:v2_mscoco_val2014_annotations.json \\
        --glove=glove.840B.300d.txt
    python -m mmnas_tf.convert --task=itm --out_dir=tfrecords/flickr --features=feats/flickr \\
        --karpathy=dataset_flickr30k.json
    python -m mmnas_tf.convert --task=vg --out_dir=tfrecords/refcoco --features=feats/coco \\
        --refs='refcoco/refs(unc).p' --instances=refcoco/instances.json

The token and answer tables equal the original's when given the files the original reads
(tfrecords/README.md lists the commands). Resumable: re-running skips shards that exist (each is
written under a temporary name and renamed when complete) and reuses vocab.txt / answers.txt
found in --out_dir.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags

from mmnas_tf import cli

#: ``flags.DEFINE_*`` of a ``SourceFlag`` kind.
_DEFINERS = {
    "string": flags.DEFINE_string,
    "multi_string": flags.DEFINE_multi_string,
    "list": flags.DEFINE_list,
    "integer": flags.DEFINE_integer,
}


def define_flags(fv: flags.FlagValues) -> None:
    from mmnas_tf.tasks import get_task, task_names

    flags.DEFINE_enum(
        "task", None, list(task_names()), "Which dataset format to convert.", flag_values=fv
    )
    flags.DEFINE_string("out_dir", None, "Output folder.", flag_values=fv)
    flags.DEFINE_list(
        "features",
        None,
        "Folders of bottom-up .npz region features (searched recursively).",
        flag_values=fv,
    )
    defined = set()
    for name in task_names():  # each task's source flags (e.g. VQA's --vqa, ITM's --karpathy)
        for source in get_task(name).source_flags:
            if source.name not in defined:
                _DEFINERS[source.kind](source.name, source.default, source.help, flag_values=fv)
                defined.add(source.name)
    flags.DEFINE_string(
        "glove",
        None,
        "GloVe-format word vectors (word v1 ... vD); random init if unset.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_shards",
        None,
        "Shards per split (default: one per 1000 images, <= 64).",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "feature_dtype",
        "float32",
        ["float32", "float16"],
        "Stored region-feature type.",
        flag_values=fv,
    )
    cli.define_progress_flag(fv)
    flags.DEFINE_bool(
        "skip_bad",
        False,
        "Leave out images whose region-feature file is corrupt (reads every "
        "file once more first) and report how many; default: stop naming the file.",
        flag_values=fv,
    )
    flags.mark_flags_as_required(["task", "out_dir", "features"], flag_values=fv)


def main(argv: Sequence[str]) -> None:
    """Runs the conversion (an input problem raises an error naming the file)."""
    _convert(cli.parse(define_flags, argv))


def _convert(fv: flags.FlagValues) -> None:
    from mmnas_tf.data import writer
    from mmnas_tf.data.converters import common
    from mmnas_tf.tasks import SourceFlagError, get_task

    task = get_task(fv.task)
    sources = {source.name: fv[source.name].value for source in task.source_flags}
    try:
        splits, extra = task.convert_sources(sources, fv.out_dir)
    except SourceFlagError as e:
        raise app.UsageError(str(e)) from e
    manifest = common.write_dataset(
        task,
        fv.out_dir,
        splits,
        fv.features,
        fv.num_shards,
        fv.feature_dtype,
        fv.glove,
        fv.progress,
        extra,
        fv.skip_bad,
    )
    print("\n".join(writer.summary_lines(manifest, fv.out_dir)))


if __name__ == "__main__":
    cli.run(main)
