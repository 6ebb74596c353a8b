"""Helpers of the engine tests: tiny configs and in-memory datasets in the pipeline's format."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.experiments import get_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_ANSWERS = 7


def tiny_model_config(task: str = "vqa", **changes):
    """The ``<task>_tiny`` retrain ModelConfig with its genotype."""
    exp = get_experiment(f"{task}_tiny")
    return exp.model_config(exp.load_genotype(), **changes)


def random_examples(
    task: str, config, count: int, seed: int = 0, num_images: int | None = None
) -> tuple[dict, dict]:
    """``count`` examples as numpy (inputs, targets) in the data pipeline's contract format.
    ITM: ``num_images`` images with ``count / num_images`` captions each (caption rows 0..count-1)."""
    rng = np.random.default_rng(seed)
    m, n, f = config.max_tokens, config.max_regions, config.feature_size
    lengths = rng.integers(2, m + 1, count)
    text = rng.integers(3, config.vocab_size, (count, m)).astype(np.int32)
    text[np.arange(m)[None, :] >= lengths[:, None]] = 0
    regions = rng.integers(2, n + 1, count)
    feats = rng.normal(size=(count, n, f)).astype(np.float32)
    feats[np.arange(n)[None, :] >= regions[:, None]] = 0
    xy = rng.uniform(0, 300, (count, n, 2))
    wh = rng.uniform(20, 200, (count, n, 2))
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    size = np.full((count, 2), 500.0, np.float32)
    targets = {}
    if task == "vqa":
        scores = np.zeros((count, NUM_ANSWERS), np.float32)
        scores[np.arange(count), rng.integers(0, NUM_ANSWERS, count)] = 1.0
        scores[np.arange(count), rng.integers(0, NUM_ANSWERS, count)] = 0.3
        targets["answer_scores"] = scores
    elif task == "vg":
        targets["gt_box"] = boxes[:, 0] + rng.uniform(-3, 3, (count, 4)).astype(np.float32)
    else:
        num_images = num_images or max(2, count // 2)
        image = np.arange(count) % num_images
        feats, boxes = feats[image], boxes[image]
        targets = {
            "image_index": image.astype(np.int32),
            "caption_index": np.arange(count, dtype=np.int32),
        }
    inputs = {
        names.TEXT_IDS: text,
        names.IMAGE_FEATURES: feats,
        names.BOXES: boxes,
        names.IMAGE_SIZE: size,
    }
    return inputs, targets


def dataset_fn(examples, batch_size: int, seed: int = 0, shuffle: bool = True):
    """``fn(epoch) -> tf.data.Dataset`` of batches, reshuffled with seed + epoch."""

    def make(epoch: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(examples)
        if shuffle:
            ds = ds.shuffle(1000, seed=seed + epoch, reshuffle_each_iteration=False)
        return ds.batch(batch_size, drop_remainder=True)

    return make


def tensorboard_tags(logdir) -> set[str]:
    """Every scalar tag written to the event files directly in ``logdir``."""
    tags = set()
    for path in tf.io.gfile.glob(os.path.join(str(logdir), "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.fixture
def eh():
    """The engine-test helpers (this module): ``eh.random_examples(...)`` etc. (pytest runs with
    --import-mode=importlib, so test files cannot import conftest)."""
    return sys.modules[__name__]
