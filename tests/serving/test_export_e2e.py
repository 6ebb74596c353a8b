"""End to end on the real network: reference checkpoints imported, exported, served, compared.

The lead's importer builds the models of tests/fixtures/reference; ``export_saved_model`` writes
them with ``predict_text`` and warm-up records; gRPC and REST answers must equal in-process calls
(and the original PyTorch outputs). The exports are test_session_loader's (``reference_exports``,
made once per session); VQA runs by default, VG (image_size, box decoding) is marked slow, and ITM
adds no serving path that VQA and the stand-in ITM tests do not cover.
"""

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.devserver.client import ServingClient
from mmnas_tf.devserver.server import ModelServer, single_model_config
from mmnas_tf.serving.export import ServingModule
from mmnas_tf.serving.warmup import read_warmup_requests
from mmnas_tf.text import Vocabulary, encode, tokenize

TASKS = ("vqa", pytest.param("vg", marks=pytest.mark.slow))


@pytest.fixture(scope="module", params=TASKS)
def exported(request, reference_exports, helpers):
    """(task, server, in-process ServingModule, vocabulary, export base) for one task."""
    task = request.param
    model, config, base = reference_exports(task)
    answers = str(base.parent / "answers.txt") if task == "vqa" else None
    module = ServingModule(model, task, config, answers_file=answers)
    server = ModelServer(
        single_model_config(task, str(base)), grpc_port=0, rest_port=0, poll_wait_seconds=0
    ).start()
    vocab_tokens = helpers.VOCAB + [f"w{i}" for i in range(50 - len(helpers.VOCAB))]
    yield task, server, module, Vocabulary(vocab_tokens), base
    server.stop()


def in_process(module, inputs):
    return {
        k: v.numpy()
        for k, v in module.predict({k: tf.constant(v) for k, v in inputs.items()}).items()
    }


def contract_inputs(reference, task):
    inputs = reference.inputs
    if task != "vg":
        inputs.pop("image_size")
    return inputs


@pytest.mark.parametrize("rest", [False, True])
def test_served_equals_in_process_and_original(exported, reference_by_task, helpers, rest):
    task, server, module, _, _ = exported
    ref = reference_by_task[task]
    inputs = contract_inputs(ref, task)
    port = server.rest_port if rest else server.grpc_port
    with ServingClient(f"127.0.0.1:{port}", task, rest=rest) as client:
        got = client.predict(inputs)
    want = in_process(module, inputs)
    helpers.assert_outputs_equal(got, want)
    original = {"vqa": ("logits", "logits"), "vg": ("object_scores", "pred_scores_logsoftmax")}
    if task in original:
        ours, theirs = original[task]
        np.testing.assert_allclose(got[ours], ref.io[theirs], atol=1e-4)


def test_predict_text_tokenises_like_python(exported, reference_by_task, helpers):
    task, server, _, vocab, _ = exported
    ref = reference_by_task[task]
    m = ref.sizes["max_tokens"]
    image = {
        k: np.repeat(v[:1], len(helpers.QUESTIONS), 0)
        for k, v in contract_inputs(ref, task).items()
        if k != "text_ids"
    }
    ids = np.stack([encode(tokenize(q), vocab, m) for q in helpers.QUESTIONS])
    assert len({tuple(r) for r in ids}) == len(
        helpers.QUESTIONS
    )  # the strings really differ as ids
    with ServingClient(f"127.0.0.1:{server.grpc_port}", task) as client:
        by_text = client.predict(
            {"text": helpers.QUESTIONS, **image}, signature_name="predict_text"
        )
        by_ids = client.predict({"text_ids": ids, **image})
    cut = [max(len(tokenize(q)) - m, 0) for q in helpers.QUESTIONS]  # predict_text says it
    np.testing.assert_array_equal(by_text.pop("truncated_tokens"), cut)
    helpers.assert_outputs_equal(by_text, by_ids, tolerance=1e-6)


def test_export_writes_assets_and_warmup(exported):
    task, server, _, _, base = exported
    path = base / "1"
    assets = ["answers.txt", "vocab.txt"] if task == "vqa" else ["vocab.txt"]
    assert sorted(p.name for p in (path / "assets").iterdir()) == assets
    requests = read_warmup_requests(str(path))
    assert {r.model_spec.signature_name for r in requests} == {"serving_default", "predict_text"}
    assert all(r.model_spec.name == task for r in requests)
    # The server replayed them at load without error (a failed warm-up fails the version).
    assert [s.state for s in server.repository.status(task)] == ["AVAILABLE"]
    assert {tuple(d.size for d in r.inputs["boxes"].tensor_shape.dim)[0] for r in requests} == {
        1,
        8,
    }
