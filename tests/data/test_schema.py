"""Records round-trip exactly through encode_record / decode_record for every task and dtype."""

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.data import schema
from mmnas_tf.tasks import get_task, task_names


def _texts(rec):
    return [np.asarray(t) for t in rec["text_ids"]]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("task", task_names())
def test_round_trip_exact(task, dtype, helpers):
    rng = np.random.default_rng(1)
    rec = helpers.random_record(task, rng, 3, n=37, dtype=dtype)
    out = schema.decode_record(
        get_task(task), tf.constant(schema.encode_record(get_task(task), rec)), tf.as_dtype(dtype)
    )
    np.testing.assert_array_equal(out["features"].numpy(), rec["features"])
    assert out["features"].dtype == tf.as_dtype(dtype)
    np.testing.assert_array_equal(out["boxes"].numpy(), rec["boxes"])
    np.testing.assert_array_equal(out["image_size"].numpy(), rec["image_size"])
    assert int(out["image_id"]) == rec["image_id"] and int(out["image_index"]) == rec["image_index"]
    assert [t.decode() for t in out["text"].numpy()] == rec["texts"]
    assert out["text_id"].numpy().tolist() == rec["text_id"]
    for row, ids in zip(out["text_ids"].numpy(), _texts(rec)):
        np.testing.assert_array_equal(row[: len(ids)], ids)
        assert not row[len(ids) :].any()
    if task == "vqa":
        for ids, scores, want in zip(
            out["answer_ids"].numpy(), out["answer_scores"].numpy(), rec["answer_scores"]
        ):
            got = {int(i): float(s) for i, s in zip(ids, scores) if i >= 0}
            assert got == pytest.approx(want)
        assert out["raw_answers"].numpy().astype(str).tolist() == rec["raw_answers"]
        assert out["answer_type"].numpy().astype(str).tolist() == rec["answer_type"]
    if task == "vg":
        np.testing.assert_array_equal(out["gt_boxes"].numpy(), rec["gt_boxes"])


def test_float16_records_can_be_read_as_float32(helpers):
    rec = helpers.random_record("itm", np.random.default_rng(0), 0, n=5, dtype="float16")
    out = schema.decode_record(
        get_task("itm"), tf.constant(schema.encode_record(get_task("itm"), rec)), tf.float32
    )
    np.testing.assert_array_equal(out["features"].numpy(), rec["features"].astype(np.float32))


def test_vqa_without_annotations_pads_answers(helpers):
    rec = helpers.random_record("vqa", np.random.default_rng(0), 0, n=5)
    q = len(rec["texts"])
    rec["raw_answers"], rec["answer_type"], rec["answer_scores"] = None, None, [{}] * q
    out = schema.decode_record(
        get_task("vqa"), tf.constant(schema.encode_record(get_task("vqa"), rec))
    )
    assert out["raw_answers"].shape == (q, 10) and not out["raw_answers"].numpy().astype(bool).any()
    assert out["answer_type"].shape == (q,)


def test_missing_field_is_named(helpers):
    rec = helpers.random_record("vg", np.random.default_rng(0), 0, n=5)
    serialized = schema.encode_record(get_task("itm"), rec)  # an ITM record has no gt_boxes
    with pytest.raises(tf.errors.InvalidArgumentError, match="gt_boxes"):
        schema.decode_record(get_task("vg"), tf.constant(serialized))


def test_bad_inputs_are_named(helpers):
    rec = helpers.random_record("itm", np.random.default_rng(0), 0, n=5)
    with pytest.raises(ValueError, match="unknown task 'vqa2'.*'vqa', 'itm', 'vg'"):
        schema.encode_record(get_task("vqa2"), rec)
    with pytest.raises(ValueError, match="float32', 'float16"):
        schema.encode_record(
            get_task("itm"), {**rec, "features": rec["features"].astype(np.float64)}
        )
    with pytest.raises(ValueError, match="5 feature rows but 4 boxes"):
        schema.encode_record(get_task("itm"), {**rec, "boxes": rec["boxes"][:4]})


def test_every_field_is_documented():
    import pathlib

    readme = (pathlib.Path(__file__).parents[2] / "tfrecords" / "README.md").read_text()
    for task in task_names():
        for field in schema.fields(get_task(task)):
            assert f"`{field.name}`" in readme, field.name
