"""Visual grounding (RefCOCO family): rank the proposals, regress the box
(docs/original_behaviour.md, "Heads and losses")."""

from __future__ import annotations

from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.models import MMnasBackbone, MMnasGrounder, image_padding_mask
from mmnas_tf.ops.boxes import clip_boxes, decode_deltas, encode_deltas, iou
from mmnas_tf.tasks.base import Task, replica_sum

OVERLAP_THRESHOLD = 0.5
REGRESSION_WEIGHT = 0.5


def grounding_targets(boxes, image_mask, gt_box, threshold=OVERLAP_THRESHOLD):
    """Targets of the original ``proc_bbox_label``: proposals with IoU >= ``threshold`` get score
    IoU normalised to sum 1 (L1), and normalised offsets to the ground truth.

    Returns ``(scores [B, n], positive bool [B, n], deltas [B, n, 4])``.
    """
    gt_box = ops.cast(gt_box, "float32")
    ious = iou(boxes, gt_box[:, None, :])
    positive = ops.logical_and(ious >= threshold, image_mask)
    raw = ops.where(positive, ious, ops.zeros_like(ious))
    total = ops.sum(raw, axis=-1, keepdims=True)
    scores = raw / ops.maximum(total, 1e-12)
    deltas = encode_deltas(boxes, ops.broadcast_to(gt_box[:, None, :], ops.shape(boxes)))
    return scores, positive, deltas


def grounding_loss(object_scores, box_deltas, boxes, image_mask, gt_box):
    """rank + 0.5 * reg: KL(target || softmax) summed and divided by the number of queries with a
    positive proposal, smooth-L1 (beta 1) on positive proposals divided by their count. A query with
    no positive proposal contributes nothing (an all-negative batch gives 0, not NaN). Under a
    distribution strategy both counts are the global batch's (``replica_sum``), so the replicas'
    losses add up to the single-device loss."""
    target, positive, target_deltas = grounding_targets(boxes, image_mask, gt_box)
    pos_f = ops.cast(positive, object_scores.dtype)
    query_has_pos = ops.cast(ops.any(positive, axis=-1), object_scores.dtype)
    safe_log_t = ops.log(ops.where(target > 0, target, ops.ones_like(target)))
    kl = ops.sum(target * (safe_log_t - object_scores), axis=-1) * query_has_pos
    rank = ops.sum(kl) / ops.maximum(replica_sum(ops.sum(query_has_pos)), 1.0)
    diff = ops.abs(box_deltas - target_deltas)
    smooth = ops.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
    reg = ops.sum(ops.sum(smooth, axis=-1) * pos_f) / ops.maximum(replica_sum(ops.sum(pos_f)), 1.0)
    return rank + REGRESSION_WEIGHT * reg, rank, reg


def predict_box(object_scores, box_deltas, boxes, image_mask, image_size):
    """The best REAL object's index and its decoded, clipped box (pixels)."""
    masked = ops.where(image_mask, object_scores, ops.full_like(object_scores, -1e30))
    index = ops.argmax(masked, axis=-1)
    pick = lambda t: ops.take_along_axis(t, index[:, None, None], axis=1)[:, 0]  # noqa: E731
    box = decode_deltas(pick(boxes), pick(box_deltas))
    return index, clip_boxes(box, ops.cast(image_size, box.dtype))


class GroundingTask(Task):
    """Referring-expression grounding; targets: ``gt_box`` float [B, 4] pixel x1y1x2y2."""

    name = "vg"
    max_tokens = 15
    max_regions = 100
    needs_image_size = True
    head_keys = ("proj_scores", "proj_reg", "attfc_y")

    def build_model(self, config, num_answers=None):
        return MMnasGrounder(MMnasBackbone(config), name="vg")

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        out = model(inputs, training=training, arch=arch)
        mask = image_padding_mask(inputs[names.IMAGE_FEATURES])
        total, _, _ = grounding_loss(
            out["object_scores"], out["box_deltas"], inputs[names.BOXES], mask, targets["gt_box"]
        )
        return total

    def serving_outputs(self, outputs, inputs, answer_table=None):
        mask = image_padding_mask(inputs[names.IMAGE_FEATURES])
        index, box = predict_box(
            outputs["object_scores"], outputs["box_deltas"], inputs[names.BOXES], mask,
            inputs[names.IMAGE_SIZE],
        )  # fmt: skip
        return {
            "object_scores": outputs["object_scores"],
            "box_deltas": outputs["box_deltas"],
            "box": box,
            "object_index": ops.cast(index, "int32"),
        }
