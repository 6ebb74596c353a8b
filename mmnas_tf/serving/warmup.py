"""Warm-up records (``assets.extra/tf_serving_warmup_requests``), written at export, replayed at load.

TF Serving reads up to 1000 PredictionLog records from this TFRecord file and runs them before it
marks a version AVAILABLE, so the first real request does not pay for graph initialisation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from mmnas_tf.inputs import BOXES, IMAGE_SIZE
from mmnas_tf.serving.protos import predict_request

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


WARMUP_BATCH_SIZES = (1, 8)


def example_value(spec: tf.TensorSpec, batch: int) -> np.ndarray:
    """A valid input for ``spec``: one real token / region / box per example, the rest padding."""
    shape = [batch] + [d if d is not None else 1 for d in spec.shape.as_list()[1:]]
    if spec.dtype == tf.string:
        return np.full(shape, b"what is in the picture", dtype=object)
    value = np.zeros(shape, spec.dtype.as_numpy_dtype)
    if spec.name == BOXES or spec.name.endswith("_" + BOXES):
        value[:, 0] = [0, 0, 31, 31]
    elif spec.name == IMAGE_SIZE or spec.name.endswith("_" + IMAGE_SIZE):
        value[:] = 64
    elif value.ndim >= 2:
        value[:, 0] = 1  # token id 1 (UNK) / a non-zero (real) first region
    return value


def warmup_requests(
    model_name: str, signatures: dict, batch_sizes: tuple[int, ...] = WARMUP_BATCH_SIZES
) -> list[predict_pb2.PredictRequest]:
    """One request per signature and batch size, built from the signatures' input specs."""
    requests = []
    for key, fn in signatures.items():
        args, kwargs = fn.structured_input_signature
        specs = {**{spec.name: spec for spec in args}, **kwargs}
        for batch in batch_sizes:
            inputs = {name: example_value(spec, batch) for name, spec in specs.items()}
            requests.append(predict_request(model_name, inputs, signature_name=key))
    return requests


def write_warmup_requests(
    saved_model_dir: str, requests: Iterable[predict_pb2.PredictRequest]
) -> str:
    """Writes one PredictionLog per request into ``saved_model_dir``; returns the file path."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir: str) -> list[predict_pb2.PredictRequest]:
    """The predict requests stored in a SavedModel's warm-up file ([] if it has none)."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: only predict_log warm-up records are supported")
        requests.append(log.predict_log.request)
    return requests
