"""Flickr30K (ITM): Karpathy's ``dataset_flickr30k.json``.

{"images": [{"filename", "imgid", "split": train|val|test|restval, "sentences": [{"raw",
"tokens", "sentid"}] x 5}]}. ``restval`` images join ``train`` (Karpathy's convention).
"""

from __future__ import annotations

import json
import os

from mmnas_tf.data.converters.common import ImageItem


def flickr_items(path: str) -> dict[str, list[ImageItem]]:
    """Split name -> items; ``text_id`` is the caption's index within its split (0, 1, ...)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Karpathy split file not found: {path}")
    with open(path, encoding="utf-8") as f:
        images = json.load(f).get("images")
    if images is None:
        raise ValueError(f"{path}: no 'images' list; expected Karpathy's dataset_flickr30k.json")
    splits: dict[str, list[ImageItem]] = {}
    captions: dict[str, int] = {}
    for img in images:
        split = "train" if img["split"] == "restval" else img["split"]
        stem = os.path.splitext(img["filename"])[0]
        # imgid is Karpathy's index, not the Flickr id in the file name: look up by name only.
        item = ImageItem(int(img["imgid"]), [img["filename"], stem], by_id=False)
        for sent in img["sentences"]:
            text = sent.get("raw") or " ".join(sent["tokens"])
            item.add(text, captions.get(split, 0))
            captions[split] = captions.get(split, 0) + 1
        splits.setdefault(split, []).append(item)
    return splits
