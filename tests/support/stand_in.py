"""Small SavedModels that follow the serving contract without the MMnas network.

They let the server, clients and benchmark be tested on their own: fixed random weights, the
contract's input names, shapes and outputs per task (vqa, itm, vg), optional ``predict_text``. The
task says which outputs its model has (``Task.model_outputs``), whether it needs ``image_size``
and how outputs become the serving contract (``Task.serving_outputs``).
``export_stand_in(...)`` writes ``BASE/<version>/``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, IMAGE_SIZE, TEXT_IDS
from mmnas_tf.serving.text_signature import PREDICT_TEXT, make_text_signature
from mmnas_tf.tasks import get_task


class StandInModel(tf.Module):
    """A contract-shaped model: masked mean of embedded tokens and projected regions, then heads.

    Args:
      task: a registered task name (vqa, itm, vg).
      m, n, d: tokens, regions, feature size (signature shapes [None, m], [None, n, d]).
      hidden: width of the embedding and of ``layers`` extra tanh layers (the compute knob).
      vocab_size, answers: token vocabulary size; answer strings (VQA head size k = len(answers)).
    """

    def __init__(
        self,
        task: str,
        m: int = 14,
        n: int = 10,
        d: int = 32,
        hidden: int = 16,
        vocab_size: int = 50,
        answers: list[str] | None = None,
        layers: int = 0,
        seed: int = 0,
    ):
        spec = get_task(task)  # ValueError naming the registered tasks
        super().__init__(name=f"stand_in_{task}")
        self.task, self.m, self.n, self.d = task, m, n, d
        self._spec = spec
        rng = np.random.default_rng(seed)

        def var(*shape):
            return tf.Variable(rng.normal(0, 1 / np.sqrt(shape[0]), shape).astype(np.float32))

        self.embed = var(vocab_size, hidden)
        self.project = var(d, hidden)
        self.box_project = var(4, hidden)
        self.extra = [var(hidden, hidden) for _ in range(layers)]
        k = len(answers) if answers else 20
        self.answers = tf.constant(answers or [str(i) for i in range(k)])
        self.answer_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.range(k, dtype=tf.int64), self.answers), ""
        )
        width = lambda shape: k if "k" in shape else shape[-1] if shape[1:] else 1  # noqa: E731
        self.heads = {name: var(hidden, width(s)) for name, s in spec.model_outputs.items()}
        self.input_specs = {
            TEXT_IDS: tf.TensorSpec([None, m], tf.int32, name=TEXT_IDS),
            IMAGE_FEATURES: tf.TensorSpec([None, n, d], tf.float32, name=IMAGE_FEATURES),
            BOXES: tf.TensorSpec([None, n, 4], tf.float32, name=BOXES),
        }
        if spec.needs_image_size:
            self.input_specs[IMAGE_SIZE] = tf.TensorSpec([None, 2], tf.float32, name=IMAGE_SIZE)

    def __call__(self, inputs: dict) -> dict:
        ids, feats, boxes = inputs[TEXT_IDS], inputs[IMAGE_FEATURES], inputs[BOXES]
        text_mask = tf.cast(ids > 0, tf.float32)[..., None]
        text = tf.reduce_sum(tf.gather(self.embed, ids) * text_mask, 1)
        text /= tf.maximum(tf.reduce_sum(text_mask, 1), 1.0)
        region_mask = tf.reduce_any(feats != 0, -1)
        objects = tf.tanh(
            tf.einsum("bnd,dh->bnh", feats, self.project)
            + tf.einsum("bnc,ch->bnh", boxes / 100.0, self.box_project)
        )
        for w in self.extra:
            objects = tf.tanh(tf.einsum("bnh,hk->bnk", objects, w))
        weights = tf.cast(region_mask, tf.float32)[..., None]
        image = tf.reduce_sum(objects * weights, 1) / tf.maximum(tf.reduce_sum(weights, 1), 1.0)
        fused = tf.tanh(text + image)
        per_object = objects * text[:, None, :]
        outputs = {}
        for name, shape in self._spec.model_outputs.items():
            if shape[:1] == ("n",):  # one row per region
                raw = tf.einsum("bnh,hk->bnk", per_object, self.heads[name])
                if not shape[1:]:
                    raw = tf.nn.log_softmax(tf.where(region_mask, raw[..., 0], -1e9), -1)
                outputs[name] = raw
            else:
                raw = fused @ self.heads[name]
                outputs[name] = raw if shape else raw[:, 0]
        return self._spec.serving_outputs(outputs, inputs, self.answer_table)

    def serving_function(self):
        names = list(self.input_specs)

        def serve(**kwargs):
            return self({k: kwargs[k] for k in names})

        if IMAGE_SIZE in names:

            def serving_default(text_ids, image_features, boxes, image_size):
                return serve(
                    text_ids=text_ids,
                    image_features=image_features,
                    boxes=boxes,
                    image_size=image_size,
                )
        else:

            def serving_default(text_ids, image_features, boxes):
                return serve(text_ids=text_ids, image_features=image_features, boxes=boxes)

        return tf.function(serving_default, input_signature=list(self.input_specs.values()))

    def example_inputs(self, batch: int, seed: int = 1, regions: int | None = None) -> dict:
        """Random valid inputs; ``regions`` < n leaves zero-padded rows at the end."""
        rng = np.random.default_rng(seed)
        real = self.n if regions is None else regions
        ids = rng.integers(3, self.embed.shape[0], (batch, self.m)).astype(np.int32)
        ids[:, self.m // 2 :] = 0
        feats = np.zeros([batch, self.n, self.d], np.float32)
        feats[:, :real] = rng.random([batch, real, self.d]).astype(np.float32)
        xy = rng.uniform(0, 300, (batch, self.n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 200, (batch, self.n, 2))], -1)
        boxes[:, real:] = 0
        inputs = {TEXT_IDS: ids, IMAGE_FEATURES: feats, BOXES: boxes.astype(np.float32)}
        if IMAGE_SIZE in self.input_specs:
            inputs[IMAGE_SIZE] = np.tile(np.float32([[480, 640]]), [batch, 1])
        return inputs


def export_stand_in(
    model: StandInModel, base_path: str, version: int = 1, vocab: list[str] | None = None
) -> str:
    """Writes ``base_path/<version>`` with serving_default (+ predict_text if ``vocab``)."""
    path = os.path.join(base_path, str(version))
    signatures = {"serving_default": model.serving_function()}
    with tempfile.TemporaryDirectory() as tmp:
        if vocab:  # the SavedModel keeps its own copy as an asset
            vocab_file = os.path.join(tmp, "vocab.txt")
            with open(vocab_file, "w", encoding="utf-8") as f:
                f.write("\n".join(vocab) + "\n")
            signatures[PREDICT_TEXT] = make_text_signature(
                model, model, vocab_file, model.input_specs
            )
        tf.saved_model.save(model, path, signatures=signatures)
    return path
