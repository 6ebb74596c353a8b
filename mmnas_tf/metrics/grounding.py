"""Visual-grounding accuracy (docs/original_behaviour.md, "Metrics"): share of queries whose box
has IoU >= 0.5."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf.ops.boxes import iou

IOU_THRESHOLD = 0.5


@keras.saving.register_keras_serializable(package="mmnas_tf")
class GroundingAccuracy(keras.metrics.Mean):
    """Mean of ``IoU(predicted box, ground truth) >= threshold`` (+1-pixel IoU of the original).

    Args:
      threshold: float, the IoU a prediction needs (0.5).
      name: metric name.

    ``update_state(gt_box [B, 4], predicted_box [B, 4])``, pixel x1y1x2y2. Predict boxes with
    ``mmnas_tf.tasks.grounding.predict_box``.
    """

    def __init__(
        self, threshold: float = IOU_THRESHOLD, name: str = "grounding_accuracy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold

    def update_state(self, gt_box, predicted_box, sample_weight=None):
        overlap = iou(ops.cast(predicted_box, "float32"), ops.cast(gt_box, "float32"))
        return super().update_state(
            ops.cast(overlap >= self.threshold, "float32"), sample_weight=sample_weight
        )

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}
