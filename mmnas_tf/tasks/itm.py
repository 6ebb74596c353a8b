"""Image-text matching: one matching score per (image, caption) pair, four-term BCE."""

from __future__ import annotations

from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.models import MMnasBackbone, MMnasClassifier
from mmnas_tf.tasks.base import Task, sigmoid_cross_entropy_sum

#: Inputs of the negative pairs in an ITM training batch (filled by hard-negative mining).
NEG_TEXT_IDS = "neg_text_ids"
NEG_IMAGE_FEATURES = "neg_image_features"
NEG_BOXES = "neg_boxes"


class ITMTask(Task):
    """Flickr30K-style matching: ``score = sigmoid(logit)``. Training loss (the original's, sum
    reduction): BCE(s(I,T), 1) + BCE(s(I,T'), 0) + BCE(s(I,T), 1) + BCE(s(I',T), 0), with T' a
    negative caption for image I and I' a negative image for caption T. The batch's targets dict
    carries ``neg_text_ids`` [B, m] and ``neg_image_features`` / ``neg_boxes`` [B, n, ...]."""

    name = "itm"
    max_tokens = 50
    max_regions = 36
    head_keys = ("proj", "attflat_y")

    def build_model(self, config, num_answers=None):
        return MMnasClassifier(MMnasBackbone(config), 1, scalar_output=True, name="itm")

    def pair_logits(self, model, inputs, targets, training=None, arch=None):
        """Logits of the positive, negative-caption and negative-image pairs."""
        pos = model(inputs, training=training, arch=arch)["logits"]
        neg_caption = dict(inputs, **{names.TEXT_IDS: targets[NEG_TEXT_IDS]})
        neg_image = dict(
            inputs,
            **{names.IMAGE_FEATURES: targets[NEG_IMAGE_FEATURES], names.BOXES: targets[NEG_BOXES]},
        )
        negc = model(neg_caption, training=training, arch=arch)["logits"]
        negi = model(neg_image, training=training, arch=arch)["logits"]
        return pos, negc, negi

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        pos, negc, negi = self.pair_logits(model, inputs, targets, training, arch)
        return matching_loss(pos, negc, negi)

    def serving_outputs(self, outputs, inputs, answer_table=None):
        return {"score": ops.sigmoid(outputs["logits"])}


def matching_loss(pos_logits, neg_caption_logits, neg_image_logits):
    """The original's four-term BCE (the paper's Eq. 13 without its sign typo)."""
    ones, zeros = ops.ones_like(pos_logits), ops.zeros_like(pos_logits)
    return (
        2.0 * sigmoid_cross_entropy_sum(ones, pos_logits)
        + sigmoid_cross_entropy_sum(zeros, neg_caption_logits)
        + sigmoid_cross_entropy_sum(zeros, neg_image_logits)
    )
