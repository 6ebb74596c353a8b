"""The input pipeline alone: examples/s from sharded TFRecords (the data helper's
``bench/pipeline.py`` when it is there)."""

from __future__ import annotations

import importlib


def run_pipeline(smoke: bool) -> dict:
    try:
        pipeline = importlib.import_module("bench.pipeline")
    except ImportError as e:
        return {"status": "skipped", "reason": f"not available: bench/pipeline.py ({e})"}
    if not hasattr(pipeline, "measure"):
        return {"status": "skipped", "reason": "not available: bench/pipeline.py has no measure()"}
    from bench.common import load_average, peak_rss_mb

    return {
        **pipeline.measure(smoke=smoke),
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }
