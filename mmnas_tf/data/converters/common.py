"""What every converter shares: per-image items -> vocabularies, embeddings and shards."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from mmnas_tf.data import writer
from mmnas_tf.data.converters import embeddings, region_features
from mmnas_tf.text import Vocabulary, tokenize

_READ_RANK = {"train": 0, "val": 1, "dev": 1, "test": 2, "testA": 2, "testB": 3}


def read_rank(label: str) -> int:
    """Position of a split label in the order the original's loaders read their files: train,
    val (= SCAN's dev), test (testA, then testB); other labels come after (stable sort keeps
    their flag order)."""
    return _READ_RANK.get(label, max(_READ_RANK.values()) + 1)


def parse_split_spec(flag: str, spec: str, files: tuple[str, ...]) -> tuple[str, ...]:
    """``SPLIT:FILE[:FILE]`` -> its parts; ``files`` names the expected files (optional ones in [])."""
    parts = tuple(spec.split(":"))
    required = sum(1 for f in files if not f.startswith("["))
    if not required + 1 <= len(parts) <= len(files) + 1 or not all(parts):
        raise ValueError(f"--{flag}={spec!r}: expected SPLIT:{':'.join(files)}")
    return parts


def load_json(path: str, what: str) -> Any:
    """Parses a JSON input file; a missing, truncated or non-JSON file is named in the error."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}: truncated or "
            f"not a JSON file?); expected {what}"
        ) from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}); expected {what}") from e


@contextlib.contextmanager
def reading(path: str, record: str, expected: str):
    """Names the file, the record and the expected fields when a record lacks a field."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ValueError) and str(e).startswith(path):
            raise
        detail = f"lacks {e}" if isinstance(e, KeyError) else f"is malformed ({e})"
        raise ValueError(f"{path}: {record} {detail}; expected {expected}") from e


@dataclasses.dataclass
class ImageItem:
    """One image of a split with all its texts; ``targets`` holds per-text task fields.

    ``tokens`` (per text, or None) are tokens to use verbatim instead of tokenising the text;
    ``position`` (per text) is the text's place in the order the original reads its files, which
    fixes the token ids; ``index_texts`` makes ``text_id`` the running text index of the split
    (renumbered if images are skipped).
    """

    image_id: int
    names: list[str]  # candidate feature-file names (first is shown in errors)
    by_id: bool = True  # also look the features up by the integer id at the end of a file name
    texts: list[str] = dataclasses.field(default_factory=list)
    text_id: list[int] = dataclasses.field(default_factory=list)
    targets: dict[str, list] = dataclasses.field(default_factory=dict)
    tokens: list[list[str] | None] = dataclasses.field(default_factory=list)
    position: list[int] = dataclasses.field(default_factory=list)
    index_texts: bool = False

    def add(
        self,
        text: str,
        text_id: int,
        tokens: Sequence[str] | None = None,
        position: int | None = None,
        **targets: Any,
    ) -> None:
        self.texts.append(text)
        self.text_id.append(int(text_id))
        self.tokens.append(list(tokens) if tokens is not None else None)
        if position is not None:
            self.position.append(int(position))
        for k, v in targets.items():
            self.targets.setdefault(k, []).append(v)

    def token_lists(self) -> list[list[str]]:
        return [t if t is not None else tokenize(s) for s, t in zip(self.texts, self.tokens)]


def token_vocabulary(out_dir: str, splits: Mapping[str, Sequence[ImageItem]]) -> Vocabulary:
    """Reuses ``out_dir/vocab.txt`` if present (re-runs and later splits keep ids), else builds it
    and saves it: words in first-appearance order over the texts in ``position`` order when every
    text has one (the original's file order), else in split and item order."""
    path = os.path.join(out_dir, writer.VOCAB_FILE)
    if os.path.exists(path):
        logging.info("reusing token vocabulary %s", path)
        return Vocabulary.load(path)
    items = [it for split_items in splits.values() for it in split_items]
    texts = [(p, toks) for it in items for p, toks in zip(it.position, it.token_lists())]
    if len(texts) == sum(len(it.texts) for it in items):
        texts.sort(key=lambda pt: pt[0])
        vocab = Vocabulary.build(toks for _, toks in texts)
    else:
        vocab = Vocabulary.build(toks for it in items for toks in it.token_lists())
    vocab.save(path)
    return vocab


def readable_items(
    splits: Mapping[str, Sequence[ImageItem]], paths: Mapping[str, Sequence[str]]
) -> tuple[dict[str, list[ImageItem]], dict[str, list[str]], dict[str, list[str]]]:
    """Drops images whose feature file cannot be read (``--skip_bad``): reads every file once.

    Returns (splits, paths, skipped) where skipped maps a split to "image <id>: <error>" lines;
    ``index_texts`` items get their text ids renumbered so they stay 0, 1, ... per split.
    """
    kept_splits, kept_paths, skipped = {}, {}, {}
    for name, items in splits.items():
        kept, kept_p = [], []
        for item, path in zip(items, paths[name]):
            try:
                region_features.load_regions(path)
            except region_features.BadFeatureFile as e:
                skipped.setdefault(name, []).append(f"image {item.image_id}: {e}")
                continue
            kept.append(item)
            kept_p.append(path)
        next_id = 0
        for item in kept:
            if item.index_texts:
                item.text_id = list(range(next_id, next_id + len(item.texts)))
                next_id += len(item.texts)
        kept_splits[name], kept_paths[name] = kept, kept_p
    return kept_splits, kept_paths, skipped


def write_dataset(
    task: str,
    out_dir: str,
    splits: Mapping[str, Sequence[ImageItem]],
    feature_dirs: Sequence[str],
    num_shards: int | None = None,
    feature_dtype: str = "float32",
    glove: str | None = None,
    progress: bool = True,
    extra_manifest: Mapping[str, Any] | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Writes every split of ``splits`` (name -> items) plus vocab.txt and embeddings.npy.

    Every feature file is located before anything is written, so a missing one fails fast with
    its name. A corrupt one (truncated, not an npz, a key missing) stops the run naming the image
    and the file, leaving no temporary shard; with ``skip_bad`` every file is read once first and
    the images whose file is corrupt are left out (a warning per image, the count per split in
    the manifest's ``skipped_images``). The token vocabulary is built before any is left out.
    """
    os.makedirs(out_dir, exist_ok=True)
    index = region_features.FeatureIndex(feature_dirs)
    paths = {
        name: index.require([(it.image_id if it.by_id else None, it.names) for it in items])
        for name, items in splits.items()
    }
    vocab = token_vocabulary(out_dir, splits)
    extra = dict(extra_manifest or {})
    skipped: dict[str, list[str]] = {}
    if skip_bad:
        splits, paths, skipped = readable_items(splits, paths)
        for name, lines in skipped.items():
            for line in lines:
                logging.warning("skipped %s/%s", name, line)
    extra["skipped_images"] = {name: len(skipped.get(name, [])) for name in splits}
    emb_path = os.path.join(out_dir, writer.EMBEDDINGS_FILE)
    if glove or not os.path.exists(emb_path):
        np.save(emb_path, embeddings.embedding_matrix(vocab, glove))
    for name, items in splits.items():
        split_paths = paths[name]

        def make_record(
            item: ImageItem, i: int, split_paths=split_paths, name=name
        ) -> dict[str, Any]:
            try:
                regions = region_features.load_regions(split_paths[i])
            except region_features.BadFeatureFile as e:
                raise region_features.BadFeatureFile(
                    f"image {item.image_id} of split {name!r}: {e} (--skip_bad leaves such images out)"
                ) from e
            return {
                "image_id": item.image_id,
                "image_index": i,
                "image_size": regions["image_size"],
                "features": regions["features"].astype(feature_dtype),
                "boxes": regions["boxes"],
                "texts": item.texts,
                "text_id": item.text_id,
                "text_ids": [[vocab.id(t) for t in toks] for toks in item.token_lists()],
                **item.targets,
            }

        shards = num_shards or max(1, min(64, len(items) // 1000))
        writer.write_split(out_dir, name, task, items, make_record, shards, progress)
    return writer.update_manifest(out_dir, task, extra)
