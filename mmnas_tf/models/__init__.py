"""The MMnas backbone and the task models built on it."""

from mmnas_tf.models.backbone import MMnasBackbone, image_padding_mask, text_padding_mask
from mmnas_tf.models.classifier import MMnasClassifier
from mmnas_tf.models.grounder import MMnasGrounder

__all__ = [
    "MMnasBackbone",
    "MMnasClassifier",
    "MMnasGrounder",
    "image_padding_mask",
    "text_padding_mask",
]
