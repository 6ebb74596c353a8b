"""Warm-up records (``assets.extra/tf_serving_warmup_requests``), written at export, replayed at load.

TF Serving reads up to 1000 PredictionLog records from this TFRecord file and runs them before it
marks a version AVAILABLE, so the first real request does not pay for graph initialisation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


def write_warmup_requests(saved_model_dir: str, requests: Iterable[predict_pb2.PredictRequest]) -> str:
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
