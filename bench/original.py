"""The original PyTorch MMnas code side by side with ours: training step b8 and evaluation b64.

``python -m bench.run --entries=original --original_src=DIR`` imports the original's VQA network
(``mmnas.model.full_vqa.Net_Full``) from ``DIR`` (an extracted checkout of the original code) and
times it interleaved with ours in one process, on the same examples:

- padded: every image has 100 regions, 14-token questions (the original's inputs: its loader pads
  every image to 100 regions);
- realistic: region counts uniform in 10-100. The original pads them to 100; ours uses its default
  handling (training: grouped by region bucket, padded to the bucket's boundary; evaluation:
  grouped by bucket, padded to the batch's largest count).

Ours runs its default path: graph mode (no XLA), FusedAdam in training. The original's training
step is its retrain recipe: forward, BCE with sum reduction, backward, gradient clipping at 1.0,
Adam (0.9, 0.98, 1e-9). A 2048 float32 matmul probe of each framework is timed every round.

The original needs only a configuration object carrying the fields its networks read (its training
scripts' ``Cfg`` is not imported: it pulls in the loaders) and its genotype ``arch/mmnas_vqa.json``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import types

import numpy as np

from bench.common import MatmulProbe, load_average, peak_rss_mb, summary, timed
from bench.model_step import BenchSize, build_vqa, make_batch, step_function
from bench.realistic import bucket_batches

#: The files of the original that the entry reads: the VQA network and its searched genotype.
NETWORK_FILE = os.path.join("mmnas", "model", "full_vqa.py")
GENOTYPE_FILE = os.path.join("arch", "mmnas_vqa.json")
#: Our default path per mode (trainer and evaluator: ``jit_compile=False``; FusedAdam on).
DEFAULT_VARIANT = {"train": "graph_fused_adam", "eval": "graph"}
#: Question relation features of the original (3 per token pair); the VQA genotype never reads
#: them (no relation attention in its encoder), zeros as its loader's placeholder.
QUESTION_REL = 3
#: Regions per image at realistic counts: uniform in MIN..MAX (the original pads to MAX).
MIN_REGIONS = 10
#: Head size of the original's attention ops in its genotype (``self_att_64``, ...).
HEAD_SIZE = 64
#: The smoke size of this entry: the original's heads are 64 wide, so d=64 is one head.
SMOKE = BenchSize("smoke", 64, 100, 10, 6, 20, 16, num_heads=1, pool_output_size=128)


def unavailable(src: str) -> str | None:
    """Why the entry cannot run (one line), or None: no ``src`` given or torch not installed."""
    if not src:
        return "original: skipped, no --original_src=DIR (a directory holding the original code)"
    if importlib.util.find_spec("torch") is None:
        return "original: skipped, torch is not installed (pip install -e '.[torch]')"
    return None


def check_src(src: str) -> None:
    """Raises ValueError unless ``src`` holds the original's VQA network and genotype."""
    missing = [f for f in (NETWORK_FILE, GENOTYPE_FILE) if not os.path.isfile(os.path.join(src, f))]
    if missing:
        raise ValueError(
            f"--original_src={src!r} lacks {missing}: expected the extracted original MMnas code "
            "(the directory holding mmnas/ and arch/)"
        )


def original_config(size: BenchSize, genotype: dict) -> types.SimpleNamespace:
    """The configuration fields the original's VQA network reads, at ``size``."""
    return types.SimpleNamespace(
        LAYERS=1, HSIZE=size.hidden_size, DROPOUT_R=0.1, OPS_RESIDUAL=True, OPS_NORM=True,
        ATTFLAT_GLIMPSES=1, ATTFLAT_OUT_SIZE=size.pool_output_size,
        ATTFLAT_MLP_SIZE=size.hidden_size, BBOX_FEATURE=False, FRCNFEAT_LEN=size.max_regions,
        FRCNFEAT_SIZE=size.feature_size, BBOXFEAT_EMB_SIZE=size.feature_size, WORD_EMBED_SIZE=300,
        REL_SIZE=64, GENOTYPE=genotype,
    )  # fmt: skip


class Original:
    """The original's VQA network imported from ``src``: train step, eval forward, matmul probe."""

    def __init__(self, src: str, size: BenchSize, threads: int, seed: int = 0):
        check_src(src)
        if src not in sys.path:
            sys.path.insert(0, src)
        import torch
        from mmnas.model.full_vqa import Net_Full

        self.torch = torch
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        with open(os.path.join(src, GENOTYPE_FILE), encoding="utf-8") as f:
            genotype = json.load(f)["epoch0"]
        rng = np.random.default_rng(seed)
        init = {
            "token_size": size.vocab_size,
            "ans_size": size.num_answers,
            "pretrained_emb": rng.standard_normal((size.vocab_size, 300)).astype(np.float32),
        }
        self.net = Net_Full(original_config(size, genotype), init)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9
        )
        self.loss = torch.nn.BCEWithLogitsLoss(reduction="sum")
        self.threads = torch.get_num_threads()
        n = 2048
        self.a, self.b = torch.randn(n, n), torch.randn(n, n)
        self.probe_samples: list[float] = []

    def inputs(self, inputs: dict, targets: dict, padded_regions: int) -> tuple:
        """Our batch as the original's ``(features, boxes, region relations, question ids,
        question relations)`` and targets, padded to ``padded_regions`` as its loader does."""
        from mmnas_tf.layers.relation_features import relation_features

        torch = self.torch
        features = inputs["image_features"].numpy()
        boxes = inputs["boxes"].numpy()
        pad = padded_regions - features.shape[1]
        features = np.pad(features, ((0, 0), (0, pad), (0, 0)))
        boxes = np.pad(boxes, ((0, 0), (0, pad), (0, 0)))
        real = np.abs(features).sum(-1) > 0
        rel = np.asarray(relation_features(boxes, real))
        ids = inputs["text_ids"].numpy().astype(np.int64)
        b, t = ids.shape
        inp = (
            torch.from_numpy(features),
            torch.from_numpy(np.pad(boxes, ((0, 0), (0, 0), (0, 1)))),  # 5 box fields, unused
            torch.from_numpy(rel),
            torch.from_numpy(ids),
            torch.zeros(b, t, t, QUESTION_REL),
        )
        return inp, torch.from_numpy(targets["answer_scores"].numpy())

    def train_step(self, batch: tuple) -> float:
        inp, answers = batch
        self.net.train()
        self.optimizer.zero_grad()
        loss = self.loss(self.net(inp), answers)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        return float(loss)

    def eval_step(self, batch: tuple) -> np.ndarray:
        self.net.eval()
        with self.torch.no_grad():
            return self.net(batch[0]).numpy()

    def probe(self) -> None:
        seconds = timed(lambda: self.torch.mm(self.a, self.b))
        self.probe_samples.append(2.0 * 2048**3 / seconds / 1e9)


def realistic_batches(
    size: BenchSize, batch: int, count: int, pad_to: str, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """``count`` batches of ``(slots, region counts)`` as our pipeline forms them from a long
    stream of images with regions uniform in 10-100 (scaled to ``size``): grouped by bucket,
    padded to the bucket's boundary (``pad_to="bucket"``, training) or to the batch's largest
    count (``"batch"``, evaluation)."""
    from mmnas_tf.data.pipeline import region_buckets

    low = max(1, round(size.max_regions * MIN_REGIONS / 100))
    counts = rng.integers(low, size.max_regions + 1, 40 * batch * max(count, 1))
    plan = bucket_batches(counts, region_buckets(size.max_regions), batch)[:count]
    out = []
    for slots, idx in plan:
        c = counts[idx]
        out.append((slots if pad_to == "bucket" else int(c.max()), c))
    return out


@dataclasses.dataclass
class Side:
    """One comparison of one mode: our batches, the original's (same examples), their times."""

    ours: list
    original: list
    ours_s: list = dataclasses.field(default_factory=list)
    original_s: list = dataclasses.field(default_factory=list)


def run_original(
    src: str, size: BenchSize, batches: dict, rounds: int = 5, threads: int = 0,
    realistic_batches_per_round: tuple[int, int] = (10, 4),
) -> dict:  # fmt: skip
    """Side by side: ours (default path) and the original, interleaved batch by batch, every
    round preceded by both frameworks' matmul probes. ``batches``: mode -> batch size."""
    threads = threads or os.cpu_count() or 1
    original = Original(src, size, threads)
    shared = size.name == "smoke"
    built = build_vqa(size, shared)
    rng = np.random.default_rng(0)
    sides: dict[tuple[str, str], Side] = {}
    fns = {}
    for (mode, b), n_real in zip(batches.items(), realistic_batches_per_round):
        variant = DEFAULT_VARIANT[mode]
        fns[mode] = step_function(built, size, mode, b, variant, None, shared)[0]
        padded = [make_batch(size, b, rng)]
        plan = realistic_batches(size, b, n_real, "bucket" if mode == "train" else "batch", rng)
        real = [make_batch(size, b, rng, slots, counts) for slots, counts in plan]
        for name, ours in (("padded", padded), ("realistic", real)):
            theirs = [original.inputs(*x, size.max_regions) for x in ours]
            sides[(mode, name)] = Side(ours, theirs)
    run = {"train": original.train_step, "eval": original.eval_step}
    # Untimed warm-up at every shape (tracing; oneDNN and torch build kernels per shape).
    for (mode, _), side in sides.items():
        for x in side.ours:
            fns[mode](*x).numpy()
        run[mode](side.original[0])
    tf_probe = MatmulProbe(2048, "float32")
    for _ in range(rounds):
        tf_probe.measure()
        original.probe()
        for (mode, _), side in sides.items():
            ours_s = original_s = 0.0
            for x, y in zip(side.ours, side.original):
                ours_s += timed(lambda x=x: fns[mode](*x).numpy())
                original_s += timed(lambda y=y: run[mode](y))
            side.ours_s.append(ours_s)
            side.original_s.append(original_s)
    results = {}
    for (mode, name), side in sides.items():
        examples = sum(int(x[0]["text_ids"].shape[0]) for x in side.ours)
        ratios = [o / u for u, o in zip(side.ours_s, side.original_s)]
        results[f"{mode}_b{batches[mode]}_{name}"] = {
            "ours_variant": DEFAULT_VARIANT[mode],
            "batches_per_round": len(side.ours),
            "examples_per_round": examples,
            "ours_slots": [int(x[0]["image_features"].shape[1]) for x in side.ours],
            "original_slots": size.max_regions,
            "ours_examples_per_s": summary([examples / s for s in side.ours_s]),
            "original_examples_per_s": summary([examples / s for s in side.original_s]),
            # per round: the original's seconds over ours on the same examples
            "ours_over_original": summary(ratios),
        }
    return {
        "status": "ok",
        "size": size.name,
        "rounds": rounds,
        "threads": {"torch": original.threads, "tensorflow_intra_op": _tf_threads()},
        "torch": original.torch.__version__,
        "original_src": os.path.abspath(src),
        "comparisons": results,
        "matmul_probe_gflops": {
            "tensorflow": summary(tf_probe.samples),
            "torch": summary(original.probe_samples),
        },
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }


def _tf_threads() -> int:
    """TensorFlow's intra-op thread count as configured (0: its default, one per core)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()
