"""Image-text retrieval metrics (docs/original_behaviour.md, "Metrics").

Scores form a matrix images x captions. Text retrieval (image -> captions): the rank of an image is
the best rank among its ground-truth captions (5 per image on Flickr30K); image retrieval (caption ->
images): the rank of the caption's image. Ranks are 1-based; R@K = percent of queries with rank <= K.

Ties: an entry ranks behind the entries that score strictly higher only, so a ground truth tied
with another entry takes the better place. The original ranks by reversing numpy's default
(unstable) ``argsort``, whose order among equal scores depends on the sort kernel numpy picks; its
ranks equal these wherever no other entry ties with the ground truth's score (ties among the other
entries, or among an image's own captions, change nothing), and lie in
``[rank, rank + tied entries]`` otherwise.
"""

from __future__ import annotations

import numpy as np

RECALL_AT = (1, 5, 10)


def retrieval_ranks(
    scores: np.ndarray, caption_to_image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(text-retrieval ranks [num_images], image-retrieval ranks [num_captions]), 1-based.

    Args:
      scores: [num_images, num_captions] matching scores (higher = better match).
      caption_to_image: [num_captions] int, the row of each caption's image.
    """
    scores = np.asarray(scores, np.float64)
    caption_to_image = np.asarray(caption_to_image, np.int64)
    num_images, num_captions = scores.shape
    if caption_to_image.shape != (num_captions,):
        raise ValueError(
            f"caption_to_image must have one entry per caption ({num_captions}), "
            f"got shape {caption_to_image.shape}"
        )
    if caption_to_image.min() < 0 or caption_to_image.max() >= num_images:
        raise ValueError(f"caption_to_image values must be image rows in [0, {num_images})")
    # rank of an entry = 1 + number of strictly better entries (ties favour the ground truth,
    # as a stable sort that visits ground truth first would; deterministic either way).
    text_ranks = np.empty(num_images, np.int64)
    for i in range(num_images):
        own = scores[i, caption_to_image == i]
        if own.size == 0:
            raise ValueError(f"image {i} has no caption")
        text_ranks[i] = 1 + int(np.sum(scores[i] > own.max()))
    own_scores = scores[caption_to_image, np.arange(num_captions)]
    image_ranks = 1 + np.sum(scores > own_scores[None, :], axis=0)
    return text_ranks, image_ranks


def _summary(ranks: np.ndarray, prefix: str) -> dict[str, float]:
    # the original's arithmetic on 0-based float64 ranks, so the figures agree to the last bit
    zero_based = np.asarray(ranks, np.float64) - 1
    n = len(zero_based)
    out = {f"{prefix}_r@{k}": 100.0 * int(np.sum(zero_based < k)) / n for k in RECALL_AT}
    out[f"{prefix}_median_rank"] = float(np.floor(np.median(zero_based)) + 1)
    out[f"{prefix}_mean_rank"] = float(zero_based.mean() + 1)
    return out


def retrieval_metrics(scores: np.ndarray, caption_to_image: np.ndarray) -> dict[str, float]:
    """R@1/5/10, median and mean rank for text retrieval (``i2t_*``) and image retrieval
    (``t2i_*``), plus ``rsum`` (sum of the six recalls)."""
    text_ranks, image_ranks = retrieval_ranks(scores, caption_to_image)
    out = {**_summary(text_ranks, "i2t"), **_summary(image_ranks, "t2i")}
    out["rsum"] = sum(v for k, v in out.items() if "_r@" in k)
    return out
