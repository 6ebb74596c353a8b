"""Bad requests against a real exported MMnas model (a tiny VQA network built here, not a stand-in).

Over gRPC and REST the server refuses them before they reach the model, with INVALID_ARGUMENT
naming the input and the expected shape or range (NaN features and batch sizes that differ too;
over REST no regions arrive as JSON spells them, ``[[], []]``), and an unknown model or version
with NOT_FOUND naming what it serves; the limits the graph itself asserts (token ids,
most tokens and regions, region counts) give the same clear error through the TF1 session loader,
the path of ``tensorflow_model_server``, which does not check shapes.
"""

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from support.session_loader import SessionModel
from tensorflow_serving.apis import prediction_service_pb2_grpc

from mmnas_tf.devserver.server import ModelServer, single_model_config
from mmnas_tf.experiments import tiny_experiment
from mmnas_tf.serving.export import export_saved_model
from mmnas_tf.serving.protos import predict_request
from mmnas_tf.tasks import get_task


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, helpers):
    """(config, version path, running server) for a tiny MMnas VQA model exported as users do."""
    root = tmp_path_factory.mktemp("tiny_mmnas")
    exp = tiny_experiment("vqa")
    config = exp.model_config(exp.load_genotype())
    model = get_task("vqa").build_model(config.replace(num_answers=len(helpers.ANSWERS)))
    (root / "vocab.txt").write_text("\n".join(helpers.VOCAB) + "\n")
    (root / "answers.txt").write_text("\n".join(helpers.ANSWERS) + "\n")
    path = export_saved_model(
        model,
        "vqa",
        config,
        str(root / "vqa"),
        1,
        vocab_file=str(root / "vocab.txt"),
        answers_file=str(root / "answers.txt"),
    )
    server = ModelServer(
        single_model_config("vqa", str(root / "vqa")), grpc_port=0, rest_port=0, poll_wait_seconds=0
    ).start()
    yield config, path, server
    server.stop()


def good_inputs(config, batch: int = 2) -> dict:
    m, n, d = config.max_tokens, config.max_regions, config.feature_size
    rng = np.random.default_rng(0)
    return {
        "text_ids": rng.integers(3, config.vocab_size, [batch, m]).astype(np.int32),
        "image_features": rng.random([batch, n, d]).astype(np.float32),
        "boxes": np.tile(np.float32([10, 10, 50, 60]), [batch, n, 1]),
    }


def bad_cases(config):
    """(what, inputs, fragments the message must hold, whether the graph itself checks it)."""
    m, n, d, v = config.max_tokens, config.max_regions, config.feature_size, config.vocab_size
    good = good_inputs(config)
    ids_range = ["input text_ids", f"[0, {v})"]
    high, negative = good["text_ids"].copy(), good["text_ids"].copy()
    high[1, 2], negative[0, 0] = v, -1
    more = good_inputs(config)
    nan = good["image_features"].copy()
    nan[1, 0, 0] = np.nan
    more_regions = {
        "image_features": np.concatenate([more["image_features"]] * 2, 1)[:, : n + 1],
        "boxes": np.concatenate([more["boxes"]] * 2, 1)[:, : n + 1],
    }
    return [
        ("id >= vocabulary size", {**good, "text_ids": high}, ids_range, True),
        ("negative id", {**good, "text_ids": negative}, ids_range, True),
        (
            "too many tokens",
            {**good, "text_ids": np.ones([2, m + 1], np.int32)},
            ["input text_ids", f"at most {m} tokens"],
            True,
        ),
        (
            "too many regions",
            {**good, **more_regions},
            ["input image_features", f"at most {n} regions"],
            True,
        ),
        (
            "regions differ",
            {**good, "boxes": good["boxes"][:, :-1]},
            ["inputs image_features and boxes", "same number of regions"],
            True,
        ),
        (
            "no regions",
            {
                **good,
                "image_features": np.zeros([2, 0, d], np.float32),
                "boxes": good["boxes"][:, :0],
            },
            ["input image_features", "at least 1 region"],
            True,
        ),
        ("NaN feature", {**good, "image_features": nan}, ["'image_features'", "NaN"], False),
        (
            "batch sizes differ",
            {**good, "boxes": good["boxes"][:1]},
            ["different batch sizes", "'boxes': 1", "'text_ids': 2"],
            False,
        ),
        (
            "feature width",
            {**good, "image_features": np.zeros([2, n, d + 1], np.float32)},
            ["'image_features'", f"float32 [?, <={n}, {d}]"],
            False,
        ),
        ("rank", {**good, "boxes": good["boxes"][..., 0]}, ["'boxes'", "rank 3"], False),
        (
            "missing input",
            {k: v for k, v in good.items() if k != "boxes"},
            ["boxes", f"float32 [?, <={n}, 4]"],
            False,
        ),
    ]


def _assert_names(what: str, message: str, fragments) -> None:
    for fragment in fragments:
        assert fragment in message, (what, fragment, message)


def test_grpc_refuses_with_the_input_and_its_limits(tiny):
    config, _, server = tiny
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    int64 = {**good_inputs(config), "text_ids": good_inputs(config)["text_ids"].astype(np.int64)}
    cases = bad_cases(config) + [
        ("int64 ids", int64, ["'text_ids'", f"int32 [?, <={config.max_tokens}]"], False)
    ]
    for what, inputs, fragments, _ in cases:
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(predict_request("vqa", inputs), timeout=60)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (what, e.value.details())
        _assert_names(what, e.value.details(), fragments)
    good = stub.Predict(predict_request("vqa", good_inputs(config)), timeout=60)
    assert tf.make_ndarray(good.outputs["logits"]).shape == (2, 12)  # still serving
    channel.close()


def test_rest_refuses_with_the_input_and_its_limits(tiny):
    config, _, server = tiny
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/vqa:predict"
    for what, inputs, fragments, _ in bad_cases(config):
        # "no regions" goes as JSON spells it, [[], []] (2 examples, 0 regions, no feature axis)
        body = json.dumps({"inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60)
        assert e.value.code == 400, what
        message = json.load(e.value)["error"]
        _assert_names(what, message, fragments)


def test_the_graph_itself_refuses_in_a_tf1_session(tiny):
    """What tensorflow_model_server answers: the graph's assertions, not a stack trace."""
    config, path, _ = tiny
    with SessionModel(path) as session:
        for what, inputs, fragments, in_graph in bad_cases(config):
            if not in_graph:
                continue
            with pytest.raises(tf.errors.InvalidArgumentError) as e:
                session.run(inputs)
            _assert_names(what, e.value.message, fragments)
        assert session.run(good_inputs(config))["logits"].shape == (2, 12)


def test_unknown_model_or_version_is_not_found_naming_what_is_served(tiny):
    config, _, server = tiny
    good = good_inputs(config)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for model, version, fragments in (
        ("nope", None, ["'nope'", "['vqa']"]),
        ("vqa", 9, ["Specific(vqa, 9)", "loaded versions: [1]"]),
    ):
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(predict_request(model, good, version=version), timeout=60)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, (model, e.value.details())
        _assert_names(model, e.value.details(), fragments)
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
        body = json.dumps({"inputs": {k: v.tolist() for k, v in good.items()}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=body)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=60)
        assert e.value.code == 404, path
        _assert_names(path, json.load(e.value)["error"], fragments)
    channel.close()
