"""A bf16 export (``export_checkpoint(dtype_policy="mixed_bfloat16")``): float32 at the signature,
bfloat16 inside, outputs close to the float32 export's, through both loaders."""

import os

import numpy as np
import pytest
import tensorflow as tf
from support.runs import tiny_vqa_run
from support.session_loader import SessionModel

from mmnas_tf.engine.checkpoint import Checkpointer
from mmnas_tf.experiments import get_experiment
from mmnas_tf.serving.from_checkpoint import export_checkpoint

# bf16 vs fp32 export of the tiny VQA model (random weights, logits up to 1.9): largest differences
# measured 1.6e-2 (logits) and 3.9e-3 (top scores); bfloat16 keeps 8 bits of mantissa.
LOGIT_ATOL = 3e-2
SCORE_ATOL = 1e-2


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    model, _ = tiny_vqa_run(model_dir, get_experiment("vqa_tiny"))
    Checkpointer(str(model_dir), model).save()
    base = tmp_path_factory.mktemp("export")
    paths = {
        policy: export_checkpoint(
            "vqa", str(model_dir), str(base / policy), version=1, dtype_policy=policy
        )
        for policy in ("float32", "mixed_bfloat16")
    }
    rng = np.random.default_rng(0)
    inputs = {
        "text_ids": np.array([[3, 4, 1, 0], [4, 4, 3, 1]], np.int32),
        "image_features": rng.random([2, 5, 32]).astype(np.float32),
        "boxes": np.tile(np.array([[[10.0, 20.0, 300.0, 400.0]]], np.float32), (2, 5, 1)),
    }
    return paths, inputs


def graph_dtypes(path):
    """Every dtype attribute of every node of the SavedModel's functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    meta = saved.meta_graphs[0]
    found = set()
    for function in meta.graph_def.library.function:
        for node in function.node_def:
            found |= {a.type for a in node.attr.values() if a.type}
    return found


def test_the_bf16_export_computes_in_bf16_behind_the_same_signature(exports):
    paths, _ = exports
    assert tf.bfloat16.as_datatype_enum in graph_dtypes(paths["mixed_bfloat16"])
    assert tf.bfloat16.as_datatype_enum not in graph_dtypes(paths["float32"])
    sigs = {p: tf.saved_model.load(path).signatures["serving_default"] for p, path in paths.items()}
    specs = {p: s.structured_input_signature[1] for p, s in sigs.items()}
    assert specs["mixed_bfloat16"] == specs["float32"]
    outs = {p: s.structured_outputs for p, s in sigs.items()}
    assert {k: v.dtype for k, v in outs["mixed_bfloat16"].items()} == {
        k: v.dtype for k, v in outs["float32"].items()
    }
    assert outs["mixed_bfloat16"]["logits"].dtype == tf.float32


def test_bf16_outputs_are_close_to_fp32_in_both_loaders(exports):
    paths, inputs = exports
    want = tf.saved_model.load(paths["float32"]).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in inputs.items()}
    )
    got = tf.saved_model.load(paths["mixed_bfloat16"]).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in inputs.items()}
    )
    np.testing.assert_allclose(got["logits"], want["logits"], atol=LOGIT_ATOL, rtol=0)
    np.testing.assert_allclose(got["top_scores"], want["top_scores"], atol=SCORE_ATOL, rtol=0)
    assert not np.array_equal(got["logits"].numpy(), want["logits"].numpy())  # really bf16
    with SessionModel(paths["mixed_bfloat16"]) as session:
        session_out = session.run(inputs)
        assert session_out["logits"].dtype == np.float32
        np.testing.assert_allclose(session_out["logits"], got["logits"], atol=1e-6, rtol=0)
        assert session.replay_warmup()  # TF Serving's warm-up records run too
