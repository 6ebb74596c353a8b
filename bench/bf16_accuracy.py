"""Final accuracy under ``mixed_bfloat16`` vs ``float32``: the same genotype trained with the
search-space table's stand-alone protocol (``bench/search_space_table.py``, the ``structured``
synthetic VQA benchmark, held-out ``val``) for 3 seeds under each policy, interleaved
(fp32 seed 0, bf16 seed 0, fp32 seed 1, ...), so both policies saw the same machine load.

    python -m bench.bf16_accuracy --out=bench/results/bf16_accuracy.json \\
        --data_dir=/tmp/mmnas_bf16_data [--seeds=0,1,2] [--steps=2000] [--smoke]

The JSON is rewritten after every training (a killed run resumes, skipping the (policy, seed)
pairs it holds). bf16 is within tolerance when the difference of the mean macro accuracies is
inside the seed-to-seed spread (max - min) of the float32 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from bench import search_space_table as table
from bench.common import report_context

POLICIES = ("float32", "mixed_bfloat16")
#: The best genotype of the partial table (every op type once).
GENOTYPE = {"enc": ["SA"], "dec": ["GA", "RSA", "FFN"]}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for policy in POLICIES:
        acc = [r[table.METRIC] for r in runs if r["policy"] == policy]
        secs = [r["train_seconds"] for r in runs if r["policy"] == policy]
        if acc:
            out[policy] = {
                "seeds": [r["seed"] for r in runs if r["policy"] == policy],
                table.METRIC: acc,
                "mean": round(statistics.mean(acc), 3),
                "spread": round(max(acc) - min(acc), 3),
                "train_seconds_median": statistics.median(secs),
            }
    if len(out) == 2:
        diff = out["mixed_bfloat16"]["mean"] - out["float32"]["mean"]
        out["bf16_minus_fp32"] = round(diff, 3)
        out["within_fp32_spread"] = abs(diff) <= out["float32"]["spread"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/bf16_accuracy.json")
    parser.add_argument("--data_dir", default="/tmp/mmnas_bf16_data")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=table.PROTOCOL["steps"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds per training")
    args = parser.parse_args(argv)

    from mmnas_tf import precision
    from mmnas_tf.genotype import Genotype

    protocol = dict(table.PROTOCOL, steps=args.steps)
    protocol.pop("dtype")
    if args.smoke:
        protocol.update(table.SMOKE)
    path = precision.hardware_path()
    print(precision.describe(precision.MIXED_BFLOAT16, path), flush=True)
    genotype = Genotype(tuple(GENOTYPE["enc"]), tuple(GENOTYPE["dec"]))
    table.prepare_data(args.data_dir, protocol)
    batches = table.eval_batches(args.data_dir, protocol)
    families = table.family_names(protocol)
    report = {
        "protocol": protocol,
        "genotype": GENOTYPE,
        "hardware_path": path.name,
        **report_context("bench.bf16_accuracy", argv),
        "runs": [],
    }
    if os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("protocol") == protocol and old.get("genotype") == GENOTYPE:
            report["runs"] = old["runs"]
    for seed in (int(s) for s in args.seeds.split(",")):
        for policy in POLICIES:
            if any(r["seed"] == seed and r["policy"] == policy for r in report["runs"]):
                continue
            load = os.getloadavg()[0]
            # train_one sets the protocol's "dtype" as the Keras policy before it builds.
            run_protocol = dict(protocol, dtype=policy)
            run = table.train_one(args.data_dir, run_protocol, genotype, seed, batches, families)
            run.update(policy=policy, seed=seed, load_before=round(load, 2))
            run["load_after"] = round(os.getloadavg()[0], 2)
            print(json.dumps(run), flush=True)
            report["runs"].append(run)
            report["summary"] = summarise(report["runs"])
            report["written"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out + ".tmp", "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1)
            os.replace(args.out + ".tmp", args.out)
    print(json.dumps(report.get("summary"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
