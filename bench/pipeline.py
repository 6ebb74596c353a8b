"""Input-pipeline throughput: examples/s of full-size VQA records through mmnas_tf.data.pipeline.

    python -m bench.pipeline --out=pipeline.json            # ~1-2 minutes
    python -m bench.pipeline --out=pipeline.json --smoke    # seconds (CI)

Writes sharded VQA records (100 regions x 2048-d per image, 5 questions each) once per storage
type (float32, float16), then reads them through the real training pipeline (interleave,
decode, pad, expand, shuffle, batch 64, cast) and reports examples/s per epoch: median, min,
max over repeats. Nothing here is a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

QUESTIONS_PER_IMAGE = 5
REGIONS, DIM, NUM_ANSWERS = 100, 2048, 3129


def _write(out_dir: str, num_images: int, dtype: str, shards: int) -> None:
    import numpy as np

    from mmnas_tf.data import writer
    from mmnas_tf.tasks import get_task

    rng = np.random.default_rng(0)
    base = rng.random((REGIONS, DIM), dtype=np.float32)

    def make(i: int, _: int) -> dict:
        q = QUESTIONS_PER_IMAGE
        return {
            "image_id": i,
            "image_index": i,
            "image_size": (480.0, 640.0),
            "features": np.roll(base, i, axis=0).astype(dtype),
            "boxes": np.tile([10.0, 20.0, 200.0, 300.0], (REGIONS, 1)),
            "texts": ["what colour is the object furthest from the red square?"] * q,
            "text_id": [i * 10 + j for j in range(q)],
            "text_ids": [rng.integers(3, 1000, 12) for _ in range(q)],
            "answer_scores": [{int(rng.integers(NUM_ANSWERS)): 1.0, 7: 0.3} for _ in range(q)],
            "raw_answers": [["yes"] * 10] * q,
            "answer_type": ["other"] * q,
        }

    writer.write_split(
        out_dir, "train", get_task("vqa"), range(num_images), make, shards, progress=False
    )
    writer.write_lines(
        os.path.join(out_dir, writer.ANSWERS_FILE), [f"a{i}" for i in range(NUM_ANSWERS)]
    )


def _epoch(data_dir: str, batch_size: int, seed: int) -> tuple[int, float]:
    from mmnas_tf.data import pipeline
    from mmnas_tf.tasks import get_task

    config = pipeline.PipelineConfig(
        get_task("vqa"), batch_size=batch_size, max_regions=REGIONS, seed=seed, shuffle_buffer=1024
    )
    ds = pipeline.Pipeline(data_dir, "train", config).dataset()
    start, examples = time.perf_counter(), 0
    for inputs, _ in ds:
        examples += int(inputs["text_ids"].shape[0])
    return examples, time.perf_counter() - start


def measure(smoke: bool = False) -> dict:
    """The report dict: per storage type, examples/s (median/min/max over repeats) and setup."""
    from bench.common import summary

    num_images, repeats, batch = (24, 2, 16) if smoke else (600, 5, 64)
    shards = 2 if smoke else 8
    report: dict = {
        "status": "ok",
        "smoke": smoke,
        "images": num_images,
        "regions": REGIONS,
        "feature_dim": DIM,
        "questions_per_image": QUESTIONS_PER_IMAGE,
        "batch_size": batch,
        "shards": shards,
        "cpu_count": os.cpu_count(),
        "storage": {},
    }
    with tempfile.TemporaryDirectory(prefix="mmnas_bench_pipeline_") as tmp:
        for dtype in ("float32", "float16"):
            folder = os.path.join(tmp, dtype)
            start = time.perf_counter()
            _write(folder, num_images, dtype, shards)
            write_s = time.perf_counter() - start
            size = sum(
                os.path.getsize(os.path.join(folder, f))
                for f in os.listdir(folder)
                if f.endswith(".tfrecord")
            )
            _epoch(folder, batch, seed=0)  # warm-up: tracing, page cache
            rates = []
            for r in range(repeats):
                n, seconds = _epoch(folder, batch, seed=r + 1)
                rates.append(n / seconds)
            report["storage"][dtype] = {
                "examples_per_s": summary(rates),
                "write_images_per_s": num_images / write_s,
                "shard_bytes": size,
            }
    return report


def write_report(report: dict, out: str | None) -> None:
    """Prints the JSON report and writes it to ``out`` when given."""
    text = json.dumps(report, indent=1, sort_keys=True)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path (default: print only)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: runs in seconds (CI)")
    args = parser.parse_args(argv)
    write_report(measure(args.smoke), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
