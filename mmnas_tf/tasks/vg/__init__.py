"""Visual grounding: the task, its loss and box prediction (``task``), its accuracy
(``metrics``), the RefCOCO converter (``converter``) and the synthetic referring expressions
(``synthetic``)."""

from mmnas_tf.tasks.vg.task import (
    GroundingTask,
    grounding_loss,
    grounding_targets,
    predict_box,
)

__all__ = ["GroundingTask", "grounding_loss", "grounding_targets", "predict_box"]
