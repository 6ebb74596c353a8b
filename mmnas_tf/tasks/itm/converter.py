"""Flickr30K (ITM): Karpathy's ``dataset_flickr30k.json``, or SCAN's precomputed caption files.

Karpathy: {"images": [{"filename", "imgid", "split": train|val|test|restval, "sentences":
[{"raw", "tokens", "sentid"}] x 5}]}. ``restval`` images join ``train`` (Karpathy's convention).

SCAN (``f30k_precomp/{train,dev,test}_caps.txt`` + ``*_ids.txt``), what the original reads: one
caption per line, five per image in order; the ids file holds Karpathy ``imgid``s, one per image
or one per caption (then the first of each five counts, as in the original). The Karpathy JSON
maps an ``imgid`` to its file name (the original reads it for the same purpose).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mmnas_tf.data.converters.common import (
    ImageItem,
    load_json,
    parse_split_spec,
    read_rank,
    reading,
)

CAPTIONS_PER_IMAGE = 5


def _karpathy_images(path: str) -> list[dict]:
    data = load_json(path, "Karpathy's dataset_flickr30k.json ({images: [...]})")
    images = data.get("images") if isinstance(data, dict) else None
    if images is None:
        raise ValueError(f"{path}: no 'images' list; expected Karpathy's dataset_flickr30k.json")
    return images


def _item(img: dict) -> ImageItem:
    stem = os.path.splitext(img["filename"])[0]
    # imgid is Karpathy's index, not the Flickr id in the file name: look up by name only.
    return ImageItem(int(img["imgid"]), [img["filename"], stem], by_id=False, index_texts=True)


def flickr_items(path: str) -> dict[str, list[ImageItem]]:
    """Split name -> items; ``text_id`` is the caption's index within its split (0, 1, ...)."""
    splits: dict[str, list[ImageItem]] = {}
    captions: dict[str, int] = {}
    for i, img in enumerate(_karpathy_images(path)):
        with reading(path, f"image {i}", "{filename, imgid, split, sentences: [{raw, tokens}]}"):
            split = "train" if img["split"] == "restval" else img["split"]
            item = _item(img)
            for sent in img["sentences"]:
                text = sent.get("raw") or " ".join(sent["tokens"])
                item.add(text, captions.get(split, 0))
                captions[split] = captions.get(split, 0) + 1
        splits.setdefault(split, []).append(item)
    return splits


def _lines(path: str, what: str) -> list[str]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}); expected {what}") from e


def caption_items(specs: Sequence[str], karpathy: str) -> dict[str, list[ImageItem]]:
    """Split name -> items from ``SPLIT:CAPS_TXT:IDS_TXT`` specs (SCAN's precomputed files).

    ``text_id`` = line index in the split's captions file; ``position`` follows the original's
    reading order of the captions files (train, dev/val, test; other labels after).
    """
    by_imgid = {}
    for i, img in enumerate(_karpathy_images(karpathy)):
        with reading(karpathy, f"image {i}", "{filename, imgid}"):
            by_imgid[str(int(img["imgid"]))] = img
    parsed = [parse_split_spec("captions", s, ("CAPS_TXT", "IDS_TXT")) for s in specs]
    parsed.sort(key=lambda p: read_rank(p[0]))
    splits: dict[str, dict[str, ImageItem]] = {}
    position = 0
    for split, caps_path, ids_path in parsed:
        caps = _lines(caps_path, "a captions file (one caption per line)")
        ids = [x for x in _lines(ids_path, "an image-ids file (one Karpathy imgid per line)") if x]
        if len(ids) * CAPTIONS_PER_IMAGE == len(caps):
            image_of = [ids[i // CAPTIONS_PER_IMAGE] for i in range(len(caps))]
        elif len(ids) == len(caps):
            image_of = [ids[i - i % CAPTIONS_PER_IMAGE] for i in range(len(caps))]
        else:
            raise ValueError(
                f"{ids_path}: {len(ids)} ids for the {len(caps)} captions of {caps_path}; expected "
                f"one id per caption or one per {CAPTIONS_PER_IMAGE} captions"
            )
        items = splits.setdefault(split, {})
        first = sum(len(it.texts) for it in items.values())
        for i, (caption, imgid) in enumerate(zip(caps, image_of)):
            if imgid not in by_imgid:
                raise ValueError(
                    f"{ids_path}: image id {imgid!r} (caption {i}) is not an imgid of {karpathy}"
                )
            if imgid not in items:
                items[imgid] = _item(by_imgid[imgid])
            items[imgid].add(caption, first + i, position=position)
            position += 1
    return {split: list(items.values()) for split, items in splits.items()}
