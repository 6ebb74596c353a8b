"""Sizes follow the data: conversion records region counts and text lengths per split, runs not
bound to a checkpoint take them (tiny configs), and every run whose model takes fewer says what
it cuts, in one line."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import evaluate, predict, train
from mmnas_tf.data import writer
from mmnas_tf.data.converters import common
from mmnas_tf.experiments import apply_overrides, get_experiment
from mmnas_tf.runs import resolve_experiment, say_run_sizes, size_line
from mmnas_tf.tasks import get_task

WORDS = "what is the colour of the shape in the top left corner of this small picture".split()


def own_dataset(root, regions: dict, lengths: dict, dim: int = 16) -> str:
    """A VQA-v2 style dataset no converter fixture has: ``regions[split]`` = region count per
    image, ``lengths[split]`` = words per question (question i asks about image i % images),
    answers "red" / "blue"; features of width ``dim``. Returns the converted folder."""
    rng = np.random.default_rng(0)
    feats = root / "feats"
    files = []
    for split, counts in regions.items():
        (feats / split).mkdir(parents=True)
        for i, n in enumerate(counts):
            image_id = 1000 * (split == "val") + i
            x1y1 = rng.uniform(0, 200, (n, 2))
            np.savez(
                feats / split / f"{image_id}.npz",
                x=rng.random((n, dim), np.float32),
                bbox=np.concatenate([x1y1, x1y1 + 20], 1),
                image_h=240,
                image_w=320,
            )
        rows = [
            (1000 * (split == "val") + q % len(counts), 10 * q + (split == "val"), n)
            for q, n in enumerate(lengths[split])
        ]
        questions = [
            {"image_id": i, "question_id": qid, "question": " ".join(WORDS[:n]) + "?"}
            for i, qid, n in rows
        ]
        answers = [
            {
                "image_id": i,
                "question_id": qid,
                "answer_type": "other",
                "multiple_choice_answer": ("red", "blue")[qid // 10 % 2],
                "answers": [
                    {"answer": ("red", "blue")[qid // 10 % 2], "answer_id": k + 1}
                    for k in range(10)
                ],
            }
            for i, qid, _ in rows
        ]
        q_path, a_path = root / f"{split}_questions.json", root / f"{split}_annotations.json"
        q_path.write_text(json.dumps({"questions": questions}))
        a_path.write_text(json.dumps({"annotations": answers}))
        files.append(f"{split}:{q_path}:{a_path}")
    out = str(root / "out")
    task = get_task("vqa")
    splits, extra = task.convert_sources({"vqa": files, "min_answer_count": 1}, out)
    common.write_dataset(task, out, splits, [str(feats)], 2, progress=False, extra_manifest=extra)
    return out


#: 5 train images with 3-12 regions, 6 train questions of 4-11 words; val: 9-10 regions.
REGIONS = {"train": [3, 12, 7, 12, 5], "val": [9, 10]}
LENGTHS = {"train": [4, 11, 9, 6, 11, 8], "val": [10, 5, 4]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return own_dataset(tmp_path_factory.mktemp("own"), REGIONS, LENGTHS)


def test_manifest_records_sizes_per_split(data, tmp_path):
    splits = writer.load_manifest(data)["splits"]
    assert splits["train"]["sizes"] == {
        "max_regions": 12,
        "max_tokens": 11,
        "tokens_p99": 11,
        "regions": {"3": 1, "5": 1, "7": 1, "12": 2},
        "tokens": {"4": 1, "6": 1, "8": 1, "9": 1, "11": 2},
    }
    assert splits["val"]["sizes"]["max_regions"] == 10
    assert splits["val"]["sizes"]["max_tokens"] == 10
    assert "train: up to 12 regions per image, texts of up to 11 tokens (99% of them up to 11)" in (
        writer.summary_lines(writer.load_manifest(data), data)
    )
    # A resumed conversion (every shard there already) reads the sizes back from the shards.
    manifest = json.load(open(f"{data}/manifest.json"))
    for split in ("train", "val"):
        entry = writer.write_split(
            data,
            split,
            get_task("vqa"),
            [None] * manifest["splits"][split]["records"],
            lambda *_: pytest.fail("a finished shard was rewritten"),
            2,
            progress=False,
        )
        assert entry["sizes"] == manifest["splits"][split]["sizes"]


def test_features_of_another_width_are_refused(tmp_path, helpers):
    rng = np.random.default_rng(0)
    records = [helpers.random_record("vqa", rng, i, 5, dim=16) for i in range(3)]
    writer.write_split(str(tmp_path), "train", get_task("vqa"), records, lambda r, _: r, 1, False)
    odd = [
        helpers.random_record("vqa", rng, 3, 5, dim=16),
        helpers.random_record("vqa", rng, 4, 5, dim=8),
    ]
    with pytest.raises(
        ValueError,
        match=r"image 5004 of split 'val' has features of width 8, the dataset's other images 16",
    ):
        writer.write_split(str(tmp_path), "val", get_task("vqa"), odd, lambda r, _: r, 1, False)
    assert sorted(os.listdir(tmp_path)) == ["manifest.json", "train-00000-of-00001.tfrecord"]


def test_percentile_is_nearest_rank():
    lengths = {5: 98, 6: 1, 30: 1}  # 100 texts: the 99th is 6 tokens long, the longest 30
    assert writer.percentile(lengths, 99) == 6
    assert writer.percentile(lengths, 100) == 30 and writer.percentile({}, 99) == 0
    assert writer.size_stats({}, lengths)["tokens_p99"] == 6


def test_paper_config_keeps_its_sizes_and_says_what_it_cuts(tmp_path):
    data = own_dataset(tmp_path, {"train": [101, 100, 120, 40]}, {"train": [15, 16, 14, 3, 9]})
    exp = apply_overrides(get_experiment("vqa"), [f"data.data_dir={data}"])
    resolved = resolve_experiment(exp)
    assert (resolved.model.max_regions, resolved.model.max_tokens) == (100, 14)
    assert (resolved.model.feature_size, resolved.model.num_answers) == (16, 2)
    assert resolved.search_model.num_answers == 2  # the answers.txt lines, for both models
    pinned = resolve_experiment(apply_overrides(exp, ["model.num_answers=5"]))
    assert (pinned.model.num_answers, pinned.search_model.num_answers) == (5, 2)
    line = size_line(data, ["train"], resolved.model)
    assert line == (
        f"sizes: the model cuts {data} (train): 50.0% of images (2 of 4) have more regions than "
        "its 100 (up to 120); 40.0% of texts (2 of 5) have more tokens than its 14 (up to 16); "
        "to keep them: --override=model.max_regions=120 --override=model.max_tokens=16"
    )
    assert (
        size_line(data, ["train"], resolved.model.replace(max_regions=120, max_tokens=16)) is None
    )
    # Following the data stops at the stated cap, and the line then says what the cap cuts.
    tiny = resolve_experiment(
        apply_overrides(get_experiment("vqa_tiny"), [f"data.data_dir={data}"])
    )
    assert (tiny.model.max_regions, tiny.model.max_tokens) == (100, 16)
    assert (tiny.search_model.max_regions, tiny.search_model.max_tokens) == (100, 16)
    assert "50.0% of images (2 of 4) have more regions than its 100" in size_line(
        data, ["train"], tiny.search_model, fix="search_model"
    )


def test_an_override_pins_a_size():
    exp = apply_overrides(get_experiment("vqa_tiny"), ["model.max_regions=17"])
    assert exp.data.sizes_from_data == ("max_tokens",)
    exp = apply_overrides(exp, ["data.sizes_from_data=max_regions,max_tokens"])
    assert exp.data.sizes_from_data == ("max_regions", "max_tokens")
    assert apply_overrides(exp, ["data.sizes_from_data="]).data.sizes_from_data == ()
    with pytest.raises(ValueError, match=r"sizes_from_data=\['regions'\]; accepted: any of"):
        apply_overrides(exp, ["data.sizes_from_data=regions"])


def _train(data, model_dir, *overrides):
    args = [
        "train",
        "--config=vqa_tiny",
        f"--data_dir={data}",
        f"--model_dir={model_dir}",
        "--epochs=1",
        "--steps_per_epoch=1",
        "--noprogress",
        "--dtype_policy=float32",
    ]
    train.main(args + [f"--override={o}" for o in overrides])
    return json.load(open(f"{model_dir}/run.json"))["model"]


def test_tiny_config_takes_the_data_sizes(data, tmp_path, capsys):
    model = _train(data, tmp_path)
    assert (model["max_regions"], model["max_tokens"]) == (12, 11)  # vqa_tiny alone: 6 and 8
    assert "sizes:" not in capsys.readouterr().out


def test_fewer_sizes_say_what_they_cut_and_a_checkpoint_keeps_its_sizes(data, tmp_path, capsys):
    model = _train(data, tmp_path, "model.max_regions=6", "model.max_tokens=8")
    assert (model["max_regions"], model["max_tokens"]) == (6, 8)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sizes:")]
    assert lines == [
        f"sizes: the model cuts {data} (train): 60.0% of images (3 of 5) have more regions than "
        "its 6 (up to 12); 50.0% of texts (3 of 6) have more tokens than its 8 (up to 11); "
        "to keep them: --override=model.max_regions=12 --override=model.max_tokens=11"
    ]
    # Evaluation is bound to the checkpoint's sizes even with a config that follows the data.
    evaluate.main(
        [
            "evaluate",
            "--config=vqa_tiny",
            f"--data_dir={data}",
            f"--checkpoint={tmp_path}",
            "--dtype_policy=float32",
            "--noprogress",
        ]
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sizes:")]
    assert lines == [
        f"sizes: the model cuts {data} (val): 100.0% of images (2 of 2) have more regions than "
        "its 6 (up to 10); 33.3% of texts (1 of 3) have more tokens than its 8 (up to 10); "
        "retrain with --override=model.max_regions=10 --override=model.max_tokens=10"
    ]
    # Export's line: the checkpoint against every split it was trained on.
    say_run_sizes(str(tmp_path))
    assert capsys.readouterr().out.startswith(
        f"sizes: the model cuts {data} (train, val): 71.4% of images (5 of 7) have more regions "
        "than its 6 (up to 12); 44.4% of texts (4 of 9) have more tokens than its 8 (up to 11); "
        "retrain with"
    )
    # predict with the checkpoint: an 11-word question, of which the model reads 8.
    question = " ".join(WORDS[:11])
    features = os.path.join(os.path.dirname(data), "feats", "train", "0.npz")
    answer = predict.main(
        ["predict", f"--checkpoint={tmp_path}", f"--question={question}", f"--features={features}"]
    )
    assert answer.endswith(
        "question truncated: its last 3 tokens went past the model's max_tokens and were not read "
        "(a model trained with a larger model.max_tokens reads them)"
    )


def test_predict_text_reports_the_tokens_it_cut(tmp_path):
    from mmnas_tf.devserver.one_image import describe_outputs
    from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, TEXT_IDS
    from mmnas_tf.serving.text_signature import TRUNCATED_TOKENS, make_text_signature

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["PAD", "UNK", *dict.fromkeys(WORDS)]) + "\n")
    specs = {
        TEXT_IDS: tf.TensorSpec([None, 8], tf.int32),
        IMAGE_FEATURES: tf.TensorSpec([None, None, 4], tf.float32),
        BOXES: tf.TensorSpec([None, None, 4], tf.float32),
    }
    owner = tf.Module()
    fn = make_text_signature(owner, lambda x: {"ids": x[TEXT_IDS]}, str(vocab), specs)
    text = tf.constant(["what is the colour", " ".join(WORDS[:11]) + "?"])
    out = fn(text=text, image_features=tf.zeros([2, 3, 4]), boxes=tf.zeros([2, 3, 4]))
    assert out[TRUNCATED_TOKENS].numpy().tolist() == [0, 3]
    assert out["ids"].shape == (2, 8)
    described = describe_outputs({k: v.numpy()[1:] for k, v in out.items()})
    assert "question truncated: its last 3 tokens went past the model's max_tokens" in described
    assert "truncated" not in describe_outputs({k: v.numpy()[:1] for k, v in out.items()})


def test_a_manifest_without_sizes_says_so(data, tmp_path):
    manifest = json.load(open(f"{data}/manifest.json"))
    for entry in manifest["splits"].values():
        del entry["sizes"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    config = get_experiment("vqa_tiny").model
    assert size_line(str(tmp_path), ["train"], config) == (
        f"sizes: {tmp_path}/manifest.json does not record region counts and text lengths "
        "(converted by an older version): convert again to see what the model's 6 regions and "
        "8 tokens cut"
    )
    assert size_line(data, ["test"], config) is None  # no such split: nothing to say
