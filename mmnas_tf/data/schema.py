"""One TFRecord schema per task: it drives the writer (:func:`encode_record`) and the reader
(:func:`decode_record`). Every field is documented in ``tfrecords/README.md``.

A record holds ONE image (its region features stored once, as raw little-endian bytes) and ALL of
its texts with their targets; the pipeline expands it into one example per text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

TASKS = ("vqa", "itm", "vg")
FEATURE_DTYPES = ("float32", "float16")
NUM_RAW_ANSWERS = 10


@dataclasses.dataclass(frozen=True)
class Field:
    """One ``tf.train.Example`` feature: ``kind`` is ``scalar`` (exactly one value) or ``list``."""

    name: str
    dtype: tf.dtypes.DType
    kind: str
    doc: str


_I, _F, _B = tf.int64, tf.float32, tf.string

COMMON_FIELDS = (
    Field("image_id", _I, "scalar", "image id of the source dataset (COCO id, Flickr imgid)"),
    Field(
        "image_index",
        _I,
        "scalar",
        "0-based position of the image in its split (feature-store row)",
    ),
    Field("image_size", _F, "list", "[height, width] in pixels"),
    Field("num_regions", _I, "scalar", "n, number of region proposals stored"),
    Field(
        "feature_dim", _I, "scalar", "d, width of one region feature (2048 for bottom-up features)"
    ),
    Field("feature_dtype", _B, "scalar", "b'float32' or b'float16': element type of `features`"),
    Field("features", _B, "scalar", "n*d little-endian floats, row-major [n, d]"),
    Field("boxes", _F, "list", "n*4 floats: x1, y1, x2, y2 per region, pixels"),
    Field("text", _B, "list", "q raw sentences (questions / captions / referring expressions)"),
    Field(
        "text_id", _I, "list", "q ids: VQA question_id, ITM global caption index, VG sentence id"
    ),
    Field("text_ids", _I, "list", "token ids of all q sentences, concatenated (untrimmed)"),
    Field("text_lengths", _I, "list", "q token counts splitting `text_ids`"),
)
TASK_FIELDS = {
    "vqa": (
        Field(
            "answer_ids",
            _I,
            "list",
            "answer-vocabulary ids with a non-zero soft score, concatenated",
        ),
        Field(
            "answer_scores", _F, "list", "soft scores (0.3/0.6/0.9/1.0) parallel to `answer_ids`"
        ),
        Field("answer_lengths", _I, "list", "q counts splitting `answer_ids` / `answer_scores`"),
        Field("raw_answers", _B, "list", "q*10 raw annotator answers, or empty (test split)"),
        Field("answer_type", _B, "list", "q answer types (yes/no, number, other), or empty"),
    ),
    "itm": (),
    "vg": (Field("gt_boxes", _F, "list", "q*4 ground-truth boxes x1, y1, x2, y2, pixels"),),
}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return task


def fields(task: str) -> tuple[Field, ...]:
    """All fields of a task's records, in a fixed order."""
    return COMMON_FIELDS + TASK_FIELDS[check_task(task)]


def _feature(field: Field, value: Any) -> tf.train.Feature:
    values = [value] if field.kind == "scalar" else value
    if field.dtype == _B:
        values = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if field.dtype == _I:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(values, np.int64)))
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32)))


def _flatten(task: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Python record (see :func:`encode_record`) -> {field name: value(s)}."""
    features = np.asarray(record["features"])
    if features.ndim != 2 or features.dtype.name not in FEATURE_DTYPES:
        raise ValueError(
            f"image {record.get('image_id')}: features must be a 2-D array of {FEATURE_DTYPES}, "
            f"got shape {features.shape} dtype {features.dtype}"
        )
    boxes = np.asarray(record["boxes"], np.float32).reshape(-1, 4)
    if len(boxes) != len(features):
        raise ValueError(
            f"image {record.get('image_id')}: {len(features)} feature rows but {len(boxes)} boxes"
        )
    token_ids = [np.asarray(t, np.int64).reshape(-1) for t in record["text_ids"]]
    q = len(record["texts"])
    flat = {
        "image_id": int(record["image_id"]),
        "image_index": int(record["image_index"]),
        "image_size": [float(record["image_size"][0]), float(record["image_size"][1])],
        "num_regions": len(features),
        "feature_dim": features.shape[1],
        "feature_dtype": features.dtype.name,
        "features": features.astype(features.dtype.newbyteorder("<"), copy=False).tobytes(),
        "boxes": boxes.reshape(-1),
        "text": list(record["texts"]),
        "text_id": list(record["text_id"]),
        "text_ids": np.concatenate(token_ids) if token_ids else [],
        "text_lengths": [len(t) for t in token_ids],
    }
    if task == "vqa":
        scores = record["answer_scores"]  # one {answer id: score} per text
        flat["answer_ids"] = [i for s in scores for i in s]
        flat["answer_scores"] = [v for s in scores for v in s.values()]
        flat["answer_lengths"] = [len(s) for s in scores]
        raw = record.get("raw_answers")
        flat["raw_answers"] = [_pad_answers(a) for a in raw] if raw else []
        flat["raw_answers"] = [a for answers in flat["raw_answers"] for a in answers]
        flat["answer_type"] = list(record.get("answer_type") or [])
    elif task == "vg":
        flat["gt_boxes"] = np.asarray(record["gt_boxes"], np.float32).reshape(-1)
        if len(flat["gt_boxes"]) != 4 * q:
            raise ValueError(f"image {record['image_id']}: gt_boxes must be [{q}, 4]")
    checked = ["text_id", "text_lengths"] + (["answer_lengths"] if task == "vqa" else [])
    for name in checked:
        if len(flat[name]) != q:
            raise ValueError(f"image {record['image_id']}: {len(flat[name])} {name} for {q} texts")
    return flat


def _pad_answers(answers: Sequence[str]) -> list[str]:
    answers = list(answers)[:NUM_RAW_ANSWERS]
    return answers + [""] * (NUM_RAW_ANSWERS - len(answers))


def encode_record(task: str, record: Mapping[str, Any]) -> bytes:
    """Serialises one image and all its texts as a ``tf.train.Example``.

    ``record`` keys: ``image_id``, ``image_index``, ``image_size`` (h, w), ``features`` ([n, d]
    float32 or float16 ndarray, stored as is), ``boxes`` ([n, 4]), ``texts`` (q strings),
    ``text_id`` (q ints), ``text_ids`` (q token-id sequences). VQA adds ``answer_scores`` (q dicts
    {answer id: score}), optional ``raw_answers`` (q lists of up to 10 strings) and
    ``answer_type`` (q strings); VG adds ``gt_boxes`` ([q, 4]).
    """
    flat = _flatten(check_task(task), record)
    example = tf.train.Example(
        features=tf.train.Features(
            feature={f.name: _feature(f, flat[f.name]) for f in fields(task)}
        )
    )
    return example.SerializeToString()


def feature_spec(task: str) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    """The ``tf.io.parse_single_example`` spec of a task's records."""
    return {
        f.name: tf.io.FixedLenFeature([], f.dtype)
        if f.kind == "scalar"
        else tf.io.VarLenFeature(f.dtype)
        for f in fields(task)
    }


def decode_features(
    raw: tf.Tensor, stored_dtype: tf.Tensor, shape: tf.Tensor, dtype: tf.DType
) -> tf.Tensor:
    """Raw feature bytes of either stored type -> ``dtype`` tensor of ``shape`` ([n, d])."""

    def as_type(t: tf.DType) -> tf.Tensor:
        return tf.cast(tf.io.decode_raw(raw, t, little_endian=True), dtype)

    return tf.reshape(
        tf.cond(
            tf.equal(stored_dtype, b"float16"),
            lambda: as_type(tf.float16),
            lambda: as_type(tf.float32),
        ),
        shape,
    )


def decode_record(
    task: str, serialized: tf.Tensor, feature_dtype: tf.DType = tf.float32
) -> dict[str, tf.Tensor]:
    """Serialized record -> dict of per-image tensors (text fields have a leading q dimension).

    Output: image fields ``image_id``, ``image_index`` (int64 []), ``image_size`` (float32 [2]),
    ``num_regions`` (int64 []), ``features`` ([n, d] of ``feature_dtype``; pass the stored type,
    see the manifest, to keep the pipeline compact and exact), ``boxes`` (float32 [n, 4]); text
    fields ``text`` (string [q]), ``text_id`` (int64 [q]), ``text_ids`` (int64 [q, L], 0-padded);
    VQA ``answer_ids`` (int64 [q, A], -1-padded), ``answer_scores`` (float32 [q, A]),
    ``raw_answers`` (string [q, 10], "" when absent), ``answer_type`` (string [q]);
    VG ``gt_boxes`` (float32 [q, 4]).
    """
    parsed = tf.io.parse_single_example(serialized, feature_spec(task))
    dense = {
        k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v for k, v in parsed.items()
    }
    n = dense["num_regions"]
    q = tf.shape(dense["text_id"], out_type=tf.int64)[0]
    with tf.control_dependencies(_checks(task, dense, n, q)):
        dense = {k: tf.identity(v) for k, v in dense.items()}
    features = decode_features(
        dense["features"],
        dense["feature_dtype"],
        tf.stack([n, dense["feature_dim"]]),
        feature_dtype,
    )
    out = {
        "image_id": dense["image_id"],
        "image_index": dense["image_index"],
        "image_size": tf.reshape(dense["image_size"], [2]),
        "num_regions": n,
        "features": features,
        "boxes": tf.reshape(dense["boxes"], tf.stack([n, 4])),
        "text": dense["text"],
        "text_id": dense["text_id"],
        "text_ids": tf.RaggedTensor.from_row_lengths(
            dense["text_ids"], dense["text_lengths"]
        ).to_tensor(0),
    }
    if task == "vqa":
        lengths = dense["answer_lengths"]
        out["answer_ids"] = tf.RaggedTensor.from_row_lengths(
            dense["answer_ids"], lengths
        ).to_tensor(-1)
        out["answer_scores"] = tf.RaggedTensor.from_row_lengths(
            dense["answer_scores"], lengths
        ).to_tensor(0.0)
        raw = tf.reshape(dense["raw_answers"], tf.stack([q, -1]))
        out["raw_answers"] = tf.pad(raw, [[0, 0], [0, NUM_RAW_ANSWERS - tf.shape(raw)[1]]])
        missing = q - tf.size(dense["answer_type"], out_type=tf.int64)
        out["answer_type"] = tf.concat([dense["answer_type"], tf.fill([missing], "")], 0)
    elif task == "vg":
        out["gt_boxes"] = tf.reshape(dense["gt_boxes"], tf.stack([q, 4]))
    return out


def _checks(
    task: str, dense: dict[str, tf.Tensor], n: tf.Tensor, q: tf.Tensor
) -> list[tf.Operation]:
    """Size checks whose failure names the field (a bare reshape error names nothing)."""
    size = lambda name: tf.size(dense[name], out_type=tf.int64)  # noqa: E731
    item = tf.where(tf.equal(dense["feature_dtype"], b"float16"), tf.constant(2, tf.int64), 4)
    rules = [
        ("image_size", tf.equal(size("image_size"), 2), "must hold 2 values (height, width)"),
        (
            "feature_dtype",
            tf.reduce_any(tf.equal(dense["feature_dtype"], FEATURE_DTYPES)),
            f"must be one of {FEATURE_DTYPES}",
        ),
        (
            "features",
            tf.equal(
                tf.cast(tf.strings.length(dense["features"]), tf.int64),
                n * dense["feature_dim"] * item,
            ),
            "byte length must be num_regions * feature_dim * itemsize",
        ),
        ("boxes", tf.equal(size("boxes"), 4 * n), "must hold 4 * num_regions values"),
        ("text_lengths", tf.equal(size("text_lengths"), q), "must hold one length per text_id"),
        (
            "text_ids",
            tf.equal(size("text_ids"), tf.reduce_sum(dense["text_lengths"])),
            "must hold sum(text_lengths) ids",
        ),
    ]
    if task == "vqa":
        total = tf.reduce_sum(dense["answer_lengths"])
        rules += [
            ("answer_lengths", tf.equal(size("answer_lengths"), q), "must hold one count per text"),
            (
                "answer_ids",
                tf.equal(size("answer_ids"), total),
                "must hold sum(answer_lengths) ids",
            ),
            ("answer_scores", tf.equal(size("answer_scores"), total), "must parallel answer_ids"),
            (
                "raw_answers",
                tf.reduce_any(tf.equal(size("raw_answers"), [0, NUM_RAW_ANSWERS * q])),
                "must hold 10 per text or none",
            ),
            (
                "answer_type",
                tf.reduce_any(tf.equal(size("answer_type"), [0, q])),
                "must hold one per text or none",
            ),
        ]
    elif task == "vg":
        rules.append(("gt_boxes", tf.equal(size("gt_boxes"), 4 * q), "must hold 4 values per text"))
    return [
        tf.debugging.Assert(
            ok, [f"bad {task} record: field `{name}` {why}; image_id", dense["image_id"]]
        )
        for name, ok, why in rules
    ]
