"""Texts of the synthetic benchmark: VQA questions, ITM captions and VG referring expressions.

Candidates are enumerated for all scenes at once (numpy), then selected so that every answer of a
question family is equally frequent; only the final string formatting is per text.
Families (index = ``question_id // 100 % 10``; see ``tfrecords/README.md`` for what each needs):
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmnas_tf.synthbench.scenes import COLOURS, SHAPES, SIZES, Scenes

# name, share of the questions, relational (needs box geometry), answer type
FAMILIES = (
    ("colour_of_shape", 0.08, False, "other"),
    ("shape_of_colour", 0.07, False, "other"),
    ("size_of_object", 0.05, False, "other"),
    ("count_colour", 0.10, False, "number"),
    ("count_shape", 0.10, False, "number"),
    ("furthest_colour", 0.20, True, "other"),
    ("furthest_shape", 0.15, True, "other"),
    ("near", 0.25, True, "yes/no"),
)
#: families whose question names one object by its attributes (its slot is ``Texts.named``)
ATTRIBUTE_FAMILIES = (0, 1, 2)
COUNTS = tuple(str(i) for i in range(6))
ANSWERS = COLOURS + SHAPES + SIZES + COUNTS + ("yes", "no")
_A = {a: i for i, a in enumerate(ANSWERS)}
FAR_MARGIN = 0.85  # the furthest object must be clearly further than the second furthest
# "near": centre distance < NEAR x the reference object's box side; "not near": > FAR x; in
# between is never asked. Relative to the reference's size, as RSA's relation features are
# (|dx| / w); the size shortcut this opens is closed by balancing yes/no per size stratum.
NEAR, FAR = 2.0, 3.0


@dataclasses.dataclass
class Texts:
    """Flat texts of many scenes: ``scene[i]`` owns ``text[i]``."""

    scene: np.ndarray
    text: list[str]
    family: np.ndarray
    answer: np.ndarray | None = None  # VQA: index into ANSWERS
    target: np.ndarray | None = None  # VG: object slot of the referred object
    named: np.ndarray | None = None  # VQA: object slot an attribute question names, else -1


def _furthest(scenes: Scenes, dist: np.ndarray, among: np.ndarray | None = None):
    """Per (scene, anchor): slot of the furthest valid object (optionally ``among`` [S,K,K] mask)."""
    d = np.where(np.isinf(dist), -1.0, dist)
    if among is not None:
        d = np.where(among, d, -1.0)
    top2 = np.sort(d, axis=2)[..., -2:]
    ok = (top2[..., 1] > 0) & (top2[..., 0] < FAR_MARGIN * top2[..., 1])
    return np.argmax(d, axis=2), ok


def _side(scenes: Scenes) -> np.ndarray:
    b = scenes.boxes
    return np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])


def vqa_candidates(scenes: Scenes) -> list[tuple]:
    """Per family: (scene, a, b, answer) arrays of every askable question."""
    s_n, k = scenes.valid.shape
    valid = scenes.valid
    col, shp = scenes.colour, scenes.shape
    col_count = (col[..., None] == np.arange(len(COLOURS))) & valid[..., None]  # [S,K,C]
    shp_count = (shp[..., None] == np.arange(len(SHAPES))) & valid[..., None]
    n_col, n_shp = col_count.sum(1), shp_count.sum(1)  # [S, C], [S, shapes]
    dist = scenes.distances()
    far_slot, far_ok = _furthest(scenes, dist)
    ref_side = _side(scenes)[:, None, :]  # "near the b-th object": relative to b's side
    near_yes = dist < NEAR * ref_side
    near_no = (dist > FAR * ref_side) & ~np.isinf(dist)
    grid_s, grid_k = np.meshgrid(np.arange(s_n), np.arange(k), indexing="ij")
    take = np.take_along_axis
    out = []

    def add(mask, a, b, answer):
        out.append(
            tuple(
                np.broadcast_to(x, mask.shape)[mask]
                for x in (grid_s if mask.ndim == 2 else grid_s[..., None], a, b, answer)
            )
        )

    unique_shape = take(n_shp, shp, 1) == 1
    unique_col = take(n_col, col, 1) == 1
    add(valid & unique_shape, grid_k, grid_k, col)
    add(valid & unique_col, grid_k, grid_k, len(COLOURS) + shp)
    add(valid, grid_k, grid_k, len(COLOURS) + len(SHAPES) + scenes.size)
    c_idx = np.broadcast_to(np.arange(len(COLOURS)), n_col.shape)
    s_idx = np.broadcast_to(np.arange(len(SHAPES)), n_shp.shape)
    first = len(COLOURS) + len(SHAPES) + len(SIZES)
    out.append(
        (
            np.nonzero(n_col < len(COUNTS))[0],
            c_idx[n_col < len(COUNTS)],
            c_idx[n_col < len(COUNTS)],
            first + n_col[n_col < len(COUNTS)],
        )
    )
    out.append(
        (
            np.nonzero(n_shp < len(COUNTS))[0],
            s_idx[n_shp < len(COUNTS)],
            s_idx[n_shp < len(COUNTS)],
            first + n_shp[n_shp < len(COUNTS)],
        )
    )
    add(valid & far_ok, grid_k, far_slot, take(col, far_slot, 1))
    add(valid & far_ok, grid_k, far_slot, len(COLOURS) + take(shp, far_slot, 1))
    a3, b3 = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    asked = near_yes | near_no
    s3 = np.nonzero(asked)[0]
    a3, b3 = np.broadcast_to(a3, asked.shape)[asked], np.broadcast_to(b3, asked.shape)[asked]
    # Balanced within every (size a, size b, object count) stratum: no shortcut through them.
    stratum = (scenes.size[s3, a3] * 2 + scenes.size[s3, b3]) * 16 + scenes.valid[s3].sum(1)
    out.append((s3, a3, b3, np.where(near_yes, _A["yes"], _A["no"])[asked], stratum))
    return out


def select_balanced(
    candidates: list[tuple],
    num_scenes: int,
    per_scene: float,
    rng: np.random.Generator,
    shares=None,
):
    """Picks per family share * num_scenes * per_scene questions, equally many per answer
    (``shares``: one per family of ``candidates``, 0 = none; default those of :data:`FAMILIES`)."""
    shares = [f[1] for f in FAMILIES] if shares is None else shares
    chosen = []
    for f, (scene, a, b, answer, *stratum) in enumerate(candidates):
        if not shares[f]:  # not asked (the per-stratum minimum below would ask a few)
            continue
        want = shares[f] * num_scenes * per_scene
        answers = np.unique(answer)
        quota = np.full(len(answer), int(np.ceil(want / max(len(answers), 1))))
        key = answer.astype(np.int64)
        if stratum:  # exact balance inside each stratum: every answer as often as the rarest
            key = stratum[0].astype(np.int64) * len(ANSWERS) + answer
            strata, inverse = np.unique(stratum[0], return_inverse=True)
            counts = np.zeros((len(strata), len(ANSWERS)), int)
            np.add.at(counts, (inverse, answer), 1)
            rarest = np.where(counts[:, answers] > 0, counts[:, answers], 0).min(1)
            quota = np.minimum(quota // max(len(strata), 1) + 1, rarest[inverse])
        order = np.lexsort((rng.random(len(answer)), key))
        sorted_key = key[order]
        rank = np.arange(len(order)) - np.searchsorted(sorted_key, sorted_key, side="left")
        keep = order[rank < quota[order]]
        chosen.append(
            np.stack([scene[keep], np.full(len(keep), f), a[keep], b[keep], answer[keep]], 1)
        )
    rows = np.concatenate(chosen)
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def _name(scenes: Scenes, s: int, k: int) -> str:
    return f"{COLOURS[scenes.colour[s, k]]} {SHAPES[scenes.shape[s, k]]}"


_TEMPLATES = (
    "what colour is the {shape_a}?",
    "what shape is the {colour_a} object?",
    "what size is the {name_a}?",
    "how many {colour_i} objects are there?",
    "how many {shape_i}s are there?",
    "what colour is the object furthest from the {name_a}?",
    "what shape is the object furthest from the {name_a}?",
    "is the {name_a} near the {name_b}?",
)


def _question(scenes: Scenes, s: int, family: int, a: int, b: int) -> str:
    if family in (3, 4):  # counting: a indexes a colour / a shape, not an object
        return _TEMPLATES[family].format(colour_i=COLOURS[a], shape_i=SHAPES[a % len(SHAPES)])
    return _TEMPLATES[family].format(
        shape_a=SHAPES[scenes.shape[s, a]],
        colour_a=COLOURS[scenes.colour[s, a]],
        name_a=_name(scenes, s, a),
        name_b=_name(scenes, s, b),
    )


def vqa_texts(scenes: Scenes, per_scene: float, rng: np.random.Generator, shares=None) -> Texts:
    """Balanced VQA questions (see FAMILIES; ``shares`` as :func:`select_balanced`'s) with their
    answers."""
    rows = select_balanced(vqa_candidates(scenes), len(scenes), per_scene, rng, shares)
    text = [_question(scenes, s, f, a, b) for s, f, a, b, _ in rows.tolist()]
    named = np.where(np.isin(rows[:, 1], ATTRIBUTE_FAMILIES), rows[:, 2], -1)
    return Texts(rows[:, 0], text, rows[:, 1], answer=rows[:, 4], named=named)


def itm_texts(scenes: Scenes, rng: np.random.Generator, per_scene: int = 5) -> Texts:
    """Five captions per scene naming objects, a pair, a spatial relation and a count."""
    s_n = len(scenes)
    count = scenes.valid.sum(1)
    picks = (rng.random((s_n, per_scene, 2)) * count[:, None, None]).astype(int)
    same = picks[..., 0] == picks[..., 1]
    picks[..., 1] = np.where(same, (picks[..., 1] + 1) % count[:, None], picks[..., 1])
    dist = scenes.distances()
    side = _side(scenes)
    text = []
    for s in range(s_n):
        for j in range(per_scene):
            a, b = picks[s, j]
            kind = j % 5
            if kind == 0:
                text.append(f"a {SIZES[scenes.size[s, a]]} {_name(scenes, s, a)}")
            elif kind == 1:
                text.append(f"a {_name(scenes, s, a)} and a {_name(scenes, s, b)}")
            elif kind == 2:
                rel = "near" if dist[s, a, b] < NEAR * side[s, b] else "far from"
                text.append(f"a {_name(scenes, s, a)} {rel} a {_name(scenes, s, b)}")
            elif kind == 3:
                c = scenes.colour[s, a]
                n = int(((scenes.colour[s] == c) & scenes.valid[s]).sum())
                text.append(f"{n} {COLOURS[c]} object{'s' if n > 1 else ''}")
            else:
                text.append(
                    f"a {SIZES[scenes.size[s, b]]} {_name(scenes, s, b)} and a {_name(scenes, s, a)}"
                )
    return Texts(np.repeat(np.arange(s_n), per_scene), text, np.tile(np.arange(per_scene) % 5, s_n))


def vg_texts(scenes: Scenes, rng: np.random.Generator, per_scene: int = 3) -> Texts:
    """Referring expressions: "the red circle", "the square furthest from / closest to the red circle".

    The relational ones name only a shape that several objects share, so the anchor and the boxes
    decide which one is meant; the anchor has another shape (its duplicates are not candidates).
    """
    dist = scenes.distances()
    shp = scenes.shape
    rows = []
    for t in range(len(SHAPES)):
        target_ok = (shp == t) & scenes.valid  # [S, K]
        several = target_ok.sum(1) >= 2
        among = np.broadcast_to(target_ok[:, None, :], dist.shape)
        anchor_ok = scenes.valid & (shp != t) & several[:, None]
        far, far_ok = _furthest(scenes, dist, among)
        near, near_ok = _furthest(scenes, 1.0 / dist, among)  # 1/inf = 0: never the closest
        for kind, slot, ok in ((1, far, far_ok), (2, near, near_ok)):
            s, a = np.nonzero(anchor_ok & ok)
            rows.append(np.stack([s, np.full(len(s), kind), a, slot[s, a]], 1))
    s, a = np.nonzero(scenes.valid)
    rows.append(np.stack([s, np.zeros(len(s), int), a, a], 1))
    rows = np.concatenate(rows)
    key = rng.random(len(rows)) + 0.5 * (rows[:, 1] > 0)  # favour relational expressions
    order = np.lexsort((-key, rows[:, 0]))
    rows = rows[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows[:, 0], rows[:, 0], side="left")
    rows = rows[rank < per_scene]
    text = []
    for s, kind, a, target in rows.tolist():
        if kind == 0:
            text.append(f"the {_name(scenes, s, a)}")
        else:
            rel = "furthest from" if kind == 1 else "closest to"
            text.append(f"the {SHAPES[shp[s, target]]} {rel} the {_name(scenes, s, a)}")
    return Texts(rows[:, 0], text, rows[:, 1], target=rows[:, 3])
