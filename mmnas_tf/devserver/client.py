"""A small client for TF Serving (or ``mmnas_tf.serve``) over gRPC or REST.

Example::

    client = ServingClient("127.0.0.1:8500", "vqa")
    out = client.predict({"text_ids": ids, "image_features": feats, "boxes": boxes})
    out["top_answers"][0]

It reads the model's signatures from GetModelMetadata (never hard-codes tensor names), pads
``image_features``/``boxes`` (and ``text_ids``) to the model's fixed n (m) with zeros, and raises
``ServingClientError`` with the server's status code and message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    prediction_service_pb2_grpc,
)

from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, TEXT_IDS
from mmnas_tf.serving.errors import HTTP_STATUS
from mmnas_tf.serving.protos import predict_request
from mmnas_tf.serving.signatures import TensorSpecInfo

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Inputs whose axis 1 is padding-aware (PAD id 0 / all-zero rows), so the client may pad them.
PADDED_INPUTS = (TEXT_IDS, IMAGE_FEATURES, BOXES)
_CODE_OF_HTTP = {v: k for k, v in reversed(list(HTTP_STATUS.items()))}


class ServingClientError(Exception):
    """A failed request: ``code`` is the gRPC status (REST statuses are mapped back)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class SignatureSpec:
    """Inputs and outputs (name -> TensorSpecInfo) of one served signature."""

    def __init__(self, inputs: dict[str, TensorSpecInfo], outputs: dict[str, TensorSpecInfo]):
        self.inputs, self.outputs = inputs, outputs

    @classmethod
    def from_proto(cls, signature_def) -> SignatureSpec:
        def infos(mapping):
            return {
                k: TensorSpecInfo(
                    k,
                    tf.dtypes.as_dtype(v.dtype),
                    tuple(None if d.size < 0 else int(d.size) for d in v.tensor_shape.dim),
                )
                for k, v in mapping.items()
            }

        return cls(infos(signature_def.inputs), infos(signature_def.outputs))


def pad_to_signature(
    inputs: Mapping[str, np.ndarray], spec: SignatureSpec, truncate: bool = False
) -> dict[str, np.ndarray]:
    """Casts inputs to the signature dtypes and zero-pads axis 1 of PADDED_INPUTS to the fixed size.

    Too many tokens/regions raise ValueError unless ``truncate`` (then the first ones are kept).
    """
    out = {}
    for key, value in inputs.items():
        info = spec.inputs.get(key)
        if info is None:
            raise ValueError(f"the model has no input '{key}'; inputs: {sorted(spec.inputs)}")
        array = np.asarray(
            value, dtype=object if info.dtype == tf.string else info.dtype.as_numpy_dtype
        )
        want = info.shape[1] if len(info.shape) > 1 else None
        if key in PADDED_INPUTS and want is not None and array.ndim == len(info.shape):
            have = array.shape[1]
            if have > want and not truncate:
                raise ValueError(
                    f"input '{key}' has {have} along axis 1 but the model takes at most {want} "
                    f"({info.describe()}); keep the {want} most important ones"
                )
            if have > want:
                array = array[:, :want]
            elif have < want:
                pad = [(0, 0), (0, want - have)] + [(0, 0)] * (array.ndim - 2)
                array = np.pad(array, pad)
        out[key] = array
    return out


def _decode(array: np.ndarray) -> np.ndarray:
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(
            lambda b: b.decode("utf-8") if isinstance(b, bytes) else b, otypes=[object]
        )(array)
    return array


class ServingClient:
    """Predict and metadata calls for one model.

    Args:
      target: "host:port" (gRPC port, or the REST port when ``rest``).
      model_name: the served model name.
      rest: use the REST API instead of gRPC.
      version, version_label: pin a version (default: the newest available).
      timeout: seconds per call.
    """

    def __init__(
        self,
        target: str,
        model_name: str,
        rest: bool = False,
        version: int | None = None,
        version_label: str | None = None,
        timeout: float = 30.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        if version is not None and version_label:
            raise ValueError("give a version or a version_label, not both")
        self.target, self.model_name, self.rest = target, model_name, rest
        self.version, self.version_label, self.timeout = version, version_label, timeout
        self._signatures: dict[str, SignatureSpec] | None = None
        self._channel = None
        if not rest:
            self._channel = grpc.insecure_channel(
                target,
                options=[
                    ("grpc.max_receive_message_length", max_message_bytes),
                    ("grpc.max_send_message_length", max_message_bytes),
                ],
            )
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- metadata ----

    def signatures(self, refresh: bool = False) -> dict[str, SignatureSpec]:
        """Signature name -> SignatureSpec, from GetModelMetadata (cached)."""
        if self._signatures is None or refresh:
            if self.rest:
                body = self._http("GET", self._rest_path("/metadata"))
                signature_map = json_format.ParseDict(
                    body["metadata"]["signature_def"],
                    get_model_metadata_pb2.SignatureDefMap(),
                    ignore_unknown_fields=True,
                )
            else:
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    metadata_field=["signature_def"]
                )
                self._fill_spec(request.model_spec)
                response = self._grpc(self._stub.GetModelMetadata, request)
                signature_map = get_model_metadata_pb2.SignatureDefMap()
                response.metadata["signature_def"].Unpack(signature_map)
            self._signatures = {
                k: SignatureSpec.from_proto(v)
                for k, v in signature_map.signature_def.items()
                if not k.startswith("__")
            }
        return self._signatures

    def wait_until_available(
        self, timeout: float, abort: Callable[[], str | None] | None = None
    ) -> None:
        """Polls the metadata until the model answers (a server starting, a version loading).

        ``abort()`` may return a message (e.g. "server exited") to stop waiting early.
        """
        end = time.monotonic() + timeout
        while True:
            reason = abort() if abort else None
            if reason:
                raise ServingClientError(grpc.StatusCode.UNAVAILABLE, reason)
            try:
                self.signatures(refresh=True)
                return
            except ServingClientError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)

    def signature(self, name: str = "serving_default") -> SignatureSpec:
        signatures = self.signatures()
        if name not in signatures:
            raise ServingClientError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model '{self.model_name}' has no signature '{name}'; it has {sorted(signatures)}",
            )
        return signatures[name]

    # ---- predict ----

    def predict(
        self,
        inputs: Mapping[str, np.ndarray],
        signature_name: str = "serving_default",
        pad: bool = True,
        truncate: bool = False,
    ) -> dict[str, np.ndarray]:
        """Runs one batch; outputs as numpy arrays (strings decoded to str)."""
        spec = self.signature(signature_name)
        if pad:
            inputs = pad_to_signature(inputs, spec, truncate=truncate)
        if self.rest:
            return self._predict_rest(inputs, signature_name, spec)
        request = predict_request(
            self.model_name, inputs, signature_name, self.version, self.version_label
        )
        response = self._grpc(self._stub.Predict, request)
        return {k: _decode(tf.make_ndarray(v)) for k, v in response.outputs.items()}

    def _predict_rest(
        self, inputs, signature_name: str, spec: SignatureSpec
    ) -> dict[str, np.ndarray]:
        columns = {k: _decode(np.asarray(v)).tolist() for k, v in inputs.items()}
        body = self._http(
            "POST",
            self._rest_path(":predict"),
            {"signature_name": signature_name, "inputs": columns},
        )
        outputs = body["outputs"]
        if not isinstance(outputs, dict) or len(spec.outputs) == 1:
            outputs = {next(iter(spec.outputs)): outputs}
        result = {}
        for key, value in outputs.items():
            info = spec.outputs.get(key)
            string = info is not None and info.dtype == tf.string
            result[key] = np.asarray(
                value, dtype=object if string else info.dtype.as_numpy_dtype if info else None
            )
        return result

    # ---- transport ----

    def _fill_spec(self, model_spec) -> None:
        model_spec.name = self.model_name
        if self.version is not None:
            model_spec.version.value = self.version
        elif self.version_label:
            model_spec.version_label = self.version_label

    def _grpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingClientError(e.code(), e.details() or str(e)) from None

    def _rest_path(self, suffix: str) -> str:
        path = f"/v1/models/{self.model_name}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.version_label:
            path += f"/labels/{self.version_label}"
        return path + suffix

    def _http(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(
            f"http://{self.target}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as e:
            try:
                message = json.load(e).get("error", e.reason)
            except ValueError:
                message = str(e.reason)
            code = _CODE_OF_HTTP.get(e.code, grpc.StatusCode.UNKNOWN)
            raise ServingClientError(code, message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise ServingClientError(
                grpc.StatusCode.UNAVAILABLE, f"cannot reach {self.target}: {e}"
            ) from None
