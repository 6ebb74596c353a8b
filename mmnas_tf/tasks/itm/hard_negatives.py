"""ITM hard-negative mining (docs/original_behaviour.md, "Heads and losses"); the feature store it
draws from is ``data.feature_store``.

At every epoch start, with the model in eval mode: for each image, score 64 random captions that
are not its own; for each caption, 64 random images that are not its own; keep the top-5 of each
by score. Each training example (a caption and its image) then draws one negative caption (from its
image's top-5) and one negative image (from its own top-5) uniformly. The draws are made at mining
time, one per example per epoch, which is the same distribution as drawing at visit time (every
example is visited once per epoch) and keeps the training step a pure gather.

Scoring is batched: pairs are scored ``batch_size`` at a time by one model call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.console import Progress
from mmnas_tf.data.feature_store import MatchingStore

__all__ = ["HardNegativeMiner", "MatchingStore", "epoch_miner", "score_pairs"]

#: Inputs of the negative pairs in an ITM training batch (filled by :meth:`add_negatives`).
NEG_TEXT_IDS = "neg_text_ids"
NEG_IMAGE_FEATURES = "neg_image_features"
NEG_BOXES = "neg_boxes"


def score_pairs(
    score_fn: Callable[[dict], tf.Tensor],
    store,
    image_rows: np.ndarray,
    caption_rows: np.ndarray,
    batch_size: int,
    label: str = "scoring pairs",
) -> np.ndarray:
    """Scores of the pairs (image_rows[p], caption_rows[p]), ``batch_size`` pairs per model call
    (the last chunk is padded to full size so a ``tf.function`` scorer traces once); a progress
    line named ``label`` counts the pairs."""
    image_rows = np.asarray(image_rows, np.int64).reshape(-1)
    caption_rows = np.asarray(caption_rows, np.int64).reshape(-1)
    total = len(image_rows)
    out = np.empty(total, np.float32)
    bar = Progress(total, label, unit="pairs")
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        pad = batch_size - (stop - start)
        img = np.pad(image_rows[start:stop], (0, pad), mode="edge")
        cap = np.pad(caption_rows[start:stop], (0, pad), mode="edge")
        inputs = dict(store.images(img), **{names.TEXT_IDS: store.captions(cap)})
        out[start:stop] = np.asarray(score_fn(inputs)).reshape(-1)[: stop - start]
        bar.update(stop - start)
    bar.close()
    return out


def _sample_others(
    rng: np.random.Generator, pool_size: int, exclude: list[np.ndarray], k: int
) -> np.ndarray:
    """[len(exclude), k] ids in ``[0, pool_size)`` avoiding ``exclude[r]`` in row r; without
    replacement when enough others exist. O(k) per row: draw k + |excluded| distinct ids, drop the
    excluded ones, keep the first k (a uniform k-subset of the others)."""
    out = np.empty((len(exclude), k), np.int64)
    for r, ex in enumerate(exclude):
        others = pool_size - len(ex)
        if others <= 0:
            raise ValueError("no negative candidate: every candidate belongs to the same image")
        if others < k:  # tiny pools: every other id, then repeats
            choices = np.setdiff1d(np.arange(pool_size), ex)
            out[r] = rng.choice(choices, size=k, replace=True)
            continue
        draw = rng.choice(pool_size, size=k + len(ex), replace=False)
        out[r] = draw[~np.isin(draw, ex)][:k]
    return out


def _group(owner: np.ndarray, num_groups: int) -> list[np.ndarray]:
    """Members of each group: ``[np.flatnonzero(owner == g) for g in range(num_groups)]`` in
    O(n log n)."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(num_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(num_groups)]


class HardNegativeMiner:
    """Mines negatives with batched scoring and holds the current epoch's draws as variables
    (so a mid-epoch checkpoint resumes with the same negatives).

    Args:
      store: a ``MatchingStore`` (``FeatureStore`` reads one from a split).
      num_candidates: random candidates per image / caption (64).
      top_k: hardest kept (5).
      batch_size: pairs per model call.
      seed: base seed; epoch e uses ``(seed, e)``.

    ``mine(score_fn, epoch)`` with ``score_fn(inputs) -> logits [P]`` (e.g. the model in eval mode);
    ``add_negatives(inputs, targets)`` (in-graph) adds the ITM task's negative-pair targets.
    """

    def __init__(
        self,
        store: MatchingStore,
        num_candidates: int = 64,
        top_k: int = 5,
        batch_size: int = 256,
        seed: int = 0,
    ):
        if not 1 <= top_k <= num_candidates:
            raise ValueError(f"need 1 <= top_k <= num_candidates, got {top_k}, {num_candidates}")
        self.store = store
        self.num_candidates, self.top_k, self.batch_size, self.seed = (
            num_candidates,
            top_k,
            batch_size,
            seed,
        )
        num_captions = store.num_captions
        with tf.init_scope():
            self.neg_caption = tf.Variable(
                tf.zeros([num_captions], tf.int64), trainable=False, name="neg_caption"
            )
            self.neg_image = tf.Variable(
                tf.zeros([num_captions], tf.int64), trainable=False, name="neg_image"
            )
        self.top_captions: np.ndarray | None = None  # [I, top_k] caption rows per image
        self.top_images: np.ndarray | None = None  # [C, top_k] image rows per caption

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume mid-epoch."""
        return {"neg_caption": self.neg_caption, "neg_image": self.neg_image}

    def mine(self, score_fn: Callable[[dict], tf.Tensor], epoch: int) -> None:
        """Scores the candidates of every image and caption and draws this epoch's negatives."""
        s = self.store
        rng = np.random.default_rng([self.seed, epoch])
        owner = np.asarray(s.caption_image, np.int64)
        captions, images = np.arange(s.num_captions), np.arange(s.num_images)
        k = self.num_candidates
        # for each image: k captions of other images
        cand_caps = _sample_others(rng, s.num_captions, _group(owner, s.num_images), k)
        cap_scores = score_pairs(
            score_fn,
            s,
            np.repeat(images, k),
            cand_caps,
            self.batch_size,
            f"mining epoch {epoch + 1}: captions for each image",
        )
        # for each caption: k images that are not its own
        cand_imgs = _sample_others(rng, s.num_images, list(owner[:, None]), k)
        img_scores = score_pairs(
            score_fn,
            s,
            cand_imgs,
            np.repeat(captions, k),
            self.batch_size,
            f"mining epoch {epoch + 1}: images for each caption",
        )
        self.top_captions = _top(cand_caps, cap_scores.reshape(-1, k), self.top_k)
        self.top_images = _top(cand_imgs, img_scores.reshape(-1, k), self.top_k)
        # one uniform draw per training example (caption) for this epoch
        pick_c = rng.integers(0, self.top_k, size=s.num_captions)
        pick_i = rng.integers(0, self.top_k, size=s.num_captions)
        self.neg_caption.assign(self.top_captions[owner, pick_c])
        self.neg_image.assign(self.top_images[captions, pick_i])

    def add_negatives(self, inputs: dict, targets: dict) -> tuple[dict, dict]:
        """Adds ``neg_text_ids`` / ``neg_image_features`` / ``neg_boxes`` for each example of an
        ITM batch from its ``caption_index``."""
        caption = tf.cast(targets["caption_index"], tf.int64)
        neg_c = tf.gather(self.neg_caption, caption)
        neg_i = tf.gather(self.neg_image, caption)
        n = tf.shape(inputs[names.IMAGE_FEATURES])[1]  # bucketed batches may hold fewer slots
        images = self.store.images(neg_i)
        targets = dict(targets)
        targets[NEG_TEXT_IDS] = self.store.captions(neg_c)
        targets[NEG_IMAGE_FEATURES] = images[names.IMAGE_FEATURES][:, :n]
        targets[NEG_BOXES] = images[names.BOXES][:, :n]
        return inputs, targets


def _top(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best-scored candidates per row, best first (stable on ties)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1)


def epoch_miner(
    exp, config, score_fn: Callable[[dict], tf.Tensor]
) -> tuple[HardNegativeMiner, Callable[[int], None]]:
    """``(miner, mine_epoch)`` of an ITM experiment over its training split (the data package's
    ``FeatureStore``), with the experiment's candidates / top-k / batch size / seed.
    ``config``: the ``ModelConfig`` whose ``max_regions`` / ``max_tokens`` pad the store;
    ``mine_epoch(epoch)`` announces and runs ``miner.mine(score_fn, epoch)``."""
    from mmnas_tf.data.feature_store import FeatureStore

    d, hn = exp.data, exp.task_config.hard_negatives
    store = FeatureStore(d.data_dir, d.train_split, config.max_regions, config.max_tokens)
    miner = HardNegativeMiner(store, hn.num_candidates, hn.top_k, d.eval_batch_size, d.seed)

    def mine_epoch(epoch: int) -> None:
        print(f"mining hard negatives for epoch {epoch + 1} ...", flush=True)
        miner.mine(score_fn, epoch)

    return miner, mine_epoch
