"""python -m mmnas_tf.predict --checkpoint=... --explain=out.png: a trained run, no server."""

import dataclasses
import os

import numpy as np
import pytest
from support.runs import tiny_vqa_run

from mmnas_tf import cli, predict
from mmnas_tf.engine.checkpoint import Checkpointer
from mmnas_tf.experiments import tiny_experiment
from mmnas_tf.explain_run import explain_checkpoint
from mmnas_tf.tasks import task_of_outputs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny VQA run (random weights) with its data directory's vocab and answers, and one
    image's region features as a bottom-up-attention .npz (4 regions, 2048 x n as shared)."""
    model_dir = tmp_path_factory.mktemp("run")
    exp = tiny_experiment("vqa")
    exp = dataclasses.replace(exp, data=dataclasses.replace(exp.data, data_dir=str(model_dir)))
    model, _ = tiny_vqa_run(model_dir, exp)
    Checkpointer(str(model_dir), model).save()
    rng = np.random.default_rng(0)
    boxes = np.float32([[10, 10, 50, 60], [100, 40, 200, 90], [0, 0, 90, 100], [30, 70, 80, 190]])
    features = tmp_path_factory.mktemp("img") / "img.npz"
    np.savez(
        features, x=rng.random((32, 4)).astype(np.float32), bbox=boxes, image_h=200, image_w=300
    )
    return model_dir, model, features


def test_predict_explain_from_a_checkpoint(run, tmp_path):
    model_dir, model, features = run
    out = tmp_path / "explain.png"
    text = predict.main(
        [
            "predict",
            f"--checkpoint={model_dir}",
            "--question=What cat?",
            f"--features={features}",
            f"--explain={out}",
        ]
    )
    e = explain_checkpoint(str(model_dir), "What cat?", str(features))
    # the answer is the restored model's: same logits as the in-memory model on the same inputs
    inputs = {
        "text_ids": np.int32([[3, 4, 0, 0, 0, 0, 0, 0]]),
        "image_features": np.zeros((1, 6, 32), np.float32),
        "boxes": np.zeros((1, 6, 4), np.float32),
    }
    with np.load(features) as z:
        inputs["image_features"][0, :4] = z["x"].T
        inputs["boxes"][0, :4] = z["bbox"]
    logits = np.asarray(model(inputs)["logits"])[0]
    assert text.startswith(f"answer: ans{int(np.argmax(logits))} (score ")
    assert e.answers[0][0] == f"ans{int(np.argmax(logits))}"
    assert e.words == ["what", "cat"] and len(e.boxes) == 4
    np.testing.assert_allclose(e.region_weights.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(e.word_weights.sum(), 1.0, rtol=1e-5)
    assert f"explanation: {out}" in text and os.path.getsize(out) > 2000


def test_predict_explain_on_an_image(run, tmp_path):
    from PIL import Image

    model_dir, _, features = run
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (600, 400), (30, 90, 200)).save(photo)
    out = tmp_path / "on_photo.png"
    predict.main(
        [
            "predict",
            f"--checkpoint={model_dir}",
            "--question=what",
            f"--features={features}",
            f"--explain={out}",
            f"--image={photo}",
        ]
    )
    picture = np.asarray(Image.open(out).convert("RGB"))
    assert picture.shape[1] == 480  # the photo's 600 px scaled to the panel's 480
    assert np.abs(picture[300, 470].astype(int) - (30, 90, 200)).max() < 40  # the photo shows


def test_predict_explain_errors(run, tmp_path):
    model_dir, _, features = run
    with pytest.raises(ValueError, match="expected top_answers .VQA., score .ITM. or box .VG."):
        task_of_outputs({"logits": None})
    with pytest.raises(SystemExit, match="1"):
        cli.run_main(
            predict.main,
            ["predict", f"--checkpoint={tmp_path}", "--question=q", f"--features={features}"],
        )
