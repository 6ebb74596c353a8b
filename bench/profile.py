"""Profile one step kind of MMnasNet-VQA and print where the time goes, by TF op type.

    python -m bench.profile --mode=train --batch=8 --variant=graph --logdir=/tmp/mmnas_profile
    python -m bench.profile --mode=serve --batch=1 --steps=50   # the exported SavedModel

``--mode=serve`` exports the model as ``bench.serving_latency`` does and profiles its
``serving_default`` signature loaded in process, on that entry's requests (region counts uniform
in 10-100; each distinct request run once untimed first); ``--variant`` and ``--dtype_policy``
do not apply. Every mode also prints the op self time per step against the wall time per step
(what the op table leaves out: the executor, Python, waits).

Writes a ``tf.profiler`` trace (TensorBoard "Profile" tab, xplane.pb, tens of MB: never commit
it) under ``--logdir`` and prints the op types with the largest self time from the trace's
framework op statistics. See docs/performance.md for what the profiles showed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    p.add_argument("--mode", default="train", choices=("train", "eval", "serve"))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--variant", default="graph", choices=("graph", "xla", "graph_fused_adam"))
    p.add_argument(
        "--dtype_policy",
        default="float32",
        choices=("float32", "mixed_bfloat16"),
        help="Keras dtype policy of the model",
    )
    p.add_argument(
        "--dropout_generator",
        default=None,
        choices=("uniform", "bytes"),
        help="the model's dropout generator (default: ModelConfig's)",
    )
    p.add_argument("--warmup", type=int, default=2, help="unprofiled steps after the first call")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after the warm-up)")
    p.add_argument("--logdir", default="/tmp/mmnas_profile")
    p.add_argument("--top", type=int, default=25, help="op types printed")
    p.add_argument("--smoke", action="store_true")
    return p.parse_args(argv)


def op_type_table(logdir: str) -> list[tuple[str, float, float]]:
    """(op type, host self seconds, share) from the newest xplane.pb under ``logdir``."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    data, _ = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    table = json.loads(data)[0]  # Google Visualization DataTable(s): cols + rows of cells
    cols = [c["id"] for c in table["cols"]]
    by_type: dict[str, float] = {}
    for row in table["rows"]:
        cell = dict(zip(cols, (c.get("v") if c else None for c in row["c"])))
        if cell.get("type") == "IDLE":
            continue
        by_type[cell["type"]] = by_type.get(cell["type"], 0.0) + float(cell["total_self_time"])
    total = sum(by_type.values()) or 1.0
    ranked = sorted(by_type.items(), key=lambda kv: -kv[1])
    return [(t, us / 1e6, us / total) for t, us in ranked]


def _model_step(args):
    """(step function, its argument lists) of ``--mode=train/eval``."""
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy(args.dtype_policy)
    from bench.model_step import PAPER, SMOKE, build_vqa, make_batch, step_function

    size = SMOKE if args.smoke else PAPER
    fn, _ = step_function(
        build_vqa(size, dropout_generator=args.dropout_generator),
        size,
        args.mode,
        args.batch,
        args.variant,
        size.max_regions,
    )
    return lambda *batch: fn(*batch).numpy(), [
        make_batch(size, args.batch, np.random.default_rng(0))
    ]


#: --mode=serve: distinct requests (each run once untimed), cycled through the profiled calls.
SERVE_REQUESTS = 10


def _serving_call(args, tmp: str):
    """(the exported model's signature called to numpy, its requests) of ``--mode=serve``."""
    import tensorflow as tf

    from bench.model_step import PAPER, SMOKE
    from bench.serving_latency import make_requests
    from bench.serving_load import build_and_export

    build_and_export(args.smoke, tmp)
    signature = tf.saved_model.load(os.path.join(tmp, "1")).signatures["serving_default"]
    size = SMOKE if args.smoke else PAPER
    requests = [(x,) for x, _ in make_requests(size, args.batch, SERVE_REQUESTS, seed=0)]
    return lambda x: {k: v.numpy() for k, v in signature(**x).items()}, requests


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="mmnas_profile_") as tmp:
        if args.mode == "serve":
            call, inputs = _serving_call(args, tmp)
        else:
            call, inputs = _model_step(args)
        for k in range(max(1 + args.warmup, len(inputs))):
            call(*inputs[k % len(inputs)])
        tf.profiler.experimental.start(args.logdir)
        start = time.perf_counter()
        for k in range(args.steps):
            call(*inputs[k % len(inputs)])
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
    print(f"trace written under {args.logdir} (TensorBoard: --logdir={args.logdir}, Profile tab)")
    try:
        table = op_type_table(args.logdir)
    except Exception as e:  # noqa: BLE001 - the trace is still there for TensorBoard
        print(f"could not summarise the trace ({type(e).__name__}: {e})")
        return
    ops = sum(seconds for _, seconds, _ in table)
    print(
        f"per step: {1000 * ops / args.steps:.2f} ms of op self time (every thread), "
        f"{1000 * wall / args.steps:.2f} ms wall (profiler on)"
    )
    print(f"{'op type':40s} {'self s/step':>12s} {'share':>7s}")
    for op_type, seconds, share in table[: args.top]:
        print(f"{op_type:40s} {seconds / args.steps:12.4f} {100 * share:6.1f}%")


if __name__ == "__main__":
    from bench.common import run_program

    run_program(main)
