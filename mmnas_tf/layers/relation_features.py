"""Relative-geometry features between region boxes, computed in-graph (docs/original_behaviour.md,
"Relation features")."""

from keras import ops


def relation_features(boxes, mask=None):
    """The original MMnas relation features R [B, n, n, 4] from pixel boxes.

    For query box i and key box j, with ``w = x2 - x1 + 1``, ``h = y2 - y1 + 1``,
    ``cx = (x1 + x2) / 2``, ``cy = (y1 + y2) / 2``::

        R[i, j] = [log max(|cx_i - cx_j| / w_i, 1e-3), log max(|cy_i - cy_j| / h_i, 1e-3),
                   log(w_i / w_j), log(h_i / h_j)]

    (the width/height ratios are the inverse of the paper's footnote; this is what the original
    data loader computes). Pairs where either box is padding are zero.

    Args:
      boxes: float [B, n, 4] pixel (x1, y1, x2, y2).
      mask: optional bool [B, n], True = real box. Without it every box is real.
    """
    boxes = ops.cast(boxes, "float32")
    x1, y1, x2, y2 = (boxes[..., k] for k in range(4))
    w = x2 - x1 + 1.0
    h = y2 - y1 + 1.0
    cx = (x1 + x2) * 0.5
    cy = (y1 + y2) * 0.5
    dx = ops.abs(cx[:, :, None] - cx[:, None, :]) / w[:, :, None]
    dy = ops.abs(cy[:, :, None] - cy[:, None, :]) / h[:, :, None]
    # Padded boxes are all-zero (w = h = 1): keep the logs finite before the pairs are zeroed.
    dw = ops.log(ops.maximum(w[:, :, None], 1e-6) / ops.maximum(w[:, None, :], 1e-6))
    dh = ops.log(ops.maximum(h[:, :, None], 1e-6) / ops.maximum(h[:, None, :], 1e-6))
    rel = ops.stack(
        [ops.log(ops.maximum(dx, 1e-3)), ops.log(ops.maximum(dy, 1e-3)), dw, dh], axis=-1
    )
    if mask is not None:
        pair = ops.logical_and(mask[:, :, None], mask[:, None, :])
        rel = ops.where(pair[..., None], rel, ops.zeros_like(rel))
    return rel


def box_features(boxes, image_size, mask=None):
    """The original's 5-d box feature: (x1/W, y1/H, x2/W, y2/H, area/(W H)); padding rows zero.

    Args:
      boxes: float [B, n, 4] pixel (x1, y1, x2, y2).
      image_size: float [B, 2] (height, width).
      mask: optional bool [B, n], True = real box.
    """
    boxes = ops.cast(boxes, "float32")
    image_size = ops.cast(image_size, "float32")
    height = image_size[:, 0:1]
    width = image_size[:, 1:2]
    x1, y1, x2, y2 = (boxes[..., k] for k in range(4))
    area = (x2 - x1) * (y2 - y1) / (width * height)
    feats = ops.stack([x1 / width, y1 / height, x2 / width, y2 / height, area], axis=-1)
    if mask is not None:
        feats = ops.where(mask[..., None], feats, ops.zeros_like(feats))
    return feats
