"""The attention picture: what the explanation holds is what the model used, and what is drawn."""

import os

import numpy as np
import pytest

from mmnas_tf.genotype import Genotype
from mmnas_tf.tasks import get_task
from mmnas_tf.viz import draw_explanation, explain_example, explain_outputs
from tests.models.test_backbone import batch, tiny

GENOTYPE = Genotype(("SA",), ("GA", "RSA", "GA"))
WORDS = ["what", "colour", "is", "the", "red", "square"]


def _one(config, n_real=5, t_real=4):
    inputs = batch(config, (n_real,), (t_real,))
    return inputs, WORDS[:t_real]


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_explanation_and_picture(task, tmp_path):
    config = tiny(GENOTYPE)
    model = get_task(task).build_model(config.replace(num_answers=5 if task == "vqa" else None))
    inputs, words = _one(config)
    answers = ["red", "green", "blue", "square", "circle"]
    e = explain_example(model, task, inputs, words, answers if task == "vqa" else None)
    outputs = explain_outputs(model, task, inputs)
    assert len(e.boxes) == 5 and len(e.words) == 4
    np.testing.assert_allclose(e.word_weights, np.asarray(outputs["text_weights"])[0, :4])
    np.testing.assert_allclose(e.word_weights.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(e.region_weights.sum(), 1.0, rtol=1e-5)
    assert set(e.ga_maps) == {"decoder_0", "decoder_2"}
    assert e.ga_maps["decoder_0"].shape == (5, 4)
    if task == "vqa":
        np.testing.assert_allclose(e.region_weights, np.asarray(outputs["image_weights"])[0, :5])
        assert [a for a, _ in e.answers] == [
            answers[i] for i in np.argsort(-np.asarray(outputs["logits"])[0])
        ]
    if task == "itm":
        assert e.score == pytest.approx(float(np.asarray(outputs["score"])[0]))
    if task == "vg":
        assert e.chosen == int(np.asarray(outputs["object_index"])[0])
        assert e.chosen == int(np.argmax(e.region_weights))
    path = str(tmp_path / f"{task}.png")
    drawn = draw_explanation(e, path)
    assert os.path.getsize(path) > 2000
    picture = drawn["image"]
    assert picture.shape[1] >= 360 and 300 < picture.shape[0] < 1200
    # the weights drawn are one distribution per example, over the real regions and words
    assert sorted(i for i, _ in drawn["regions"]) == list(range(5))
    assert sum(w for _, w in drawn["regions"]) == pytest.approx(1.0, rel=1e-5)
    assert [w for w, _ in drawn["words"]] == words
    assert sum(w for _, w in drawn["words"]) == pytest.approx(1.0, rel=1e-5)
    # the most attended region is outlined in the attention colour; in VG the chosen box is
    # green and the next best candidates orange
    colours = {tuple(int(v) for v in c) for c in np.unique(picture.reshape(-1, 3), axis=0)}
    if task == "vg":
        assert {(20, 160, 60), (240, 150, 0)} <= colours
    else:
        assert (220, 40, 40) in colours


def test_picture_on_an_image_scales_the_boxes(tmp_path):
    from PIL import Image

    config = tiny(GENOTYPE)
    model = get_task("vqa").build_model(config.replace(num_answers=5))
    inputs, words = _one(config)
    e = explain_example(model, "vqa", inputs, words)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 100), (0, 0, 255)).save(photo)  # the image is half the boxes' scale
    drawn = draw_explanation(e, None, image=str(photo))
    assert drawn["image"].shape[1] == 480  # the longer side of the image panel
    assert tuple(drawn["image"][470 // 2 - 200, 479]) != (255, 255, 255)


def test_missing_drawing_library_names_the_extra(monkeypatch):
    import sys

    from mmnas_tf.viz import deps

    monkeypatch.setitem(sys.modules, "PIL.ImageDraw", None)  # as if Pillow were not installed
    with pytest.raises(ImportError, match=r"'viz' extra.*mmnas-tf\[viz\]"):
        deps.require("PIL.ImageDraw")
