"""Loaded model versions: discovery under base paths, version policies, labels, hot reload.

A version is a numeric directory ``BASE/<version>/`` holding ``saved_model.pb``; directories without
it (an export still being written) are ignored until it appears. New versions are loaded before old
ones are unloaded, so a model never goes unavailable during an update (TF Serving's
availability-preserving policy).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from mmnas_tf.devserver.batching import Batcher, BatchingOptions
from mmnas_tf.serving.errors import ServingError, invalid_argument, not_found
from mmnas_tf.serving.protos import from_tensor_proto
from mmnas_tf.serving.signatures import InputLimits, Signature
from mmnas_tf.serving.warmup import read_warmup_requests

DEFAULT_SIGNATURE = "serving_default"
log = logging.getLogger(__name__)


def read_signature_defs(path: str) -> dict:
    """The SignatureDef protos of the ``serve`` meta graph, as TF Serving's metadata returns them."""
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no meta graph tagged 'serve'")


def list_versions(base_path: str) -> list[int]:
    """Numeric version directories under ``base_path`` that hold a saved_model.pb, ascending."""
    if not tf.io.gfile.isdir(base_path):
        return []
    versions = []
    for entry in tf.io.gfile.listdir(base_path):
        entry = entry.rstrip("/")
        if entry.isdigit() and tf.io.gfile.exists(os.path.join(base_path, entry, "saved_model.pb")):
            versions.append(int(entry))
    return sorted(versions)


def wanted_versions(
    config: model_server_config_pb2.ModelConfig, present: Sequence[int]
) -> list[int]:
    """The versions ``config.model_version_policy`` selects from those present (default: latest 1)."""
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(present)
    if kind == "specific":
        return [v for v in present if v in set(policy.specific.versions)]
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return list(present)[-count:]


class Servable:
    """One loaded version of a model: its signatures, metadata and (optional) batchers.

    Calls are thread-safe: a restored signature is a concrete function, which TensorFlow runs
    concurrently without retracing; with batching, one queue per signature serialises merging.
    """

    def __init__(self, name: str, version: int, path: str, batching: BatchingOptions | None = None):
        self.name, self.version, self.path = name, version, path
        self._model = tf.saved_model.load(path, tags=["serve"])
        self.signature_defs = read_signature_defs(path)
        limits = InputLimits.of_saved_model(self._model)  # None for models without limits
        self.signatures = {
            key: Signature.from_concrete_function(key, fn, limits)
            for key, fn in self._model.signatures.items()
        }
        self._batchers = (
            {key: Batcher(sig, batching) for key, sig in self.signatures.items()}
            if batching
            else {}
        )

    def signature(self, key: str) -> Signature:
        key = key or DEFAULT_SIGNATURE
        if key not in self.signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"serving signature key '{key}' not found in {self.name} version {self.version}; "
                f"available: {sorted(self.signatures)}",
            )
        return self.signatures[key]

    def predict(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Validates ``inputs`` against the signature, runs it (batched if enabled), filters outputs."""
        signature = self.signature(signature_name)
        unknown = sorted(set(output_filter) - set(signature.outputs))
        if unknown:
            raise invalid_argument(
                f"output_filter names unknown output(s) {unknown}; outputs: {sorted(signature.outputs)}"
            )
        signature.validate(inputs)
        batcher = self._batchers.get(signature.name)
        outputs = batcher.submit(inputs) if batcher else signature(inputs)
        if output_filter:
            outputs = {k: v for k, v in outputs.items() if k in set(output_filter)}
        return outputs

    def batches_run(self) -> int:
        return sum(b.batches_run for b in self._batchers.values())

    def warm_up(self) -> int:
        """Replays the SavedModel's warm-up requests; returns how many ran."""
        requests = read_warmup_requests(self.path)
        for request in requests:
            inputs = {k: from_tensor_proto(k, v) for k, v in request.inputs.items()}
            self.predict(request.model_spec.signature_name, inputs)
        return len(requests)

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()


@dataclasses.dataclass
class VersionStatus:
    version: int
    state: str  # LOADING, AVAILABLE, END (TF Serving's ModelVersionStatus.State names)
    error: str = ""


def _by_name(configs) -> dict[str, model_server_config_pb2.ModelConfig]:
    names = [c.name for c in configs]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"model names must be unique and non-empty, got {names}")
    return {c.name: c for c in configs}


def _mtime(version_path: str) -> float:
    try:
        return tf.io.gfile.stat(os.path.join(version_path, "saved_model.pb")).mtime_nsec / 1e9
    except tf.errors.NotFoundError:
        return -1.0


class ModelRepository:
    """Every configured model's loaded versions; ``poll()`` syncs them with the file system."""

    def __init__(
        self,
        configs: Sequence[model_server_config_pb2.ModelConfig],
        batching: BatchingOptions | None = None,
    ):
        self._configs = _by_name(configs)
        self._batching = batching
        self._lock = threading.Lock()  # guards _loaded; held only briefly
        self._sync = threading.RLock()  # one poll / reconfigure at a time
        self._loaded: dict[str, dict[int, Servable]] = {n: {} for n in self._configs}
        self._status: dict[str, dict[int, VersionStatus]] = {n: {} for n in self._configs}
        self._failed: dict[tuple[str, int], float] = {}  # saved_model.pb mtime of failed loads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self._configs)

    def reconfigure(self, configs: Sequence[model_server_config_pb2.ModelConfig]) -> None:
        """Applies a new model list: new models load, removed ones unload, labels and version
        policies change (what TF Serving does when its config file changes)."""
        new = _by_name(configs)
        with self._sync:
            with self._lock:
                removed = [
                    s for n in set(self._loaded) - set(new) for s in self._loaded.pop(n).values()
                ]
                for name in new:
                    self._loaded.setdefault(name, {})
                    self._status.setdefault(name, {})
                for name in set(self._status) - set(new):
                    del self._status[name]
                self._configs = new
            for servable in removed:
                servable.close()
                log.info(
                    "model %s: removed from the config, version %d unloaded",
                    servable.name,
                    servable.version,
                )
            self.poll()

    def poll(self) -> None:
        """Loads newly wanted versions, then unloads versions no longer wanted."""
        with self._sync:
            for name, config in self._configs.items():
                self._sync_model(name, config)

    def _sync_model(self, name: str, config: model_server_config_pb2.ModelConfig) -> None:
        wanted = wanted_versions(config, list_versions(config.base_path))
        if not wanted and not self._loaded[name]:
            log.warning("model %s: no version with saved_model.pb under %s", name, config.base_path)
        for version in wanted:
            path = os.path.join(config.base_path, str(version))
            if version not in self._loaded[name] and not self._failed_before(name, version, path):
                self._load(name, version, path)
        with self._lock:
            stale = [v for v in self._loaded[name] if v not in wanted]
            # Keep serving an old version if none of the wanted ones loaded.
            if not any(v in self._loaded[name] for v in wanted):
                stale = []
            removed = [self._loaded[name].pop(v) for v in stale]
        for servable in removed:
            servable.close()
            self._status[name][servable.version] = VersionStatus(servable.version, "END")
            log.info("model %s: unloaded version %d", name, servable.version)

    def _failed_before(self, name: str, version: int, path: str) -> bool:
        """A version that failed to load is retried only once its saved_model.pb changes."""
        return self._failed.get((name, version)) == _mtime(path)

    def _load(self, name: str, version: int, path: str) -> None:
        self._status[name][version] = VersionStatus(version, "LOADING")
        try:
            servable = Servable(name, version, path, self._batching)
            servable.warm_up()
        except Exception as e:  # noqa: BLE001 - a broken export must not take the server down
            log.error("model %s: failed to load version %d from %s: %s", name, version, path, e)
            self._status[name][version] = VersionStatus(version, "END", f"failed to load: {e}")
            self._failed[(name, version)] = _mtime(path)
            return
        self._failed.pop((name, version), None)
        with self._lock:
            self._loaded[name][version] = servable
        self._status[name][version] = VersionStatus(version, "AVAILABLE")
        log.info("model %s: loaded version %d from %s", name, version, path)

    def start(self, poll_wait_seconds: float) -> None:
        """Polls once now, then every ``poll_wait_seconds`` in a thread (0: only once, as TF Serving)."""
        self.poll()
        if poll_wait_seconds > 0:
            self._thread = threading.Thread(
                target=self._poll_loop,
                args=(poll_wait_seconds,),
                name="version-poller",
                daemon=True,
            )
            self._thread.start()

    def _poll_loop(self, wait: float) -> None:
        while not self._stop.wait(wait):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - keep polling after e.g. a transient file system error
                log.exception("version poll failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            servables = [s for versions in self._loaded.values() for s in versions.values()]
            for versions in self._loaded.values():
                versions.clear()
        for servable in servables:
            servable.close()

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: a given version, a labelled one, or the newest loaded."""
        if name not in self._configs:
            raise not_found(
                f"Servable not found for request: model '{name}' is not served; "
                f"models: {self.model_names}"
            )
        if label:
            labels = dict(self._configs[name].version_labels)
            if label not in labels:
                raise invalid_argument(
                    f"unrecognized version label '{label}' for model '{name}'; "
                    + (
                        f"labels: {sorted(labels)}"
                        if labels
                        else "it has no version_labels configured"
                    )
                )
            version = labels[label]
        with self._lock:
            loaded = self._loaded[name]
            if version is None:
                if not loaded:
                    raise not_found(
                        f"Servable not found for request: Latest({name}): no version is loaded"
                    )
                return loaded[max(loaded)]
            if version not in loaded:
                raise not_found(
                    f"Servable not found for request: Specific({name}, {version}); "
                    f"loaded versions: {sorted(loaded)}"
                )
            return loaded[version]

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        if name not in self._configs:
            raise not_found(f"model '{name}' is not served; models: {self.model_names}")
        statuses = self._status[name]
        if version is not None:
            if version not in statuses:
                raise not_found(
                    f"model '{name}' has no version {version}; known: {sorted(statuses)}"
                )
            return [statuses[version]]
        return [statuses[v] for v in sorted(statuses, reverse=True)]
