"""A local model server speaking TF Serving's gRPC and REST protocols (what our clients use).

Example::

    server = ModelServer(single_model_config("vqa", "/models/vqa"), grpc_port=0, rest_port=0)
    server.start()            # loads the newest version(s), then serves
    print(server.grpc_port, server.rest_port)
    server.stop()
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent import futures

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from mmnas_tf.devserver.batching import BatchingOptions, parse_batching_parameters
from mmnas_tf.devserver.grpc_service import add_services
from mmnas_tf.devserver.repository import ModelRepository
from mmnas_tf.devserver.rest import RestApi, make_http_server

# Batch 32 x 100 regions x 2048 float32 is 26 MB; leave room for boxes, text and proto overhead.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
log = logging.getLogger(__name__)


def single_model_config(name: str, base_path: str) -> list[model_server_config_pb2.ModelConfig]:
    """The model list for ``--model_name``/``--model_base_path`` (latest version, as TF Serving)."""
    return [
        model_server_config_pb2.ModelConfig(
            name=name, base_path=os.path.abspath(base_path), model_platform="tensorflow"
        )
    ]


def read_model_config_file(path: str) -> list[model_server_config_pb2.ModelConfig]:
    """Parses a ModelServerConfig text proto (``model_config_list { config { ... } }``)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(f"{path}: not a ModelServerConfig text proto: {e}") from e
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(
            f"{path}: needs a model_config_list (custom_model_config is not supported)"
        )
    models = list(config.model_config_list.config)
    for model in models:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"{path}: model '{model.name}' has platform '{model.model_platform}'; "
                "only 'tensorflow' SavedModels are served"
            )
        if not os.path.isabs(model.base_path):  # TF Serving wants absolute paths; be lenient
            model.base_path = os.path.join(os.path.dirname(os.path.abspath(path)), model.base_path)
    return models


def read_batching_parameters_file(path: str) -> BatchingOptions:
    with open(path, encoding="utf-8") as f:
        return parse_batching_parameters(f.read())


class ConfigFileWatcher:
    """Re-reads a model config file when it changes and applies it to a repository (TF Serving's
    ``--model_config_file_poll_wait_seconds``); a file that does not parse keeps the old config."""

    def __init__(self, path: str, repository: ModelRepository, wait_seconds: float):
        self.path, self.repository, self.wait_seconds = path, repository, wait_seconds
        self._mtime = os.stat(path).st_mtime_ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="config-watcher", daemon=True)

    def check(self) -> bool:
        """Applies the file if it changed since the last look; returns whether it did."""
        mtime = os.stat(self.path).st_mtime_ns
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            self.repository.reconfigure(read_model_config_file(self.path))
        except (OSError, ValueError) as e:
            log.error("keeping the previous model config: %s", e)
            return False
        log.info("applied the changed model config %s", self.path)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.wait_seconds):
            try:
                self.check()
            except OSError as e:  # e.g. the file is being replaced
                log.warning("cannot read %s: %s", self.path, e)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class ModelServer:
    """gRPC (PredictionService, ModelService) and REST front ends over one ModelRepository.

    Args:
      models: ModelConfig protos (see ``single_model_config`` / ``read_model_config_file``).
      host: interface to bind; 127.0.0.1 keeps the server local.
      grpc_port: gRPC port, 0 = any free port (read ``grpc_port`` after ``start``).
      rest_port: REST port, 0 = any free port, None = no REST API.
      batching: server-side batching options, None = every request runs on its own.
      poll_wait_seconds: how often to look for new versions; 0 = only at start.
      max_message_bytes: largest gRPC message / REST body accepted and sent.
      config_file, config_poll_seconds: re-read this model config file when it changes, looking
        every ``config_poll_seconds`` (0 = never), as TF Serving does.
    """

    def __init__(
        self,
        models: Sequence[model_server_config_pb2.ModelConfig],
        host: str = "127.0.0.1",
        grpc_port: int = 8500,
        rest_port: int | None = 8501,
        batching: BatchingOptions | None = None,
        poll_wait_seconds: float = 1.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_workers: int = 16,
        config_file: str | None = None,
        config_poll_seconds: float = 0.0,
    ):
        self.repository = ModelRepository(models, batching)
        self._watcher = (
            ConfigFileWatcher(config_file, self.repository, config_poll_seconds)
            if config_file and config_poll_seconds > 0
            else None
        )
        self.host = host
        self._grpc_port, self._rest_port = grpc_port, rest_port
        self.poll_wait_seconds = poll_wait_seconds
        self.max_message_bytes = max_message_bytes
        self.max_workers = max_workers
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._grpc: grpc.Server | None = None
        self._http = None
        self._http_thread: threading.Thread | None = None

    def start(self) -> ModelServer:
        self.repository.start(self.poll_wait_seconds)
        if self._watcher is not None:
            self._watcher.start()
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(self.max_workers), options=options)
        add_services(self._grpc, self.repository)
        self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"cannot bind gRPC to {self.host}:{self._grpc_port}")
        self._grpc.start()
        if self._rest_port is not None:
            api = RestApi(self.repository)
            self._http = make_http_server(api, self.host, self._rest_port, self.max_message_bytes)
            self.rest_port = self._http.server_address[1]
            self._http_thread = threading.Thread(
                target=self._http.serve_forever, name="rest-api", daemon=True
            )
            self._http_thread.start()
        log.info(
            "serving %s: gRPC %s:%s, REST %s",
            self.repository.model_names,
            self.host,
            self.grpc_port,
            self.rest_port,
        )
        return self

    def wait(self) -> None:
        """Blocks until the gRPC server terminates (Ctrl-C in the CLI)."""
        self._grpc.wait_for_termination()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http_thread.join()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=5).wait()  # in-flight requests finish
            self._grpc = None
        self.repository.close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
