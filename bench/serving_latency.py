"""Serving latency of the exported SavedModel, beside the original's eager forward.

``python -m bench.run --entries=serving_latency [--original_src=DIR] --out=serving.json``

MMnasNet-VQA (paper size: d=512, the published genotype, 14 tokens, up to 100 regions x 2048-d
features, random weights) is exported with ``mmnas_tf.serving.export.export_saved_model`` and
timed on requests whose images have region counts uniform in 10-100 (a batch-8 request is padded
to its own largest count, as a client sends it; the signature takes any count up to 100):

- ``in_process``: the ``serving_default`` signature of the SavedModel loaded in this process, at
  batch 1 and batch 8;
- ``grpc``: the same requests through the development server (``mmnas_tf.serve``, a subprocess;
  in this process with ``--smoke``) over gRPC with the client of ``mmnas_tf.devserver.client``
  (TF Serving's own PredictionService stubs), one client, server-side batching off;
- ``original``: the original code's eager forward (``net.eval()``, ``torch.no_grad()``) at batch 1
  on the same examples padded to 100 regions as its loader does, in a worker process of its own
  (``bench.original``), interleaved request by request with ``in_process`` at batch 1; needs
  ``--original_src`` and torch, else a skip line;
- ``throughput``: 8 concurrent gRPC clients sending batch-1 requests, server-side batching off and
  on (``BATCHING_PARAMETERS``), once with each request at its own region count (the batcher merges
  only requests of one shape) and once with every request padded to 100 regions (all mergeable).

Every request is run once untimed first (oneDNN and torch build their kernels per shape), so the
percentiles are of warm requests. Latencies in milliseconds: p50, p99, mean over ``requests``
timed requests (a pool of distinct requests, cycled). ``b1_speed_over_original_p50`` is the
original's p50 over ours in process at batch 1 (the target: >= 2).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from bench.common import load_average, peak_rss_mb, timed
from bench.model_step import PAPER, SMOKE, BenchSize, make_batch
from bench.original import MIN_REGIONS, original_arrays, unavailable
from bench.serving_load import BATCHING_PARAMETERS, Server, build_and_export, run_cell

BATCHES = (1, 8)
#: Requests timed per (path, batch) and per throughput cell; distinct requests cycled through.
REQUESTS = 200
DISTINCT = 50
CLIENTS = 8
#: --smoke: enough requests for a p99 to exist, seconds in all.
SMOKE_REQUESTS = 16
SMOKE_DISTINCT = 8
#: The 2x target of docs/performance.md: the original's p50 over ours (in process, batch 1).
TARGET = 2.0


def skip_line(reason: str) -> str:
    """The one line saying why the original's forward is not timed (``bench.original``'s reason)."""
    return f"[bench] serving_latency: the original's forward {reason.removeprefix('original: ')}"


def latency_ms(seconds: list[float]) -> dict:
    """p50, p99 and mean in milliseconds, and the count, of ``seconds`` (>= 1 value)."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "n": int(ms.size),
    }


def region_counts(size: BenchSize, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` region counts uniform in 10-100 (scaled to ``size.max_regions``)."""
    low = max(1, round(size.max_regions * MIN_REGIONS / 100))
    return rng.integers(low, size.max_regions + 1, count)


def make_requests(size: BenchSize, batch: int, count: int, seed: int) -> list[tuple[dict, dict]]:
    """``count`` requests of ``batch`` examples, each example with its own region count, padded
    to the request's largest count: (inputs, targets) as tensors (targets feed the original)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        counts = region_counts(size, batch, rng)
        out.append(make_batch(size, batch, rng, int(counts.max()), counts))
    return out


def mean_regions(requests: list) -> float:
    """Mean number of real (non-zero) regions per example of ``requests``."""
    real = [np.abs(x["image_features"].numpy()).sum(-1) > 0 for x, _ in requests]
    return float(np.mean(np.concatenate([r.sum(-1) for r in real])))


def _numpy(inputs: dict, pad_to: int | None = None) -> dict:
    """A gRPC request's arrays; ``pad_to``: regions zero-padded to that count."""
    arrays = {k: v.numpy() for k, v in inputs.items()}
    if pad_to:
        for key in ("image_features", "boxes"):
            a = arrays[key]
            arrays[key] = np.pad(a, [(0, 0), (0, pad_to - a.shape[1]), (0, 0)])
    return arrays


def in_process(signature, requests: list, count: int, original=None, keys=()) -> tuple:
    """Times ``count`` calls of ``signature`` cycling through ``requests`` (each run once untimed
    first); with ``original`` (a ``bench.original.Worker`` holding ``keys``), its eval forward on
    the same request right after each of ours. Returns (our seconds, the original's)."""
    call = lambda x: {k: v.numpy() for k, v in signature(**x).items()}  # noqa: E731
    for i, (x, _) in enumerate(requests):
        call(x)
        if original is not None:
            original.run("eval", keys[i])
    ours, theirs = [], []
    for i in range(count):
        x = requests[i % len(requests)][0]
        ours.append(timed(lambda x=x: call(x)))
        if original is not None:
            theirs.append(original.run("eval", keys[i % len(requests)]))
    return ours, theirs


def _original_worker(src: str, smoke: bool, threads: int, requests: list, tmp: str):
    """The original's worker (its own smoke size: its heads are 64 wide) holding ``requests``
    padded to n, and their keys."""
    from bench.original import SMOKE as ORIGINAL_SMOKE
    from bench.original import Worker, check_src

    check_src(src)
    worker = Worker(src, ORIGINAL_SMOKE if smoke else PAPER, threads)
    keys = [f"serve_{i}" for i in range(len(requests))]
    n = (SMOKE if smoke else PAPER).max_regions
    for key, (x, y) in zip(keys, requests):
        worker.load(key, original_arrays(x, y, n), tmp)
    return worker, keys


def _grpc_latency(server, requests_by_batch: dict, count: int) -> dict:
    """Latency per batch size through ``server``, one client (every request once untimed first)."""
    latency = {}
    for batch, requests in requests_by_batch.items():
        inputs = [_numpy(x) for x, _ in requests]
        run_cell(server.port, inputs, 1, len(inputs), 600.0)
        latency[f"b{batch}"] = run_cell(server.port, inputs, 1, count, 3600.0)
    return latency


def _throughput(server, requests: list, count: int, n: int, batching: bool) -> dict:
    """8 clients x ``count // 8`` batch-1 requests, at their own region count and padded to n."""
    out = {}
    for shapes, pad in (("own_region_count", None), ("padded_to_max", n)):
        inputs = [_numpy(x, pad) for x, _ in requests]
        run_cell(server.port, inputs, 1, len(inputs), 600.0)  # every shape once, untimed
        run_cell(server.port, inputs, CLIENTS, 1, 600.0)  # every client's connection
        cell = run_cell(server.port, inputs, CLIENTS, max(1, count // CLIENTS), 3600.0)
        out[shapes] = {**cell, "server_batching": batching}
    return out


def run_serving_latency(
    smoke: bool, original_src: str = "", threads: int = 0, requests: int | None = None
) -> dict:
    """The entry: see the module docstring. ``requests`` per cell (default 200; smoke 16)."""
    import tensorflow as tf

    size = SMOKE if smoke else PAPER
    count = requests or (SMOKE_REQUESTS if smoke else REQUESTS)
    distinct = min(count, SMOKE_DISTINCT if smoke else DISTINCT)
    threads = threads or os.cpu_count() or 1
    by_batch = {b: make_requests(size, b, distinct, seed=b) for b in BATCHES}
    out: dict = {"status": "ok", "size": size.name, "requests": count, "distinct": distinct}
    low = max(1, round(size.max_regions * MIN_REGIONS / 100))
    mean = {f"b{b}": mean_regions(r) for b, r in by_batch.items()}
    out["regions"] = {"uniform_in": [low, size.max_regions], "mean_per_example": mean}
    reason = unavailable(original_src)
    if reason:
        out["original"] = {"status": "skipped", "reason": reason}
        print(skip_line(reason), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "vqa")
        out["model"] = build_and_export(smoke, base)
        signature = tf.saved_model.load(os.path.join(base, "1")).signatures["serving_default"]
        worker = keys = None
        if reason is None:
            worker, keys = _original_worker(original_src, smoke, threads, by_batch[1], tmp)
        try:
            ours, theirs = in_process(signature, by_batch[1], count, worker, keys or ())
            out["in_process"] = {"b1": latency_ms(ours)}
            if worker is not None:
                out["original"] = {
                    "status": "ok",
                    "b1": latency_ms(theirs),
                    "torch": worker.info["torch"],
                    "threads": worker.info["threads"],
                    "padded_regions": size.max_regions,
                    "process": "the original in a worker process of its own; its forward is "
                    "timed there, interleaved request by request with ours",
                }
        finally:
            if worker is not None:
                worker.close()
        for b in BATCHES[1:]:
            out["in_process"][f"b{b}"] = latency_ms(in_process(signature, by_batch[b], count)[0])
        del signature
        batching_file = os.path.join(tmp, "batching_parameters.txt")
        with open(batching_file, "w", encoding="utf-8") as f:
            f.write(BATCHING_PARAMETERS)
        out["batching_parameters"] = BATCHING_PARAMETERS
        out["throughput"] = {}
        for batching in (False, True):
            server = Server(base, batching_file if batching else None, in_process=smoke)
            try:
                server.wait_ready()
                if not batching:
                    out["grpc"] = _grpc_latency(server, by_batch, count)
                cells = _throughput(server, by_batch[1], count, size.max_regions, batching)
                out["throughput"]["batching_on" if batching else "batching_off"] = cells
            finally:
                server.stop()
    cells = [*out["grpc"].values()] + [c for t in out["throughput"].values() for c in t.values()]
    out["failed_requests"] = sum(c["failed"] for c in cells)
    out["server"] = (
        "in this process (--smoke)" if smoke else "python -m mmnas_tf.serve, a subprocess"
    )
    orig = out["original"].get("b1")
    out["b1_speed_over_original_p50"] = (
        orig["p50"] / out["in_process"]["b1"]["p50"] if orig else None
    )
    out["target_b1_speed_over_original_p50"] = TARGET
    out["threads"] = {"torch": threads, "tensorflow_intra_op": _intra_op()}
    out["load_average_1min"] = load_average()
    out["peak_rss_mb"] = peak_rss_mb()
    out["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


def _intra_op() -> int:
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()
