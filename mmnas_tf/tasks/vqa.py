"""Visual question answering: soft-score BCE over the answer vocabulary."""

from __future__ import annotations

from keras import ops

from mmnas_tf.models import MMnasBackbone, MMnasClassifier
from mmnas_tf.tasks.base import Task, sigmoid_cross_entropy_sum

TOP_K = 5


class VQATask(Task):
    """VQA-v2: logits over k answers, sum-reduced BCE against soft scores (0.3/0.6/0.9/1.0 for
    1/2/3/>=4 of 10 annotators). Targets: ``answer_scores`` float [B, k]."""

    name = "vqa"
    max_tokens = 14
    max_regions = 100
    head_keys = ("proj", "attflat_y")
    default_answers = 3129

    def build_model(self, config, num_answers=None):
        return MMnasClassifier(
            MMnasBackbone(config), num_answers or self.default_answers, name="vqa"
        )

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        logits = model(inputs, training=training, arch=arch)["logits"]
        return sigmoid_cross_entropy_sum(targets["answer_scores"], logits)

    def serving_outputs(self, outputs, inputs, answer_table=None):
        import tensorflow as tf

        logits = outputs["logits"]
        k = min(TOP_K, logits.shape[-1])
        top_logits, top_ids = tf.math.top_k(logits, k=k)
        if answer_table is not None:
            top_answers = answer_table.lookup(tf.cast(top_ids, tf.int64))
        else:
            top_answers = tf.strings.as_string(top_ids)
        return {"logits": logits, "top_answers": top_answers, "top_scores": ops.sigmoid(top_logits)}
