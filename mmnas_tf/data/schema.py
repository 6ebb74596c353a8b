"""One TFRecord schema per task: it drives the writer (:func:`encode_record`) and the reader
(:func:`decode_record`). Every field is documented in ``tfrecords/README.md``.

The fields every record has (the image and its texts) are defined here; a task adds its target
fields by subclassing :class:`RecordFormat` (the tasks in ``mmnas_tf.tasks`` do), so this module
names no task. The base ``RecordFormat()`` reads the common fields of any task's records.

A record holds ONE image (its region features stored once, as raw little-endian bytes) and ALL of
its texts with their targets; the pipeline expands it into one example per text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

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
#: (field name, is it valid, why not) checks of a serialized record, run in-graph at decode.
Rule = tuple[str, tf.Tensor, str]


class RecordFormat:
    """The record schema of one task: the common fields plus the task's target fields, and how the
    targets are encoded, decoded, checked, padded into the pipeline and formatted as model targets.

    The base class has no target fields: it writes and reads the common fields of any record.
    A task overrides the class attributes and the ``*_targets`` hooks (see ``mmnas_tf.tasks``).

    Attributes:
      name: the task name written into ``manifest.json``.
      target_fields: the task's own ``Field`` s, after ``COMMON_FIELDS``.
      uses_answer_vocabulary: the targets index ``answers.txt`` (its line count is the pipeline's
        ``num_answers``).
    """

    name: str = ""
    target_fields: tuple[Field, ...] = ()
    uses_answer_vocabulary: bool = False

    def fields(self) -> tuple[Field, ...]:
        """All fields of the records, in a fixed order."""
        return COMMON_FIELDS + self.target_fields

    def encode_targets(self, record: Mapping[str, Any], q: int) -> dict[str, Any]:
        """Python record -> {target field: value(s)} (raise ValueError naming a bad field)."""
        return {}

    def decode_targets(self, dense: dict[str, tf.Tensor], q: tf.Tensor) -> dict[str, tf.Tensor]:
        """Parsed dense fields -> per-image target tensors with a leading q dimension."""
        return {}

    def target_checks(self, dense: dict[str, tf.Tensor], q: tf.Tensor, size) -> list[Rule]:
        """In-graph size checks of the target fields; ``size(name)`` is a field's value count."""
        return []

    def prepare_targets(self, config, decoded: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Decoded record -> per-text target fields ([q, ...], fixed shapes) kept through the
        pipeline; ``config`` is its ``PipelineConfig``."""
        return {}

    def format_targets(self, example: dict[str, tf.Tensor], training: bool) -> dict:
        """An example (or batch) of the pipeline -> the targets dict the task's loss reads."""
        return {}


def check_format(task) -> RecordFormat:
    """``task`` if it is a RecordFormat (a ``Task``), else a TypeError saying what to pass."""
    if not isinstance(task, RecordFormat):
        raise TypeError(
            f"expected a task (mmnas_tf.tasks.get_task(name)) or a RecordFormat, got {task!r}"
        )
    return task


def fields(task: RecordFormat) -> tuple[Field, ...]:
    """All fields of a task's records, in a fixed order."""
    return check_format(task).fields()


def _feature(field: Field, value: Any) -> tf.train.Feature:
    values = [value] if field.kind == "scalar" else value
    if field.dtype == _B:
        values = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if field.dtype == _I:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(values, np.int64)))
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32)))


def _flatten(task: RecordFormat, record: Mapping[str, Any]) -> dict[str, Any]:
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
    flat.update(task.encode_targets(record, q))
    for name in ["text_id", "text_lengths"]:
        if len(flat[name]) != q:
            raise ValueError(f"image {record['image_id']}: {len(flat[name])} {name} for {q} texts")
    return flat


def pad_answers(answers: Sequence[str]) -> list[str]:
    """Up to ``NUM_RAW_ANSWERS`` annotator answers, padded with ""."""
    answers = list(answers)[:NUM_RAW_ANSWERS]
    return answers + [""] * (NUM_RAW_ANSWERS - len(answers))


def encode_record(task: RecordFormat, record: Mapping[str, Any]) -> bytes:
    """Serialises one image and all its texts as a ``tf.train.Example``.

    ``record`` keys: ``image_id``, ``image_index``, ``image_size`` (h, w), ``features`` ([n, d]
    float32 or float16 ndarray, stored as is), ``boxes`` ([n, 4]), ``texts`` (q strings),
    ``text_id`` (q ints), ``text_ids`` (q token-id sequences), plus the task's targets (its
    ``encode_targets``).
    """
    flat = _flatten(check_format(task), record)
    example = tf.train.Example(
        features=tf.train.Features(
            feature={f.name: _feature(f, flat[f.name]) for f in fields(task)}
        )
    )
    return example.SerializeToString()


def feature_spec(task: RecordFormat) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
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
    task: RecordFormat, serialized: tf.Tensor, feature_dtype: tf.DType = tf.float32
) -> dict[str, tf.Tensor]:
    """Serialized record -> dict of per-image tensors (text fields have a leading q dimension).

    Output: image fields ``image_id``, ``image_index`` (int64 []), ``image_size`` (float32 [2]),
    ``num_regions`` (int64 []), ``features`` ([n, d] of ``feature_dtype``; pass the stored type,
    see the manifest, to keep the pipeline compact and exact), ``boxes`` (float32 [n, 4]); text
    fields ``text`` (string [q]), ``text_id`` (int64 [q]), ``text_ids`` (int64 [q, L], 0-padded);
    plus the task's targets (its ``decode_targets``).
    """
    check_format(task)
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
    out.update(task.decode_targets(dense, q))
    return out


def _checks(
    task: RecordFormat, dense: dict[str, tf.Tensor], n: tf.Tensor, q: tf.Tensor
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
    rules += task.target_checks(dense, q, size)
    return [
        tf.debugging.Assert(
            ok, [f"bad {task.name} record: field `{name}` {why}; image_id", dense["image_id"]]
        )
        for name, ok, why in rules
    ]
