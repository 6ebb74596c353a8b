"""numpy <-> TensorProto and the TF Serving request messages, shared by server, clients and export."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from mmnas_tf.serving.errors import invalid_argument


def to_tensor_proto(array) -> tf.compat.v1.TensorProto:
    array = np.asarray(array)
    if array.dtype.kind == "U":
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
    return tf.make_tensor_proto(array)


def from_tensor_proto(name: str, proto) -> np.ndarray:
    try:
        return tf.make_ndarray(proto)
    except Exception as e:  # noqa: BLE001 - any malformed proto is the client's error
        raise invalid_argument(f"input '{name}' is not a valid TensorProto: {e}") from e


def predict_request(
    model_name: str,
    inputs: Mapping[str, np.ndarray],
    signature_name: str = "serving_default",
    version: int | None = None,
    version_label: str | None = None,
    output_filter: tuple[str, ...] = (),
) -> predict_pb2.PredictRequest:
    """A PredictRequest for ``model_name`` with ``inputs`` as TensorProtos."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    if version_label:
        request.model_spec.version_label = version_label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(to_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request
