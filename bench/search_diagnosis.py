"""Why does (or doesn't) the search find RSA? A controlled look at the supernet and the estimators
on the synthetic VQA benchmark (docs/search_results.md).

    python -m bench.search_diagnosis --out=diagnosis.json [--warmup_cycles=300]
        [--search_cycles=150] [--variants=gumbel:all,gumbel:sampled,proxyless:all] [--smoke]

1. Warm up ONE d=64 supernet (M/N 2/4, the paper's pools) with uniform sampling.
2. Probe it: val accuracy (relational / non-relational) of fixed genotypes with INHERITED
   weights, from no geometry at all to RSA in every decoder block. If the supernet ranks the RSA
   genotypes higher on relational questions, the signal the architecture gradient needs exists.
3. From the same warmed-up weights and optimizer state, search with each estimator variant
   (``estimator:arch_paths``) for the same cycles and sampler seed; record softmax(theta) over
   time, the share of RSA in the decoder and the argmax genotype's inherited-weight accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.synthetic_baselines import ARCHITECTURES, model_config, score

PROBES = {
    **{name: ops for name, ops in ARCHITECTURES.items()},
    "rsa_everywhere": (("SA", "FFN"), ("RSA", "RSA", "RSA", "RSA")),
    "rsa_ga": (("SA", "FFN"), ("RSA", "GA", "RSA", "GA")),
    "sa_ga": (("SA", "FFN"), ("SA", "GA", "SA", "GA")),
    "ffn_only": (("FFN", "FFN"), ("FFN", "FFN", "FFN", "FFN")),
}


def _rsa_share(table) -> float:
    """Mean softmax(theta) of RSA over the decoder blocks."""
    rsa = table["ops"]["decoder"].index("RSA")
    return sum(p[rsa] for p in table["decoder"]) / len(table["decoder"])


def build(data_dir, width, seed, estimator, arch_paths, arch_lr, model=None):
    import keras

    from mmnas_tf.nas.search_model import (
        SearchModel,
        default_arch_optimizer,
        default_weight_optimizer,
    )
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task

    task = get_task("vqa")
    if model is None:
        keras.utils.set_random_seed(seed)
        model = task.build_model(
            model_config(data_dir, width, None).replace(num_answers=len(questions.ANSWERS))
        )
    sm = SearchModel(
        task,
        model,
        estimator=estimator,
        weight_steps=5,
        warmup="uniform",
        seed=seed,
        arch_paths=arch_paths,
    )
    sm.compile(default_weight_optimizer(1e-3), default_arch_optimizer(arch_lr))
    return sm


def cycles(data_dir, max_regions, seed):
    from mmnas_tf.data import pipeline
    from mmnas_tf.nas.search_model import cycle_dataset
    from mmnas_tf.tasks import get_task

    cfg = dict(batch_size=64, max_regions=max_regions, max_tokens=14, seed=seed, repeat=True)
    dm = pipeline.Pipeline(
        data_dir, "train", pipeline.PipelineConfig(get_task("vqa"), subset="dm", **cfg)
    )
    da = pipeline.Pipeline(
        data_dir, "train", pipeline.PipelineConfig(get_task("vqa"), subset="da", **cfg)
    )
    return iter(cycle_dataset(dm.dataset(), da.dataset(), 5))


def run_cycles(sm, iterator, n) -> None:
    """``n`` search cycles from ``iterator`` (which, unlike ``fit``, continues where it was)."""
    for m in sm.metrics:
        m.reset_state()
    function = sm.make_train_function()
    for _ in range(n):
        function(iterator)


def probe(sm, data_dir, max_regions, max_batches) -> dict:
    from mmnas_tf.genotype import Genotype

    out = {}
    for name, (enc, dec) in PROBES.items():
        arch = sm.arch_of(Genotype(enc, dec))
        row = score(sm.task_model, data_dir, max_regions, arch=arch, max_batches=max_batches)
        out[name] = {k: round(row[k], 4) for k in ("accuracy", "relational", "non_relational")}
        print("probe", name, json.dumps(out[name]), flush=True)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path")
    parser.add_argument("--data_dir", help="reuse generated data here (default: a temp dir)")
    parser.add_argument("--num_images", type=int, default=4000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup_cycles", type=int, default=300, help="u=5 weight steps each")
    parser.add_argument("--search_cycles", type=int, default=150)
    parser.add_argument("--record_every", type=int, default=25, help="cycles between records")
    parser.add_argument("--arch_lr", type=float, default=0.1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--variants",
        default="gumbel:all,gumbel:sampled,proxyless:all",
        help="comma-separated estimator:arch_paths",
    )
    parser.add_argument("--probe_batches", type=int, default=8, help="val batches of 256")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.num_images, args.warmup_cycles, args.search_cycles = 100, 1, 2
        args.record_every, args.probe_batches = 1, 1
    import tempfile

    from bench.pipeline import write_report
    from mmnas_tf.data import writer
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mmnas_diag_")
        data_dir = tmp.name
    if not os.path.exists(os.path.join(data_dir, writer.MANIFEST)):
        benchmark.generate(get_task("vqa"), data_dir, "tiny", num_images=args.num_images, seed=0)
    max_regions = model_config(data_dir, args.width, None).max_regions
    report = {"args": vars(args), "variants": {}}

    sm = build(data_dir, args.width, args.seed, "gumbel", "all", args.arch_lr)
    data = cycles(data_dir, max_regions, args.seed)
    start = time.perf_counter()
    sm.set_state("warmup", args.temperature)
    run_cycles(sm, data, args.warmup_cycles)
    report["warmup_seconds"] = round(time.perf_counter() - start, 1)
    report["warmup_loss"] = float(sm.loss_tracker.result())
    print("warm-up", report["warmup_seconds"], "s", flush=True)
    report["probe_after_warmup"] = probe(sm, data_dir, max_regions, args.probe_batches)
    weights = sm.task_model.get_weights()
    slots = [v.numpy() for v in sm.weight_optimizer.variables]

    for variant in args.variants.split(","):
        estimator, paths = variant.split(":")
        vm = build(data_dir, args.width, args.seed, estimator, paths, args.arch_lr, sm.task_model)
        vm.task_model.set_weights(weights)  # theta is still 0 after a uniform warm-up
        for v, value in zip(vm.weight_optimizer.variables, slots):
            v.assign(value)
        data = cycles(data_dir, max_regions, args.seed + 1)
        vm.set_state("search", args.temperature)
        history, start = [], time.perf_counter()
        for done in range(0, args.search_cycles, args.record_every):
            run_cycles(vm, data, min(args.record_every, args.search_cycles - done))
            table = vm.theta_table()
            history.append(
                {
                    "cycles": done + args.record_every,
                    "genotype": str(vm.genotype()),
                    "rsa_share": round(_rsa_share(table), 4),
                    "decoder": [[round(p, 3) for p in row] for row in table["decoder"]],
                    "encoder": [[round(p, 3) for p in row] for row in table["encoder"]],
                    "loss": float(vm.loss_tracker.result()),
                    "arch_loss": float(vm.arch_loss_tracker.result()),
                }
            )
            print(variant, json.dumps(history[-1]), flush=True)
        took = time.perf_counter() - start
        final = score(vm.task_model, data_dir, max_regions, vm.argmax_arch(), args.probe_batches)
        report["variants"][variant] = {
            "search_seconds": round(took, 1),
            "history": history,
            "genotype": str(vm.genotype()),
            "inherited": {
                k: round(final[k], 4) for k in ("accuracy", "relational", "non_relational")
            },
        }
    write_report(report, args.out)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
