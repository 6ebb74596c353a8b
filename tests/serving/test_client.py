"""ServingClient over both protocols: padding to the model's n, equal results, clear errors."""

import grpc
import numpy as np
import pytest

from mmnas_tf.devserver.client import ServingClient, ServingClientError


@pytest.fixture(params=["grpc", "rest"])
def protocol(request):
    return request.param


def make_client(served, model_name, protocol, **kwargs):
    target = served.rest_target if protocol == "rest" else served.grpc_target
    return ServingClient(target, model_name, rest=protocol == "rest", **kwargs)


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_client_pads_regions_and_matches_in_process(served, helpers, protocol, task):
    model = served.models[task]
    full = model.example_inputs(2, regions=4)
    short = {
        **full,
        "image_features": full["image_features"][:, :4],
        "boxes": full["boxes"][:, :4],
        "text_ids": full["text_ids"][:, :9],
    }
    with make_client(served, task, protocol) as client:
        got = client.predict(short)
    want = {k: v.numpy() for k, v in model(full).items()}
    helpers.assert_outputs_equal(got, want)


def test_client_reads_signatures(served, protocol):
    with make_client(served, "vg", protocol) as client:
        signatures = client.signatures()
    assert set(signatures) == {"serving_default", "predict_text"}
    spec = signatures["serving_default"]
    assert spec.inputs["image_features"].shape == (
        None,
        served.models["vg"].n,
        served.models["vg"].d,
    )
    assert spec.inputs["image_size"].dtype.name == "float32"
    assert set(spec.outputs) == {"object_scores", "box_deltas", "box", "object_index"}


def test_client_refuses_too_many_regions_unless_truncating(served, protocol):
    model = served.models["vqa"]
    inputs = model.example_inputs(1)
    more = {
        **inputs,
        "image_features": np.concatenate([inputs["image_features"]] * 2, 1),
        "boxes": np.concatenate([inputs["boxes"]] * 2, 1),
    }
    with make_client(served, "vqa", protocol) as client:
        with pytest.raises(ValueError, match=f"image_features.*at most {model.n}"):
            client.predict(more)
        got = client.predict(more, truncate=True)
    np.testing.assert_allclose(got["logits"], model(inputs)["logits"].numpy(), rtol=1e-5, atol=1e-6)


def test_client_errors_carry_status(served, protocol):
    inputs = served.models["vqa"].example_inputs(1)
    with make_client(served, "nope", protocol) as client:
        with pytest.raises(ServingClientError) as e:
            client.predict(inputs)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "nope" in e.value.message
    with make_client(served, "vqa", protocol, version=3) as client:
        with pytest.raises(ServingClientError) as e:
            client.signatures()
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with make_client(served, "vqa", protocol) as client:
        with pytest.raises(ServingClientError) as e:
            client.predict(inputs, signature_name="nope")
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        nan = {**inputs, "boxes": np.full_like(inputs["boxes"], np.inf)}
        with pytest.raises(ServingClientError) as e:
            client.predict(nan)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "boxes" in e.value.message


def test_client_unreachable_server(helpers, protocol):
    port = helpers.free_port()
    with ServingClient(f"127.0.0.1:{port}", "vqa", rest=protocol == "rest", timeout=2) as client:
        with pytest.raises(ServingClientError) as e:
            client.signatures()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_predict_text_equals_client_side_tokenisation(served, helpers, protocol):
    from mmnas_tf.text import Vocabulary, encode, tokenize

    model = served.models["vqa"]
    vocab = Vocabulary(helpers.VOCAB)
    questions = helpers.QUESTIONS
    image = model.example_inputs(len(questions))
    ids = np.stack([encode(tokenize(q), vocab, model.m) for q in questions])
    with make_client(served, "vqa", protocol) as client:
        by_text = client.predict(
            {"text": questions, "image_features": image["image_features"], "boxes": image["boxes"]},
            signature_name="predict_text",
        )
        by_ids = client.predict({**image, "text_ids": ids})
    np.testing.assert_array_equal(by_text["logits"], by_ids["logits"])
    assert by_text["top_answers"].tolist() == by_ids["top_answers"].tolist()
