"""The predict CLI's request building (npz layouts, predict_text or client-side ids) and output."""

import numpy as np
import pytest

from mmnas_tf.devserver.client import ServingClient
from mmnas_tf.devserver.one_image import build_request, describe_outputs
from mmnas_tf.devserver.server import ModelServer
from mmnas_tf.text import Vocabulary, encode, tokenize

QUESTION = "What colour is the cat on the left?"


def write_npz(path, model, regions, transpose):
    inputs = model.example_inputs(1, regions=regions)
    x = inputs["image_features"][0, :regions]
    np.savez(
        path,
        x=x.T if transpose else x,
        bbox=inputs["boxes"][0, :regions],
        image_h=np.float32(480),
        image_w=np.float32(640),
    )
    return inputs


def contract(model, inputs, helpers):
    ids = encode(tokenize(QUESTION), Vocabulary(helpers.VOCAB), model.m)[None]
    out = {**inputs, "text_ids": ids}
    if "image_size" in out:
        out["image_size"] = np.float32([[480, 640]])
    return {k: v.numpy() for k, v in model(out).items()}


@pytest.mark.parametrize("transpose", [True, False])
def test_vqa_request_from_npz(served, helpers, tmp_path, transpose):
    model = served.models["vqa"]
    inputs = write_npz(tmp_path / "img.npz", model, regions=6, transpose=transpose)
    with ServingClient(served.grpc_target, "vqa") as client:
        signature, request = build_request(client, QUESTION, str(tmp_path / "img.npz"))
        outputs = client.predict(request, signature_name=signature)
    assert signature == "predict_text" and request["image_features"].shape == (1, 6, model.d)
    want = contract(model, inputs, helpers)
    np.testing.assert_allclose(outputs["logits"], want["logits"], rtol=1e-5, atol=1e-6)
    text = describe_outputs(outputs)
    assert text.startswith(f"answer: {want['top_answers'][0][0].decode()} (score")


def test_vg_request_prints_the_box(served, helpers, tmp_path):
    model = served.models["vg"]
    inputs = write_npz(tmp_path / "img.npz", model, regions=model.n - 2, transpose=True)
    with ServingClient(served.rest_target, "vg", rest=True) as client:
        signature, request = build_request(client, QUESTION, str(tmp_path / "img.npz"))
        outputs = client.predict(request, signature_name=signature)
    want = contract(model, inputs, helpers)
    np.testing.assert_allclose(outputs["box"], want["box"], rtol=1e-5)
    box = ", ".join(f"{v:.1f}" for v in want["box"][0])
    assert f"box: [{box}]" in describe_outputs(outputs)


def test_without_predict_text_tokenises_client_side(tmp_path, helpers):
    model = helpers.stand_in("itm")
    helpers.export(model, str(tmp_path / "itm"), 1)  # no vocabulary: serving_default only
    (tmp_path / "vocab.txt").write_text("\n".join(helpers.VOCAB) + "\n")
    inputs = write_npz(tmp_path / "img.npz", model, regions=3, transpose=False)
    config = helpers.model_config("itm", tmp_path / "itm")
    with ModelServer([config], grpc_port=0, rest_port=None, poll_wait_seconds=0) as server:
        with ServingClient(f"127.0.0.1:{server.grpc_port}", "itm") as client:
            with pytest.raises(ValueError, match="--vocab"):
                build_request(client, QUESTION, str(tmp_path / "img.npz"))
            signature, request = build_request(
                client, QUESTION, str(tmp_path / "img.npz"), str(tmp_path / "vocab.txt")
            )
            outputs = client.predict(request, signature_name=signature)
    assert signature == "serving_default"
    want = contract(model, inputs, helpers)
    np.testing.assert_allclose(outputs["score"], want["score"], rtol=1e-5)
    assert describe_outputs(outputs) == f"match score: {want['score'][0]:.4f}"


def test_wrong_feature_size_is_named(served, tmp_path):
    np.savez(
        tmp_path / "img.npz",
        x=np.ones([3, 7], np.float32),
        bbox=np.ones([3, 4]),
        image_h=1.0,
        image_w=1.0,
    )
    with ServingClient(served.grpc_target, "vqa") as client:
        with pytest.raises(ValueError, match="7-d, expected 32"):
            build_request(client, QUESTION, str(tmp_path / "img.npz"))


def test_predict_main_prints_the_answer_or_fails_with_the_status(served, tmp_path, capsys):
    from mmnas_tf import cli, predict

    write_npz(tmp_path / "img.npz", served.models["itm"], regions=2, transpose=False)
    argv = [
        "predict",
        f"--server={served.grpc_target}",
        "--model_name=itm",
        f"--question={QUESTION}",
        f"--features={tmp_path / 'img.npz'}",
    ]
    text = predict.main(argv)
    assert text.startswith("match score: ") and text in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.run_main(predict.main, [*argv, "--model_name=nope"])
    assert e.value.code == 1
    assert "mmnas_tf.predict: error: NOT_FOUND" in capsys.readouterr().err
