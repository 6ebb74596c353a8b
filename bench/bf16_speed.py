"""MMnasNet-VQA (paper size, d=512) steps under ``float32`` vs ``mixed_bfloat16``, with the Q/K/V
projections fused (one matmul) or separate: every variant in ONE process, interleaved step by step,
medians and per-round ratios (this machine is shared; only ratios of one process mean something).

    python -m bench.bf16_speed --mode=train --batch=8 --steps=6 --out=bench/results/bf16_speed.json
    python -m bench.bf16_speed --mode=eval --batch=64 ...   # --smoke: tiny sizes, seconds

Variants: ``fp32`` / ``bf16`` (one model per policy) x ``fused`` / ``separate`` (two step
functions over the same model: the fusion is a graph choice, :func:`fused_project`, kept here
because it lost: docs/performance.md, "bfloat16"). The same round also times a 2048 matmul in float32 and in bfloat16 (the
hardware's bf16 peak vs fp32 peak). Results are merged into ``--out`` under ``<mode>_b<batch>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from bench.common import load_average, peak_rss_mb, report_context, summary, timed
from bench.model_step import (
    PAPER,
    SMOKE,
    build_vqa,
    make_batch,
    make_eval_step,
    make_train_step,
    signature,
)

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}
FUSIONS = {"fused": True, "separate": False}


def fused_project(mha, query, key_value):
    """Q/K/V heads from ONE matmul over the concatenated separate kernels (SA, RSA: [d, 3d]; GA:
    K/V as [d, 2d], Q alone). The variables stay ``query`` / ``key`` / ``value``, so checkpoints and
    the original's weight map would be unchanged; only the graph differs."""
    from keras import ops

    def heads(x, denses):
        kernel = ops.concatenate([ops.cast(d.kernel, x.dtype) for d in denses], axis=1)
        b, length = ops.shape(x)[0], ops.shape(x)[1]
        y = ops.reshape(ops.matmul(x, kernel), (b, length, len(denses), mha.num_heads, -1))
        y = ops.transpose(y, (2, 0, 3, 1, 4))
        return [y[i] for i in range(len(denses))]

    if key_value is query:
        return heads(query, (mha.query_dense, mha.key_dense, mha.value_dense))
    k, v = heads(key_value, (mha.key_dense, mha.value_dense))
    return mha._split_heads(mha.query_dense(query)), k, v


def set_fusion(model, fused: bool) -> None:
    """Makes every attention core of ``model`` project Q/K/V fused or as three matmuls (read when
    a step function is traced)."""
    from mmnas_tf.layers import MultiHeadAttention

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, MultiHeadAttention):
            if fused:
                layer._project = lambda q, kv, mha=layer: fused_project(mha, q, kv)
            else:
                layer.__dict__.pop("_project", None)  # the layer's own: three matmuls


def make_step(task, model, optimizer, mode: str, spec):
    """The graph (no XLA) step of ``mode``: the training or evaluation step of bench.model_step."""
    if mode == "eval":
        return make_eval_step(model, False, spec)[0]
    return make_train_step(task, model, optimizer, False, spec)[0]


def matmuls(n: int = 2048):
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    fns = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        x = tf.cast(a, dtype)
        fns[name] = tf.function(lambda x=x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    return fns, 2 * n**3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("train", "eval"), default="train")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed rounds (each variant once)")
    parser.add_argument("--variants", default="fp32_fused,fp32_separate,bf16_fused,bf16_separate")
    parser.add_argument("--out", default="bench/results/bf16_speed.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np

    from mmnas_tf import precision

    path = precision.hardware_path()
    print(precision.describe(precision.MIXED_BFLOAT16, path), flush=True)
    size = SMOKE if args.smoke else PAPER
    variants = args.variants.split(",")
    spec = signature(size, args.batch, None)
    rng = np.random.default_rng(0)
    batch = make_batch(size, args.batch, rng)
    fns, first = {}, {}
    built = {}
    for variant in variants:
        policy, fusion = variant.split("_")
        if policy not in built:
            with precision.policy_scope(POLICIES[policy]):
                built[policy] = build_vqa(size)
        task, model, optimizer = built[policy]
        set_fusion(model, FUSIONS[fusion])
        fns[variant] = make_step(task, model, optimizer, args.mode, spec)
        first[variant] = timed(lambda f=fns[variant]: np.asarray(f(*batch)))  # trace + first run
        print(f"{variant}: first call {first[variant]:.1f} s", flush=True)
    mm, mm_flops = matmuls()
    for f in mm.values():
        f()
    times = {v: [] for v in variants}
    mm_times = {k: [] for k in mm}
    loads = [load_average()]
    for _ in range(args.steps):
        for v in variants:
            times[v].append(timed(lambda f=fns[v]: np.asarray(f(*batch))))
        for k, f in mm.items():
            mm_times[k].append(timed(lambda f=f: np.asarray(f())))
        loads.append(load_average())
        print({v: round(t[-1], 3) for v, t in times.items()}, flush=True)

    def ratios(a, b):
        per_round = [x / y for x, y in zip(times[a], times[b], strict=True)]
        return {
            "median_of_round_ratios": round(statistics.median(per_round), 3),
            "min": round(min(per_round), 3),
            "max": round(max(per_round), 3),
        }

    entry = {
        "mode": args.mode,
        "batch": args.batch,
        "size": size.name,
        "rounds": args.steps,
        "hardware_path": path.name,
        "load_average": {"start": loads[0], "max": max(loads), "end": loads[-1]},
        "first_call_s": {v: round(t, 2) for v, t in first.items()},
        "step_s": {v: summary(t) for v, t in times.items()},
        "examples_per_s": {
            v: round(args.batch / statistics.median(t), 2) for v, t in times.items()
        },
        "matmul_2048_gflops": {
            k: round(mm_flops / statistics.median(t) / 1e9, 1) for k, t in mm_times.items()
        },
        "peak_rss_mb": round(peak_rss_mb()),
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **report_context("bench.bf16_speed", argv),  # machine (lscpu), load at the end, command
    }
    # time(a) / time(b) per round: < 1 means a is faster.
    pairs = [
        ("bf16_fused", "fp32_fused"),
        ("bf16_separate", "fp32_separate"),
        ("fp32_fused", "fp32_separate"),
        ("bf16_fused", "bf16_separate"),
        ("bf16_fused", "fp32_separate"),
    ]
    entry["time_ratios"] = {f"{a}/{b}": ratios(a, b) for a, b in pairs if a in times and b in times}
    print(json.dumps(entry, indent=1))
    report = {}
    if os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            report = json.load(f)
    report[f"{args.mode}_b{args.batch}" + ("_smoke" if args.smoke else "")] = entry
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
