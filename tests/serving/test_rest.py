"""REST API over real sockets: row and columnar formats equal in-process calls; errors; status."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest


def call(target: str, path: str, body=None, raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        f"http://{target}{path}", data=data, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def expected(model, inputs):
    return {k: v.numpy() for k, v in model(inputs).items()}


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_columnar_predict_equals_in_process(served, helpers, task):
    model = served.models[task]
    inputs = model.example_inputs(3, regions=model.n - 3)
    status, body = call(
        served.rest_target,
        f"/v1/models/{task}:predict",
        {"inputs": {k: v.tolist() for k, v in inputs.items()}},
    )
    assert status == 200, body
    want = expected(model, inputs)
    got = body["outputs"] if len(want) > 1 else {next(iter(want)): body["outputs"]}
    helpers.assert_outputs_equal(got, want)


def test_row_predict_equals_in_process(served, helpers):
    model = served.models["vqa"]
    inputs = model.example_inputs(2)
    instances = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
    status, body = call(
        served.rest_target, "/v1/models/vqa/versions/1:predict", {"instances": instances}
    )
    assert status == 200, body
    assert len(body["predictions"]) == 2
    want = expected(model, inputs)
    got = {k: [p[k] for p in body["predictions"]] for k in want}
    helpers.assert_outputs_equal(got, want)


def test_single_output_row_format_is_a_plain_list(served):
    inputs = served.models["itm"].example_inputs(2)
    instances = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
    status, body = call(served.rest_target, "/v1/models/itm:predict", {"instances": instances})
    assert status == 200
    np.testing.assert_allclose(
        body["predictions"], expected(served.models["itm"], inputs)["score"], rtol=1e-5
    )


def test_predict_text_over_rest(served, helpers):
    model = served.models["vqa"]
    inputs = model.example_inputs(1)
    ids = np.zeros([1, model.m], np.int32)
    ids[0, :3] = [3, 7, 1]  # what cat UNK
    inputs["text_ids"] = ids
    body = {
        "signature_name": "predict_text",
        "inputs": {
            "text": ["What... CAT? zebra!"],
            "image_features": inputs["image_features"].tolist(),
            "boxes": inputs["boxes"].tolist(),
        },
    }
    status, reply = call(served.rest_target, "/v1/models/vqa:predict", body)
    assert status == 200, reply
    outputs = dict(reply["outputs"])
    assert outputs.pop("truncated_tokens") == [0]  # 3 words, all read
    helpers.assert_outputs_equal(outputs, expected(model, inputs))


def test_status_and_metadata(served):
    status, body = call(served.rest_target, "/v1/models/vqa")
    assert status == 200
    assert body["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    status, body = call(served.rest_target, "/v1/models/vg/metadata")
    assert status == 200
    signatures = body["metadata"]["signature_def"]["signature_def"]
    inputs = signatures["serving_default"]["inputs"]
    assert set(inputs) == {"text_ids", "image_features", "boxes", "image_size"}
    assert inputs["image_features"]["dtype"] == "DT_FLOAT"
    dims = [int(d["size"]) for d in inputs["image_features"]["tensor_shape"]["dim"]]
    assert dims == [-1, served.models["vg"].n, served.models["vg"].d]
    assert "predict_text" in signatures
    assert body["model_spec"]["version"] == "1"


def _good(served, task="vqa"):
    return {k: v.tolist() for k, v in served.models[task].example_inputs(1).items()}


def _bad_requests(served):
    n, d = served.models["vqa"].n, served.models["vqa"].d
    good = _good(served)
    return [
        ("/v1/models/nope:predict", {"inputs": good}, 404, "nope"),
        ("/v1/models/vqa/versions/7:predict", {"inputs": good}, 404, "7"),
        ("/v1/models/vqa/labels/stable:predict", {"inputs": good}, 400, "stable"),
        ("/v1/models/vqa:predict", {"inputs": {**good, "extra": [1]}}, 400, "extra"),
        (
            "/v1/models/vqa:predict",
            {"inputs": {k: v for k, v in good.items() if k != "boxes"}},
            400,
            "boxes",
        ),
        ("/v1/models/vqa:predict", {"inputs": {**good, "text_ids": [["a"] * 14]}}, 400, "text_ids"),
        ("/v1/models/vqa:predict", {"inputs": {**good, "text_ids": [[1.5] * 14]}}, 400, "text_ids"),
        ("/v1/models/vqa:predict", {"inputs": {**good, "boxes": good["boxes"][0]}}, 400, "rank"),
        (
            "/v1/models/vqa:predict",
            {"inputs": {**good, "text_ids": good["text_ids"] * 2}},
            400,
            "batch",
        ),
        ("/v1/models/vqa:predict", {"inputs": {**good, "text_ids": [[3] * 20]}}, 400, "too many"),
        (
            "/v1/models/vqa:predict",
            {"inputs": {**good, "image_features": [[[0.5] * d] * (n + 1)]}},
            400,
            "regions",
        ),
        (
            "/v1/models/vqa:predict",
            {"inputs": {**good, "image_features": [[[float("nan")] * d] * n]}},
            400,
            "NaN",
        ),
        (
            "/v1/models/vqa:predict",
            {"inputs": {**good, "boxes": [[[1, 2, 3]] * n]}},
            400,
            "3 coordinates",
        ),
        ("/v1/models/vqa:predict", {"inputs": good, "signature_name": "nope"}, 400, "nope"),
        ("/v1/models/vqa:predict", {"instances": [], "inputs": good}, 400, "exactly one"),
        ("/v1/models/vqa:predict", {"instances": [good, {"text_ids": [1]}]}, 400, "same inputs"),
    ]


def test_bad_requests_get_errors_and_server_keeps_serving(served):
    for path, body, status, fragment in _bad_requests(served):
        got, reply = call(served.rest_target, path, body)
        assert got == status, (path, reply)
        assert fragment.lower() in reply["error"].lower(), (fragment, reply["error"])
        ok, _ = call(served.rest_target, "/v1/models/vqa:predict", {"inputs": _good(served)})
        assert ok == 200


def test_malformed_bodies_and_paths(served):
    assert call(served.rest_target, "/v1/models/vqa:predict", raw=b"{not json")[0] == 400
    assert call(served.rest_target, "/v1/models/vqa:predict", raw=b"[1, 2]")[0] == 400
    status, body = call(served.rest_target, "/v2/whatever")
    assert status == 404 and "/v1/models/" in body["error"]
    ragged = {"inputs": {**_good(served), "text_ids": [[1, 2], [3]]}}
    status, body = call(served.rest_target, "/v1/models/vqa:predict", ragged)
    assert status == 400 and "text_ids" in body["error"]
