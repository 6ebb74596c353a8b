"""Shared helpers for the data tests: random records of every task, written to tmp folders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mmnas_tf.data import writer
from mmnas_tf.synthbench import benchmark
from mmnas_tf.tasks import get_task

NUM_ANSWERS = 12


def random_record(
    task: str, rng: np.random.Generator, index: int, n: int, dim: int = 16, dtype: str = "float32"
) -> dict:
    """One image with 1-4 texts and random targets; ``n`` regions of width ``dim``."""
    q = int(rng.integers(1, 5))
    rec = {
        "image_id": 5000 + index,
        "image_index": index,
        "image_size": (float(rng.integers(200, 600)), float(rng.integers(200, 800))),
        "features": rng.standard_normal((n, dim)).astype(dtype),
        "boxes": rng.uniform(0, 500, (n, 4)).astype(np.float32),
        "texts": [f"question {index} {j}?" for j in range(q)],
        "text_id": [index * 10 + j for j in range(q)],
        "text_ids": [rng.integers(3, 50, rng.integers(1, 20)) for _ in range(q)],
    }
    if task == "itm":
        rec["text_id"] = [
            index * 5 + j for j in range(q)
        ]  # not contiguous across images: tests only
    if task == "vqa":
        rec["answer_scores"] = [
            {
                int(a): float(s)
                for a, s in zip(rng.choice(NUM_ANSWERS, 2, replace=False), (0.3, 1.0))
            }
            for _ in range(q)
        ]
        rec["raw_answers"] = [[f"ans{j}{k}" for k in range(10)] for j in range(q)]
        rec["answer_type"] = ["other"] * q
    if task == "vg":
        rec["gt_boxes"] = rng.uniform(0, 500, (q, 4)).astype(np.float32)
    return rec


def write_random(
    out_dir: str,
    task: str,
    regions=(10, 100, 3, 36, 50, 7, 20, 100),
    dtype="float32",
    shards=3,
    seed=0,
) -> list[dict]:
    """Writes one record per entry of ``regions`` as split ``train``; returns the records."""
    rng = np.random.default_rng(seed)
    records = [random_record(task, rng, i, n, dtype=dtype) for i, n in enumerate(regions)]
    writer.write_split(
        out_dir, "train", get_task(task), records, lambda r, _: r, shards, progress=False
    )
    writer.write_lines(
        os.path.join(out_dir, writer.ANSWERS_FILE), [f"a{i}" for i in range(NUM_ANSWERS)]
    )
    return records


@pytest.fixture(scope="session")
def synthetic_dirs(tmp_path_factory) -> dict[str, str]:
    """The tiny synthetic benchmark of every task, generated once per session."""
    root = tmp_path_factory.mktemp("synthetic")
    out = {}
    for task in ("vqa", "itm", "vg"):
        out[task] = str(root / task)
        benchmark.generate(get_task(task), out[task], "tiny", num_images=60)
    return out


def write_npz(path, n, layout="n_by_d", seed=0, num_bbox=None, dim=2048):
    """A bottom-up feature file; returns (features n x d, boxes) as they should be read."""
    rng = np.random.default_rng(seed)
    feats = rng.random((n, dim), dtype=np.float32)
    boxes = rng.uniform(0, 400, (n, 4)).astype(np.float32)
    extra = {} if num_bbox is None else {"num_bbox": np.int64(num_bbox)}
    x = feats.T if layout == "d_by_n" else feats
    np.savez(path, x=x, bbox=boxes, image_h=np.int64(480), image_w=np.int64(640), **extra)
    keep = n if num_bbox is None else num_bbox
    return feats[:keep], boxes[:keep]


def read_all(data_dir, split, task, **kw) -> list[tuple[dict, dict]]:
    """Every example of a split as (inputs, targets) numpy dicts, in file order."""
    from mmnas_tf.data import pipeline

    kw = {"batch_size": 2, "max_regions": 100, "training": False, "deterministic": True, **kw}
    config = pipeline.PipelineConfig(get_task(task), **kw)
    out = []
    for inputs, targets in pipeline.Pipeline(str(data_dir), split, config).dataset():
        for i in range(len(next(iter(inputs.values())))):
            out.append(
                (
                    {k: v[i].numpy() for k, v in inputs.items()},
                    {k: v[i].numpy() for k, v in targets.items()},
                )
            )
    return out


class Helpers:
    """Test modules cannot import conftest under --import-mode=importlib: reach helpers via fixture."""

    random_record = staticmethod(random_record)
    write_random = staticmethod(write_random)
    write_npz = staticmethod(write_npz)
    read_all = staticmethod(read_all)
    num_answers = NUM_ANSWERS


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="session")
def reference_vg_io():
    """The VG reference vectors made with the original code (tests/fixtures/reference)."""
    import os

    path = os.path.join(
        os.path.dirname(__file__), "..", "fixtures", "reference", "mmnas_vg_small_io.npz"
    )
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
