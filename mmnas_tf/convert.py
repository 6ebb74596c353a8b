"""Converts the datasets users have to mmnas_tf TFRecords (+ vocab.txt, answers.txt, embeddings.npy).

    python -m mmnas_tf.convert --task=vqa --out_dir=tfrecords/vqa --features=feats/train2014,feats/val2014 \\
        --vqa=train:v2_OpenEnded_mscoco_train2014_questions.json:v2_mscoco_train2014_annotations.json \\
        --vqa=val:v2_OpenEnded_mscoco_val2014_questions.json:v2_mscoco_val2014_annotations.json \\
        --glove=glove.840B.300d.txt
    python -m mmnas_tf.convert --task=itm --out_dir=tfrecords/flickr --features=feats/flickr \\
        --karpathy=dataset_flickr30k.json
    python -m mmnas_tf.convert --task=vg --out_dir=tfrecords/refcoco --features=feats/coco \\
        --refs='refcoco/refs(unc).p' --instances=refcoco/instances.json

Resumable: re-running skips shards that exist (each is written under a temporary name and renamed
when complete) and reuses vocab.txt / answers.txt found in --out_dir.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_enum(
        "task", None, ["vqa", "itm", "vg"], "Which dataset format to convert.", flag_values=fv
    )
    flags.DEFINE_string("out_dir", None, "Output folder.", flag_values=fv)
    flags.DEFINE_list(
        "features",
        None,
        "Folders of bottom-up .npz region features (searched recursively).",
        flag_values=fv,
    )
    flags.DEFINE_multi_string(
        "vqa", [], "VQA: SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]; repeat; the same SPLIT twice merges "
        "(e.g. VG augmentation into train).",
        flag_values=fv,
    )  # fmt: skip
    flags.DEFINE_integer(
        "min_answer_count",
        9,
        "VQA: keep answers seen at least this often (original: > 8).",
        flag_values=fv,
    )
    flags.DEFINE_string("karpathy", None, "ITM: Karpathy dataset_flickr30k.json.", flag_values=fv)
    flags.DEFINE_string("refs", None, "VG: refs(unc).p / refs(umd).p pickle.", flag_values=fv)
    flags.DEFINE_string("instances", None, "VG: COCO instances.json of the refs.", flag_values=fv)
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
    flags.DEFINE_bool("progress", True, "Show a progress line per split.", flag_values=fv)
    flags.mark_flags_as_required(["task", "out_dir", "features"], flag_values=fv)


def _vqa_splits(specs: Sequence[str]) -> dict[str, list[tuple[str, str | None]]]:
    if not specs:
        raise app.UsageError(
            "--task=vqa needs at least one --vqa=SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]"
        )
    sources: dict[str, list[tuple[str, str | None]]] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise app.UsageError(
                f"--vqa={spec!r}: expected SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]"
            )
        sources.setdefault(parts[0], []).append((parts[1], parts[2] if len(parts) == 3 else None))
    return sources


def main(argv: Sequence[str]) -> None:
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.data import writer
    from mmnas_tf.data.converters import common

    extra = {}
    if fv.task == "vqa":
        from mmnas_tf.data.converters import vqa

        sources = _vqa_splits(fv.vqa)
        annotations = [a for pairs in sources.values() for _, a in pairs if a]
        answers = vqa.answer_vocabulary(fv.out_dir, annotations, fv.min_answer_count)
        splits = {name: vqa.vqa_items(pairs, answers) for name, pairs in sources.items()}
        extra["num_answers"] = len(answers)
    elif fv.task == "itm":
        from mmnas_tf.data.converters import flickr

        if not fv.karpathy:
            raise app.UsageError("--task=itm needs --karpathy=dataset_flickr30k.json")
        splits = flickr.flickr_items(fv.karpathy)
    else:
        from mmnas_tf.data.converters import refcoco

        if not (fv.refs and fv.instances):
            raise app.UsageError(
                "--task=vg needs --refs='refs(unc).p' and --instances=instances.json"
            )
        splits = refcoco.refcoco_items(fv.refs, fv.instances)
    manifest = common.write_dataset(
        fv.task, fv.out_dir, splits, fv.features, fv.num_shards, fv.feature_dtype,
        fv.glove, fv.progress, extra,
    )  # fmt: skip
    print("\n".join(writer.summary_lines(manifest, fv.out_dir)))


if __name__ == "__main__":
    cli.run(main)
