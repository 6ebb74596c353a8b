"""RefCOCO / RefCOCO+ / RefCOCOg (VG): ``refs(unc).p`` / ``refs(umd).p`` + COCO ``instances.json``.

refs: [{ref_id, ann_id, image_id, split, sentences: [{raw, tokens, sent_id}]}] (a pickle of plain
Python 2 containers, read with no globals allowed). instances: {images: [{id, file_name, height,
width}], annotations: [{id, bbox: [x, y, w, h]}]}.

Ground-truth boxes are stored x1 y1 x2 y2 = (x, y, x + w, y + h), exactly as the original MMnas VG
loader converts them (the reference vectors' ``gt_bbox_xywh`` -> ``gt_bbox_xyxy`` show it). The
original then measures boxes with the +1-pixel convention (width = x2 - x1 + 1), so a converted box
is one pixel wider than annotated; we keep that so that targets, losses and accuracies match the
original's, and say so in tfrecords/README.md.

The original itself reads neither file at training time but per-split JSON files written from
them by its preprocessing tools (``train.json``, ``val.json``, ``testA.json``, ``testB.json`` /
``test.json``: one sample per expression, ``{tokens, file_name, image_id, split, bbox: [x, y, w,
h], name, height, width}``, in ref then sentence order). :func:`ref_json_items` reads those, so
that the token vocabulary can be rebuilt in the original's order with its tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mmnas_tf.data.converters.common import ImageItem, load_json, read_rank, reading
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
    inst = load_json(instances_path, "a COCO instances file ({images, annotations})")
    with reading(
        instances_path,
        "the instances file",
        "{images: [{id, file_name}], annotations: [{id, bbox}]}",
    ):
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


_SAMPLE = "{tokens: [...], image_id, bbox: [x, y, w, h], split}"


def ref_json_items(paths: Sequence[str]) -> dict[str, list[ImageItem]]:
    """Split name -> items from the original's per-split RefCOCO JSON files.

    The split is each sample's ``split``; ``text_id`` is the sample's index within its split's file (the
    files carry no ``sent_id``); the text is the tokens joined by spaces and the tokens are used
    verbatim, as the original does. ``position`` follows the original's reading order (train,
    val, testA, testB / test; other splits after, in the order given).
    """
    loaded = []
    for path in paths:
        samples = load_json(path, f"a per-split RefCOCO JSON list of {_SAMPLE}")
        if not isinstance(samples, list):
            raise ValueError(
                f"{path}: expected a JSON list of {_SAMPLE}, got {type(samples).__name__}"
            )
        splits = set()
        for i, sample in enumerate(samples):
            with reading(path, f"sample {i}", _SAMPLE):
                splits.add(str(sample["split"]))
        if len(splits) > 1:
            raise ValueError(
                f"{path}: holds samples of splits {sorted(splits)}; expected one split per file"
            )
        loaded.append(
            (splits.pop() if splits else os.path.splitext(os.path.basename(path))[0], path, samples)
        )
    loaded.sort(key=lambda x: read_rank(x[0]))
    out: dict[str, dict[int, ImageItem]] = {}
    position = 0
    for split, path, samples in loaded:
        by_image = out.setdefault(split, {})
        first = sum(len(it.texts) for it in by_image.values())  # two files of one split: continue
        for i, sample in enumerate(samples):
            with reading(path, f"sample {i}", _SAMPLE):
                image_id, tokens = int(sample["image_id"]), [str(t) for t in sample["tokens"]]
                box = coco_box(sample["bbox"])
            if image_id not in by_image:
                by_image[image_id] = ImageItem(image_id, [f"COCO_train2014_{image_id:012d}.jpg"])
            by_image[image_id].add(
                " ".join(tokens), first + i, tokens=tokens, position=position, gt_boxes=box
            )
            position += 1
    return {split: list(items.values()) for split, items in out.items()}
