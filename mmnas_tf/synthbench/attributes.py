"""The ``attributes`` question set of the synthetic VQA benchmark: the non-relational families of
``standard`` only (an object's colour, shape or size named by its other attributes, and counts),
so that a tiny model learns them in a minute on a laptop (the quickstart's data). Each still needs
the image and the question together: the answers are balanced per family, so the text alone
answers at chance.

Same templates, answers and family indices as ``standard`` (``question_id // 100 % 10``); the
relational families have share 0.
"""

from __future__ import annotations

import numpy as np

from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.scenes import Scenes

#: name, share of the questions, relational (needs box geometry), answer type
FAMILIES = tuple(
    (
        name,
        {"colour_of_shape": 0.4, "shape_of_colour": 0.4, "size_of_object": 0.2}.get(name, 0.0),
        relational,
        kind,
    )
    for name, _, relational, kind in questions.FAMILIES
)


def vqa_texts(scenes: Scenes, per_scene: float, rng: np.random.Generator) -> questions.Texts:
    """Balanced questions of the families with a share in :data:`FAMILIES`."""
    return questions.vqa_texts(scenes, per_scene, rng, [f[1] for f in FAMILIES])
