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

import pickle
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
        "vqa", [], "VQA: SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]; repeat; the same SPLIT twice merges; "
        "SPLIT vg = the Visual Genome augmentation (joins train, read last, answers not counted, "
        "as the original).",
        flag_values=fv,
    )  # fmt: skip
    flags.DEFINE_integer(
        "min_answer_count",
        9,
        "VQA: keep answers seen at least this often (original: > 8).",
        flag_values=fv,
    )
    flags.DEFINE_string("karpathy", None, "ITM: Karpathy dataset_flickr30k.json.", flag_values=fv)
    flags.DEFINE_multi_string(
        "captions", [], "ITM: SPLIT:CAPS_TXT:IDS_TXT, SCAN's f30k_precomp files (what the original "
        "reads); repeat per split; needs --karpathy for the image file names.",
        flag_values=fv,
    )  # fmt: skip
    flags.DEFINE_string("refs", None, "VG: refs(unc).p / refs(umd).p pickle.", flag_values=fv)
    flags.DEFINE_list(
        "ref_json", None, "VG: the original's per-split RefCOCO JSON files (train.json, val.json, "
        "testA.json, ...: samples with tokens, image_id, bbox, split); instead of --refs/--instances.",
        flag_values=fv,
    )  # fmt: skip
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
    flags.DEFINE_bool(
        "skip_bad", False, "Leave out images whose region-feature file is corrupt (reads every "
        "file once more first) and report how many; default: stop naming the file.",
        flag_values=fv,
    )  # fmt: skip
    flags.mark_flags_as_required(["task", "out_dir", "features"], flag_values=fv)


def main(argv: Sequence[str]) -> None:
    """Runs the conversion; an input problem ends the run with its message (file named), no trace."""
    fv = cli.parse(define_flags, argv)
    try:
        _convert(fv)
    except (ValueError, OSError, pickle.UnpicklingError) as e:
        raise SystemExit(f"mmnas_tf.convert: error: {e}") from e


def _convert(fv: flags.FlagValues) -> None:
    from mmnas_tf.data import writer
    from mmnas_tf.data.converters import common

    extra = {}
    if fv.task == "vqa":
        from mmnas_tf.data.converters import vqa

        try:
            sources = vqa.parse_sources(fv.vqa)
        except ValueError as e:
            raise app.UsageError(str(e)) from e
        answers = vqa.answer_vocabulary(fv.out_dir, vqa.answer_files(sources), fv.min_answer_count)
        splits = vqa.vqa_splits(sources, answers)
        extra["num_answers"] = len(answers)
    elif fv.task == "itm":
        from mmnas_tf.data.converters import flickr

        if not fv.karpathy:
            raise app.UsageError("--task=itm needs --karpathy=dataset_flickr30k.json")
        if fv.captions:
            splits = flickr.caption_items(fv.captions, fv.karpathy)
        else:
            splits = flickr.flickr_items(fv.karpathy)
    else:
        from mmnas_tf.data.converters import refcoco

        if fv.ref_json:
            splits = refcoco.ref_json_items(fv.ref_json)
        elif fv.refs and fv.instances:
            splits = refcoco.refcoco_items(fv.refs, fv.instances)
        else:
            raise app.UsageError(
                "--task=vg needs --ref_json=train.json,val.json,... or --refs='refs(unc).p' and "
                "--instances=instances.json"
            )
    manifest = common.write_dataset(
        fv.task, fv.out_dir, splits, fv.features, fv.num_shards, fv.feature_dtype,
        fv.glove, fv.progress, extra, fv.skip_bad,
    )  # fmt: skip
    print("\n".join(writer.summary_lines(manifest, fv.out_dir)))


if __name__ == "__main__":
    cli.run(main)
