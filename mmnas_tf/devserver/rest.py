"""TF Serving's REST API: ``/v1/models/<name>[/versions/N|/labels/L][:predict|/metadata]``.

Predict bodies take ``instances`` (row format, answered with ``predictions``) or ``inputs``
(columnar format, answered with ``outputs``); errors answer ``{"error": "..."}`` with the HTTP status
TF Serving maps the gRPC code to (400 INVALID_ARGUMENT, 404 NOT_FOUND, ...).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from mmnas_tf.devserver.repository import DEFAULT_SIGNATURE, ModelRepository
from mmnas_tf.serving.errors import ServingError, invalid_argument, not_found
from mmnas_tf.serving.signatures import Signature

log = logging.getLogger(__name__)
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>:predict|/metadata)?$"
)


# ---- JSON <-> numpy ---------------------------------------------------------------------------


def _decode_strings(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise invalid_argument(
                f"a JSON object inside a tensor must be {{'b64': ...}}, got {value}"
            )
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    return value.encode("utf-8") if isinstance(value, str) else value


def json_to_array(name: str, value, signature: Signature) -> np.ndarray:
    """Converts one JSON tensor value to the dtype the signature wants, refusing lossy casts."""
    spec = signature.inputs.get(name)
    try:
        array = np.asarray(_decode_strings(value), dtype=object if _has_str(value) else None)
    except ValueError as e:
        raise invalid_argument(
            f"input '{name}' is ragged or malformed ({e}): every row must have the same shape"
        ) from e
    if spec is None:  # reported as an unexpected input by Signature.validate
        return array
    want = spec.dtype.as_numpy_dtype
    if spec.dtype.name == "string":
        if array.dtype != object:
            raise invalid_argument(f"input '{name}' must be strings: {spec.describe()}")
        return array
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise invalid_argument(f"input '{name}' must be numbers: {spec.describe()}")
    if array.size == 0 and 0 < array.ndim < len(spec.shape):
        # JSON cannot spell an empty axis with axes after it ([2, 0, d] arrives as [[], []]):
        # the dropped axes come from the signature, so validation names what is empty.
        array = array.reshape(array.shape + tuple(d or 0 for d in spec.shape[array.ndim :]))
    if np.issubdtype(want, np.integer) and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise invalid_argument(f"input '{name}' must hold integers: {spec.describe()}")
    return array.astype(want)


def _has_str(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, (str, dict))


def _to_json(value: np.ndarray):
    if value.dtype == object or value.dtype.kind == "S":
        return _bytes_to_json(value.tolist())
    return value.tolist()


def _bytes_to_json(value):
    if isinstance(value, list):
        return [_bytes_to_json(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def parse_predict_body(body: Mapping, signature: Signature) -> tuple[dict[str, np.ndarray], bool]:
    """Request JSON -> (named arrays, row_format)."""
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise invalid_argument(
            "the request body needs exactly one of 'instances' (row format) "
            "or 'inputs' (columnar format)"
        )
    single = next(iter(signature.inputs)) if len(signature.inputs) == 1 else None
    if has_rows:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid_argument("'instances' must be a non-empty list, one entry per example")
        if all(isinstance(r, dict) and "b64" not in r for r in rows):
            keys = set(rows[0])
            if any(set(r) != keys for r in rows):
                raise invalid_argument(
                    f"every instance must name the same inputs; the first names {sorted(keys)}"
                )
            columns = {k: [r[k] for r in rows] for k in keys}
        elif single is not None:
            columns = {single: rows}
        else:
            raise invalid_argument(
                f"each instance must be an object naming the inputs {sorted(signature.inputs)}"
            )
        return {k: json_to_array(k, v, signature) for k, v in columns.items()}, True
    columns = body["inputs"]
    if not isinstance(columns, dict) or ("b64" in columns and len(columns) == 1):
        if single is None:
            raise invalid_argument(
                f"'inputs' must be an object naming the inputs {sorted(signature.inputs)}"
            )
        columns = {single: columns}
    return {k: json_to_array(k, v, signature) for k, v in columns.items()}, False


def format_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": _to_json(next(iter(outputs.values())))}
        return {"outputs": {k: _to_json(v) for k, v in outputs.items()}}
    columns = {k: _to_json(v) for k, v in outputs.items()}
    batch = len(next(iter(columns.values())))
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{k: v[i] for k, v in columns.items()} for i in range(batch)]}


# ---- handler ----------------------------------------------------------------------------------


class RestApi:
    """The REST routes over a repository, independent of the HTTP server (tested directly too)."""

    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        try:
            return HTTPStatus.OK, self._route(method, path, body)
        except ServingError as e:
            return e.http_status, {"error": e.message}
        except Exception as e:  # noqa: BLE001 - report, keep serving
            log.exception("internal error for %s %s", method, path)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}"}

    def _route(self, method: str, path: str, body: bytes) -> dict:
        match = _PATH.match(path.split("?")[0])
        if not match:
            raise not_found(
                f"malformed request: {method} {path}; expected "
                "/v1/models/<name>[/versions/<n>|/labels/<label>][:predict|/metadata]"
            )
        name, verb = match["name"], match["verb"]
        version = int(match["version"]) if match["version"] else None
        if verb == ":predict":
            if method != "POST":
                raise invalid_argument(f"{path} takes POST, got {method}")
            return self._predict(name, version, match["label"], body)
        if method != "GET":
            raise invalid_argument(f"{path} takes GET, got {method}")
        if verb == "/metadata":
            return self._metadata(name, version, match["label"])
        if match["label"]:
            version = self.repository.get(name, label=match["label"]).version
        return self._status(name, version)

    def _predict(self, name: str, version: int | None, label: str | None, body: bytes) -> dict:
        try:
            request = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise invalid_argument(f"the request body is not valid JSON: {e}") from e
        if not isinstance(request, dict):
            raise invalid_argument(
                "the request body must be a JSON object with 'instances' or 'inputs'"
            )
        servable = self.repository.get(name, version, label)
        signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
        signature = servable.signature(signature_name)
        inputs, row_format = parse_predict_body(request, signature)
        outputs = servable.predict(signature_name, inputs)
        return format_predict_response(outputs, row_format)

    def _metadata(self, name: str, version: int | None, label: str | None) -> dict:
        servable = self.repository.get(name, version, label)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {
                "signature_def": json_format.MessageToDict(
                    signature_map, preserving_proto_field_name=True
                )
            },
        }

    def _status(self, name: str, version: int | None) -> dict:
        statuses = self.repository.status(name, version)
        return {
            "model_version_status": [
                {
                    "version": str(s.version),
                    "state": s.state,
                    "status": {
                        "error_code": "UNKNOWN" if s.error else "OK",
                        "error_message": s.error,
                    },
                }
                for s in statuses
            ]
        }


def make_http_server(
    api: RestApi, host: str, port: int, max_body_bytes: int
) -> ThreadingHTTPServer:
    """A threading HTTP server answering ``api``; port 0 binds a free port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > max_body_bytes:
                status, payload = (
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {
                        "error": f"request body of {length} bytes exceeds the limit of {max_body_bytes}"
                    },
                )
                self.close_connection = True
            else:
                status, payload = api.handle(method, self.path, self.rfile.read(length))
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._reply("GET")

        def do_POST(self):  # noqa: N802
            self._reply("POST")

        def log_message(self, format, *args):  # noqa: A002 - quiet by default
            log.debug("%s " + format, self.address_string(), *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
