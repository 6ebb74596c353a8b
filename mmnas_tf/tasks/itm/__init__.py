"""Image-text matching: the task (``task``), its typed config section (``config``), per-epoch
hard-negative mining (``hard_negatives``), retrieval metrics (``metrics``), the Flickr30K
converter (``converter``) and the synthetic captions (``synthetic``)."""

from mmnas_tf.tasks.itm.config import HardNegativeConfig, ITMConfig
from mmnas_tf.tasks.itm.hard_negatives import NEG_BOXES, NEG_IMAGE_FEATURES, NEG_TEXT_IDS
from mmnas_tf.tasks.itm.task import ITMTask, matching_loss

__all__ = [
    "NEG_BOXES",
    "NEG_IMAGE_FEATURES",
    "NEG_TEXT_IDS",
    "HardNegativeConfig",
    "ITMConfig",
    "ITMTask",
    "matching_loss",
]
