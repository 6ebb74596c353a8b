"""The ``structured`` synthetic VQA question set: every question's answer follows from the scene as
its family says, answers are balanced, the generator is deterministic per seed."""

import json
import os

import numpy as np
import pytest

from mmnas_tf.synthbench import benchmark, questions, scenes, structured
from mmnas_tf.tasks import get_task
from mmnas_tf.text import tokenize

A = {a: i for i, a in enumerate(questions.ANSWERS)}


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng([3, 0])
    sc = scenes.sample_scenes(600, scenes.SCENE_SETTINGS["tiny"], rng)
    return sc, structured.vqa_texts(sc, 5.0, rng)


def _centre_dist(sc, s, a, b):
    c = sc.centers[s]
    return float(np.linalg.norm(c[a] - c[b]))


def _furthest(sc, s, a):
    d = [(_centre_dist(sc, s, a, k), k) for k in np.nonzero(sc.valid[s])[0] if k != a]
    return max(d)[1]


def test_every_family_is_asked_and_balanced(world):
    sc, texts = world
    names = [f[0] for f in structured.FAMILIES]
    assert sorted(set(texts.family.tolist())) == list(range(len(names)))
    for f, name in enumerate(names):
        counts = np.bincount(texts.answer[texts.family == f])
        counts = counts[counts > 0]
        if name != "two_hop":  # colours and shapes: each side balanced on its own
            assert counts.max() - counts.min() <= 1, (name, counts)
    assert all(len(tokenize(t)) <= structured.MAX_TOKENS for t in texts.text)


def _rows(world, family):
    sc, texts = world
    f = [n for n, *_ in structured.FAMILIES].index(family)
    return [
        (i, texts.scene[i], texts.text[i], texts.answer[i])
        for i in np.nonzero(texts.family == f)[0]
    ]


def _slot(sc, s, name):
    colour, shape = name.split()
    ok = (sc.colour[s] == scenes.COLOURS.index(colour)) & (
        sc.shape[s] == scenes.SHAPES.index(shape)
    )
    ok &= sc.valid[s]
    assert ok.sum() == 1, name
    return int(np.nonzero(ok)[0][0])


def test_two_hop_answers_are_the_furthest_of_the_furthest(world):
    sc = world[0]
    rows = _rows(world, "two_hop")
    assert len(rows) > 50
    for _, s, text, answer in rows:
        x = _slot(sc, s, " ".join(text.rstrip("?").split()[-2:]))
        y = _furthest(sc, s, x)
        z = _furthest(sc, s, y)
        assert z != x
        if text.startswith("what colour"):
            assert answer == sc.colour[s, z] != sc.colour[s, x]
            assert sc.colour[s, z] != sc.colour[s, y]
        else:
            assert answer == len(scenes.COLOURS) + sc.shape[s, z]
            assert sc.shape[s, z] not in (sc.shape[s, x], sc.shape[s, y])


def test_bigger_compares_same_class_objects_by_area(world):
    sc = world[0]
    rows = _rows(world, "bigger")
    assert len(rows) > 50
    for _, s, text, answer in rows:
        words = text.rstrip("?").split()
        a, b = _slot(sc, s, " ".join(words[2:4])), _slot(sc, s, " ".join(words[-2:]))
        assert sc.size[s, a] == sc.size[s, b]  # the size class in the features cannot answer it
        box = sc.boxes[s]
        side = np.sqrt((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))
        ratio = side[a] / side[b]
        assert (ratio > structured.BIGGER_RATIO) == (answer == A["yes"])
        assert ratio > structured.BIGGER_RATIO or ratio < 1 / structured.BIGGER_RATIO


def test_count_near_counts_objects_near_the_anchor(world):
    sc = world[0]
    rows = _rows(world, "count_near")
    assert len(rows) > 50
    for _, s, text, answer in rows:
        a = _slot(sc, s, " ".join(text.rstrip("?").split()[-2:]))
        box = sc.boxes[s, a]
        side = max(box[2] - box[0], box[3] - box[1])
        d = [_centre_dist(sc, s, a, k) for k in np.nonzero(sc.valid[s])[0] if k != a]
        near = sum(x < questions.NEAR * side for x in d)
        assert not any(questions.NEAR * side <= x <= questions.FAR * side for x in d)
        assert questions.ANSWERS[answer] == str(near)
        assert near <= structured.MAX_NEAR_COUNT


def test_generate_is_deterministic_and_records_families(tmp_path):
    paths = [str(tmp_path / n) for n in ("a", "b")]
    for p in paths:
        manifest = benchmark.generate(get_task("vqa"), p, "tiny", 40, 5, question_set="structured")
    assert manifest["source"] == "synthetic/tiny/seed5/structured"
    for name in os.listdir(paths[0]):
        if name.endswith(".tfrecord") or name == "vocab.txt":
            with (
                open(os.path.join(paths[0], name), "rb") as f1,
                open(os.path.join(paths[1], name), "rb") as f2,
            ):
                assert f1.read() == f2.read(), name
    with open(os.path.join(paths[0], "manifest.json")) as f:
        assert json.load(f)["splits"]["train"]["examples"] > 100
    with pytest.raises(ValueError, match="unknown question_set 'hard'.*standard.*structured"):
        benchmark.generate(get_task("vqa"), str(tmp_path / "c"), "tiny", 4, question_set="hard")
