"""Converters on small fixtures written here in the users' exact formats."""

import json
import os
import pickle
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from support.commands import entry_point

from mmnas_tf import inputs as names
from mmnas_tf.data import writer
from mmnas_tf.data.converters import common, embeddings, region_features
from mmnas_tf.data.converters.safe_pickle import load_plain_pickle
from mmnas_tf.data.feature_store import FeatureStore
from mmnas_tf.tasks import get_task
from mmnas_tf.tasks.itm import converter as flickr
from mmnas_tf.tasks.vg import converter as refcoco
from mmnas_tf.tasks.vqa import converter as vqa
from mmnas_tf.text import Vocabulary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _vqa_fixture(root, helpers):
    feats = root / "feats"
    (feats / "train2014").mkdir(parents=True)
    (feats / "val2014").mkdir()
    want = {
        9: helpers.write_npz(
            feats / "train2014" / "COCO_train2014_000000000009.jpg.npz", 10, "d_by_n", 0
        ),
        25: helpers.write_npz(
            feats / "train2014" / "COCO_train2014_000000000025.jpg.npz", 100, "n_by_d", 1
        ),
        42: helpers.write_npz(
            feats / "val2014" / "COCO_val2014_000000000042.jpg.npz", 12, "d_by_n", 2, num_bbox=7
        ),
    }
    qs = {
        "train2014": [
            (9, 1, "What colour is the cat?"),
            (25, 2, "How many dogs?"),
            (9, 3, "Is it a cat?"),
        ],
        "val2014": [(42, 4, "How many dogs are there?")],
    }
    ans = {
        1: ["black"] * 6 + ["Black."] * 2 + ["brown"] * 2,
        2: ["two"] * 3 + ["2"] + ["3"] * 6,
        3: ["yes"] * 10,
        4: ["unicorn"] * 10,
    }
    files = {}
    for split, rows in qs.items():
        q = {
            "data_subtype": split,
            "questions": [{"image_id": i, "question": t, "question_id": qid} for i, qid, t in rows],
        }
        a = {
            "annotations": [
                {
                    "question_id": qid,
                    "image_id": i,
                    "answer_type": "other",
                    "multiple_choice_answer": ans[qid][0],
                    "answers": [
                        {"answer": x, "answer_confidence": "yes", "answer_id": k + 1}
                        for k, x in enumerate(ans[qid])
                    ],
                }
                for i, qid, _ in rows
            ]
        }
        files[split] = (
            root / f"v2_OpenEnded_mscoco_{split}_questions.json",
            root / f"v2_mscoco_{split}_annotations.json",
        )
        files[split][0].write_text(json.dumps(q))
        files[split][1].write_text(json.dumps(a))
    return feats, files, want, ans


def test_vqa_cli_round_trip(tmp_path, helpers):
    feats, files, want, ans = _vqa_fixture(tmp_path, helpers)
    out = tmp_path / "out"
    glove = tmp_path / "glove.txt"
    glove.write_text("what 0.1 0.2 0.3 0.4\ncat 1 2 3 4\nzebra 9 9 9 9\n")
    cmd = entry_point(
        "convert",
        "--task=vqa",
        f"--out_dir={out}",
        f"--features={feats}",
        f"--vqa=train:{files['train2014'][0]}:{files['train2014'][1]}",
        f"--vqa=val:{files['val2014'][0]}:{files['val2014'][1]}",
        "--min_answer_count=1",
        f"--glove={glove}",
        "--num_shards=2",
        "--noprogress",
    )
    subprocess.run(cmd, check=True, cwd=REPO, capture_output=True)
    vocab = Vocabulary.load(str(out / "vocab.txt"))
    assert vocab.tokens[:8] == ["PAD", "UNK", "CLS", "what", "colour", "is", "the", "cat"]
    answers = (out / "answers.txt").read_text().split("\n")[:-1]
    assert answers == ["black", "2", "yes", "unicorn"]  # multiple_choice_answer, normalised
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == (len(vocab), 4)
    np.testing.assert_array_equal(emb[vocab.id("cat")], [1, 2, 3, 4])
    examples = helpers.read_all(out, "train", "vqa") + helpers.read_all(out, "val", "vqa")
    assert len(examples) == 4
    by_qid = {int(t["question_id"]): (i, t) for i, t in examples}
    image_of = {1: 9, 2: 25, 3: 9, 4: 42}
    for qid, (inputs, targets) in by_qid.items():
        f, b = want[image_of[qid]]
        np.testing.assert_array_equal(inputs[names.IMAGE_FEATURES][: len(f)], f)
        assert not inputs[names.IMAGE_FEATURES][len(f) :].any()
        np.testing.assert_array_equal(inputs[names.BOXES][: len(b)], b)
        np.testing.assert_array_equal(inputs[names.IMAGE_SIZE], [480, 640])
        assert targets["answers"].astype(str).tolist() == ans[qid]
    scores = {
        qid: dict(zip(answers, t["answer_scores"].tolist())) for qid, (_, t) in by_qid.items()
    }
    assert scores[1] == pytest.approx({"black": 1.0, "2": 0, "yes": 0, "unicorn": 0})
    assert scores[2]["2"] == 1.0  # "two" x3 + "2" x1: 4 annotators after normalisation
    assert scores[3]["yes"] == 1.0


def test_unknown_answer_scores_zero(tmp_path, helpers):
    feats, files, _, _ = _vqa_fixture(tmp_path, helpers)
    answers = vqa.answer_vocabulary(str(tmp_path / "o"), [str(files["train2014"][1])], 1)
    assert "unicorn" not in answers
    items = vqa.vqa_splits([vqa.Source("val", *map(str, files["val2014"]))], answers)["val"]
    assert items[0].targets["answer_scores"] == [{}]
    assert items[0].targets["raw_answers"] == [["unicorn"] * 10]


def test_missing_feature_file_is_named(tmp_path, helpers):
    feats, files, _, _ = _vqa_fixture(tmp_path, helpers)
    os.remove(feats / "val2014" / "COCO_val2014_000000000042.jpg.npz")
    items = vqa.vqa_splits([vqa.Source("val", str(files["val2014"][0]))], ["yes"])["val"]
    with pytest.raises(FileNotFoundError, match="COCO_val2014_000000000042.jpg"):
        common.write_dataset(
            get_task("vqa"), str(tmp_path / "o"), {"val": items}, [str(feats)], progress=False
        )
    assert not os.path.exists(tmp_path / "o" / "val-00000-of-00001.tfrecord")


def test_bad_npz_is_named(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((5, 7), np.float32), bbox=np.zeros((3, 4)), image_h=1, image_w=1)
    with pytest.raises(ValueError, match="bad.npz: x has shape \\(5, 7\\)"):
        region_features.load_regions(str(path))
    np.savez(path, x=np.zeros((3, 7), np.float32), bbox=np.zeros((3, 4)))
    with pytest.raises(region_features.BadFeatureFile, match="bad.npz: missing key 'image_h'"):
        region_features.load_regions(str(path))


def test_resumable_skips_finished_shards_and_ignores_partial_ones(tmp_path, helpers):
    feats, files, _, _ = _vqa_fixture(tmp_path, helpers)
    out = str(tmp_path / "o")
    answers = vqa.answer_vocabulary(out, [str(files["train2014"][1])], 1)
    items = vqa.vqa_splits([vqa.Source("train", *map(str, files["train2014"]))], answers)
    common.write_dataset(get_task("vqa"), out, items, [str(feats)], num_shards=2, progress=False)
    shards = writer.split_files(out, "train")
    first = open(shards[0], "rb").read()
    os.remove(shards[0])
    open(shards[0] + ".tmp-999", "wb").write(first[:50])  # what a killed run leaves behind
    before = os.stat(shards[1]).st_mtime_ns
    common.write_dataset(get_task("vqa"), out, items, [str(feats)], num_shards=2, progress=False)
    assert open(shards[0], "rb").read() == first
    assert os.stat(shards[1]).st_mtime_ns == before
    assert len(helpers.read_all(out, "train", "vqa")) == 3


def _flickr_fixture(root, helpers):
    feats = root / "feats"
    feats.mkdir()
    images, want = [], {}
    for k, (fid, split) in enumerate(
        [(1000092795, "train"), (10002456, "restval"), (1000268201, "test")]
    ):
        want[k] = helpers.write_npz(
            feats / f"{fid}.jpg.npz", 36, "n_by_d" if k % 2 else "d_by_n", k
        )
        sents = [
            {"raw": f"A dog number {k} runs {j}.", "tokens": [], "sentid": 5 * k + j}
            for j in range(5)
        ]
        images.append({"filename": f"{fid}.jpg", "imgid": k, "split": split, "sentences": sents})
    (root / "dataset_flickr30k.json").write_text(
        json.dumps({"images": images, "dataset": "flickr30k"})
    )
    return feats, root / "dataset_flickr30k.json", want


def test_flickr_and_feature_store(tmp_path, helpers):
    feats, path, want = _flickr_fixture(tmp_path, helpers)
    splits = flickr.flickr_items(str(path))
    assert sorted(splits) == ["test", "train"] and len(splits["train"]) == 2
    out = str(tmp_path / "o")
    common.write_dataset(
        get_task("itm"), out, splits, [str(feats)], feature_dtype="float16", progress=False
    )
    store = FeatureStore(out, "train", max_regions=36, max_tokens=50)
    assert store.num_images == 2 and store.num_captions == 10
    assert store.caption_image.tolist() == [0] * 5 + [1] * 5
    got = store.images(tf.constant([1, 0]))
    np.testing.assert_array_equal(
        got[names.IMAGE_FEATURES][0].numpy(), want[1][0].astype(np.float16).astype(np.float32)
    )
    np.testing.assert_array_equal(got[names.BOXES][1].numpy(), want[0][1])
    in_pipeline = tf.data.Dataset.from_tensor_slices([1, 0]).batch(2).map(store.images)
    np.testing.assert_array_equal(
        next(iter(in_pipeline))[names.BOXES].numpy(), got[names.BOXES].numpy()
    )
    examples = helpers.read_all(out, "train", "itm", max_regions=36, max_tokens=50)
    for inputs, targets in examples:
        np.testing.assert_array_equal(
            store.captions(targets["caption_index"]).numpy(), inputs[names.TEXT_IDS]
        )
        np.testing.assert_array_equal(
            store.images(targets["image_index"])[names.IMAGE_FEATURES].numpy(),
            inputs[names.IMAGE_FEATURES],
        )


def test_coco_box_conversion_matches_the_original_loader(reference_vg_io):
    io = reference_vg_io
    for xywh, xyxy in zip(io["gt_bbox_xywh"], io["gt_bbox_xyxy"][:, 0]):
        np.testing.assert_allclose(refcoco.coco_box(xywh), xyxy, atol=1e-4)


def test_refcoco_boxes_and_safe_pickle(tmp_path, helpers):
    feats = tmp_path / "feats"
    feats.mkdir()
    f, b = helpers.write_npz(feats / "COCO_train2014_000000000077.jpg.npz", 100, "d_by_n", 3)
    refs = [
        {
            "ref_id": 1,
            "ann_id": 500,
            "image_id": 77,
            "split": "testA",
            "category_id": 1,
            "sentences": [
                {"raw": "Left man", "tokens": ["left", "man"], "sent_id": 11},
                {"raw": "guy on the left", "tokens": [], "sent_id": 12},
            ],
        }
    ]
    with open(tmp_path / "refs(unc).p", "wb") as fh:
        pickle.dump(refs, fh, protocol=2)
    inst = {
        "images": [
            {"id": 77, "file_name": "COCO_train2014_000000000077.jpg", "height": 480, "width": 640}
        ],
        "annotations": [{"id": 500, "image_id": 77, "bbox": [10.5, 20, 30, 40], "category_id": 1}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(inst))
    splits = refcoco.refcoco_items(str(tmp_path / "refs(unc).p"), str(tmp_path / "instances.json"))
    out = str(tmp_path / "o")
    common.write_dataset(get_task("vg"), out, splits, [str(feats)], progress=False)
    examples = helpers.read_all(out, "testA", "vg")
    assert sorted(int(t["sentence_id"]) for _, t in examples) == [11, 12]
    for inputs, targets in examples:
        np.testing.assert_array_equal(
            targets["gt_box"], [10.5, 20, 40.5, 60]
        )  # x + w, the original's
        np.testing.assert_array_equal(inputs[names.IMAGE_FEATURES], f)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "evil.p", "wb") as fh:
        pickle.dump([{"ref": Evil()}], fh)
    with pytest.raises(pickle.UnpicklingError, match="evil.p: refusing to load .*system"):
        load_plain_pickle(str(tmp_path / "evil.p"))


def test_random_embeddings_warn(caplog):
    vocab = Vocabulary(["PAD", "UNK", "CLS", "cat"])
    with caplog.at_level("WARNING"):
        matrix = embeddings.embedding_matrix(vocab, None)
    assert matrix.shape == (4, 300) and not matrix[0].any()
    assert "randomly initialised" in caplog.text


def test_flickr_never_matches_features_by_karpathy_index(tmp_path, helpers):
    feats, path, _ = _flickr_fixture(tmp_path, helpers)
    os.remove(feats / "10002456.jpg.npz")  # the image with imgid 1
    helpers.write_npz(
        feats / "1.jpg.npz", 36, "n_by_d", 9
    )  # a Flickr photo whose id happens to be 1
    with pytest.raises(FileNotFoundError, match="10002456.jpg"):
        common.write_dataset(
            get_task("itm"),
            str(tmp_path / "o"),
            flickr.flickr_items(str(path)),
            [str(feats)],
            progress=False,
        )


def test_bad_glove_file_is_named(tmp_path):
    load_glove = embeddings.load_glove
    vocab = Vocabulary.build([["cat", "what"]])
    glove = tmp_path / "glove.txt"
    glove.write_text("what 0.1 0.2\ncat 1 x\n")
    with pytest.raises(ValueError, match=r"glove.txt:2: .*'x'.*expected a word and 2 numbers"):
        load_glove(str(glove), vocab)
    glove.write_bytes(b"what 0.1 0.2\n\xff\xfe 1 2\n")
    with pytest.raises(ValueError, match=r"glove.txt: not UTF-8 text \(invalid start byte\)"):
        load_glove(str(glove), vocab)
    glove.write_text("what 0.1 0.2\ncat 1 2\n")
    matrix, found = load_glove(str(glove), vocab)
    assert found == 2 and matrix.shape == (len(vocab), 2)
