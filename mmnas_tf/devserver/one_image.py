"""One sentence + one image's region features -> a contract request, and its answer as text.

What ``python -m mmnas_tf.predict`` sends: the ``predict_text`` signature when the model has it
(tokenised in-graph), otherwise ``serving_default`` with ids from :mod:`mmnas_tf.text`.
"""

from __future__ import annotations

import sys

import numpy as np

from mmnas_tf.data.converters.region_features import load_regions
from mmnas_tf.devserver.client import ServingClient
from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, IMAGE_SIZE, TEXT_IDS
from mmnas_tf.serving.text_signature import PREDICT_TEXT, TEXT, TRUNCATED_TOKENS
from mmnas_tf.tasks import get_task, task_of_outputs
from mmnas_tf.text import Vocabulary, encode, tokenize


def build_request(
    client: ServingClient, sentence: str, features_path: str, vocab_path: str | None = None
) -> tuple[str, dict[str, np.ndarray]]:
    """(signature name, batch-of-one inputs) for ``sentence`` about the image in ``features_path``."""
    signatures = client.signatures()
    name = PREDICT_TEXT if PREDICT_TEXT in signatures else "serving_default"
    spec = client.signature(name)
    feature_dim = spec.inputs[IMAGE_FEATURES].shape[-1]
    regions = load_regions(features_path, feature_dim)
    inputs = {IMAGE_FEATURES: regions["features"][None], BOXES: regions["boxes"][None]}
    if IMAGE_SIZE in spec.inputs:
        inputs[IMAGE_SIZE] = np.float32([regions["image_size"]])
    if name == PREDICT_TEXT:
        inputs[TEXT] = np.array([sentence.encode("utf-8")], dtype=object)
        return name, inputs
    if not vocab_path:
        raise ValueError(
            f"model '{client.model_name}' has no '{PREDICT_TEXT}' signature, so the question must be "
            "tokenised here: pass --vocab=<the vocab.txt exported with the model (assets/vocab.txt)>"
        )
    tokens = tokenize(sentence)
    # A variable-size export takes any length up to its m (a longer one is refused, naming m).
    max_len = spec.inputs[TEXT_IDS].shape[1] or max(len(tokens), 1)
    if len(tokens) > max_len:  # a fixed-shape export: the ids are cut here, so say it
        print(question_cut_line(len(tokens) - max_len), file=sys.stderr)
    inputs[TEXT_IDS] = encode(tokens, Vocabulary.load(vocab_path), max_len)[None]
    return name, inputs


def describe_outputs(outputs: dict[str, np.ndarray]) -> str:
    """The first example's prediction as readable lines (``Task.annotate`` of the task whose
    outputs these are; every output's values when no registered task's)."""
    try:
        task = get_task(task_of_outputs(outputs))
    except ValueError:  # not a registered task's outputs: show them all
        task = None
    if task is not None:
        lines = list(task.annotate(outputs).lines)
    else:
        lines = [f"{k}: {v[0].tolist()}" for k, v in outputs.items() if k != TRUNCATED_TOKENS]
    cut = int(outputs[TRUNCATED_TOKENS][0]) if TRUNCATED_TOKENS in outputs else 0
    if cut:
        lines.append(question_cut_line(cut))
    return "\n".join(lines)


def question_cut_line(cut: int) -> str:
    """What a prediction says when the model read only the first tokens of the question."""
    return (
        f"question truncated: its last {cut} token{'s' if cut > 1 else ''} went past the model's "
        "max_tokens and were not read (a model trained with a larger model.max_tokens reads them)"
    )
