"""Visual-grounding accuracy (docs/original_behaviour.md, "Metrics"): share of queries whose box
has IoU >= 0.5, as the original's evaluation computes it (+1-pixel widths, in float64)."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf.ops.boxes import iou

IOU_THRESHOLD = 0.5


@keras.saving.register_keras_serializable(package="mmnas_tf")
class GroundingAccuracy(keras.metrics.Mean):
    """Mean of ``IoU(predicted box, ground truth) >= threshold`` (+1-pixel IoU of the original).

    The IoU is computed in float64 in the original's order of operations, so a box on the
    threshold counts as it does there; boxes that do not overlap (touching boxes do: they share a
    pixel) and zero-area boxes (``x2 = x1 - 1``) never count.

    Args:
      threshold: float, the IoU a prediction needs (0.5).
      name: metric name.

    ``update_state(gt_box [B, 4], predicted_box [B, 4])``, pixel x1y1x2y2. Predict boxes with
    ``mmnas_tf.tasks.vg.task.predict_box``.
    """

    def __init__(
        self, threshold: float = IOU_THRESHOLD, name: str = "grounding_accuracy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold

    def hits(self, gt_box, predicted_box):
        """[B] bool: whether each predicted box counts (IoU >= threshold)."""
        overlap = iou(ops.cast(predicted_box, "float64"), ops.cast(gt_box, "float64"))
        return overlap >= self.threshold

    def update_state(self, gt_box, predicted_box, sample_weight=None):
        return super().update_state(
            ops.cast(self.hits(gt_box, predicted_box), "float32"), sample_weight=sample_weight
        )

    def percent(self) -> float:
        """Accuracy in percent as the original reports it: hits / float(queries) * 100 (exact
        counts, where ``result()`` is a float32 ratio)."""
        total, count = (float(ops.convert_to_numpy(v)) for v in (self.total, self.count))
        return total / count * 100.0

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}
