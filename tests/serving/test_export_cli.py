"""``python -m mmnas_tf.export``: a training checkpoint + run.json -> a served version."""

import numpy as np
import pytest
import tensorflow as tf
from support.runs import tiny_vqa_run
from support.session_loader import SessionModel

from mmnas_tf import export as export_cli
from mmnas_tf.devserver.repository import Servable
from mmnas_tf.engine.checkpoint import Checkpointer
from mmnas_tf.experiments import get_experiment
from mmnas_tf.serving.errors import ServingError
from mmnas_tf.serving.export import ServingModule


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VQA model 'trained' (random weights) and checkpointed as the trainer does."""
    model_dir = tmp_path_factory.mktemp("run")
    exp = get_experiment("vqa_tiny")
    model, config = tiny_vqa_run(model_dir, exp)
    inputs = {
        "text_ids": np.array([[3, 4, 1, 0, 0, 0, 0, 0]], np.int32),
        "image_features": np.random.default_rng(0).random([1, 6, 32]).astype(np.float32),
        "boxes": np.tile(np.float32([[10, 10, 50, 60]]), [1, 6, 1]),
    }
    # A first call builds the weights; the checkpoint must hold them.
    module = ServingModule(model, "vqa", config, answers_file=str(model_dir / "answers.txt"))
    want = {k: v.numpy() for k, v in module.predict(inputs).items()}
    Checkpointer(str(model_dir), model).save()
    return model_dir, inputs, want


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model_dir, _, _ = trained
    base = tmp_path_factory.mktemp("export") / "vqa"
    (base / "4" / "variables").mkdir(parents=True)  # being written by someone else
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"")
    argv = [
        "export",
        "--task=vqa",
        f"--checkpoint={model_dir}",
        f"--export_dir={base}",
        f"--vocab={model_dir / 'vocab.txt'}",
        f"--answer_vocab={model_dir / 'answers.txt'}",
    ]
    return base, export_cli.main(argv)


def test_export_cli_writes_the_next_version_with_both_signatures(trained, exported):
    _, inputs, _ = trained
    base, path = exported
    assert path == str(base / "5")
    servable = Servable("vqa", 5, path)
    assert set(servable.signatures) == {"serving_default", "predict_text"}
    by_ids = servable.predict("serving_default", inputs)  # ids of "what cat UNK"
    by_text = servable.predict(
        "predict_text",
        {
            "text": np.array([b"What CAT? zebra"], object),
            "image_features": inputs["image_features"],
            "boxes": inputs["boxes"],
        },
    )
    np.testing.assert_allclose(by_text["logits"], by_ids["logits"], rtol=1e-6)
    assert by_ids["top_answers"][0][0].decode().startswith("ans")
    servable.close()


def test_exported_checkpoint_serves_like_the_trained_model(trained, exported):
    _, inputs, want = trained
    got = Servable("vqa", 5, exported[1]).predict("serving_default", inputs)
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
    assert got["top_answers"].tolist() == want["top_answers"].tolist()


def test_exported_checkpoint_runs_in_a_tf1_session(trained, exported):
    """TF Serving's loader path: restore op + init op, both signatures, warm-up records."""
    _, inputs, want = trained
    with SessionModel(exported[1]) as session:
        got = session.run(inputs)
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
        assert got["top_answers"].tolist() == want["top_answers"].tolist()
        text = {"text": np.array([b"What CAT? zebra"], object)}
        text.update((k, inputs[k]) for k in ("image_features", "boxes"))
        np.testing.assert_allclose(
            session.run(text, "predict_text")["logits"], want["logits"], rtol=1e-5, atol=1e-5
        )
        names = [name for name, _, _ in session.replay_warmup()]
    assert sorted(set(names)) == ["predict_text", "serving_default"] and len(names) == 4


def test_fixed_shapes_flag_keeps_static_shapes(trained, exported):
    model_dir, inputs, want = trained
    base, variable = exported
    argv = ["export", "--task=vqa", f"--checkpoint={model_dir}", f"--export_dir={base}"]
    fixed = export_cli.main(argv + ["--version=7", "--fixed_shapes"])
    shapes = {
        path: {k: s.shape for k, s in Servable("vqa", 1, path).signature("").inputs.items()}
        for path in (variable, fixed)
    }
    assert shapes[fixed] == {
        "text_ids": (None, 8),
        "image_features": (None, 6, 32),
        "boxes": (None, 6, 4),
    }
    assert shapes[variable] == {
        "text_ids": (None, None),
        "image_features": (None, None, 32),
        "boxes": (None, None, 4),
    }
    fewer = {k: v[:, :2] for k, v in inputs.items()}  # the variable-size export answers it
    padded = {
        k: np.pad(v, [(0, 0), (0, inputs[k].shape[1] - 2)] + [(0, 0)] * (v.ndim - 2))
        for k, v in fewer.items()
    }
    served = Servable("vqa", 5, variable)
    np.testing.assert_allclose(
        served.predict("serving_default", fewer)["logits"],
        served.predict("serving_default", padded)["logits"],
        rtol=1e-5,
        atol=1e-5,
    )
    exactly = r"'(boxes|image_features)' has 2 regions but the model takes exactly 6|'text_ids' has 2 tokens but the model takes exactly 8"
    with pytest.raises(ServingError, match=exactly):  # whichever input is checked first
        Servable("vqa", 7, fixed).predict("serving_default", fewer)
    got = Servable("vqa", 7, fixed).predict("serving_default", inputs)
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
    with SessionModel(fixed) as session:  # the fixed export checks ids in-graph too
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input text_ids .*\[0, 64\)"):
            session.run(dict(inputs, text_ids=inputs["text_ids"] + 64))


def test_export_cli_errors(trained, tmp_path):
    model_dir, _, _ = trained
    with pytest.raises(FileNotFoundError, match="run.json"):
        export_cli.main(
            ["export", "--task=vqa", f"--checkpoint={tmp_path}", f"--export_dir={tmp_path / 'out'}"]
        )
    with pytest.raises(ValueError, match="trained for task 'vqa', not 'vg'"):
        export_cli.main(
            ["export", "--task=vg", f"--checkpoint={model_dir}", f"--export_dir={tmp_path / 'out'}"]
        )
    assert not tf.io.gfile.exists(str(tmp_path / "out"))
