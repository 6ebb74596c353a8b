"""In-memory image features for ITM negatives: any image's regions and any caption's tokens by index.

The ITM engine mines hard negatives (SPEC 5): it needs the features of arbitrary images and the
token ids of arbitrary captions, inside ``tf.function``/``tf.data``. The store holds every image
of a split as float16 [N, n, d] in non-trainable ``tf.Variable``s (no 2 GB graph-constant limit)
and looks rows up with ``tf.gather``: no Python in the loop.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.data import pipeline, writer


class FeatureStore:
    """Features, boxes and image sizes per ``image_index``; token ids per ``caption_index``.

    Args:
      data_dir: dataset folder (``manifest.json`` + shards).
      split: split name, e.g. ``train``.
      max_regions: region slots n (ITM 36).
      max_tokens: caption length m (ITM 50).

    Example::

        store = FeatureStore("/data/flickr", "train", max_regions=36, max_tokens=50)
        neg = store.images(tf.constant([3, 17]))       # {image_features, boxes, image_size}
        ids = store.captions(tf.constant([10, 11]))    # int32 [2, 50]
    """

    def __init__(self, data_dir: str, split: str, max_regions: int = 36, max_tokens: int = 50):
        manifest = writer.load_manifest(data_dir)
        task = manifest["task"]
        config = pipeline.PipelineConfig(
            task, max_regions=max_regions, max_tokens=max_tokens, training=False, num_answers=1
        )
        files = writer.split_files(data_dir, split)
        shards = manifest["splits"][split]["shards"]
        expected = [shards[f.rsplit("/", 1)[-1]]["records"] for f in files]
        records = pipeline.read_records(files, expected, cycle_length=1)
        dim = int(manifest["feature_dim"])
        ds = records.map(lambda r: pipeline.prepare_record(config, r, dim, tf.float16))
        num_images = manifest["splits"][split]["records"]
        features = np.zeros([num_images, max_regions, dim], np.float16)
        boxes = np.zeros([num_images, max_regions, 4], np.float32)
        sizes = np.zeros([num_images, 2], np.float32)
        captions: dict[int, np.ndarray] = {}
        owner: dict[int, int] = {}
        for r in ds.as_numpy_iterator():
            i = int(r["image_index"])
            if not 0 <= i < num_images:
                raise ValueError(f"{data_dir}/{split}: image_index {i} outside [0, {num_images})")
            features[i], boxes[i], sizes[i] = r["features"], r["boxes"], r["image_size"]
            captions.update(zip(r["text_id"].tolist(), r["text_ids"], strict=True))
            owner.update((c, i) for c in r["text_id"].tolist())
        num_captions = max(captions) + 1 if captions else 0
        if sorted(captions) != list(range(num_captions)):
            raise ValueError(
                f"{data_dir}/{split}: caption indices (text_id) are not 0..{num_captions - 1}"
            )
        caption_ids = np.stack([captions[i] for i in range(num_captions)]).astype(np.int32)
        self.caption_image = np.array([owner[i] for i in range(num_captions)], np.int32)
        """image_index of each caption (int32 [num_captions]): excludes positives from negatives."""
        self.num_images, self.num_captions = num_images, num_captions
        var = lambda x: tf.Variable(x, trainable=False)  # noqa: E731
        self._features, self._boxes, self._sizes = var(features), var(boxes), var(sizes)
        self._captions = var(caption_ids)

    def images(self, image_index: tf.Tensor) -> dict[str, tf.Tensor]:
        """Padded model inputs of the given images: ``image_features`` float32 [..., n, d], ..."""
        return {
            names.IMAGE_FEATURES: tf.cast(tf.gather(self._features, image_index), tf.float32),
            names.BOXES: tf.gather(self._boxes, image_index),
            names.IMAGE_SIZE: tf.gather(self._sizes, image_index),
        }

    def captions(self, caption_index: tf.Tensor) -> tf.Tensor:
        """Token ids (int32 [..., m], 0-padded) of the given captions."""
        return tf.gather(self._captions, caption_index)
