"""Serving load: N concurrent gRPC clients against ``mmnas_tf.serve`` on loopback.

    python -m bench.serving_load --out=serving_load.json           # paper-size MMnasNet-VQA
    python -m bench.serving_load --out=serving_load.json --smoke   # seconds, tiny model (CI)

The model is MMnasNet-VQA built by ``mmnas_tf`` at paper size (d=512, the published genotype, 100
regions x 2048-d features, 14 tokens, random weights), exported with
``mmnas_tf.serving.export.export_saved_model``. The server runs as a subprocess
(``python -m mmnas_tf.serve``) once without and once with server-side batching; for each, every
client sends a bounded number of requests of batch 1, then of batch 8 (all 100 regions real).
The report gives p50/p99 latency, requests/s and examples/s per cell, and the failed-request count,
which must be zero (the script exits 1 otherwise). Bounded: at most ``--max_seconds`` per cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bench.common import load_average, machine

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH_SIZES = (1, 8)
BATCHING_PARAMETERS = """max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
"""


def build_and_export(smoke: bool, base: str) -> dict:
    """Exports MMnasNet-VQA (paper or smoke size) to ``base/1``; returns its description."""
    from bench.model_step import PAPER, SMOKE
    from mmnas_tf.serving.export import export_saved_model
    from mmnas_tf.tasks import get_task

    size = SMOKE if smoke else PAPER
    task = get_task("vqa")
    config = size.model_config(task)
    model = task.build_model(config.replace(num_answers=size.num_answers))
    start = time.perf_counter()
    export_saved_model(model, "vqa", config, base, 1)
    return {
        "model": f"MMnasNet-VQA ({size.name} size, mmnas_tf code, random weights)",
        "hidden_size": config.hidden_size,
        "genotype": str(config.genotype),
        "parameters": int(model.count_params()),
        "max_tokens": config.max_tokens,
        "max_regions": config.max_regions,
        "feature_size": config.feature_size,
        "export_seconds": round(time.perf_counter() - start, 1),
    }


def request_inputs(info: dict, batch: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    m, n, d = info["max_tokens"], info["max_regions"], info["feature_size"]
    ids = rng.integers(3, 100, (batch, m)).astype(np.int32)
    ids[:, m // 2 :] = 0
    xy = rng.uniform(0, 400, (batch, n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 200, (batch, n, 2))], -1)
    return {
        "text_ids": ids,
        "image_features": rng.random((batch, n, d), dtype=np.float32),
        "boxes": boxes.astype(np.float32),
    }


class Server:
    """``python -m mmnas_tf.serve`` as a subprocess (or in this process with ``in_process``)."""

    def __init__(self, base: str, batching_file: str | None, in_process: bool):
        from mmnas_tf.devserver.batching import parse_batching_parameters
        from mmnas_tf.devserver.server import ModelServer, single_model_config

        self.process = self.server = None
        if in_process:
            batching = parse_batching_parameters(BATCHING_PARAMETERS) if batching_file else None
            self.server = ModelServer(
                single_model_config("vqa", base),
                grpc_port=0,
                rest_port=None,
                batching=batching,
                poll_wait_seconds=0,
            )
            self.port = self.server.start().grpc_port
            return
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [
            sys.executable,
            "-m",
            "mmnas_tf.serve",
            f"--port={self.port}",
            "--rest_api_port=0",
            "--model_name=vqa",
            f"--model_base_path={base}",
            "--file_system_poll_wait_seconds=0",
        ]
        if batching_file:
            args += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
        env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 300.0) -> None:
        from mmnas_tf.devserver.client import ServingClient

        def exited() -> str | None:
            if self.process is not None and self.process.poll() is not None:
                return f"server exited with {self.process.returncode}"
            return None

        with ServingClient(f"127.0.0.1:{self.port}", "vqa", timeout=10) as client:
            client.wait_until_available(timeout, abort=exited)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)


def run_cell(
    port: int, inputs: list[dict], clients: int, requests_per_client: int, max_seconds: float
) -> dict:
    """Every client thread sends ``requests_per_client`` predicts (until ``max_seconds``)."""
    from mmnas_tf.devserver.client import ServingClient

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client_loop(index: int) -> None:
        with ServingClient(f"127.0.0.1:{port}", "vqa", timeout=300) as client:
            client.signatures()
            for i in range(requests_per_client):
                if time.monotonic() > deadline:
                    return
                start = time.perf_counter()
                try:
                    out = client.predict(inputs[(index + i) % len(inputs)])
                    assert out["logits"].shape[0] == inputs[0]["text_ids"].shape[0]
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        failures.append(f"{type(e).__name__}: {e}"[:300])
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    batch = inputs[0]["text_ids"].shape[0]
    done = len(latencies)
    ms = np.array(latencies) * 1000 if latencies else np.zeros([1])
    return {
        "batch": batch,
        "clients": clients,
        "requests": done,
        "failed": len(failures),
        "failures": failures[:5],
        "wall_seconds": round(wall, 3),
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "mean": round(float(ms.mean()), 2),
        },
        "requests_per_second": round(done / wall, 2),
        "examples_per_second": round(done * batch / wall, 2),
        "load_average_1min": load_average(),
    }


def measure(smoke: bool) -> dict:
    clients = 2 if smoke else 4
    per_client = {1: 4, 8: 2} if smoke else {1: 8, 8: 3}
    max_seconds = 20.0 if smoke else 120.0
    report = {"smoke": smoke, "machine": machine(), "cells": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "vqa")
        report["model"] = info = build_and_export(smoke, base)
        batching_file = os.path.join(tmp, "batching_parameters.txt")
        with open(batching_file, "w", encoding="utf-8") as f:
            f.write(BATCHING_PARAMETERS)
        report["batching_parameters"] = BATCHING_PARAMETERS
        for batching in (False, True):
            server = Server(base, batching_file if batching else None, in_process=smoke)
            try:
                server.wait_ready()
                for batch in BATCH_SIZES:
                    inputs = [request_inputs(info, batch, seed) for seed in range(clients)]
                    run_cell(server.port, inputs, 1, 1, max_seconds)  # warm the connection
                    cell = run_cell(server.port, inputs, clients, per_client[batch], max_seconds)
                    cell["server_batching"] = batching
                    report["cells"].append(cell)
                    print(json.dumps(cell), flush=True)
            finally:
                server.stop()
    report["failed_requests"] = sum(c["failed"] for c in report["cells"])
    report["zero_failed_requests"] = report["failed_requests"] == 0
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path (default: print only)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, in-process server (CI)")
    args = parser.parse_args(argv)
    report = measure(args.smoke)
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text if not args.out else f"report written to {args.out}")
    return 0 if report["zero_failed_requests"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
