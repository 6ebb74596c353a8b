"""Image-text matching: the task (``task``) and its per-epoch hard-negative mining
(``hard_negatives``)."""

from mmnas_tf.tasks.itm.hard_negatives import NEG_BOXES, NEG_IMAGE_FEATURES, NEG_TEXT_IDS
from mmnas_tf.tasks.itm.task import ITMTask, matching_loss

__all__ = ["NEG_BOXES", "NEG_IMAGE_FEATURES", "NEG_TEXT_IDS", "ITMTask", "matching_loss"]
