"""gRPC PredictionService / ModelService with the official stubs: equality, metadata, errors."""

from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from mmnas_tf.serving.protos import predict_request


@pytest.fixture(scope="module")
def stub(served):
    channel = grpc.insecure_channel(served.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def outputs_of(response) -> dict:
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_predict_equals_in_process(served, helpers, stub, task):
    model = served.models[task]
    inputs = model.example_inputs(4, regions=model.n // 2)
    response = stub.Predict(predict_request(task, inputs), timeout=30)
    want = {k: v.numpy() for k, v in model(inputs).items()}
    got = outputs_of(response)
    helpers.assert_outputs_equal(got, want)
    assert response.model_spec.name == task
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_output_filter(served, stub):
    inputs = served.models["vqa"].example_inputs(1)
    response = stub.Predict(predict_request("vqa", inputs, output_filter=("top_answers",)))
    assert set(response.outputs) == {"top_answers"}
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(predict_request("vqa", inputs, output_filter=("nope",)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nope" in e.value.details()


def test_metadata_returns_signature_defs(served, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "vqa"
    response = stub.GetModelMetadata(request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    default = signature_map.signature_def["serving_default"]
    assert set(default.inputs) == {"text_ids", "image_features", "boxes"}
    assert set(default.outputs) == {"logits", "top_answers", "top_scores"}
    assert default.inputs["text_ids"].dtype == tf.int32.as_datatype_enum
    assert [d.size for d in default.inputs["text_ids"].tensor_shape.dim] == [-1, 14]
    text = signature_map.signature_def["predict_text"]
    assert text.inputs["text"].dtype == tf.string.as_datatype_enum
    assert response.model_spec.version.value == 1
    request.metadata_field[:] = ["something_else"]
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModelMetadata(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_model_status(served):
    with grpc.insecure_channel(served.grpc_target) as channel:
        status_stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "vg"
        response = status_stub.GetModelStatus(request)
    [entry] = response.model_version_status
    assert entry.version == 1
    assert entry.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def _bad(served):
    model = served.models["vqa"]
    good = model.example_inputs(2)
    nan = good["image_features"].copy()
    nan[0, 0, 0] = np.nan
    cases = [
        ("nope", good, {}, grpc.StatusCode.NOT_FOUND, "nope"),
        ("vqa", good, {"version": 9}, grpc.StatusCode.NOT_FOUND, "9"),
        ("vqa", good, {"signature_name": "nope"}, grpc.StatusCode.FAILED_PRECONDITION, "nope"),
        (
            "vqa",
            {k: v for k, v in good.items() if k != "text_ids"},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "text_ids",
        ),
        (
            "vqa",
            {**good, "boxes": good["boxes"].astype(np.float64)},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "float32",
        ),
        (
            "vqa",
            {**good, "text_ids": good["text_ids"].astype(np.int64)},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "int32",
        ),
        (
            "vqa",
            {**good, "text_ids": good["text_ids"][0]},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "rank 2",
        ),
        (
            "vqa",
            {**good, "boxes": good["boxes"][:1]},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "batch",
        ),
        (
            "vqa",
            {**good, "image_features": good["image_features"][:, :-1]},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "too few",
        ),
        ("vqa", {**good, "image_features": nan}, {}, grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
        (
            "vqa",
            {**good, "text_ids": np.zeros([2, 30], np.int32)},
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "too many",
        ),
    ]
    return cases


def test_bad_requests_get_status_codes_and_server_keeps_serving(served, stub):
    good = served.models["vqa"].example_inputs(2)
    for name, inputs, spec, code, fragment in _bad(served):
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(predict_request(name, inputs, **spec), timeout=30)
        assert e.value.code() == code, (fragment, e.value.details())
        assert fragment.lower() in e.value.details().lower(), e.value.details()
        assert stub.Predict(predict_request("vqa", good), timeout=30).outputs["logits"]


def test_malformed_tensor_proto(served, stub):
    request = predict_request("vqa", served.models["vqa"].example_inputs(1))
    request.inputs["boxes"].tensor_content = b"\x00\x01\x02"  # not a multiple of 4 bytes x shape
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "boxes" in e.value.details()


def test_large_message_within_limit(served, stub):
    """32 x n x d float32 grows with the model; the default 4 MB gRPC limit must not apply."""
    model = served.models["vqa"]
    inputs = model.example_inputs(2)
    big = predict_request("vqa", inputs)
    big.inputs["padding_probe"].CopyFrom(
        tf.make_tensor_proto(np.zeros([6 * 1024 * 1024 // 4], np.float32))
    )
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(big)
    # Received and validated (an unexpected input), not refused as RESOURCE_EXHAUSTED by gRPC.
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()


def test_concurrent_requests_on_one_loaded_model(served, stub):
    """No batching: gRPC worker threads call the same restored signature at once."""
    model = served.models["vg"]
    inputs = [model.example_inputs(1 + i % 3, seed=i, regions=3 + i) for i in range(8)]
    with futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda x: stub.Predict(predict_request("vg", x)), inputs))
    for x, response in zip(inputs, responses):
        got = outputs_of(response)
        np.testing.assert_allclose(
            got["object_scores"], model(x)["object_scores"].numpy(), rtol=1e-5, atol=1e-5
        )
        np.testing.assert_array_equal(got["object_index"], model(x)["object_index"].numpy())
