"""Runs a SavedModel the way ``tensorflow_model_server`` and ``saved_model_cli run`` do.

Those load a SavedModel with the TF1 C++ loader: import the MetaGraph into a session of its own
graph, run the saver's restore op, run the init op (tables, assets), then feed and fetch the
tensors a SignatureDef names. ``tf.saved_model.load`` takes another path (it revives the tf.function
objects), so an export that answers there can still fail in TF Serving. Tests load every export we
write through :class:`SessionModel` too.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf


class SessionModel:
    """A SavedModel loaded with ``tf.compat.v1.saved_model.loader.load`` into its own session."""

    def __init__(self, path: str, tags: tuple[str, ...] = ("serve",)):
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), path)
        self.signature_defs = dict(meta_graph.signature_def)

    def run(
        self, inputs: Mapping[str, np.ndarray], signature_name: str = "serving_default"
    ) -> dict[str, np.ndarray]:
        """Feeds ``inputs`` to the signature's input tensors and fetches every output tensor."""
        if signature_name not in self.signature_defs:
            raise KeyError(f"{self.path} has no signature {signature_name!r}")
        signature = self.signature_defs[signature_name]
        if set(inputs) != set(signature.inputs):
            raise KeyError(
                f"signature {signature_name!r} takes {sorted(signature.inputs)}, "
                f"got {sorted(inputs)}"
            )
        feed = {signature.inputs[k].name: np.asarray(v) for k, v in inputs.items()}
        fetch = {k: t.name for k, t in signature.outputs.items()}
        return self.session.run(fetch, feed)

    def replay_warmup(self) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Runs every warm-up record of the export, as TF Serving does at load; returns
        (signature name, inputs, outputs) per record. A failing record raises the session's error."""
        from mmnas_tf.serving.warmup import read_warmup_requests

        results = []
        for request in read_warmup_requests(self.path):
            name = request.model_spec.signature_name or "serving_default"
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            results.append((name, inputs, self.run(inputs, name)))
        return results

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SessionModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def loaded_outputs(loaded, inputs: Mapping[str, np.ndarray], signature_name="serving_default"):
    """The same call through ``tf.saved_model.load``'s object (``loaded``), as numpy arrays."""
    fn = loaded.signatures[signature_name]
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    return {k: v.numpy() for k, v in fn(**tensors).items()}
