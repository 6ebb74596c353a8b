"""A 2048 matmul in float32 vs bfloat16 under each oneDNN instruction-set cap, one process per cap
(``ONEDNN_MAX_CPU_ISA`` is read once per process), 7 interleaved rounds each: what the bf16 path
of a CPU with AVX512_BF16 but no AMX gives, measured on an AMX machine by hiding AMX from oneDNN.

    python -m bench.bf16_matmul_isa --out=bench/results/bf16_speed.json [--repeats=2]

Results go into ``--out`` under ``matmul_isa``: per cap and repeat, GFLOP/s of both and the median
of the per-round time ratios bf16 / fp32 (< 1: bf16 faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CAPS = ("default", "AVX512_CORE_BF16", "AVX512_CORE")


def measure(n: int = 2048, rounds: int = 7) -> dict:
    import statistics
    import time

    import tensorflow as tf

    a = tf.random.uniform((n, n))
    fns = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        x = tf.cast(a, dtype)
        fns[name] = tf.function(lambda x=x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
        fns[name]()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            start = time.perf_counter()
            f().numpy()
            times[k].append(time.perf_counter() - start)
    ratios = [b / f for f, b in zip(times["fp32"], times["bf16"], strict=True)]
    return {
        "gflops": {k: round(2 * n**3 / statistics.median(v) / 1e9, 1) for k, v in times.items()},
        "bf16_over_fp32_time": round(statistics.median(ratios), 3),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/bf16_speed.json")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure()))
        return 0
    results = {cap: [] for cap in CAPS}
    for _ in range(args.repeats):
        for cap in CAPS:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            env.pop("ONEDNN_MAX_CPU_ISA", None)
            if cap != "default":
                env["ONEDNN_MAX_CPU_ISA"] = cap
            out = subprocess.run(
                [sys.executable, "-m", "bench.bf16_matmul_isa", "--child"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[cap].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(cap, results[cap][-1], flush=True)
    report = {}
    if os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            report = json.load(f)
    report["matmul_isa"] = results
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
