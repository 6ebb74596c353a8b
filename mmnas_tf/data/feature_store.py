"""In-memory image features for ITM negatives: any image's regions and any caption's tokens by index.

ITM hard-negative mining (``mmnas_tf.tasks.itm``; docs/original_behaviour.md, "Heads and losses"):
it needs the features of arbitrary images and the
token ids of arbitrary captions, inside ``tf.function``/``tf.data``. The store holds every image
of a split as float16 [N, n, d] in non-trainable ``tf.Variable``s (no 2 GB graph-constant limit)
and looks rows up with ``tf.gather``: no Python in the loop.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.data import pipeline, schema, writer


class MatchingStore:
    """Every image and caption of an ITM split in memory: features, boxes and image sizes per
    ``image_index`` row, token ids per ``caption_index`` row, looked up in-graph.

    Args:
      image_features: [I, n, f] (kept as given: float16 halves the memory; read as float32).
      boxes: float32 [I, n, 4] pixels.
      text_ids: int32 [C, m].
      caption_image: int [C], the image row of each caption (excludes positives from negatives).
      image_sizes: optional float32 [I, 2] (h, w); default zeros.
    """

    def __init__(self, image_features, boxes, text_ids, caption_image, image_sizes=None):
        image_features = np.asarray(image_features)
        if image_features.dtype not in (np.float16, np.float32):
            image_features = image_features.astype(np.float32)
        boxes = np.asarray(boxes, np.float32)
        text_ids = np.asarray(text_ids, np.int32)
        self.caption_image = np.asarray(caption_image, np.int64)
        self.num_images, self.num_captions = len(image_features), len(text_ids)
        if len(boxes) != self.num_images or len(self.caption_image) != self.num_captions:
            raise ValueError(
                "MatchingStore: features/boxes or text_ids/caption_image lengths differ"
            )
        if self.num_images < 2:
            raise ValueError("hard-negative mining needs at least 2 images")
        if self.caption_image.min() < 0 or self.caption_image.max() >= self.num_images:
            raise ValueError(f"caption_image must point at image rows in [0, {self.num_images})")
        if image_sizes is None:
            image_sizes = np.zeros([self.num_images, 2], np.float32)
        with tf.init_scope():  # variables, not graph constants: no 2 GB limit
            var = lambda x: tf.Variable(x, trainable=False)  # noqa: E731
            self._features, self._boxes = var(image_features), var(boxes)
            self._sizes = var(np.asarray(image_sizes, np.float32))
            self._captions = var(text_ids)

    @property
    def image_features(self) -> np.ndarray:
        """All features [I, n, f] as stored (a copy)."""
        return self._features.numpy()

    @property
    def boxes(self) -> np.ndarray:
        return self._boxes.numpy()

    @property
    def text_ids(self) -> np.ndarray:
        return self._captions.numpy()

    def images(self, image_index) -> dict[str, tf.Tensor]:
        """Padded model inputs of the given images: ``image_features`` float32 [..., n, d],
        ``boxes`` [..., n, 4], ``image_size`` [..., 2]."""
        return {
            names.IMAGE_FEATURES: tf.cast(tf.gather(self._features, image_index), tf.float32),
            names.BOXES: tf.gather(self._boxes, image_index),
            names.IMAGE_SIZE: tf.gather(self._sizes, image_index),
        }

    def captions(self, caption_index) -> tf.Tensor:
        """Token ids (int32 [..., m], 0-padded) of the given captions."""
        return tf.gather(self._captions, caption_index)

    @classmethod
    def from_dataset(cls, dataset: tf.data.Dataset) -> MatchingStore:
        """Collects a store from an ITM dataset of ``(inputs, targets)`` batches with
        ``image_index`` / ``caption_index`` targets (both must be contiguous from 0)."""
        images, captions = {}, {}
        for inputs, targets in dataset.as_numpy_iterator():
            for b, (i, c) in enumerate(zip(targets["image_index"], targets["caption_index"])):
                images.setdefault(int(i), (inputs[names.IMAGE_FEATURES][b], inputs[names.BOXES][b]))
                captions[int(c)] = (inputs[names.TEXT_IDS][b], int(i))
        for what, rows in (("image_index", images), ("caption_index", captions)):
            if sorted(rows) != list(range(len(rows))):
                raise ValueError(f"{what} values are not contiguous from 0")
        feats = np.stack([images[i][0] for i in range(len(images))])
        boxes = np.stack([images[i][1] for i in range(len(images))])
        text = np.stack([captions[c][0] for c in range(len(captions))])
        owner = np.array([captions[c][1] for c in range(len(captions))])
        return cls(feats, boxes, text, owner)


class FeatureStore(MatchingStore):
    """A ``MatchingStore`` read from a TFRecord split (features kept as float16).

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
        # the common fields only (images, captions): any task's records hold them
        config = pipeline.PipelineConfig(
            schema.RecordFormat(), max_regions=max_regions, max_tokens=max_tokens, training=False
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
        owner_rows = np.array([owner[i] for i in range(num_captions)], np.int64)
        super().__init__(features, boxes, caption_ids, owner_rows, sizes)
