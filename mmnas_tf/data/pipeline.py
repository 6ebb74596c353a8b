"""tf.data input pipelines: shards -> (inputs, targets) batches the task models consume.

Order of work (why): read shards interleaved -> keep the D_m or D_a part (by a seeded hash of the
IMAGE id, so an image never feeds both) -> decode one record per image and pad its regions ONCE ->
expand to one example per text (the image tensors are shared, not copied) -> shuffle examples ->
batch (optionally grouped by region count, see ``PipelineConfig.bucket_boundaries``) -> cast
features to float32 per batch (float16 shards stay float16 in the shuffle buffer: half the memory).

Element: ``(inputs, targets)``; ``inputs`` keyed by :mod:`mmnas_tf.inputs` names
(``text_ids`` int32 [B, m], ``image_features`` float32 [B, n, d], ``boxes`` float32 [B, n, 4],
``image_size`` float32 [B, 2]); targets: the task's ``format_targets`` (see
``mmnas_tf.data.schema.RecordFormat``; the tasks in ``mmnas_tf.tasks`` are record formats).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.data import schema, writer

ON_CORRUPT = ("raise", "skip")
SUBSETS = ("all", "dm", "da")
PAD_TO = ("bucket", "batch")
_IMAGE_KEYS = ("image_id", "image_index", "image_size", "num_regions", "features", "boxes")


@dataclasses.dataclass
class PipelineConfig:
    """How to read one split.

    Attributes:
      task: the task (``mmnas_tf.tasks.get_task(name)``): its record format.
      batch_size: examples per batch.
      max_tokens: text length m (the task's ``max_tokens``); longer texts are trimmed.
      max_regions: region slots n (the task's ``max_regions``); extra regions (lowest confidence,
        at the end in bottom-up files) are dropped.
      training: shuffle, drop the last partial batch, return training targets only.
      num_answers: answer-vocabulary size k of a task whose targets index ``answers.txt``
        (default: its lines).
      shuffle_buffer: examples held for shuffling.
      seed: shuffle / file-order seed (fixed seed + ``deterministic`` = reproducible order).
      deterministic: keep a reproducible element order (tests); off = faster.
      subset: ``all``, ``dm`` (weights part of a search split) or ``da`` (architecture part).
      subset_ratio: |D_m| : |D_a| (original 4:1).
      subset_seed: seed of the image-id hash that assigns D_m / D_a.
      bucket_boundaries: e.g. (20, 36, 50, 100): batch examples per bucket of region count (the
        smallest boundary that holds them), in stream order (``group_by_window``, one window of
        ``batch_size`` per bucket; training drops each bucket's partial window, evaluation keeps
        it). The last boundary must equal ``max_regions``. None = no grouping: every image is
        padded to ``max_regions`` (fixed shapes). :func:`region_buckets` gives tenths.
      pad_to: how a bucketed batch is padded: ``bucket`` (each image to its bucket's boundary: one
        shape per bucket, for XLA) or ``batch`` (to the largest region count in the batch: no
        padded region beyond what the batch needs; evaluation). Text stays padded to
        ``max_tokens`` (the sentence LSTM runs over a fixed number of steps).
      on_corrupt: ``raise`` (error naming file and record index) or ``skip`` (drop the unreadable
        rest of that shard, counted in :attr:`Pipeline.skipped_records`).
      repeat: repeat forever (training loops that count steps).
      cycle_length: shards read concurrently.
    """

    task: schema.RecordFormat
    batch_size: int = 64
    max_tokens: int = 14
    max_regions: int = 100
    training: bool = True
    num_answers: int | None = None
    shuffle_buffer: int = 2048
    seed: int | None = None
    deterministic: bool = False
    subset: str = "all"
    subset_ratio: tuple[int, int] = (4, 1)
    subset_seed: int = 0
    bucket_boundaries: Sequence[int] | None = None
    pad_to: str = "bucket"
    on_corrupt: str = "raise"
    repeat: bool = False
    cycle_length: int = 4

    def __post_init__(self) -> None:
        schema.check_format(self.task)
        for name, value, choices in (
            ("on_corrupt", self.on_corrupt, ON_CORRUPT),
            ("subset", self.subset, SUBSETS),
            ("pad_to", self.pad_to, PAD_TO),
        ):
            if value not in choices:
                raise ValueError(f"{name}={value!r}; expected one of {choices}")
        if len(self.subset_ratio) != 2 or min(self.subset_ratio) < 1:
            raise ValueError(
                f"subset_ratio must be two positive ints (D_m, D_a), got {self.subset_ratio}"
            )
        if self.bucket_boundaries is not None:
            b = list(self.bucket_boundaries)
            if b != sorted(set(b)) or b[-1] != self.max_regions:
                raise ValueError(
                    f"bucket_boundaries must increase strictly and end at max_regions={self.max_regions}, got {b}"
                )


class Pipeline:
    """Builds the dataset of one split of a dataset folder (shards + ``manifest.json``).

    Example::

        p = Pipeline("/data/vqa", "train", PipelineConfig(get_task("vqa"), batch_size=64))
        for inputs, targets in p.dataset(): ...
        p.skipped_records  # int, with on_corrupt="skip"
    """

    def __init__(self, data_dir: str, split: str, config: PipelineConfig):
        self.data_dir, self.split, self.config = data_dir, split, config
        self.manifest = writer.load_manifest(data_dir)
        if self.manifest["task"] != config.task.name:
            raise ValueError(
                f"{data_dir} holds {self.manifest['task']!r} records, not {config.task.name!r}"
            )
        self.files = writer.split_files(data_dir, split)
        shards = self.manifest["splits"][split]["shards"]
        self.expected = [shards[os.path.basename(f)]["records"] for f in self.files]
        self.feature_dim = int(self.manifest["feature_dim"])
        self.feature_dtype = tf.as_dtype(self.manifest["feature_dtype"])
        if config.task.uses_answer_vocabulary and config.num_answers is None:
            answers = _read_lines(os.path.join(data_dir, writer.ANSWERS_FILE))
            self.config = dataclasses.replace(config, num_answers=len(answers))
        self._skipped = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def skipped_records(self) -> int:
        return int(self._skipped.numpy())

    def dataset(self) -> tf.data.Dataset:
        c = self.config
        records = read_records(
            self.files,
            self.expected,
            c.on_corrupt,
            self._skipped,
            shuffle=c.training,
            seed=c.seed,
            deterministic=c.deterministic,
            cycle_length=c.cycle_length,
        )
        if c.subset != "all":
            records = records.filter(
                lambda r: in_subset(r, c.subset, c.subset_ratio, c.subset_seed)
            )
        ds = records.map(
            lambda r: prepare_record(c, r, self.feature_dim, self.feature_dtype),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=c.deterministic or None,
        )
        ds = ds.flat_map(expand)
        if c.training:
            ds = ds.shuffle(c.shuffle_buffer, seed=c.seed, reshuffle_each_iteration=True)
        if c.repeat:
            ds = ds.repeat()
        if c.bucket_boundaries:
            bounds = tf.constant(list(c.bucket_boundaries), tf.int64)

            def bucket(e):
                return bucket_index(bounds, tf.shape(e["features"], out_type=tf.int64)[0])

            def batch(_, window):
                if c.pad_to == "batch":  # to the batch's largest region count
                    return window.padded_batch(c.batch_size, drop_remainder=c.training)
                return window.batch(c.batch_size, drop_remainder=c.training)

            ds = ds.group_by_window(key_func=bucket, reduce_func=batch, window_size=c.batch_size)
        else:
            ds = ds.batch(c.batch_size, drop_remainder=c.training)
        ds = ds.map(
            lambda e: format_example(c.task, e, c.training), num_parallel_calls=tf.data.AUTOTUNE
        )
        options = tf.data.Options()
        options.deterministic = c.deterministic
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def bucket_index(bounds, n):
    """Index of the smallest of the increasing ``bounds`` that holds ``n`` regions (int64)."""
    return tf.reduce_sum(tf.cast(bounds < n, tf.int64))


def region_buckets(max_regions: int) -> tuple[int, ...]:
    """Bucket boundaries at every tenth of ``max_regions`` (100: 10, 20, ..., 100; 6: 1, ..., 6)."""
    if max_regions < 1:
        raise ValueError(f"max_regions must be >= 1, got {max_regions}")
    return tuple(sorted({-(-max_regions * k // 10) for k in range(1, 11)}))


def _read_lines(path: str) -> list[str]:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found (needed for the answer count; or set num_answers)"
        )
    with open(path, encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line]


def read_records(
    files: Sequence[str],
    expected: Sequence[int],
    on_corrupt: str = "raise",
    skipped: tf.Variable | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    deterministic: bool = True,
    cycle_length: int = 4,
) -> tf.data.Dataset:
    """Serialized records of ``files``, interleaved, checked against the expected record counts.

    TFRecordDataset silently stops at a truncated tail and raises a DataLossError that names
    neither file nor record at a bad checksum. So each shard is read with errors ignored and its
    record count compared with the manifest at its end: a shortfall raises an InvalidArgumentError
    naming the file and the index of the first unreadable record (``raise``), or is added to
    ``skipped`` (``skip``).
    """
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt={on_corrupt!r}; expected one of {ON_CORRUPT}")
    if skipped is None:
        skipped = tf.Variable(0, dtype=tf.int64, trainable=False)
    files_ds = tf.data.Dataset.from_tensor_slices(
        (list(files), tf.constant(list(expected), tf.int64))
    )
    if shuffle:
        files_ds = files_ds.shuffle(len(files), seed=seed)

    def read_file(path: tf.Tensor, count: tf.Tensor) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(path, buffer_size=1 << 20).ignore_errors().enumerate()
        end = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), tf.constant(b"")))

        def check(index: tf.Tensor, record: tf.Tensor) -> tf.Tensor:
            # Runs once per record, but only the end marker (index -1) checks; index = records read.
            return tf.cond(
                index >= 0,
                lambda: record,
                lambda: _check_count(path, index, count, on_corrupt, skipped),
            )

        counted = records.concatenate(end).scan(
            tf.constant(0, tf.int64),
            lambda n, x: (n + 1, (tf.where(x[0] >= 0, x[0], -1 - n), x[1])),
        )
        return counted.map(check).filter(lambda r: tf.strings.length(r) > 0)

    return files_ds.interleave(
        read_file,
        cycle_length=max(1, min(cycle_length, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _check_count(path, marker, expected, on_corrupt, skipped) -> tf.Tensor:
    read = -1 - marker
    message = tf.strings.join(
        [
            "corrupt or truncated TFRecord file ",
            path,
            ": record ",
            tf.strings.as_string(read),
            " is unreadable (read ",
            tf.strings.as_string(read),
            " of ",
            tf.strings.as_string(expected),
            " records)",
        ]
    )
    if on_corrupt == "raise":
        with tf.control_dependencies(
            [tf.debugging.Assert(tf.equal(read, expected), [message], summarize=1)]
        ):
            return tf.constant(b"")
    lost = tf.maximum(expected - read, 0)
    with tf.control_dependencies([skipped.assign_add(lost)]):
        warn = tf.cond(
            lost > 0, lambda: tf.print("WARNING: skipped", lost, "records:", message), tf.no_op
        )
    with tf.control_dependencies([warn]):
        return tf.constant(b"")


def in_subset(serialized: tf.Tensor, subset: str, ratio: Sequence[int], seed: int) -> tf.Tensor:
    """True if the record's image falls in ``subset`` (``dm``/``da``) of a seeded ratio split."""
    image_id = tf.io.parse_single_example(
        serialized, {"image_id": tf.io.FixedLenFeature([], tf.int64)}
    )
    bucket = tf.strings.to_hash_bucket_strong(
        tf.strings.as_string(image_id["image_id"]), sum(ratio), key=[seed, 0x6D6D6E6173]
    )
    return bucket < ratio[0] if subset == "dm" else bucket >= ratio[0]


def _fit(x: tf.Tensor, size, axis: int = 0, value=0) -> tf.Tensor:
    """Trims or zero-pads ``x`` along ``axis`` to ``size``."""
    size = tf.cast(size, tf.int32)
    x = tf.gather(x, tf.range(tf.minimum(tf.shape(x)[axis], size)), axis=axis)
    pad = [[0, 0]] * len(x.shape)
    pad[axis] = [0, size - tf.shape(x)[axis]]
    return tf.pad(x, pad, constant_values=value)


def prepare_record(
    config: PipelineConfig,
    serialized: tf.Tensor,
    feature_dim: int,
    feature_dtype: tf.DType = tf.float32,
) -> dict[str, tf.Tensor]:
    """Decodes one record and pads it: image fields once per image, text fields to [q, ...] fixed."""
    c = config
    if c.task.uses_answer_vocabulary and not c.num_answers:
        raise ValueError(
            f"PipelineConfig.num_answers is needed for {c.task.name} (Pipeline reads answers.txt)"
        )
    d = schema.decode_record(c.task, serialized, feature_dtype)
    n = tf.minimum(d["num_regions"], c.max_regions)
    if c.bucket_boundaries and c.pad_to == "batch":
        slots = n  # the regions sent; the batch pads them to its own largest count
    elif c.bucket_boundaries:
        bounds = tf.constant(list(c.bucket_boundaries), tf.int64)
        slots = tf.gather(bounds, bucket_index(bounds, tf.cast(n, tf.int64)))
    else:
        slots = tf.constant(c.max_regions, tf.int64)
    out = {
        "image_id": d["image_id"],
        "image_index": d["image_index"],
        "image_size": d["image_size"],
        "features": tf.ensure_shape(_fit(d["features"], slots), [None, feature_dim]),
        "boxes": tf.ensure_shape(_fit(d["boxes"], slots), [None, 4]),
        "text_ids": tf.ensure_shape(
            _fit(d["text_ids"], c.max_tokens, axis=1), [None, c.max_tokens]
        ),
        "text_id": d["text_id"],
    }
    if not c.bucket_boundaries:
        out["features"] = tf.ensure_shape(out["features"], [c.max_regions, feature_dim])
        out["boxes"] = tf.ensure_shape(out["boxes"], [c.max_regions, 4])
    out.update(c.task.prepare_targets(c, d))
    return out


def expand(record: dict[str, tf.Tensor]) -> tf.data.Dataset:
    """One example per text; image tensors are repeated by reference, not copied."""
    image = {k: v for k, v in record.items() if k in _IMAGE_KEYS}
    texts = {k: v for k, v in record.items() if k not in _IMAGE_KEYS}
    zipped = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensors(image).repeat(), tf.data.Dataset.from_tensor_slices(texts)
    )
    return zipped.map(lambda i, t: {**i, **t})


def format_example(
    task: schema.RecordFormat, e: dict[str, tf.Tensor], training: bool
) -> tuple[dict, dict]:
    """Example (or batch) dict -> ``(inputs, targets)``; elementwise, so batched or not.

    Targets: the task's ``format_targets`` (documented on each task class).
    """
    inputs = {
        names.TEXT_IDS: tf.cast(e["text_ids"], tf.int32),
        names.IMAGE_FEATURES: tf.cast(e["features"], tf.float32),
        names.BOXES: e["boxes"],
        names.IMAGE_SIZE: e["image_size"],
    }
    targets = task.format_targets(e, training)
    return inputs, targets


def parse_record(config: PipelineConfig, serialized, feature_dim: int) -> list[tuple[dict, dict]]:
    """Eager reference path: one serialized record -> its examples, without tf.data."""
    record = prepare_record(config, tf.constant(serialized), feature_dim)
    image = {k: v for k, v in record.items() if k in _IMAGE_KEYS}
    q = int(tf.shape(record["text_id"])[0])
    out = []
    for i in range(q):
        example = {**image, **{k: v[i] for k, v in record.items() if k not in _IMAGE_KEYS}}
        out.append(format_example(config.task, example, config.training))
    return out
