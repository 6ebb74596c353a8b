"""Helpers of the search tests: a tiny supernet, random batches in the pipeline contract."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Tiny supernet sizes (d=16, 2 heads, M/N 2/3, 8 regions, 6 tokens), dropout off by default so
#: steps are deterministic functions of the weights and the sampled architecture.
TINY = dict(
    hidden_size=16,
    num_heads=2,
    ffn_size=32,
    relation_size=8,
    vocab_size=40,
    word_embed_size=8,
    feature_size=12,
    max_tokens=6,
    max_regions=8,
    pool_mlp_size=16,
    pool_output_size=32,
    num_encoder_blocks=2,
    num_decoder_blocks=3,
    genotype=None,
    dropout=0.0,
)
NUM_ANSWERS = 10


def tiny_config(task, **changes):
    return task.model_config(**{**TINY, **changes})


def random_batch(n: int, seed: int, task: str = "vqa", sizes: dict | None = None):
    """``(inputs, targets)`` numpy dicts: padded tokens / regions, pixel x1y1x2y2 boxes."""
    s = {**TINY, **(sizes or {})}
    r = np.random.RandomState(seed)
    m, k, f = s["max_tokens"], s["max_regions"], s["feature_size"]
    ids = r.randint(1, s["vocab_size"], (n, m)).astype("int32")
    ids[:, m - 1 :] = 0  # padded tail
    feats = r.rand(n, k, f).astype("float32")
    feats[:, k - 2 :] = 0.0  # padded regions
    xy = r.rand(n, k, 2).astype("float32") * 50
    wh = 5 + r.rand(n, k, 2).astype("float32") * 30
    inputs = {
        "text_ids": ids,
        "image_features": feats,
        "boxes": np.concatenate([xy, xy + wh], -1),
        "image_size": np.full((n, 2), 100.0, "float32"),
    }
    if task == "vg":
        targets = {"gt_box": inputs["boxes"][:, 0] + 1.0}
    else:
        targets = {"answer_scores": (r.rand(n, NUM_ANSWERS) > 0.7).astype("float32")}
    return inputs, targets


def random_dataset(n: int, batch: int, seed: int, task: str = "vqa"):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(random_batch(n, seed, task)).batch(
        batch, drop_remainder=True
    )


def build_search_model(task_name: str = "vqa", seed: int = 0, config_changes=None, **kwargs):
    """A tiny supernet task model wrapped in a compiled ``SearchModel``."""
    import keras

    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.tasks import get_task

    task = get_task(task_name)
    keras.utils.set_random_seed(seed)
    model = task.build_model(
        tiny_config(task, **(config_changes or {})).replace(num_answers=NUM_ANSWERS)
    )
    search = SearchModel(task, model, seed=seed, **kwargs)
    search.compile(jit_compile=False)
    return search


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(code: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (TF device setup must precede TF initialisation)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )


@pytest.fixture(scope="session")
def nas():
    """The helpers above (conftest modules are not importable under --import-mode=importlib)."""
    return SimpleNamespace(
        TINY=TINY,
        tiny_config=tiny_config,
        random_batch=random_batch,
        random_dataset=random_dataset,
        build_search_model=build_search_model,
        free_port=free_port,
        run_python=run_python,
        REPO=REPO,
    )
