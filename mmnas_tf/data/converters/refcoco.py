"""RefCOCO / RefCOCO+ / RefCOCOg (VG): ``refs(unc).p`` / ``refs(umd).p`` + COCO ``instances.json``.

refs: [{ref_id, ann_id, image_id, split, sentences: [{raw, tokens, sent_id}]}] (a pickle of plain
Python 2 containers, read with no globals allowed). instances: {images: [{id, file_name, height,
width}], annotations: [{id, bbox: [x, y, w, h]}]}.

Ground-truth boxes are stored x1 y1 x2 y2 = (x, y, x + w, y + h), exactly as the original MMnas VG
loader converts them (the reference vectors' ``gt_bbox_xywh`` -> ``gt_bbox_xyxy`` show it). The
original then measures boxes with the +1-pixel convention (width = x2 - x1 + 1), so a converted box
is one pixel wider than annotated; we keep that so that targets, losses and accuracies match the
original's, and say so in tfrecords/README.md.
"""

from __future__ import annotations

import json
import os

from mmnas_tf.data.converters.common import ImageItem
from mmnas_tf.data.converters.safe_pickle import load_plain_pickle


def coco_box(bbox) -> list[float]:
    """COCO [x, y, w, h] -> [x1, y1, x2, y2] = [x, y, x + w, y + h] (the original's conversion)."""
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def refcoco_items(refs_path: str, instances_path: str) -> dict[str, list[ImageItem]]:
    """Split name (train, val, testA, testB, test) -> items; ``text_id`` = ``sent_id``."""
    refs = load_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise ValueError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")
    if not os.path.exists(instances_path):
        raise FileNotFoundError(f"COCO instances file not found: {instances_path}")
    with open(instances_path, encoding="utf-8") as f:
        inst = json.load(f)
    anns = {a["id"]: a for a in inst["annotations"]}
    files = {im["id"]: im["file_name"] for im in inst["images"]}
    splits: dict[str, dict[int, ImageItem]] = {}
    for ref in refs:
        if ref["ann_id"] not in anns:
            raise ValueError(
                f"{refs_path}: ref {ref['ref_id']} names ann_id {ref['ann_id']}, absent from {instances_path}"
            )
        image_id = int(ref["image_id"])
        by_image = splits.setdefault(ref["split"], {})
        if image_id not in by_image:
            name = files.get(image_id, f"COCO_train2014_{image_id:012d}.jpg")
            by_image[image_id] = ImageItem(image_id, [name])
        box = coco_box(anns[ref["ann_id"]]["bbox"])
        for sent in ref["sentences"]:
            text = sent.get("raw") or sent.get("sent") or " ".join(sent["tokens"])
            by_image[image_id].add(text, sent["sent_id"], gt_boxes=box)
    return {split: list(items.values()) for split, items in splits.items()}
