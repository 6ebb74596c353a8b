"""Realistic region counts: padding every image to 100 regions versus bucketing by region count,
and the retracing check (trace counts constant over 50 steps of varying batch content).

Region-count distribution (VQA-v2 bottom-up "adaptive" features: a detection is kept when a class
confidence exceeds 0.2, with at least 10 and at most 100 regions per image): we draw
``SATURATED`` = 20% of the images at exactly 100 (cluttered scenes hit the cap) and the other 80%
uniformly from 10..100, mean 64 regions. This is an assumption, not a histogram of the released
features (not available offline here); the synthetic scenes of ``mmnas_tf/data/scenes.py`` are
likewise uniform. ``--saturated`` changes the share at the cap.

Bucketing mirrors ``mmnas_tf.data.pipeline`` with ``bucket_boundaries``: an image is padded to the
smallest boundary that holds its regions and batches are formed per bucket as examples stream in
(``group_by_window``, window = batch size, remainders dropped as in training). It is done here on
pre-made arrays so that the measured time is the model step only; the input pipeline has its own
suite entry.
"""

from __future__ import annotations

import numpy as np

from bench.common import MatmulProbe, load_average, peak_rss_mb, summary, timed
from bench.model_step import BenchSize, build_vqa, make_batch, step_function

SATURATED = 0.2
MIN_REGIONS = 10


def default_boundaries(max_regions: int) -> tuple[int, ...]:
    """Bucket boundaries every max_regions/10 from 2/10 up (paper size: 20, 30, ..., 100)."""
    return tuple(sorted({max(1, round(max_regions * k / 10)) for k in range(2, 11)}))


def sample_region_counts(
    rng: np.random.Generator, num: int, max_regions: int, saturated: float = SATURATED
) -> np.ndarray:
    """Region counts of ``num`` images: ``saturated`` share at the cap, the rest uniform from
    ``max_regions / 10`` (10 at paper size) to ``max_regions``."""
    low = max(1, round(max_regions * MIN_REGIONS / 100))
    counts = rng.integers(low, max_regions + 1, num)
    return np.where(rng.random(num) < saturated, max_regions, counts)


def bucket_batches(
    counts: np.ndarray, boundaries: tuple[int, ...], batch: int
) -> list[tuple[int, list[int]]]:
    """``(slots, example indices)`` per batch, formed per bucket in stream order; the partial
    windows left at the end are dropped (as ``drop_remainder`` does in training)."""
    windows: dict[int, list[int]] = {b: [] for b in boundaries}
    out = []
    for i, n in enumerate(counts):
        slots = next(b for b in boundaries if n <= b)
        windows[slots].append(i)
        if len(windows[slots]) == batch:
            out.append((slots, windows[slots]))
            windows[slots] = []
    return out


def run_bucketing(
    size: BenchSize,
    batch: int,
    examples: int,
    passes: int = 2,
    saturated: float = SATURATED,
    boundaries: tuple[int, ...] | None = None,
) -> dict:
    """Training-step examples/s over the same examples, padded to max_regions vs bucketed.

    Both use ONE graph-mode ``tf.function`` whose region dimension is ``None`` (a single trace for
    every bucket); each pass runs padded and bucketed batches alternately; the speedup is the
    median over passes of the per-pass ratio."""
    shared = size.name == "smoke"
    built = build_vqa(size, shared)
    boundaries = boundaries or default_boundaries(size.max_regions)
    rng = np.random.default_rng(1)
    counts = sample_region_counts(rng, examples, size.max_regions, saturated)
    plan = bucket_batches(counts, boundaries, batch)
    used = [i for _, idx in plan for i in idx]
    padded_plan = [
        (size.max_regions, used[k : k + batch]) for k in range(0, len(used) - batch + 1, batch)
    ]
    data = {
        name: [make_batch(size, batch, rng, slots, counts[idx]) for slots, idx in p]
        for name, p in (("padded", padded_plan), ("bucketed", plan))
    }
    step, counter = step_function(built, size, "train", batch, "graph", None, shared)
    # Untimed warm-up at every shape: oneDNN creates its kernels per shape on first use.
    shapes = dict(zip([s for s, _ in plan + padded_plan], data["bucketed"] + data["padded"]))
    for batch_data in shapes.values():
        step(*batch_data).numpy()
    traces_after_warmup = counter["traces"]
    # Interleaved batch by batch (padded k, bucketed k, ...): load bursts on this shared machine
    # last seconds, so whole passes one after the other would not see the same load.
    matmul = MatmulProbe()
    rates: dict[str, list[float]] = {"padded": [], "bucketed": []}
    speedups = []
    for _ in range(passes):
        matmul.measure()
        seconds = {name: 0.0 for name in data}
        for k in range(max(len(b) for b in data.values())):
            for name, batches in data.items():
                if k < len(batches):
                    seconds[name] += timed(lambda b=batches[k]: step(*b).numpy())
        for name, batches in data.items():
            rates[name].append(len(batches) * batch / seconds[name])
        speedups.append(rates["bucketed"][-1] / rates["padded"][-1])
    padded, bucketed = summary(rates["padded"]), summary(rates["bucketed"])
    return {
        "status": "ok",
        "size": size.name,
        "mode": "train",
        "variant": "graph (region dim None, one trace)",
        "batch": batch,
        "distribution": {
            "saturated_share": saturated,
            "min_regions": int(counts.min()),
            "mean_regions": float(counts[used].mean()),
            "mean_slots_bucketed": float(np.mean([s for s, _ in plan])),
        },
        "boundaries": list(boundaries),
        "batches_per_pass": {k: len(v) for k, v in data.items()},
        "bucket_histogram": {str(b): sum(1 for s, _ in plan if s == b) for b in boundaries},
        "examples_per_s": {"padded": padded, "bucketed": bucketed},
        "speedup": summary(speedups)["median"],
        "speedup_per_pass": summary(speedups),
        "traces": {"after_warmup": traces_after_warmup, "end": counter["traces"]},
        "matmul_probe": matmul.result(),
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_retrace(
    size: BenchSize, batch: int, steps: int = 50, variants: tuple[str, ...] = ("graph", "xla")
) -> dict:
    """Trace counts of every step function after warm-up and after ``steps`` steps whose content
    varies (region counts, question lengths, answers), at fixed shapes and with buckets."""
    shared = size.name == "smoke"
    built = build_vqa(size, shared)
    rng = np.random.default_rng(2)
    fns = {
        f"{mode}_{v}": step_function(built, size, mode, batch, v, size.max_regions, shared)
        for mode in ("train", "eval")
        for v in variants
    }
    fns["train_graph_bucketed"] = step_function(built, size, "train", batch, "graph", None, shared)
    boundaries = default_boundaries(size.max_regions)
    out = {}
    for name, (fn, counter) in fns.items():
        after_warmup = None
        for i in range(steps):
            counts = sample_region_counts(rng, batch, size.max_regions)
            slots = size.max_regions
            if name.endswith("bucketed"):
                slots = next(b for b in boundaries if counts.max() <= b)
            fn(*make_batch(size, batch, rng, slots, counts)).numpy()
            if i == 0:
                after_warmup = counter["traces"]
        out[name] = {
            "after_warmup": after_warmup,
            "end": counter["traces"],
            "tracing_count": fn.experimental_get_tracing_count(),
            "steps": steps,
            "constant": after_warmup == counter["traces"],
        }
    return {
        "status": "ok",
        "size": size.name,
        "batch": batch,
        "functions": out,
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }
