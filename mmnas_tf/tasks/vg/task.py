"""Visual grounding (RefCOCO family): rank the proposals, regress the box
(docs/original_behaviour.md, "Heads and losses")."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.data.schema import Field
from mmnas_tf.models import MMnasBackbone, MMnasGrounder, image_padding_mask
from mmnas_tf.ops.boxes import clip_boxes, decode_deltas, encode_deltas, iou
from mmnas_tf.tasks.base import (
    Annotation,
    Recipe,
    SourceFlag,
    SourceFlagError,
    Task,
    replica_sum,
)
from mmnas_tf.tasks.vg import converter as refcoco
from mmnas_tf.tasks.vg.metrics import GroundingAccuracy

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
    """Referring-expression grounding.

    Records: ``gt_boxes`` (one pixel x1y1x2y2 box per expression). Targets: ``gt_box`` float
    [B, 4] pixel x1y1x2y2 (+ evaluation: ``sentence_id`` int64 [B]).
    """

    name = "vg"
    prediction_output = "box"
    output_keys = ("box", "object_index")
    region_weights = "region_scores"
    max_tokens = 15
    max_regions = 100
    needs_image_size = True
    head_keys = ("proj_scores", "proj_reg", "attfc_y")
    model_outputs = {"object_scores": ("n",), "box_deltas": ("n", 4)}
    recipe = Recipe(13, 1.4e-4, (10, 12), 4e-4, "mmnas_vgd.json")
    source_flags = (
        SourceFlag("refs", "string", None, "VG: refs(unc).p / refs(umd).p pickle."),
        SourceFlag("instances", "string", None, "VG: COCO instances.json of the refs."),
    )
    target_fields = (
        Field("gt_boxes", tf.float32, "list", "q*4 ground-truth boxes x1, y1, x2, y2, pixels"),
    )

    # ---- records ---------------------------------------------------------------------------------
    def encode_targets(self, record, q):
        """``gt_boxes`` ([q, 4])."""
        gt_boxes = np.asarray(record["gt_boxes"], np.float32).reshape(-1)
        if len(gt_boxes) != 4 * q:
            raise ValueError(f"image {record['image_id']}: gt_boxes must be [{q}, 4]")
        return {"gt_boxes": gt_boxes}

    def decode_targets(self, dense, q):
        """``gt_boxes`` (float32 [q, 4])."""
        return {"gt_boxes": tf.reshape(dense["gt_boxes"], tf.stack([q, 4]))}

    def target_checks(self, dense, q, size):
        return [("gt_boxes", tf.equal(size("gt_boxes"), 4 * q), "must hold 4 values per text")]

    def prepare_targets(self, config, decoded):
        return {"gt_box": decoded["gt_boxes"]}

    def format_targets(self, example, training):
        targets = {"gt_box": example["gt_box"]}
        if not training:
            targets["sentence_id"] = example["text_id"]
        return targets

    def convert_sources(self, sources, out_dir):
        """``--refs`` and ``--instances``: a RefCOCO-family refs pickle and its COCO instances."""
        if not (sources["refs"] and sources["instances"]):
            raise SourceFlagError(
                "--task=vg needs --refs='refs(unc).p' and --instances=instances.json"
            )
        return refcoco.refcoco_items(sources["refs"], sources["instances"]), {}

    # ---- model and loss --------------------------------------------------------------------------
    def build_model(self, config):
        return MMnasGrounder(MMnasBackbone(config), name="vg")

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        out = model(inputs, training=training, arch=arch)
        mask = image_padding_mask(inputs[names.IMAGE_FEATURES])
        total, _, _ = grounding_loss(
            out["object_scores"], out["box_deltas"], inputs[names.BOXES], mask, targets["gt_box"]
        )
        return total

    def predict(self, outputs, inputs):
        """(index of the best real object, its decoded clipped box in pixels)."""
        mask = image_padding_mask(inputs[names.IMAGE_FEATURES])
        return predict_box(
            outputs["object_scores"],
            outputs["box_deltas"],
            inputs[names.BOXES],
            mask,
            inputs[names.IMAGE_SIZE],
        )

    # ---- metrics and evaluation ------------------------------------------------------------------
    def build_metrics(self):
        return [GroundingAccuracy()]

    def update_metrics(self, metrics, outputs, inputs, targets):
        _, box = self.predict(outputs, inputs)
        metrics[0].update_state(targets["gt_box"], box)

    def validation_step(self, outputs, inputs, targets):
        return {"queries": int(inputs[names.BOXES].shape[0])}

    def reduce_aggregated_logs(self, state, metrics, data, split, output_dir):
        """Accuracy at IoU >= 0.5 (percent) and the number of queries."""
        return {
            "accuracy": metrics[0].percent(),
            "queries": (state or {}).get("queries", 0),
        }

    # ---- serving ---------------------------------------------------------------------------------
    def serving_outputs(self, outputs, inputs, answer_table=None):
        index, box = self.predict(outputs, inputs)
        return {
            "object_scores": outputs["object_scores"],
            "box_deltas": outputs["box_deltas"],
            "box": box,
            "object_index": ops.cast(index, "int32"),
        }

    def annotate(self, outputs, index=0, answers=None):
        """The decoded box and the region slot it came from, with that region's log-score."""
        box = np.asarray(outputs["box"])[index].astype(np.float32)
        chosen = int(np.asarray(outputs["object_index"])[index])
        score = float(np.asarray(outputs["object_scores"])[index][chosen])
        corners = ", ".join(f"{v:.1f}" for v in box)
        line = f"box: [{corners}] (x1, y1, x2, y2 pixels; region {chosen}, log-score {score:.4f})"
        return Annotation(lines=[line], chosen=chosen, box=box)

    # ---- synthetic data --------------------------------------------------------------------------
    def synthetic_generator(self):
        from mmnas_tf.tasks.vg.synthetic import GENERATOR

        return GENERATOR

    # ---- original checkpoints --------------------------------------------------------------------
    def matches_original(self, state_dict):
        return "proj_reg.weight" in state_dict

    def original_head(self, model):
        return [
            ("attfc_y", "dense", model.object_projection),
            ("proj_norm", "norm", model.fusion_norm),
            ("proj_scores", "dense", model.score_dense),
            ("proj_reg", "dense", model.delta_dense),
        ]
