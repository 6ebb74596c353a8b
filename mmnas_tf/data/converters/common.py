"""What every converter shares: per-image items -> vocabularies, embeddings and shards."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from mmnas_tf.data import writer
from mmnas_tf.data.converters import embeddings, region_features
from mmnas_tf.text import Vocabulary, tokenize


@dataclasses.dataclass
class ImageItem:
    """One image of a split with all its texts; ``targets`` holds per-text task fields."""

    image_id: int
    names: list[str]  # candidate feature-file names (first is shown in errors)
    by_id: bool = True  # also look the features up by the integer id at the end of a file name
    texts: list[str] = dataclasses.field(default_factory=list)
    text_id: list[int] = dataclasses.field(default_factory=list)
    targets: dict[str, list] = dataclasses.field(default_factory=dict)

    def add(self, text: str, text_id: int, **targets: Any) -> None:
        self.texts.append(text)
        self.text_id.append(int(text_id))
        for k, v in targets.items():
            self.targets.setdefault(k, []).append(v)


def token_vocabulary(out_dir: str, splits: Mapping[str, Sequence[ImageItem]]) -> Vocabulary:
    """Reuses ``out_dir/vocab.txt`` if present (re-runs and later splits keep ids), else builds it
    from every text in split order (first appearance) and saves it."""
    path = os.path.join(out_dir, writer.VOCAB_FILE)
    if os.path.exists(path):
        logging.info("reusing token vocabulary %s", path)
        return Vocabulary.load(path)
    vocab = Vocabulary.build(
        tokenize(t) for items in splits.values() for it in items for t in it.texts
    )
    vocab.save(path)
    return vocab


def write_dataset(
    task,
    out_dir: str,
    splits: Mapping[str, Sequence[ImageItem]],
    feature_dirs: Sequence[str],
    num_shards: int | None = None,
    feature_dtype: str = "float32",
    glove: str | None = None,
    progress: bool = True,
    extra_manifest: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes every split of ``splits`` (name -> items) plus vocab.txt and embeddings.npy.

    Every feature file is located before anything is written, so a missing one fails fast with
    its name.
    """
    os.makedirs(out_dir, exist_ok=True)
    index = region_features.FeatureIndex(feature_dirs)
    paths = {
        name: index.require([(it.image_id if it.by_id else None, it.names) for it in items])
        for name, items in splits.items()
    }
    vocab = token_vocabulary(out_dir, splits)
    emb_path = os.path.join(out_dir, writer.EMBEDDINGS_FILE)
    if glove or not os.path.exists(emb_path):
        np.save(emb_path, embeddings.embedding_matrix(vocab, glove))
    for name, items in splits.items():
        split_paths = paths[name]

        def make_record(item: ImageItem, i: int, split_paths=split_paths) -> dict[str, Any]:
            regions = region_features.load_regions(split_paths[i])
            return {
                "image_id": item.image_id,
                "image_index": i,
                "image_size": regions["image_size"],
                "features": regions["features"].astype(feature_dtype),
                "boxes": regions["boxes"],
                "texts": item.texts,
                "text_id": item.text_id,
                "text_ids": [[vocab.id(t) for t in tokenize(s)] for s in item.texts],
                **item.targets,
            }

        shards = num_shards or max(1, min(64, len(items) // 1000))
        writer.write_split(out_dir, name, task, items, make_record, shards, progress)
    return writer.update_manifest(out_dir, task.name, dict(extra_manifest or {}))
