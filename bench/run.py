"""The MMnas benchmark suite: ``python -m bench.run --suite=all --out=report.json [--smoke]``.

Every entry runs in a subprocess of its own (``--child``), so its peak resident memory
(``ru_maxrss``) is its own and one entry's threads or caches cannot slow the next. With
``--smoke`` the sizes shrink to seconds and the timing entries share one subprocess (CI).
The report holds the machine, the load average, every entry (``status`` ok / skipped / error)
and a ``summary`` of the targets of docs/performance.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from bench.common import onednn_record, report_context  # no TensorFlow in the parent
from mmnas_tf.machine import ONEDNN_ENV, set_onednn_env

SUITES = ("all", "model", "search", "pipeline", "memory")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = "mmnas_tf.bench/1"


SMOKE_NO_XLA = "smoke: XLA compiles take 20-40 s even at smoke size; the full run measures them"


#: --smoke: memory entries not run (a process each costs ~10 s; CI checks one per step kind).
SMOKE_SKIPS = {
    f"memory_{m}_{v}": "smoke: one memory entry per step kind"
    for m in ("train_b8", "eval_b64")
    for v in ("graph", "xla")
    if (m, v) != ("train_b8", "graph")
}
SMOKE_SKIPS["theta_step"] = "smoke: a timing of the theta gradient's forms, paper size only"


def _size(smoke: bool):
    from bench.model_step import PAPER, SMOKE

    return SMOKE if smoke else PAPER


def _batch(smoke: bool, paper_batch: int) -> int:
    return 2 if smoke else paper_batch  # one batch size in smoke: one trace per step kind


#: (warm-up steps after the first call, timed steps) per (mode, batch) of the full run: the
#: whole suite must stay well under 15 minutes on 2 cores (a b64 training step takes ~16 s).
STEPS = {("train", 8): (1, 7), ("eval", 64): (1, 5), ("eval", 8): (2, 8), ("train", 64): (0, 2)}


def _fixed(mode: str, batch: int, variants=("graph", "xla"), probe=True, steps=None):
    def run(args):
        from bench.model_step import run_fixed

        warmup, timed_steps = (0, 1) if args.smoke else STEPS[(mode, batch)]
        if steps is not None:
            warmup, timed_steps = steps
        v = tuple(x for x in variants if x != "xla") if args.smoke else variants
        size, b = _size(args.smoke), _batch(args.smoke, batch)
        out = run_fixed(size, mode, b, v, warmup, timed_steps, probe=probe)
        if args.smoke and "xla" in variants:
            out["skipped_variants"] = {"xla": SMOKE_NO_XLA}
        return out

    return run


def _peak(args):
    from bench.common import machine, matmul_peak, peak_rss_mb

    sizes = (256, 512) if args.smoke else (2048, 3072)
    out = matmul_peak(sizes, 2 if args.smoke else 7)  # float32 and bfloat16, interleaved
    return {"status": "ok", "machine": machine(), **out, "peak_rss_mb": peak_rss_mb()}


def _bucketing(args):
    from bench.realistic import run_bucketing

    examples = 48 if args.smoke else args.bucket_examples
    return run_bucketing(
        _size(args.smoke), _batch(args.smoke, 8), examples, 1 if args.smoke else 3, args.saturated
    )


def _retrace(args):
    from bench.model_step import SMOKE
    from bench.realistic import run_retrace

    if args.smoke:
        out = run_retrace(SMOKE, 2, 5, ("graph",))
        return {**out, "skipped_variants": {"xla": SMOKE_NO_XLA}}
    return run_retrace(SMOKE, 2, 50)


def _search(args):
    from bench.search_step import run_search

    return run_search(args.smoke, tuple(args.search_estimators.split(",")))


def _adam_update(args):
    from bench.adam_update import run_adam_update

    return run_adam_update(_size(args.smoke), 2 if args.smoke else 7)


def _theta_step(args):
    from bench.theta_step import run_theta_step

    return run_theta_step(args.smoke, 2 if args.smoke else 7)


def _original(args):
    from bench.model_step import PAPER
    from bench.original import SMOKE, parse_variants, run_original

    train, evaluation = (int(n) for n in args.original_batches.split(","))
    return run_original(
        args.original_src,
        SMOKE if args.smoke else PAPER,
        {"train": _batch(args.smoke, 8), "eval": _batch(args.smoke, 64)},
        1 if args.smoke else args.original_rounds,
        args.intra_op_threads,
        (1, 1) if args.smoke else (train, evaluation),
        parse_variants(args.original_variants),
    )


def _serving_latency(args):
    from bench.serving_latency import run_serving_latency

    return run_serving_latency(
        args.smoke, args.original_src, args.intra_op_threads, args.serving_requests or None
    )


def _dropout_generator(args):
    from bench.dropout_generator import run_dropout_generators

    rounds, steps = (1, 1) if args.smoke else (args.dropout_rounds, 2)
    return run_dropout_generators(_size(args.smoke), _batch(args.smoke, 8), rounds, steps)


def _pipeline(args):
    from bench.input_rate import run_pipeline

    return run_pipeline(args.smoke)


#: name -> (suite, function(args) -> dict). Timing entries first, memory entries (one model variant
#: per process, the first call only, no probe) last; the search and pipeline entries
#: already run alone, their ``peak_rss_mb`` is their own.
ENTRIES = {  # in run order: the entries that the targets need first
    "peak": ("model", _peak),
    "train_b8": ("model", _fixed("train", 8, ("graph", "xla", "graph_fused_adam"))),
    "eval_b64": ("model", _fixed("eval", 64)),
    "adam_update": ("model", _adam_update),  # Keras's Adam vs FusedAdam, the update alone
    # mixed_bfloat16 (ENTRY_POLICY), shares against the bf16 matmul; XLA:CPU does not use AMX
    "train_b8_bf16": ("model", _fixed("train", 8, ("graph", "graph_fused_adam"))),
    "eval_b64_bf16": ("model", _fixed("eval", 64, ("graph",))),
    "bucketing": ("model", _bucketing),
    "retrace": ("model", _retrace),
    "pipeline": ("pipeline", _pipeline),
    # the original PyTorch code side by side (needs --original_src and torch, else skipped)
    "original": ("original", _original),
    # the SavedModel in process and over gRPC, beside the original's forward (torch, if given)
    "serving_latency": ("serving", _serving_latency),
    "search_cycle": ("search", _search),
    "theta_step": ("search", _theta_step),  # the theta gradient: forward-only vs where() form
    "eval_b8": ("model", _fixed("eval", 8)),
    # XLA lost at b8 (saves ~80 s)
    "train_b64": ("model", _fixed("train", 64, ("graph", "graph_fused_adam"))),
    "train_b64_bf16": ("model", _fixed("train", 64, ("graph", "graph_fused_adam"))),
    # the training step b8 with each dropout generator, interleaved A/B (docs/performance.md)
    "dropout_generator": ("model", _dropout_generator),
}
#: entries that run under a dtype policy of their own (the others: ``--dtype_policy``).
ENTRY_POLICY = {n: "mixed_bfloat16" for n in ("train_b8_bf16", "eval_b64_bf16", "train_b64_bf16")}
# train_b64's own entry gives the RSS of b64 training (both variants in one process): a memory
# entry per variant would add ~2 minutes to the run.
for _mode, _b in (("train", 8), ("eval", 64)):
    for _v in ("graph", "xla"):
        ENTRIES[f"memory_{_mode}_b{_b}_{_v}"] = (
            "memory",
            _fixed(_mode, _b, (_v,), probe=False, steps=(0, 0)),
        )


def _batch_counts(text: str) -> str:
    """``--original_batches``: two positive integers ``TRAIN,EVAL``."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected two positive integers TRAIN,EVAL (e.g. 10,4)"
        )
    return text


def _original_variants(text: str) -> str:
    """``--original_variants``: checked here, parsed again in the entry's process."""
    from bench.original import parse_variants

    try:
        parse_variants(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="all", choices=SUITES)
    p.add_argument("--out", default="report.json", help="where the JSON report is written")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (CI)")
    p.add_argument("--entries", default="", help="comma-separated entry names (default: suite)")
    p.add_argument("--saturated", type=float, default=0.2, help="share of images at 100 regions")
    p.add_argument("--bucket_examples", type=int, default=128, help="examples per bucketing pass")
    p.add_argument(
        "--dtype_policy",
        default="float32",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="Keras dtype policy of the models (except the *_bf16 entries: mixed_bfloat16); "
        "each entry's share is taken against the matmul probe of its compute dtype",
    )
    p.add_argument(
        "--search_estimators",
        default="gumbel",
        help="comma-separated: gumbel,gumbel_sampled,proxyless,uniform (each first call costs ~4 "
        "min at d=256)",
    )
    p.add_argument("--intra_op_threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument("--inter_op_threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument(
        "--original_src",
        default="",
        help="entry `original`: a directory holding the extracted original MMnas code (mmnas/, "
        "arch/); needs torch (the `torch` extra)",
    )
    p.add_argument("--original_rounds", type=int, default=5, help="entry `original`: rounds")
    p.add_argument(
        "--original_batches",
        default="10,4",
        type=_batch_counts,
        help="entry `original`: realistic batches per round, training,evaluation",
    )
    p.add_argument(
        "--original_variants",
        default="",
        type=_original_variants,
        help="entry `original`: variants of ours timed beside the default path, MODE:VARIANT "
        "comma-separated (e.g. train:xla_fused_adam,eval:xla; variants: graph, xla, "
        "graph_fused_adam, xla_fused_adam)",
    )
    p.add_argument(
        "--serving_requests",
        type=int,
        default=0,
        help="entry `serving_latency`: timed requests per cell (0: 200; --smoke: 16)",
    )
    p.add_argument(
        "--dropout_rounds", type=int, default=7, help="entry `dropout_generator`: A/B rounds"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)  # internal: entries to run here
    p.add_argument("--child_out", default="", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def select(suite: str, entries: str) -> list[str]:
    if entries:
        names = [e for e in entries.split(",") if e]
        unknown = [e for e in names if e not in ENTRIES]
        if unknown:
            raise ValueError(f"unknown entries {unknown}; accepted: {sorted(ENTRIES)}")
        return names
    return [n for n, (s, _) in ENTRIES.items() if suite in ("all", s)]


def run_child(args: argparse.Namespace) -> None:
    """Runs the entries named by ``--child`` in this process and writes their results as JSON."""
    if args.intra_op_threads or args.inter_op_threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    import keras

    results = {}
    for name in args.child.split(","):
        keras.mixed_precision.set_global_policy(ENTRY_POLICY.get(name, args.dtype_policy))
        start = time.perf_counter()
        try:
            result = ENTRIES[name][1](args)
        except Exception as e:  # noqa: BLE001 - reported, the suite goes on
            result = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        result["wall_s"] = time.perf_counter() - start
        result.update(onednn_record())
        results[name] = result
        with open(args.child_out, "w", encoding="utf-8") as f:  # partial results survive a crash
            json.dump(results, f)


#: entries that time a serving path: they take a serving program's oneDNN choice
SERVING_ENTRIES = frozenset({"serving_latency"})


def entry_env(names: Sequence[str] = ()) -> dict[str, str]:
    """The environment of a process running the entries ``names``: ours, quiet, with the
    machine's oneDNN choice as a program of ours takes it (a serving program's when every entry
    is a serving one; an exported value is kept)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    set_onednn_env([], env, serving=bool(names) and set(names) <= SERVING_ENTRIES)
    return env


def spawn(names: list[str], args: argparse.Namespace) -> dict:
    """Runs ``names`` in one subprocess; a crash or timeout becomes an error entry."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "entries.json")
        cmd = [sys.executable, "-m", "bench.run", "--child", ",".join(names), "--child_out", out]
        cmd += ["--saturated", str(args.saturated), "--bucket_examples", str(args.bucket_examples)]
        cmd += ["--dtype_policy", args.dtype_policy, "--search_estimators", args.search_estimators]
        cmd += [f"--intra_op_threads={args.intra_op_threads}"]
        cmd += [f"--inter_op_threads={args.inter_op_threads}"]
        cmd += ["--smoke"] if args.smoke else []
        cmd += [f"--original_src={args.original_src}", f"--original_rounds={args.original_rounds}"]
        cmd += [f"--original_batches={args.original_batches}"]
        cmd += [f"--original_variants={args.original_variants}"]
        cmd += [f"--serving_requests={args.serving_requests}"]
        cmd += [f"--dropout_rounds={args.dropout_rounds}"]
        try:
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=entry_env(names),
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            failure = None if proc.returncode == 0 else proc.stderr[-2000:]
        except subprocess.TimeoutExpired:
            failure = f"timeout after {args.timeout} s"
        results = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                results = json.load(f)
    for name in names:
        if name not in results:
            results[name] = {"status": "error", "error": failure or "no result"}
    return results


def machine_light(names: Sequence[str] = ()) -> dict:
    """Machine facts without importing TensorFlow in the parent (``onednn_env``: what the
    processes of the entries ``names`` get)."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("tensorflow", "keras"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    onednn = entry_env(names).get(ONEDNN_ENV, "unset")
    return {"cpu": cpu, "cores": os.cpu_count(), **versions, "onednn_env": onednn}


def write_report(report: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        run_child(args)
        return None
    from bench.summary import summarize

    names = select(args.suite, args.entries)
    started = datetime.datetime.now(datetime.UTC)
    context = report_context("bench.run", sys.argv[1:] if argv is None else argv)
    report = {
        "schema": SCHEMA,
        "command": context["command"],
        "smoke": args.smoke,
        "suite": args.suite,
        "dtype_policy": args.dtype_policy,
        "threads": {"intra_op": args.intra_op_threads, "inter_op": args.inter_op_threads},
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": {**machine_light(names), **context["machine"]},
        "load_average_1min": {"start": context["load_average_1min"]},
        "entries": {},
    }
    if "original" in names:
        from bench.original import check_src, unavailable

        reason = unavailable(args.original_src)
        if reason:
            print(f"[bench] {reason}", flush=True)
            report["entries"]["original"] = {
                "status": "skipped",
                "reason": reason,
                "suite": "original",
            }
            names = [n for n in names if n != "original"]
        else:
            check_src(args.original_src)
    if "serving_latency" in names:
        from bench.original import unavailable
        from bench.serving_latency import skip_line

        reason = unavailable(args.original_src)
        if reason:  # the entry runs in a child whose output is not shown: say it here
            print(skip_line(reason), flush=True)
    # Smoke: ONE process for every entry (a TF import costs ~5 s per process), so its memory
    # entry's RSS is the whole smoke run's; the subprocess path is still the one of a full run.
    groups = [[n] for n in names]
    if args.smoke:
        for n in [n for n in names if n in SMOKE_SKIPS]:
            report["entries"][n] = {
                "status": "skipped",
                "reason": SMOKE_SKIPS[n],
                "suite": "memory",
            }
        names = [n for n in names if n not in SMOKE_SKIPS]
        groups = [names] if names else []

    def record(group: list[str], results: dict) -> None:
        for name, result in results.items():
            result["suite"] = ENTRIES[name][0]
            result.setdefault("dtype_policy", ENTRY_POLICY.get(name, args.dtype_policy))
            result["process"] = "own" if len(group) == 1 else f"shared with {len(group) - 1}"
            report["entries"][name] = result
            print(
                f"[bench]   {name}: {result['status']} {result.get('wall_s', 0):.1f} s", flush=True
            )
        write_report(report, args.out)  # partial report: survives an interrupted run

    # Timing entries one after the other; memory entries time nothing, so two run at once.
    memory = [g for g in groups if len(g) == 1 and ENTRIES[g[0]][0] == "memory"]
    for group in [g for g in groups if g not in memory]:
        print(f"[bench] {','.join(group)} (load {os.getloadavg()[0]:.2f})", flush=True)
        record(group, spawn(group, args))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        print(f"[bench] {len(memory)} memory entries, 2 at a time", flush=True)
        for group, results in zip(memory, pool.map(lambda g: spawn(g, args), memory)):
            record(group, results)
    peak = report["entries"].get("peak", {})
    if peak.get("status") == "ok":
        report["machine"].update(peak["machine"])
    report["load_average_1min"]["end"] = os.getloadavg()[0]
    report["finished_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report["wall_s"] = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    report["summary"] = summarize(report["entries"])
    write_report(report, args.out)
    print(json.dumps(report["summary"], indent=1))
    return report


if __name__ == "__main__":
    main()
