"""Exports of the real network through the TF1 session loader (TF Serving's own path), and
variable-size calls: the same answers with fewer tokens and regions than the maxima.

``tensorflow_model_server`` and ``saved_model_cli run`` import the MetaGraph into a session, run the
saver's restore op and the init op, then feed the SignatureDef's tensors; the reference checkpoints
of tests/fixtures/reference, imported and exported with ``predict_text`` and warm-up records, must
answer there exactly as through ``tf.saved_model.load`` and as the original PyTorch code.
"""

import numpy as np
import pytest
import tensorflow as tf
from support.session_loader import SessionModel, loaded_outputs

from mmnas_tf.devserver.client import ServingClient
from mmnas_tf.devserver.server import ModelServer, single_model_config
from mmnas_tf.serving.warmup import read_warmup_requests

# (our output, the original's vector, tolerance): the outputs the original computes itself.
REFERENCE_OUTPUTS = {
    "vqa": [("logits", "logits", 1e-4)],
    "itm": [("score", "scores_pos", 1e-4)],
    "vg": [
        ("object_scores", "pred_scores_logsoftmax", 1e-4),
        ("box_deltas", "pred_reg", 1e-4),
        ("box", "eval_decoded_boxes_clipped_argmax", 1e-3),
        ("object_index", "eval_argmax", 0),
    ],
}


# Padded and unpadded calls run matmuls of different shapes, so a kernel may sum in another order:
# decoded boxes then differ by a few float32 steps at their own magnitude (up to ~600 px here), which
# an absolute bound cannot express. 8 eps relative is 8-16 steps at any value.
PIXEL_RTOL = 8 * float(np.finfo(np.float32).eps)


def contract_inputs(reference):
    inputs = reference.inputs
    if reference.task != "vg":
        inputs.pop("image_size")
    return inputs


@pytest.fixture(scope="module", params=["vqa", "itm", "vg"])
def exported(request, reference_by_task, reference_exports):
    """(reference, export path, tf.saved_model.load'ed object, SessionModel) for one task."""
    ref = reference_by_task[request.param]
    path = str(reference_exports(ref.task)[2] / "1")
    with SessionModel(path) as session:
        yield ref, path, tf.saved_model.load(path), session


@pytest.fixture(scope="module")
def server(exported):
    ref, path, _, _ = exported
    base = path.rsplit("/", 1)[0]
    with ModelServer(
        single_model_config(ref.task, base), grpc_port=0, rest_port=0, poll_wait_seconds=0
    ) as running:
        yield running


def test_serving_default_equals_load_and_original(exported, helpers):
    ref, _, loaded, session = exported
    inputs = contract_inputs(ref)
    got = session.run(inputs)
    helpers.assert_outputs_equal(got, loaded_outputs(loaded, inputs))
    for ours, theirs, atol in REFERENCE_OUTPUTS[ref.task]:
        np.testing.assert_allclose(got[ours], ref.io[theirs], atol=atol, rtol=0, err_msg=ours)
    if ref.task == "vqa":  # the answer table (an asset initialised by the init op) is read
        top = np.argsort(-ref.io["logits"], axis=1)[:, :5]
        assert got["top_answers"].tolist() == [[f"answer {i}".encode() for i in r] for r in top]


def test_predict_text_equals_load(exported, helpers):
    ref, _, loaded, session = exported
    images = {k: v[:1].repeat(len(helpers.QUESTIONS), 0) for k, v in contract_inputs(ref).items()}
    del images["text_ids"]
    inputs = {"text": np.array([q.encode() for q in helpers.QUESTIONS], object), **images}
    got = session.run(inputs, "predict_text")
    helpers.assert_outputs_equal(got, loaded_outputs(loaded, inputs, "predict_text"))
    assert len({tuple(np.ravel(v)) for v in next(iter(got.values()))}) > 1  # questions differ


def test_warmup_records_replay_in_the_session(exported, helpers):
    _, path, loaded, session = exported
    replayed = session.replay_warmup()
    assert len(replayed) == len(read_warmup_requests(path)) == 4  # 2 signatures x batch 1 and 8
    for name, inputs, got in replayed:
        helpers.assert_outputs_equal(got, loaded_outputs(loaded, inputs, name))


def _unpadded(inputs, row):
    """Example ``row`` with only its real tokens (non-zero ids) and regions (non-zero features)."""
    tokens = int((inputs["text_ids"][row] > 0).sum())
    regions = int((np.abs(inputs["image_features"][row]).sum(-1) > 0).sum())
    short = {k: v[row : row + 1] for k, v in inputs.items()}
    short["text_ids"] = short["text_ids"][:, :tokens]
    for key in ("image_features", "boxes"):
        short[key] = short[key][:, :regions]
    return short, tokens, regions


def _assert_same_as_padded(task, got, padded, row, regions, helpers):
    """Outputs of an unpadded call equal row ``row`` of the padded call (VG: up to normaliser)."""
    want = {k: v[row : row + 1] for k, v in padded.items()}
    if task == "vg":  # a log-softmax over the slots sent: real regions differ by one constant
        # pixels: a few float32 steps at the value compared (one step at 209 px is 1.5e-5)
        np.testing.assert_allclose(got["box"], want["box"], rtol=PIXEL_RTOL, atol=1e-5)
        np.testing.assert_array_equal(got["object_index"], want["object_index"])
        shift = got["object_scores"] - want["object_scores"][:, :regions]
        np.testing.assert_allclose(shift, np.full_like(shift, shift[0, 0]), atol=1e-5)
        np.testing.assert_allclose(
            got["box_deltas"], want["box_deltas"][:, :regions], atol=1e-5, rtol=0
        )
        return
    helpers.assert_outputs_equal(got, want)


def test_fewer_tokens_and_regions_answer_as_padded(exported, server, helpers):
    ref, _, loaded, session = exported
    inputs = contract_inputs(ref)
    padded = loaded_outputs(loaded, inputs)
    shorter = 0
    with ServingClient(f"127.0.0.1:{server.grpc_port}", ref.task) as client:
        for row in range(len(inputs["text_ids"])):
            short, tokens, regions = _unpadded(inputs, row)
            shorter += tokens < ref.sizes["max_tokens"] or regions < ref.sizes["max_regions"]
            for got in (loaded_outputs(loaded, short), session.run(short), client.predict(short)):
                _assert_same_as_padded(ref.task, got, padded, row, regions, helpers)
    assert shorter  # the fixtures hold examples with fewer tokens or regions than the maxima
