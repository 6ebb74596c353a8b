"""The Task protocol: everything that differs between VQA, ITM and VG lives in a Task object."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.config import ModelConfig


def sigmoid_cross_entropy_sum(labels, logits):
    """Sum over every element of BCE-with-logits (the original's ``BCEWithLogitsLoss(sum)``)."""
    logits = ops.cast(logits, "float32")  # a bfloat16 sum over B x k terms loses the loss
    labels = ops.cast(labels, logits.dtype)
    per = ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per)


def replica_sum(value):
    """``value`` summed over the replicas of the running distributed step (``value`` itself on one
    device or outside a replica context). For denominators that must be the GLOBAL batch's: with
    them each replica's loss is its share of the global loss, and the SUM all-reduce of the
    gradients is the single-device gradient. The count carries no gradient."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return tf.stop_gradient(context.all_reduce(tf.distribute.ReduceOp.SUM, value))


class Task:
    """What one task owns: its model head, loss, serving outputs and default sizes.

    Search, training, evaluation and export loops are generic and ask the task for these.
    """

    name: str = ""
    #: default padded sentence length m and region count n.
    max_tokens: int = 14
    max_regions: int = 100
    #: whether the model needs ``image_size`` (VG decodes and clips boxes in pixels).
    needs_image_size: bool = False
    #: the output layer names in the original checkpoints (identify the task of a state dict).
    head_keys: tuple[str, ...] = ()

    def model_config(self, **overrides) -> ModelConfig:
        """A ModelConfig with this task's default sizes."""
        overrides.setdefault("max_tokens", self.max_tokens)
        overrides.setdefault("max_regions", self.max_regions)
        return ModelConfig(**overrides)

    def build_model(self, config: ModelConfig, num_answers: int | None = None) -> keras.Model:
        raise NotImplementedError

    def compute_loss(self, model, inputs: dict, targets: dict, training=None, arch=None):
        """Runs ``model`` as the task needs and returns the scalar (sum-reduced) loss."""
        raise NotImplementedError

    def serving_outputs(self, outputs: dict, inputs: dict, answer_table=None) -> dict:
        """Maps model outputs to the SavedModel contract's outputs."""
        raise NotImplementedError

    def input_names(self, config: ModelConfig) -> tuple[str, ...]:
        base = (names.TEXT_IDS, names.IMAGE_FEATURES, names.BOXES)
        if self.needs_image_size or config.box_embedding_size:
            return base + (names.IMAGE_SIZE,)
        return base

    def input_spec(self, config: ModelConfig) -> dict:
        """Shapes and dtypes of the model inputs (batch dimension None)."""
        import tensorflow as tf

        spec = {
            names.TEXT_IDS: tf.TensorSpec([None, config.max_tokens], tf.int32, names.TEXT_IDS),
            names.IMAGE_FEATURES: tf.TensorSpec(
                [None, config.max_regions, config.feature_size], tf.float32, names.IMAGE_FEATURES
            ),
            names.BOXES: tf.TensorSpec([None, config.max_regions, 4], tf.float32, names.BOXES),
            names.IMAGE_SIZE: tf.TensorSpec([None, 2], tf.float32, names.IMAGE_SIZE),
        }
        return {k: spec[k] for k in self.input_names(config)}
