"""The quickstart's data: the ``quick`` scene size and the ``attributes`` question set, both
opt-in (the generator's defaults, which the search-quality table's ground truth depends on, are
pinned unchanged)."""

import hashlib

import numpy as np
import pytest

from mmnas_tf.synthbench import attributes, benchmark, questions, scenes, structured
from mmnas_tf.tasks import get_task


def _digest(texts) -> str:
    h = hashlib.sha256("\n".join(texts.text).encode())
    for a in (texts.scene, texts.family, texts.answer):
        h.update(np.asarray(a, np.int64).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    "qset, want", [(questions, "ed76eb7c7ea3acf3"), (structured, "bf5789d7d2caa6df")]
)
def test_default_question_sets_unchanged(qset, want):
    """The texts, families and answers of 200 ``tiny`` scenes, as generated before the opt-in
    quickstart options existed (integers and strings: the same on every CPU)."""
    rng = np.random.default_rng([3, 0])
    sc = scenes.sample_scenes(200, scenes.SCENE_SETTINGS["tiny"], rng)
    assert _digest(qset.vqa_texts(sc, 5.0, rng)) == want


def test_attributes_asks_only_its_families_balanced():
    rng = np.random.default_rng(1)
    sc = scenes.sample_scenes(300, scenes.SCENE_SETTINGS["quick"], rng)
    texts = attributes.vqa_texts(sc, 5.0, rng)
    asked = {f for f, share in enumerate(s for _, s, _, _ in attributes.FAMILIES) if share}
    assert set(np.unique(texts.family)) == asked == {0, 1, 2}  # no relational family, not one
    for f in asked:  # no answer over its family's quota (the text alone is near chance)
        counts = np.bincount(texts.answer[texts.family == f])
        counts = counts[counts > 0]
        want = attributes.FAMILIES[f][1] * len(sc) * 5.0
        assert counts.max() <= np.ceil(want / len(counts)), (f, counts)
    # the named object's attribute is the answer (as in standard)
    for s, f, a, named in zip(texts.scene, texts.family, texts.answer, texts.named):
        value = (sc.colour, sc.shape, sc.size)[f][s, named]
        offset = (0, len(scenes.COLOURS), len(scenes.COLOURS) + len(scenes.SHAPES))[f]
        assert a == offset + value


def test_quick_scenes_fit_six_region_slots(tmp_path):
    manifest = benchmark.generate(
        get_task("vqa"), str(tmp_path), "quick", 40, question_set="attributes"
    )
    assert manifest["source"] == "synthetic/quick/seed0/attributes"
    spec = scenes.SCENE_SETTINGS["quick"]
    sc = scenes.sample_scenes(200, spec, np.random.default_rng(0))
    regions = scenes.render_regions(sc, spec, np.random.default_rng(1))
    per_scene = np.diff(regions.offsets)
    assert per_scene.max() <= 6
    # one proposal per object (no duplicates), the rest background
    assert (per_scene >= sc.valid.sum(1)).all() and sc.valid.sum(1).min() >= 3
