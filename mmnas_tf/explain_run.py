"""Explains one sentence about one image with a model trained by ``python -m mmnas_tf.train``
(its model directory: checkpoints and ``run.json``), without a server."""

from __future__ import annotations

import os

import numpy as np

from mmnas_tf import inputs as names
from mmnas_tf.viz.explain import Explanation, explain_example


def load_model(checkpoint: str):
    """(task name, model restored from ``checkpoint``, run record) from the ``run.json`` beside it."""
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.runs import find_run
    from mmnas_tf.tasks import get_task

    run = find_run(checkpoint)
    if run is None:
        raise FileNotFoundError(
            f"no run.json next to {checkpoint}: give the model directory of python -m "
            "mmnas_tf.train (or a checkpoint prefix inside it)"
        )
    task = (run.get("experiment") or {}).get("task")
    if not task:
        raise ValueError(f"the run.json next to {checkpoint} names no task")
    model = get_task(task).build_model(run["model"])
    restore_model(model, checkpoint)
    return task, model, run


def _data_file(run: dict, name: str) -> str | None:
    data_dir = ((run.get("experiment") or {}).get("data") or {}).get("data_dir") or ""
    path = os.path.join(data_dir, name)
    return path if data_dir and os.path.exists(path) else None


def model_inputs(config, sentence: str, regions: dict, vocab, truncate: bool = False) -> dict:
    """A batch of one: the sentence's token ids and the regions zero-padded to the model's n."""
    from mmnas_tf.text import encode, tokenize

    n = len(regions["boxes"])
    if n > config.max_regions and not truncate:
        raise ValueError(
            f"the image has {n} regions, the model takes at most {config.max_regions} "
            "(--truncate_regions keeps the first ones)"
        )
    n = min(n, config.max_regions)
    features = np.zeros((1, config.max_regions, config.feature_size), np.float32)
    boxes = np.zeros((1, config.max_regions, 4), np.float32)
    features[0, :n] = regions["features"][:n]
    boxes[0, :n] = regions["boxes"][:n]
    return {
        names.TEXT_IDS: encode(tokenize(sentence), vocab, config.max_tokens)[None],
        names.IMAGE_FEATURES: features,
        names.BOXES: boxes,
        names.IMAGE_SIZE: np.float32([regions["image_size"]]),
    }


def explain_checkpoint(
    checkpoint: str,
    sentence: str,
    features_path: str,
    vocab_path: str | None = None,
    truncate: bool = False,
) -> Explanation:
    """Restores the run at ``checkpoint`` and explains ``sentence`` about the image whose region
    features are in ``features_path`` (a bottom-up-attention ``.npz``). The vocabulary (and the
    answer list, VQA) default to the run's data directory."""
    from mmnas_tf.data import writer
    from mmnas_tf.data.answers import load_answers
    from mmnas_tf.data.converters.region_features import load_regions
    from mmnas_tf.tasks import get_task
    from mmnas_tf.text import Vocabulary, tokenize

    task, model, run = load_model(checkpoint)
    config = run["model"]
    vocab_path = vocab_path or _data_file(run, writer.VOCAB_FILE)
    if not vocab_path:
        raise FileNotFoundError(
            "no vocabulary: the run's data directory has no vocab.txt; pass --vocab"
        )
    regions = load_regions(features_path, config.feature_size)
    inputs = model_inputs(config, sentence, regions, Vocabulary.load(vocab_path), truncate)
    uses_answers = get_task(task).uses_answer_vocabulary
    answers_path = _data_file(run, writer.ANSWERS_FILE) if uses_answers else None
    answers = load_answers(answers_path) if answers_path else None
    words = tokenize(sentence)[: config.max_tokens]
    return explain_example(model, task, inputs, words, answers)


def save_regions(path: str, inputs: dict, index: int = 0) -> str:
    """Writes example ``index`` of a model-input batch as a bottom-up-attention ``.npz`` (``x``
    n x d, ``bbox``, ``image_h``, ``image_w``; real regions only), what ``--features`` reads."""
    features = np.asarray(inputs[names.IMAGE_FEATURES])[index]
    real = np.abs(features).sum(-1) != 0
    h, w = np.asarray(inputs[names.IMAGE_SIZE])[index]
    boxes = np.asarray(inputs[names.BOXES], np.float32)[index][real]
    np.savez(path, x=features[real].astype(np.float32), bbox=boxes, image_h=h, image_w=w)
    return path
