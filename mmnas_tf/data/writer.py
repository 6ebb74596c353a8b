"""Sharded, resumable TFRecord writing and the ``manifest.json`` that describes a dataset folder.

Each shard is written to a temporary name and renamed when complete, so a killed run never leaves
a file under a shard name (a run that fails with an error also removes its temporary shard);
re-running skips the shards that exist. The manifest records how many
records each shard holds, which lets the reader detect truncated or corrupt shards.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from mmnas_tf.console import Progress
from mmnas_tf.data import schema
from mmnas_tf.files import replaced_when_written

MANIFEST = "manifest.json"
FORMAT = "mmnas_tf.tfrecord/1"
VOCAB_FILE = "vocab.txt"
ANSWERS_FILE = "answers.txt"
EMBEDDINGS_FILE = "embeddings.npy"


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def plan_shards(num_items: int, num_shards: int) -> list[range]:
    """Contiguous, deterministic item ranges per shard (a re-run assigns items identically)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    bounds = [num_items * s // num_shards for s in range(num_shards + 1)]
    return [range(bounds[s], bounds[s + 1]) for s in range(num_shards)]


def shard_sizes(path: str) -> tuple[int, int, Counter, Counter]:
    """(records, examples, images per region count, texts per token count) of one shard; a
    corrupt record raises naming the file and index."""
    records = examples = 0
    regions, tokens = Counter(), Counter()
    spec = {
        "num_regions": tf.io.FixedLenFeature([], tf.int64),
        "text_lengths": tf.io.VarLenFeature(tf.int64),
    }
    try:
        for serialized in tf.data.TFRecordDataset(path):
            parsed = tf.io.parse_single_example(serialized, spec)
            lengths = parsed["text_lengths"].values.numpy().tolist()
            regions[int(parsed["num_regions"])] += 1
            tokens.update(lengths)
            examples += len(lengths)
            records += 1
    except tf.errors.DataLossError as e:
        raise tf.errors.DataLossError(
            None, None, f"{path}: record {records} is corrupt ({e.message})"
        ) from e
    return records, examples, regions, tokens


def percentile(counts: Mapping[int, int], q: float) -> int:
    """The smallest value at or below which ``q`` percent of the counted items lie (nearest rank;
    0 for no items): ``counts`` maps a value to how many items have it."""
    total = sum(counts.values())
    rank, seen = -(-total * q // 100), 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return int(value)
    return 0


def size_stats(regions: Mapping[int, int], tokens: Mapping[int, int]) -> dict[str, Any]:
    """A split's ``sizes`` manifest entry: the largest region count and question (text) length in
    tokens, the length's 99th percentile, and both histograms (value -> images / texts), from
    which the drivers tell what share a model's limits cut."""
    return {
        "max_regions": max(regions, default=0),
        "max_tokens": max(tokens, default=0),
        "tokens_p99": percentile(tokens, 99),
        "regions": {str(k): regions[k] for k in sorted(regions)},
        "tokens": {str(k): tokens[k] for k in sorted(tokens)},
    }


def write_split(
    out_dir: str,
    split: str,
    task: schema.RecordFormat,
    items: Sequence[Any],
    make_record: Callable[[Any, int], Mapping[str, Any]],
    num_shards: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes ``items`` (one per image) as ``num_shards`` shards and updates the manifest.

    Args:
      out_dir: dataset folder (created).
      split: split name, the shard file prefix (e.g. ``train``).
      task: the task (``mmnas_tf.tasks.get_task(name)``): its record format and name.
      items: per-image descriptions; ``make_record(item, image_index)`` turns one into the record
        dict of ``schema.encode_record`` (this is where features are loaded).
      num_shards: number of output files.
    Returns the split's manifest entry.
    """
    schema.check_format(task)
    os.makedirs(out_dir, exist_ok=True)
    shards: dict[str, dict[str, int]] = {}
    info: dict[str, Any] = {}
    if os.path.exists(os.path.join(out_dir, MANIFEST)):  # an earlier split fixed the width
        width = load_manifest(out_dir).get("feature_dim")
        info.update({"feature_dim": width} if width else {})
    regions, tokens = Counter(), Counter()
    bar = Progress(len(items), f"{task.name}/{split}", progress, unit="records")
    for s, chunk in enumerate(plan_shards(len(items), num_shards)):
        name = shard_name(split, s, num_shards)
        path = os.path.join(out_dir, name)
        if os.path.exists(path):  # written by an earlier run: read its sizes back
            records, examples, shard_regions, shard_tokens = shard_sizes(path)
            regions.update(shard_regions)
            tokens.update(shard_tokens)
            if records != len(chunk):
                raise ValueError(
                    f"{path} holds {records} records but this run assigns it {len(chunk)}: it was "
                    "written from other inputs; delete the folder's shards to rebuild"
                )
            shards[name] = {"records": records, "examples": examples}
            bar.update(len(chunk))
            continue
        tmp = f"{path}.tmp-{os.getpid()}"
        examples = 0
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for i in chunk:
                    record = make_record(items[i], i)
                    width = info.setdefault("feature_dim", int(record["features"].shape[1]))
                    if record["features"].shape[1] != width:
                        raise ValueError(
                            f"image {record['image_id']} of split {split!r} has features of width "
                            f"{record['features'].shape[1]}, the dataset's other images {width}: "
                            "every image of a dataset needs features of one width"
                        )
                    writer.write(schema.encode_record(task, record))
                    examples += len(record["texts"])
                    regions[len(record["features"])] += 1
                    tokens.update(len(t) for t in record["text_ids"])
                    info.setdefault("feature_dtype", record["features"].dtype.name)
                    info["max_regions"] = max(info.get("max_regions", 0), len(record["features"]))
                    bar.update()
        except BaseException:  # a failed (or interrupted) run leaves no partial shard behind
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        os.replace(tmp, path)
        shards[name] = {"records": len(chunk), "examples": examples}
    bar.close()
    entry = {
        "shards": shards,
        "records": sum(v["records"] for v in shards.values()),
        "examples": sum(v["examples"] for v in shards.values()),
        "sizes": size_stats(regions, tokens),
    }
    update_manifest(out_dir, task.name, {"splits": {split: entry}, **info})
    return entry


def update_manifest(out_dir: str, task: str, update: Mapping[str, Any]) -> dict[str, Any]:
    """Merges ``update`` into ``out_dir/manifest.json`` (splits merge by name), atomically."""
    path = os.path.join(out_dir, MANIFEST)
    manifest = load_manifest(out_dir) if os.path.exists(path) else {"format": FORMAT, "task": task}
    if manifest["task"] != task:
        raise ValueError(f"{path} describes task {manifest['task']!r}, not {task!r}")
    for key, value in update.items():
        if key == "splits":
            manifest.setdefault("splits", {}).update(value)
        elif key == "max_regions":
            manifest[key] = max(manifest.get(key, 0), value)
        else:
            manifest[key] = value
    with replaced_when_written(path) as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return manifest


def load_manifest(data_dir: str) -> dict[str, Any]:
    """Reads ``data_dir/manifest.json``; names the folder when it is missing or foreign."""
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no {MANIFEST} in {data_dir}: not a dataset folder written by mmnas_tf.convert / synthetic"
        )
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def split_examples(data_dir: str, split: str) -> int | None:
    """Examples in ``split`` by the manifest (None when the folder or split is not there): a
    progress line's total, before the data is read."""
    try:
        return int(load_manifest(data_dir)["splits"][split]["examples"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def split_files(data_dir: str, split: str) -> list[str]:
    """Shard paths of one split, from the manifest (so a missing shard is an error, not less data)."""
    manifest = load_manifest(data_dir)
    splits = manifest.get("splits", {})
    if split not in splits:
        raise ValueError(f"{data_dir} has no split {split!r}; it has {sorted(splits)}")
    files = [os.path.join(data_dir, name) for name in sorted(splits[split]["shards"])]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(f"shards listed in {MANIFEST} are missing: {missing}")
    return files


def summary_lines(manifest: Mapping[str, Any], out_dir: str) -> list[str]:
    """Per split: images and examples written, images skipped, and (when the manifest records
    them) the largest region count and text lengths (what the entry points print)."""
    skipped = manifest.get("skipped_images", {})
    lines = []
    for split, info in manifest["splits"].items():
        lines.append(
            f"{split}: {info['records']} images, {info['examples']} examples -> {out_dir}"
            + (
                f" ({skipped[split]} images skipped: corrupt region features)"
                if skipped.get(split)
                else ""
            )
        )
        if "sizes" in info:
            s = info["sizes"]
            lines.append(
                f"{split}: up to {s['max_regions']} regions per image, texts of up to "
                f"{s['max_tokens']} tokens (99% of them up to {s['tokens_p99']})"
            )
    return lines


def write_lines(path: str, lines: Iterable[str]) -> None:
    with replaced_when_written(path) as f:
        f.writelines(line + "\n" for line in lines)
