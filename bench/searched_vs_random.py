"""Searched vs random genotypes on the synthetic VQA benchmark (the analogue of the paper's
Table 2c): equal size (M/N), equal retraining budget (steps of batch 64), one data set.

    python -m bench.searched_vs_random --out=searched_vs_random.json [--seeds=3] [--smoke]

For each search seed: a one-shot search (uniform warm-up, then gumbel alternating updates, u=5)
of a d=64 supernet with M/N = 2/4 over the paper's op pools, then the argmax genotype retrained
from scratch. For each random seed: a genotype drawn uniformly from the same space, retrained the
same way. Reports val accuracy overall, relational and non-relational, mean and spread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from bench.search_diagnosis import build, run_cycles
from bench.search_diagnosis import cycles as make_cycles
from bench.synthetic_baselines import model_config, train_and_score

NUM_ENCODER, NUM_DECODER = 2, 4  # the supernet of model_config(..., None)


def search(
    data_dir,
    width,
    seed,
    warmup_cycles,
    search_cycles,
    arch_lr=0.1,
    estimator="gumbel",
    arch_paths="all",
) -> tuple:
    sm = build(data_dir, width, seed, estimator, arch_paths, arch_lr)
    cycles = make_cycles(data_dir, model_config(data_dir, width, None).max_regions, seed)
    start = time.perf_counter()
    sm.set_state("warmup", 1.0)
    run_cycles(sm, cycles, warmup_cycles)
    warmup_seconds = time.perf_counter() - start
    sm.set_state("search", 1.0)
    run_cycles(sm, cycles, search_cycles)
    seconds = {"warmup": round(warmup_seconds, 1), "total": round(time.perf_counter() - start, 1)}
    return sm.genotype(), sm.theta_table(), seconds


def random_genotype(seed):
    import numpy as np

    from mmnas_tf.genotype import DECODER_OPS, ENCODER_OPS, Genotype

    rng = np.random.default_rng(1000 + seed)  # genotypes 0-2 are those of the first report
    return Genotype(
        tuple(rng.choice(ENCODER_OPS, NUM_ENCODER)), tuple(rng.choice(DECODER_OPS, NUM_DECODER))
    )


def retrain(data_dir, width, genotype, steps, seed=0) -> dict:
    return train_and_score(data_dir, model_config(data_dir, width, genotype), seed, steps=steps)


def parse_genotype(text: str):
    """``Genotype`` from its ``str`` form ``enc[SA FFN] dec[RSA GA SA FFN]`` (report rows)."""
    import re

    from mmnas_tf.genotype import Genotype

    match = re.fullmatch(r"enc\[([A-Z ]*)\] dec\[([A-Z ]*)\]", text.strip())
    if match is None:
        raise ValueError(f"not a genotype string like 'enc[SA FFN] dec[RSA GA SA FFN]': {text!r}")
    return Genotype(tuple(match.group(1).split()), tuple(match.group(2).split()))


def retrain_mean(data_dir, width, genotype, steps, seeds) -> dict:
    """Mean scores over ``seeds`` retrainings of one genotype (each run kept under ``runs``)."""
    runs = [retrain(data_dir, width, genotype, steps, seed) for seed in range(seeds)]
    row = {k: runs[0][k] for k in ("genotype", "steps", "params")}
    for key in ("accuracy", "relational", "non_relational"):
        row[key] = sum(r[key] for r in runs) / len(runs)
    row["runs"] = [
        {k: r[k] for k in ("accuracy", "relational", "non_relational", "train_seconds")}
        for r in runs
    ]
    return row


def _summary(rows):
    import numpy as np

    out = {}
    for key in ("accuracy", "relational", "non_relational", "params"):
        values = np.array([r[key] for r in rows], float)
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds")
    parser.add_argument("--random", type=int, default=4, help="random genotypes")
    parser.add_argument(
        "--retrain_seeds", type=int, default=2, help="retrainings per genotype (averaged)"
    )
    parser.add_argument("--num_images", type=int, default=4000, help="training scenes")
    parser.add_argument("--width", type=int, default=64, help="hidden size d")
    parser.add_argument(
        "--retrain_steps", type=int, default=1500, help="retraining steps (batch 64)"
    )
    parser.add_argument("--warmup_cycles", type=int, default=600, help="warm-up cycles (u=5 steps)")
    parser.add_argument("--search_cycles", type=int, default=200, help="search cycles (u=5 + 1)")
    parser.add_argument("--arch_lr", type=float, default=0.1, help="theta Adam lr (original: 0.1)")
    parser.add_argument("--estimator", default="gumbel", help="gumbel or proxyless")
    parser.add_argument("--arch_paths", default="all", help="gumbel theta step: all or sampled")
    parser.add_argument(
        "--from_report",
        help="reuse the searched genotypes (and search times) of an earlier report: retrain only",
    )
    parser.add_argument("--smoke", action="store_true", help="seconds: tiny data, a few steps")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.random, args.retrain_seeds = 1, 1, 1
        args.num_images, args.retrain_steps = 100, 3
        args.warmup_cycles, args.search_cycles = 1, 1
    from bench.pipeline import write_report
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    report = {"args": vars(args), "searched": [], "random": []}
    with tempfile.TemporaryDirectory(prefix="mmnas_svr_") as tmp:
        benchmark.generate(get_task("vqa"), tmp, "tiny", num_images=args.num_images, seed=0)
        earlier = None
        if args.from_report:
            with open(args.from_report) as f:
                earlier = json.load(f)["searched"]
            args.seeds = len(earlier)
        for seed in range(args.seeds):
            if earlier:
                genotype = parse_genotype(earlier[seed]["genotype"])
                theta, seconds = earlier[seed]["theta"], earlier[seed]["search_seconds"]
            else:
                genotype, theta, seconds = search(
                    tmp,
                    args.width,
                    seed,
                    args.warmup_cycles,
                    args.search_cycles,
                    args.arch_lr,
                    args.estimator,
                    args.arch_paths,
                )
            row = retrain_mean(tmp, args.width, genotype, args.retrain_steps, args.retrain_seeds)
            row.update(search_seed=seed, search_seconds=seconds, theta=theta)
            report["searched"].append(row)
            print(
                "searched", json.dumps({k: v for k, v in row.items() if k != "theta"}), flush=True
            )
        for seed in range(args.random):
            row = retrain_mean(
                tmp, args.width, random_genotype(seed), args.retrain_steps, args.retrain_seeds
            )
            row.update(random_seed=seed)
            report["random"].append(row)
            print("random", json.dumps(row), flush=True)
    report["summary"] = {k: _summary(report[k]) for k in ("searched", "random")}
    print(json.dumps(report["summary"], indent=1))
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
