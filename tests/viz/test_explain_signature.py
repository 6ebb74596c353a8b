"""The export's ``explain`` signature (``--explain``): the same weights as the in-memory model,
and ``predict --explain`` through a served model."""

import numpy as np
import pytest

from mmnas_tf import predict
from mmnas_tf.devserver.repository import Servable
from mmnas_tf.experiments import tiny_experiment
from mmnas_tf.serving.export import export_saved_model
from mmnas_tf.tasks import get_task
from mmnas_tf.viz import EXPLAIN_SIGNATURE, explain_outputs


def _inputs(task, config):
    rng = np.random.default_rng(0)
    inputs = {
        "text_ids": np.array([[3, 4, 1, 0, 0, 0, 0, 0]], np.int32),
        "image_features": np.zeros((1, config.max_regions, config.feature_size), np.float32),
        "boxes": np.zeros((1, config.max_regions, 4), np.float32),
    }
    inputs["image_features"][0, :4] = rng.random((4, config.feature_size))
    inputs["boxes"][0, :4] = [
        [10, 10, 50, 60],
        [100, 40, 200, 90],
        [0, 0, 90, 100],
        [30, 70, 80, 190],
    ]
    if get_task(task).needs_image_size:
        inputs["image_size"] = np.float32([[200, 300]])
    return inputs


@pytest.mark.parametrize("task", ["vqa", "vg"])
def test_explain_signature_matches_the_model(task, tmp_path):
    exp = tiny_experiment(task)
    config = exp.model_config(exp.load_genotype())
    model = get_task(task).build_model(config.replace(num_answers=7 if task == "vqa" else None))
    path = export_saved_model(model, task, config, str(tmp_path / task), 1, explain=True)
    servable = Servable(task, 1, path)
    assert set(servable.signatures) >= {"serving_default", EXPLAIN_SIGNATURE}
    inputs = _inputs(task, config)
    got = servable.predict(EXPLAIN_SIGNATURE, inputs)
    want = {k: np.asarray(v) for k, v in explain_outputs(model, task, inputs).items()}
    assert set(got) == set(want)
    for key in want:
        if want[key].dtype.kind in "fc":
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(got["text_weights"].sum(-1), 1.0, rtol=1e-5)
    pooled = "image_weights" if task == "vqa" else "region_scores"
    assert (got[pooled][0, 4:] == 0).all() if task == "vqa" else got[pooled].shape == (1, 6)
    assert any(k.startswith("ga_decoder_") for k in got)
    servable.close()


def test_export_without_explain_has_no_explain_signature(tmp_path):
    exp = tiny_experiment("vqa")
    config = exp.model_config(exp.load_genotype())
    model = get_task("vqa").build_model(config.replace(num_answers=7))
    path = export_saved_model(model, "vqa", config, str(tmp_path / "vqa"), 1)
    servable = Servable("vqa", 1, path)
    assert EXPLAIN_SIGNATURE not in servable.signatures
    servable.close()


@pytest.mark.slow
def test_predict_explain_through_a_server(tmp_path):
    from mmnas_tf.devserver.server import ModelServer, single_model_config

    exp = tiny_experiment("vqa")
    config = exp.model_config(exp.load_genotype())
    model = get_task("vqa").build_model(config.replace(num_answers=7))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["PAD", "UNK", "CLS", "what", "cat"]) + "\n")
    answers = tmp_path / "answers.txt"
    answers.write_text("\n".join(f"ans{i}" for i in range(7)) + "\n")
    base = tmp_path / "vqa"
    export_saved_model(model, "vqa", config, str(base), 1, str(vocab), str(answers), explain=True)
    inputs = _inputs("vqa", config)
    features = tmp_path / "img.npz"
    np.savez(
        features,
        x=inputs["image_features"][0, :4],
        bbox=inputs["boxes"][0, :4],
        image_h=200,
        image_w=300,
    )
    out = tmp_path / "served.png"
    with ModelServer(single_model_config("vqa", str(base)), grpc_port=0, rest_port=None) as server:
        text = predict.main(
            [
                "predict",
                f"--server=127.0.0.1:{server.grpc_port}",
                "--model_name=vqa",
                "--question=what cat zebra",
                f"--features={features}",
                f"--vocab={vocab}",
                f"--explain={out}",
            ]
        )
    want = explain_outputs(model, "vqa", inputs)
    best = np.asarray(want["top_answers"])[0, 0]  # the class id: the in-memory model has no table
    best = best.decode() if isinstance(best, bytes) else str(best)
    assert text.startswith(f"answer: ans{best} (score ")
    assert out.stat().st_size > 2000
