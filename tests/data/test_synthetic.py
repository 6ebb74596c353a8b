"""The synthetic benchmark: reproducible, balanced, relational, answers true to the geometry."""

import collections
import filecmp
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.data import pipeline, writer
from mmnas_tf.data.feature_store import FeatureStore
from mmnas_tf.synthbench import benchmark, questions, scenes
from mmnas_tf.tasks import get_task

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    sc = scenes.sample_scenes(400, scenes.SCENE_SETTINGS["tiny"], rng)
    return sc, questions.vqa_texts(sc, 5.0, rng)


def _objects(sc, s):
    """(name, colour, shape, centre, side) of every real object of scene s, by a plain loop."""
    out = []
    for k in range(sc.valid.shape[1]):
        if sc.valid[s, k]:
            b = sc.boxes[s, k]
            name = f"{scenes.COLOURS[sc.colour[s, k]]} {scenes.SHAPES[sc.shape[s, k]]}"
            side = max(b[2] - b[0], b[3] - b[1])
            out.append(
                (
                    name,
                    scenes.COLOURS[sc.colour[s, k]],
                    scenes.SHAPES[sc.shape[s, k]],
                    (b[:2] + b[2:]) / 2,
                    side,
                )
            )
    return out


def test_answers_match_the_scene(world):
    sc, tx = world
    checked = collections.Counter()
    for s, text, fam, ans in zip(tx.scene, tx.text, tx.family, tx.answer):
        objs = _objects(sc, s)
        answer = questions.ANSWERS[ans]
        family = questions.FAMILIES[fam][0]
        if family.startswith("furthest"):
            anchor = next(o for o in objs if text.endswith(f"from the {o[0]}?"))
            far = max(
                (o for o in objs if o is not anchor), key=lambda o: np.linalg.norm(o[3] - anchor[3])
            )
            assert answer == (far[1] if family == "furthest_colour" else far[2]), text
        elif family == "near":
            a = next(o for o in objs if text.startswith(f"is the {o[0]} near"))
            b = next(o for o in objs if text.endswith(f"near the {o[0]}?"))
            dist = np.linalg.norm(a[3] - b[3]) / b[4]
            assert not questions.NEAR <= dist <= questions.FAR, text
            assert answer == ("yes" if dist < questions.NEAR else "no"), text
        elif family == "count_colour":
            colour = text.split()[2]
            assert answer == str(sum(o[1] == colour for o in objs)), text
        elif family == "colour_of_shape":
            shape = text.split()[-1][:-1]
            assert answer == next(o[1] for o in objs if o[2] == shape), text
        checked[family] += 1
    verified = ("furthest_colour", "furthest_shape", "near", "count_colour", "colour_of_shape")
    assert all(checked[f] > 10 for f in verified), checked


def test_balanced_and_mostly_relational(world):
    sc, tx = world
    relational = np.isin(tx.family, [i for i, f in enumerate(questions.FAMILIES) if f[2]])
    assert relational.mean() >= 0.5
    for f, (name, *_rest) in enumerate(questions.FAMILIES):
        counts = np.bincount(tx.answer[tx.family == f])
        counts = counts[counts > 0]
        if not name.startswith(
            "count"
        ):  # large counts are rare in small scenes; capped, not padded
            assert counts.max() <= 1.5 * counts.min(), (name, counts)


def test_regions_have_duplicates_and_background():
    spec = scenes.SCENE_SETTINGS["full"]
    rng = np.random.default_rng(0)
    sc = scenes.sample_scenes(200, spec, rng)
    regions = scenes.render_regions(sc, spec, rng, "float16")
    per_scene = np.diff(regions.offsets)
    assert per_scene.min() >= spec.min_regions and per_scene.max() <= spec.max_regions
    assert per_scene.min() < 36 and per_scene.max() > 60  # variable region counts
    assert (per_scene > sc.valid.sum(1)).all()
    assert regions.features.shape[1] == 2048 and regions.features.dtype == np.float16


def test_vg_relational_targets(world):
    sc = world[0]
    tx = questions.vg_texts(sc, np.random.default_rng(0))
    kinds = collections.Counter(tx.family.tolist())
    assert kinds[0] and kinds[1] and kinds[2]
    for s, text, kind, target in zip(tx.scene, tx.text, tx.family, tx.target):
        objs = _objects(sc, s)
        if kind == 0:
            assert text == f"the {objs[target][0]}"
            continue
        shape = text.split()[1]
        anchor = next(o for o in objs if text.endswith(f"the {o[0]}"))
        pick = max if kind == 1 else min
        best = pick(
            (o for o in objs if o[2] == shape), key=lambda o: np.linalg.norm(o[3] - anchor[3])
        )
        assert objs[target] is best or objs[target][0] == best[0], text


def test_generate_is_reproducible(tmp_path):
    for name in ("a", "b"):
        benchmark.generate(get_task("vg"), str(tmp_path / name), num_images=30, seed=3)
    benchmark.generate(get_task("vg"), str(tmp_path / "c"), num_images=30, seed=4)
    files = sorted(os.listdir(tmp_path / "a"))
    assert "vocab.txt" in files and "embeddings.npy" in files
    same, diff, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert sorted(same) == files
    shards = [f for f in files if f.endswith(".tfrecord")]
    assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "c", shards, shallow=False)[1] == shards


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_pipeline_reads_every_task(synthetic_dirs, task):
    m = writer.load_manifest(synthetic_dirs[task])
    assert m["feature_dim"] == 128 and m["max_regions"] <= 28
    config = pipeline.PipelineConfig(
        get_task(task), batch_size=16, max_regions=28, max_tokens=16, seed=0, deterministic=True
    )
    inputs, targets = next(iter(pipeline.Pipeline(synthetic_dirs[task], "train", config).dataset()))
    assert inputs[names.IMAGE_FEATURES].shape == (16, 28, 128)
    assert inputs[names.TEXT_IDS].numpy().any(axis=1).all()
    if task == "vqa":
        assert (tf.reduce_sum(targets["answer_scores"], 1).numpy() == 1).all()
    if task == "vg":  # the referred object is among the proposals (IoU > 0.5 with some box)
        gt, boxes = targets["gt_box"].numpy()[:, None], inputs[names.BOXES].numpy()
        lo, hi = np.maximum(gt[..., :2], boxes[..., :2]), np.minimum(gt[..., 2:], boxes[..., 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), -1)
        area = lambda b: np.prod(b[..., 2:] - b[..., :2], -1)  # noqa: E731
        assert ((inter / (area(gt) + area(boxes) - inter)).max(1) > 0.5).all()
    if task == "itm":
        store = FeatureStore(synthetic_dirs[task], "train", max_regions=28, max_tokens=16)
        assert store.num_captions == 5 * store.num_images
        np.testing.assert_array_equal(
            store.captions(targets["caption_index"]), inputs[names.TEXT_IDS]
        )


def test_cli(tmp_path):
    out = tmp_path / "syn"
    cmd = [
        sys.executable,
        "-m",
        "mmnas_tf.synthetic",
        "--task=vqa",
        f"--out_dir={out}",
        "--num_images=40",
    ]
    result = subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, text=True)
    assert "train: 40 images" in result.stdout
    assert (out / "answers.txt").read_text().split() == list(questions.ANSWERS)
