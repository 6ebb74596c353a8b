"""The ``structured`` question set of the synthetic VQA benchmark: families whose needs differ, so
that genotypes separate by more than "has an RSA block" (``docs/synthetic_benchmark.md``).

What the ops can see (no box embedding, as in every original config): region features carry an
object's colour, shape and size CLASS (small / large), never its position or exact size; the
relation features that only RSA reads carry, per region pair, log |dx| / w, log |dy| / h and the
SIGNED log width and height ratios. The question reaches the regions only through GA: the image
pooling is not conditioned on the question. Hence what each family should need (the decoder):

- ``colour_of_shape`` (attribute): GA (find the named object); no geometry.
- ``furthest_colour`` (one hop): GA then RSA (mark the anchor, then every region sees its
  distance to the marked anchor); RSA before any GA cannot know the anchor.
- ``near`` (one hop, yes/no): GA then RSA.
- ``two_hop`` (the colour or shape of the object furthest from the object furthest from X):
  GA, RSA, RSA in that order. The asked attribute of the answer differs from X's and from the
  one-hop object's, so a one-hop network is wrong on it, not half right.
- ``bigger`` (size comparison of two named objects, yes/no): GA then RSA (the signed size ratio);
  both objects are of the same size class and differ by at least ``BIGGER_RATIO`` in
  sqrt(area), so the features cannot answer it.
- ``count_near`` (counting under a relational condition, 0-2): GA then RSA, then counting the
  marked regions over the detector's duplicate proposals. Balanced per answer inside each anchor
  size class, so the anchor's size class (which sets the "near" radius) is no shortcut.
"""

from __future__ import annotations

import numpy as np

from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.scenes import COLOURS, Scenes

#: name, share of the questions, relational (needs box geometry), answer type
FAMILIES = (
    ("colour_of_shape", 0.14, False, "other"),
    ("furthest_colour", 0.14, True, "other"),
    ("near", 0.14, True, "yes/no"),
    ("two_hop", 0.22, True, "other"),
    ("bigger", 0.14, True, "yes/no"),
    ("count_near", 0.22, True, "number"),
)
#: What each family should need in the decoder (documentation, and the checks of
#: ``bench.search_space_table --check``): ops in order, any other blocks in between.
NEEDS = {
    "colour_of_shape": ("GA",),
    "furthest_colour": ("GA", "RSA"),
    "near": ("GA", "RSA"),
    "two_hop": ("GA", "RSA", "RSA"),
    "bigger": ("GA", "RSA"),
    "count_near": ("GA", "RSA"),
}
#: "bigger": sqrt(area) ratio that must be exceeded (and 1 / it undercut for "no").
BIGGER_RATIO = 1.15
#: "count_near": largest count asked.
MAX_NEAR_COUNT = 2
#: texts are at most this many tokens (the two-hop template is the longest).
MAX_TOKENS = 16
_A = {a: i for i, a in enumerate(questions.ANSWERS)}
_TEMPLATES = (
    "what colour is the {shape_a}?",
    "what colour is the object furthest from the {name_a}?",
    "is the {name_a} near the {name_b}?",
    "what {attr} is the object furthest from the object furthest from the {name_a}?",
    "is the {name_a} bigger than the {name_b}?",
    "how many objects are near the {name_a}?",
)


def candidates(scenes: Scenes) -> list[tuple]:
    """Per family of :data:`FAMILIES`: (scene, a, b, answer[, stratum]) of every askable question."""
    standard = questions.vqa_candidates(scenes)
    names = [f[0] for f in questions.FAMILIES]
    s_n, k = scenes.valid.shape
    valid, col = scenes.valid, scenes.colour
    dist = scenes.distances()
    far, far_ok = questions._furthest(scenes, dist)
    grid_s, grid_k = np.meshgrid(np.arange(s_n), np.arange(k), indexing="ij")
    take = np.take_along_axis
    out = [standard[names.index(n)] for n in ("colour_of_shape", "furthest_colour", "near")]

    # two hops: X -> Y = far(X) -> Z = far(Y), Z is not X; asked about Z's colour or shape,
    # whichever differs from both X's and Y's (colour when both do)
    far2, far2_ok = take(far, far, 1), take(far_ok, far, 1)
    ok = valid & far_ok & far2_ok & (far2 != grid_k)
    differs = []
    for attr in (col, scenes.shape):
        z = take(attr, far2, 1)
        differs.append((z != attr) & (z != take(attr, far, 1)))
    by_colour = ok & differs[0]
    by_shape = ok & ~differs[0] & differs[1]
    out.append(
        (
            np.concatenate([grid_s[by_colour], grid_s[by_shape]]),
            np.concatenate([grid_k[by_colour], grid_k[by_shape]]),
            np.concatenate([far2[by_colour], far2[by_shape]]),
            np.concatenate(
                [
                    take(col, far2, 1)[by_colour],
                    len(COLOURS) + take(scenes.shape, far2, 1)[by_shape],
                ]
            ),
        )
    )

    # bigger: same size class, sqrt(area) ratio beyond BIGGER_RATIO either way
    b = scenes.boxes
    side = np.sqrt((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]))
    ratio = side[:, :, None] / np.maximum(side[:, None, :], 1e-6)
    pair = valid[:, :, None] & valid[:, None] & ~np.eye(k, dtype=bool)
    pair &= scenes.size[:, :, None] == scenes.size[:, None]
    yes, no = pair & (ratio > BIGGER_RATIO), pair & (ratio < 1 / BIGGER_RATIO)
    s3, a3, b3 = np.nonzero(yes | no)
    stratum = scenes.size[s3, a3] * 16 + valid[s3].sum(1)
    out.append((s3, a3, b3, np.where(yes[s3, a3, b3], _A["yes"], _A["no"]), stratum))

    # count_near: objects near the anchor (as in "near"), none in the ambiguous band
    ref = questions._side(scenes)[:, :, None]  # the anchor a is the first index here
    finite = ~np.isinf(dist)
    near = dist < questions.NEAR * ref
    band = finite & ~near & (dist <= questions.FAR * ref)
    count = near.sum(2)
    ok = valid & ~band.any(2) & (count <= MAX_NEAR_COUNT)
    first = len(questions.ANSWERS) - len(questions.COUNTS) - 2
    out.append((grid_s[ok], grid_k[ok], grid_k[ok], first + count[ok], scenes.size[ok]))
    return out


def _question(scenes: Scenes, s: int, family: int, a: int, b: int, answer: int) -> str:
    name = questions._name
    attr = "colour" if questions.ANSWERS[answer] in COLOURS else "shape"
    return _TEMPLATES[family].format(
        attr=attr,
        shape_a=questions.SHAPES[scenes.shape[s, a]],
        name_a=name(scenes, s, a),
        name_b=name(scenes, s, b),
    )


def vqa_texts(scenes: Scenes, per_scene: float, rng: np.random.Generator) -> questions.Texts:
    """Balanced questions of :data:`FAMILIES` with their answers (indices into ``ANSWERS``)."""
    shares = [f[1] for f in FAMILIES]
    rows = questions.select_balanced(candidates(scenes), len(scenes), per_scene, rng, shares)
    text = [_question(scenes, s, *row) for s, *row in rows.tolist()]
    return questions.Texts(rows[:, 0], text, rows[:, 1], answer=rows[:, 4])


__all__ = ["BIGGER_RATIO", "FAMILIES", "MAX_TOKENS", "NEEDS", "candidates", "vqa_texts"]
