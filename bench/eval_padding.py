"""Evaluation on the regions actually present versus padding every image to 100 regions.

python -m bench.eval_padding [--images=192] [--questions=4] [--passes=3] [--batch=64]
    [--dtypes=float32,mixed_bfloat16] [--out=bench/results/eval_padding.json] [--smoke]

Data: a VQA split written with the real writer (float16 features, as the converters write them),
region counts drawn uniformly from 10..100 per image (bottom-up "adaptive" features keep 10-100
regions), ``--questions`` questions per image. Batches: the real evaluation input path
(``Task.build_inputs(..., training=False)``), once with ``data.eval_padding=max`` (every image
padded to 100 regions, the old evaluation) and once with ``batch`` (the default: grouped by region
count at every tenth of 100, each batch padded to its own largest count). The batches are made once
and kept in memory, so the timed part is the evaluation forward (``Task.evaluate``'s
``predict_fn``: one ``tf.function``, traced for the shapes seen; the input pipeline produces
examples ~190x faster than the model consumes them, docs/performance.md).

Model: MMnasNet-VQA at the paper width (d=512, 8 heads, FFN 2048, the published genotype, 3129
answers). Every batch shape is run once untimed (oneDNN builds kernels per shape); then each pass
runs the padded and the grouped batches interleaved batch by batch (padded k, grouped k, ...) so
both see the same load of this shared machine; the speedup is the median over passes of the per-pass
ratio of examples/s. fp32 and ``mixed_bfloat16`` (``keras.mixed_precision.set_global_policy``
before the model is built) in the same process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.common import load_average, peak_rss_mb, report_context, summary, timed
from bench.model_step import PAPER, SMOKE

MIN_REGIONS = 10


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {os.getloadavg()}"


def write_split(out_dir: str, size, images: int, questions: int, seed: int = 0) -> np.ndarray:
    """A VQA ``val`` split with region counts uniform in [max_regions/10, max_regions]; returns
    the counts."""
    from mmnas_tf.data import writer
    from mmnas_tf.tasks import get_task

    rng = np.random.default_rng(seed)
    low = max(1, size.max_regions * MIN_REGIONS // 100)
    counts = rng.integers(low, size.max_regions + 1, images)
    answers = [f"answer{i}" for i in range(size.num_answers)]

    def record(i, _):
        n = int(counts[i])
        xy = rng.uniform(0, 400, (n, 2))
        return {
            "image_id": 1000 + i,
            "image_index": i,
            "image_size": (480.0, 640.0),
            "features": np.abs(rng.standard_normal((n, size.feature_size))).astype(np.float16)
            + np.float16(0.01),
            "boxes": np.concatenate([xy, xy + rng.uniform(10, 200, (n, 2))], -1).astype(np.float32),
            "texts": [f"q{i} {j}" for j in range(questions)],
            "text_id": [i * questions + j for j in range(questions)],
            "text_ids": [
                rng.integers(3, size.vocab_size, rng.integers(4, size.max_tokens + 1))
                for _ in range(questions)
            ],
            "answer_scores": [{int(rng.integers(size.num_answers)): 1.0} for _ in range(questions)],
            "raw_answers": [[answers[0]] * 10 for _ in range(questions)],
            "answer_type": ["other"] * questions,
        }

    writer.write_split(out_dir, "val", get_task("vqa"), list(range(images)), record, 2, False)
    writer.write_lines(os.path.join(out_dir, writer.ANSWERS_FILE), answers)
    return counts


def make_batches(data_dir: str, config, batch: int) -> dict[str, list]:
    """The evaluation batches of both paddings, from the real evaluation input path."""
    from mmnas_tf.experiments import DataConfig
    from mmnas_tf.tasks import get_task

    task, out = get_task("vqa"), {}
    for name, padding in (("padded", "max"), ("grouped", "batch")):
        data = DataConfig(data_dir=data_dir, eval_split="val", eval_batch_size=batch)
        data = dataclasses.replace(data, eval_padding=padding)
        out[name] = [inputs for inputs, _ in task.build_inputs(data, config, "val", False)]
    return out


def measure(config, batches: dict[str, list], passes: int, policy: str) -> dict:
    import keras

    from mmnas_tf import inputs as names
    from mmnas_tf.tasks import get_task
    from mmnas_tf.tasks.base import predict_fn

    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = get_task("vqa").build_model(
            config.replace(num_answers=PAPER_ANSWERS[config.hidden_size])
        )
        predict = predict_fn(model)
        warm = {}
        for items in batches.values():
            for inputs in items:
                shape = tuple(inputs[names.IMAGE_FEATURES].shape)
                if shape not in warm:  # untimed: tracing and oneDNN kernel creation per shape
                    warm[shape] = timed(lambda i=inputs: predict(i)["logits"].numpy())
        examples = {k: sum(int(b[names.TEXT_IDS].shape[0]) for b in v) for k, v in batches.items()}
        rates: dict[str, list[float]] = {k: [] for k in batches}
        speedups, loads = [], []
        for _ in range(passes):
            seconds = {k: 0.0 for k in batches}
            for k in range(max(len(v) for v in batches.values())):
                for name, items in batches.items():
                    if k < len(items):
                        seconds[name] += timed(lambda i=items[k]: predict(i)["logits"].numpy())
            for name in batches:
                rates[name].append(examples[name] / seconds[name])
            speedups.append(rates["grouped"][-1] / rates["padded"][-1])
            loads.append(load_average())
        return {
            "policy": policy,
            "examples_per_s": {k: summary(v) for k, v in rates.items()},
            "speedup_median": summary(speedups)["median"],
            "speedup_per_pass": [round(s, 3) for s in speedups],
            "traces": predict.experimental_get_tracing_count(),
            "shapes_warmed": len(warm),
            "warmup_seconds": round(sum(warm.values()), 1),
            "load_average_1min_per_pass": loads,
        }
    finally:
        keras.mixed_precision.set_global_policy("float32")


#: answers of the benchmark model by width (paper 3129; smoke 10).
PAPER_ANSWERS = {PAPER.hidden_size: PAPER.num_answers, SMOKE.hidden_size: SMOKE.num_answers}


def flops_ratio(config, slots: dict[str, list[int]]) -> float:
    """Backbone forward FLOPs per example padded / grouped (``models.flops``: matrix products of
    the LSTM, projection, relations and blocks at each example's slot count; the head is left
    out): the speedup if time followed FLOPs."""
    from mmnas_tf.models.flops import backbone_flops

    def mean(values):
        return np.mean([backbone_flops(config.replace(max_regions=n))["total"] for n in values])

    return float(mean(slots["padded"]) / mean(slots["grouped"]))


def run(size, images: int, questions: int, passes: int, batch: int, dtypes: list[str]) -> dict:
    from mmnas_tf import inputs as names
    from mmnas_tf.tasks import get_task

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    report = {
        "benchmark": "evaluation: regions as present (grouped, padded per batch) vs padded to max",
        "started": started,
        **report_context("bench.eval_padding"),  # machine (lscpu), load, command
        "uptime_before": uptime(),
        "size": size.name,
        "model": {
            "network": "MMnasNet-VQA, published genotype (mmnas_tf/genotypes/mmnas_vqa.json)",
            "hidden_size": size.hidden_size,
            "num_heads": size.num_heads,
            "max_regions": size.max_regions,
            "max_tokens": size.max_tokens,
            "feature_size": size.feature_size,
            "num_answers": size.num_answers,
        },
        "eval_batch_size": batch,
    }
    config = size.model_config(get_task("vqa"))
    with tempfile.TemporaryDirectory() as tmp:
        counts = write_split(tmp, size, images, questions)
        batches = make_batches(tmp, config, batch)
    slots = {
        k: [
            int(b[names.IMAGE_FEATURES].shape[1])
            for b in v
            for _ in range(b[names.TEXT_IDS].shape[0])
        ]
        for k, v in batches.items()
    }
    report["data"] = {
        "images": images,
        "questions_per_image": questions,
        "examples": images * questions,
        "region_counts": f"uniform {int(counts.min())}..{int(counts.max())} (drawn per image)",
        "mean_regions": float(np.repeat(counts, questions).mean()),
        "mean_slots_per_example": {k: float(np.mean(v)) for k, v in slots.items()},
        "batches": {k: len(v) for k, v in batches.items()},
        "grouped_batch_sizes": [int(b[names.TEXT_IDS].shape[0]) for b in batches["grouped"]],
    }
    report["data"]["backbone_flops_ratio"] = flops_ratio(config, slots)
    report["results"] = {}
    for policy in dtypes:
        report["results"][policy] = measure(config, batches, passes, policy)
        print(json.dumps({policy: report["results"][policy]}, indent=1), flush=True)
    report["uptime_after"] = uptime()
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtypes", default="float32,mixed_bfloat16")
    parser.add_argument("--out", default="")
    parser.add_argument("--smoke", action="store_true", help="tiny model and data, seconds")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else PAPER
    images, passes = (24, 1) if args.smoke else (args.images, args.passes)
    report = run(size, images, args.questions, passes, args.batch, args.dtypes.split(","))
    text = json.dumps(report, indent=1)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
