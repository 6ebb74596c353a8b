"""Box maths of the original MMnas VG code (Fast R-CNN conventions, +1-pixel widths).

All functions take pixel boxes (x1, y1, x2, y2) with any leading batch dimensions.
"""

from keras import ops

#: The original normalises regression targets by these stds (means are zero).
DELTA_STDS = (0.1, 0.1, 0.2, 0.2)


def _split(boxes):
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def iou(boxes_a, boxes_b):
    """Element-wise IoU (broadcasting) with the +1-pixel convention: w = x2 - x1 + 1."""
    ax1, ay1, ax2, ay2 = _split(boxes_a)
    bx1, by1, bx2, by2 = _split(boxes_b)
    iw = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1) + 1.0, 0.0)
    ih = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1) + 1.0, 0.0)
    inter = iw * ih
    area_a = (ax2 - ax1 + 1.0) * (ay2 - ay1 + 1.0)
    area_b = (bx2 - bx1 + 1.0) * (by2 - by1 + 1.0)
    return inter / (area_a + area_b - inter)


def _centre_size(boxes):
    x1, y1, x2, y2 = _split(boxes)
    w = x2 - x1 + 1.0
    h = y2 - y1 + 1.0
    return x1 + 0.5 * w, y1 + 0.5 * h, w, h


def encode_deltas(proposals, targets, stds=DELTA_STDS):
    """Fast R-CNN offsets (dx, dy, dw, dh) from ``proposals`` to ``targets``, divided by ``stds``."""
    pcx, pcy, pw, ph = _centre_size(proposals)
    tcx, tcy, tw, th = _centre_size(targets)
    deltas = ops.stack(
        [(tcx - pcx) / pw, (tcy - pcy) / ph, ops.log(tw / pw), ops.log(th / ph)], axis=-1
    )
    return deltas / ops.convert_to_tensor(stds, deltas.dtype)


def decode_deltas(proposals, deltas, stds=DELTA_STDS):
    """Applies normalised ``deltas`` (times ``stds``) to ``proposals`` (py-faster-rcnn's
    ``bbox_transform_inv``: x2 = cx + w/2, no -1)."""
    deltas = deltas * ops.convert_to_tensor(stds, deltas.dtype)
    pcx, pcy, pw, ph = _centre_size(proposals)
    cx = deltas[..., 0] * pw + pcx
    cy = deltas[..., 1] * ph + pcy
    w = ops.exp(deltas[..., 2]) * pw
    h = ops.exp(deltas[..., 3]) * ph
    return ops.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def clip_boxes(boxes, image_size):
    """Clips to the image: x in [0, W - 1], y in [0, H - 1]; ``image_size`` [..., 2] = (H, W)
    with the same leading dimensions as ``boxes`` minus the box axis."""
    height = image_size[..., 0:1]
    width = image_size[..., 1:2]
    x1, y1, x2, y2 = _split(boxes)
    clip = lambda v, hi: ops.clip(v, 0.0, hi)  # noqa: E731
    return ops.stack(
        [
            clip(x1, width[..., 0] - 1),
            clip(y1, height[..., 0] - 1),
            clip(x2, width[..., 0] - 1),
            clip(y2, height[..., 0] - 1),
        ],
        axis=-1,
    )
