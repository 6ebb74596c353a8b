"""Server-side batching: parameter files, merging, splitting, padding, error isolation."""

import threading
from concurrent import futures

import numpy as np
import pytest

from mmnas_tf.devserver.batching import Batcher, BatchingOptions, parse_batching_parameters
from mmnas_tf.devserver.client import ServingClient, ServingClientError

# A timeout far longer than any test: a batch then runs only when it is full, so the number of
# merged calls is deterministic.
NEVER = 120_000_000


def test_parse_batching_parameters():
    options = parse_batching_parameters("""
        max_batch_size { value: 16 }   # comment
        batch_timeout_micros { value: 500 }
        max_enqueued_batches { value: 4 }
        num_batch_threads { value: 3 }
        pad_variable_length_inputs: true
        thread_pool_name { value: "mmnas" }
        allowed_batch_sizes: 4
        allowed_batch_sizes: 16
    """)
    assert options == BatchingOptions(16, 500, 4, 3, (4, 16))
    with pytest.raises(ValueError, match="max_batch_sizes"):
        parse_batching_parameters("max_batch_sizes { value: 3 }")
    with pytest.raises(ValueError, match="integer"):
        parse_batching_parameters("max_batch_size { value: many }")
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        parse_batching_parameters("max_batch_size { value: 8 } allowed_batch_sizes: 4")


class Recorder:
    def __init__(self, fail=False):
        self.sizes, self.fail, self.lock = [], fail, threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.sizes.append(len(inputs["x"]))
        if self.fail:
            raise RuntimeError("model broke")
        return {"y": inputs["x"] * 2, "z": inputs["x"].sum(-1)}


def run_concurrently(batcher, requests):
    with futures.ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(batcher.submit, requests))


def test_requests_are_merged_and_split_back():
    record = Recorder()
    batcher = Batcher(record, BatchingOptions(max_batch_size=8, batch_timeout_micros=NEVER))
    requests = [{"x": np.full([rows, 3], i, np.float32)} for i, rows in enumerate([1, 3, 2, 2])]
    try:
        results = run_concurrently(batcher, requests)
    finally:
        batcher.close()
    assert record.sizes == [8]
    for request, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)
        np.testing.assert_array_equal(result["z"], request["x"].sum(-1))


def test_only_same_shapes_merge_and_oversized_runs_alone():
    record = Recorder()
    batcher = Batcher(record, BatchingOptions(max_batch_size=4, batch_timeout_micros=NEVER))
    requests = [
        {"x": np.ones([2, 3], np.float32)},
        {"x": np.ones([2, 5], np.float32)},
        {"x": np.ones([2, 3], np.float32)},
        {"x": np.ones([2, 5], np.float32)},
    ]
    try:
        results = run_concurrently(batcher, requests)
        big = batcher.submit({"x": np.ones([9, 3], np.float32)})
    finally:
        batcher.close()
    assert sorted(record.sizes) == [4, 4, 9]
    assert [r["y"].shape for r in results] == [(2, 3), (2, 5), (2, 3), (2, 5)]
    assert big["y"].shape == (9, 3)


def test_allowed_batch_sizes_pad_and_drop():
    record = Recorder()
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=(4, 8))
    batcher = Batcher(record, options)
    try:
        result = batcher.submit({"x": np.arange(9, dtype=np.float32).reshape(3, 3)})
    finally:
        batcher.close()
    assert record.sizes == [4]
    np.testing.assert_array_equal(result["y"], np.arange(9).reshape(3, 3) * 2)


def test_a_failing_batch_fails_each_of_its_requests():
    batcher = Batcher(
        Recorder(fail=True), BatchingOptions(max_batch_size=2, batch_timeout_micros=NEVER)
    )
    try:
        with futures.ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(batcher.submit, {"x": np.ones([1, 2])}) for _ in range(2)]
            for job in jobs:
                with pytest.raises(RuntimeError, match="model broke"):
                    job.result()
    finally:
        batcher.close()


@pytest.fixture(scope="module")
def served_batched(tmp_path_factory, helpers):
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=NEVER, num_batch_threads=2)
    s = helpers.start_server(tmp_path_factory.mktemp("batched"), batching=options)
    yield s
    s.server.stop()


@pytest.mark.parametrize("rest", [False, True])
def test_concurrent_clients_get_their_own_rows(served_batched, rest):
    model = served_batched.models["vqa"]
    servable = served_batched.server.repository.get("vqa")
    before = servable.batches_run()
    target = served_batched.rest_target if rest else served_batched.grpc_target
    inputs = [model.example_inputs(rows, seed=i) for i, rows in enumerate([1, 2, 1, 3, 1])]

    def ask(x):
        with ServingClient(target, "vqa", rest=rest) as client:
            return client.predict(x)

    with futures.ThreadPoolExecutor(len(inputs)) as pool:
        results = list(pool.map(ask, inputs))
    assert servable.batches_run() - before == 1  # 8 rows: one full batch
    for x, got in zip(inputs, results):
        np.testing.assert_allclose(got["logits"], model(x)["logits"].numpy(), rtol=1e-5, atol=1e-6)


def test_a_bad_request_does_not_poison_a_batch(served_batched):
    model = served_batched.models["itm"]
    good = [model.example_inputs(4, seed=s) for s in (1, 2)]
    bad = {**good[0], "image_features": np.full_like(good[0]["image_features"], np.nan)}

    def ask(x):
        with ServingClient(served_batched.grpc_target, "itm") as client:
            try:
                return client.predict(x)
            except ServingClientError as e:
                return e

    with futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(ask, [good[0], bad, good[1]]))
    assert isinstance(results[1], ServingClientError) and "NaN" in results[1].message
    for x, got in zip(good, (results[0], results[2])):
        np.testing.assert_allclose(got["score"], model(x)["score"].numpy(), rtol=1e-5)
