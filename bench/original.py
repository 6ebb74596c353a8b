"""The original PyTorch MMnas code side by side with ours: training step b8 and evaluation b64.

``python -m bench.run --entries=original --original_src=DIR`` imports the original's VQA network
(``mmnas.model.full_vqa.Net_Full``) from ``DIR`` (an extracted checkout of the original code) and
times it interleaved with ours, batch by batch, on the same examples. The original runs in a worker
process of its own (``python -m bench.original``, driven over a pipe): PyTorch's and TensorFlow's
thread pools never share a process, and each side waits idle while the other runs.

Inputs:

- padded: every image has 100 regions, 14-token questions (the original's inputs: its loader pads
  every image to 100 regions);
- realistic: region counts uniform in 10-100. The original pads them to 100; ours uses its default
  handling (training: grouped by region bucket, padded to the bucket's boundary; evaluation:
  grouped by bucket, padded to the batch's largest count).

Ours runs its default path on this machine (:func:`default_variants`): FusedAdam in training, XLA
for the training step where the machine chooses it (AVX2 at paper size), graph mode otherwise and
in evaluation; ``--original_variants`` (e.g. ``train:xla_fused_adam,eval:xla``) times other
variants of ours in the same interleave, each with its first call per input shape recorded (XLA
compiles there). The original's training step is its retrain recipe: forward, BCE with sum
reduction, backward, gradient clipping at 1.0, Adam (0.9, 0.98, 1e-9). Every round times a 2048
float32 matmul probe of each framework, and one at the model's feed-forward shape (TensorFlow's
graph kernel, XLA's, and torch's).

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

from bench.common import MatmulProbe, compute_dtype, load_average, peak_rss_mb, summary, timed
from bench.model_step import BenchSize, build_vqa, make_batch, step_function
from bench.realistic import bucket_batches

#: The files of the original that the entry reads: the VQA network and its searched genotype.
NETWORK_FILE = os.path.join("mmnas", "model", "full_vqa.py")
GENOTYPE_FILE = os.path.join("arch", "mmnas_vqa.json")
#: Our default path per mode before the machine's choice (:func:`default_variants`): graph mode,
#: FusedAdam in training.
DEFAULT_VARIANT = {"train": "graph_fused_adam", "eval": "graph"}


def default_variants(size: BenchSize) -> dict[str, str]:
    """Our default path per mode on this machine at ``size``: the trainer XLA-compiles its step
    where the machine chooses it (``mmnas_tf.machine.resolve_train_xla``: AVX2, d >= 256,
    float32, one replica), the evaluator runs in graph mode."""
    from mmnas_tf.machine import choose, resolve_train_xla

    xla, _ = resolve_train_xla(None, choose(), size.hidden_size, 1, compute_dtype())
    return {**DEFAULT_VARIANT, "train": "xla_fused_adam" if xla else DEFAULT_VARIANT["train"]}


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
        LAYERS=1,
        HSIZE=size.hidden_size,
        DROPOUT_R=0.1,
        OPS_RESIDUAL=True,
        OPS_NORM=True,
        ATTFLAT_GLIMPSES=1,
        ATTFLAT_OUT_SIZE=size.pool_output_size,
        ATTFLAT_MLP_SIZE=size.hidden_size,
        BBOX_FEATURE=False,
        FRCNFEAT_LEN=size.max_regions,
        FRCNFEAT_SIZE=size.feature_size,
        BBOXFEAT_EMB_SIZE=size.feature_size,
        WORD_EMBED_SIZE=300,
        REL_SIZE=64,
        GENOTYPE=genotype,
    )


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
        self.operands: dict[tuple[int, int, int], tuple] = {}
        self.probe_samples: list[float] = []

    def batch(self, arrays: dict) -> tuple:
        """Torch tensors of :func:`original_arrays`' output."""
        t = self.torch
        inp = tuple(t.from_numpy(arrays[k]) for k in INPUT_KEYS[:-1])
        b, n = arrays["text_ids"].shape
        return inp + (t.zeros(b, n, n, QUESTION_REL),), t.from_numpy(arrays["answer_scores"])

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

    def probe(self, shape: tuple[int, int, int] = (2048, 2048, 2048)) -> None:
        """Times one [m, k] x [k, n] float32 product (``shape``; default the square 2048 probe)."""
        if shape not in self.operands:
            m, k, n = shape
            self.operands[shape] = (self.torch.randn(m, k), self.torch.randn(k, n))
            self.torch.mm(*self.operands[shape])  # warm-up
        seconds = timed(lambda: self.torch.mm(*self.operands[shape]))
        self.probe_samples.append(2.0 * np.prod(shape) / seconds / 1e9)


#: The original's forward inputs in order (the last, question relations, made by the worker).
INPUT_KEYS = ("features", "boxes", "relations", "text_ids", "question_relations")


def original_arrays(inputs: dict, targets: dict, padded_regions: int) -> dict:
    """Our batch as the original's inputs (numpy), padded to ``padded_regions`` as its loader
    does: features, 5 box fields (unused by the VQA network), region relation features (ours,
    computed as the original's loader does), question ids, and the answer scores."""
    from mmnas_tf.layers.relation_features import relation_features

    features = inputs["image_features"].numpy()
    boxes = inputs["boxes"].numpy()
    pad = ((0, 0), (0, padded_regions - features.shape[1]), (0, 0))
    features, boxes = np.pad(features, pad), np.pad(boxes, pad)
    real = np.abs(features).sum(-1) > 0
    return {
        "features": features,
        "boxes": np.pad(boxes, ((0, 0), (0, 0), (0, 1))),
        "relations": np.asarray(relation_features(boxes, real), np.float32),
        "text_ids": inputs["text_ids"].numpy().astype(np.int64),
        "answer_scores": targets["answer_scores"].numpy(),
    }


class Worker:
    """The original in a subprocess (``python -m bench.original``): ``load`` hands it batches,
    ``run`` times one step there, ``probe`` its 2048 matmul; each returns what the worker
    measured."""

    def __init__(self, src: str, size: BenchSize, threads: int):
        import subprocess

        cmd = [sys.executable, "-m", "bench.original", src, size.name, str(threads)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(
            cmd, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = self._ask("info")

    def _ask(self, *command) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the original's worker ended (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the original's worker: {reply['error']}")
        return reply

    def load(self, key: str, arrays: dict, directory: str) -> None:
        path = os.path.join(directory, f"{key}.npz")
        np.savez(path, **arrays)
        self._ask("load", key, path)

    def run(self, mode: str, key: str) -> float:
        return self._ask(mode, key)["seconds"]

    def probe(self, shape: tuple[int, int, int] | None = None) -> float:
        return self._ask("probe", *(shape or ()))["gflops"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self._ask("quit")
        self.proc.wait(timeout=60)


def serve(src: str, size_name: str, threads: int) -> None:
    """The worker's loop: one JSON command per stdin line, one JSON reply per stdout line."""
    from bench.model_step import PAPER

    original = Original(src, {"paper": PAPER, "smoke": SMOKE}[size_name], threads)
    batches: dict = {}
    steps = {"train": original.train_step, "eval": original.eval_step}
    for line in sys.stdin:
        command, *rest = json.loads(line)
        try:
            if command == "quit":
                reply = {}
            elif command == "info":
                reply = {"torch": original.torch.__version__, "threads": original.threads}
            elif command == "load":
                with np.load(rest[1]) as f:
                    batches[rest[0]] = original.batch(dict(f))
                reply = {}
            elif command == "probe":
                original.probe(tuple(rest) or (2048, 2048, 2048))
                reply = {"gflops": original.probe_samples[-1]}
            else:
                reply = {"seconds": timed(lambda f=steps[command], b=batches[rest[0]]: f(b))}
        except Exception as e:  # noqa: BLE001 - the driver raises it
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
        if command == "quit":
            return


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
    """One comparison of one mode: our batches, the original's (same examples), their times;
    ``ours_s`` and ``first_call_s`` per variant of ours (the default first)."""

    ours: list
    original: list
    ours_s: dict = dataclasses.field(default_factory=dict)
    original_s: list = dataclasses.field(default_factory=list)
    first_call_s: dict = dataclasses.field(default_factory=dict)


def parse_variants(text: str) -> dict[str, tuple[str, ...]]:
    """``--original_variants``: ``MODE:VARIANT`` pairs, comma-separated (e.g.
    ``train:xla_fused_adam,eval:xla``), timed beside our default path -> mode -> variants."""
    from bench.model_step import VARIANTS

    out: dict[str, tuple[str, ...]] = {}
    for part in filter(None, text.split(",")):
        mode, _, variant = part.partition(":")
        if mode not in DEFAULT_VARIANT or variant not in VARIANTS:
            raise ValueError(
                f"{part!r} is not MODE:VARIANT with MODE one of "
                f"{', '.join(DEFAULT_VARIANT)} and VARIANT one of {', '.join(VARIANTS)}"
            )
        if variant not in out.get(mode, ()):
            out[mode] = out.get(mode, ()) + (variant,)
    return out


def _interleave(worker, tmp, size, batches, rounds, realistic_per_round, extra, defaults):
    shared = size.name == "smoke"
    built = build_vqa(size, shared)
    rng = np.random.default_rng(0)
    sides: dict[tuple[str, str], Side] = {}
    fns: dict[str, dict] = {}
    for (mode, b), n_real in zip(batches.items(), realistic_per_round):
        fns[mode] = {
            v: step_function(built, size, mode, b, v, None, shared)[0]
            for v in dict.fromkeys((defaults[mode],) + extra.get(mode, ()))
        }
        padded = [make_batch(size, b, rng)]
        plan = realistic_batches(size, b, n_real, "bucket" if mode == "train" else "batch", rng)
        real = [make_batch(size, b, rng, slots, counts) for slots, counts in plan]
        for name, ours in (("padded", padded), ("realistic", real)):
            keys = [f"{mode}_{name}_{k}" for k in range(len(ours))]
            for key, x in zip(keys, ours):
                worker.load(key, original_arrays(*x, size.max_regions), tmp)
            sides[(mode, name)] = Side(ours, keys)
    # Untimed warm-up at every shape (tracing, XLA compiling; oneDNN and torch build kernels per
    # shape); each variant's first call per batch is recorded: an XLA variant pays its compile
    # there, once per input shape.
    for (mode, _), side in sides.items():
        for v, fn in fns[mode].items():
            side.ours_s[v] = []
            side.first_call_s[v] = [timed(lambda f=fn, x=x: f(*x).numpy()) for x in side.ours]
        worker.run(mode, side.original[0])
    tf_probe, torch_probe = MatmulProbe(2048, "float32"), []
    shape = model_shape(size, batches.get("eval", max(batches.values())))
    shaped = {
        "tensorflow": MatmulProbe(dtype="float32", shape=shape),
        "tensorflow_xla": MatmulProbe(dtype="float32", shape=shape, jit_compile=True),
    }
    torch_shaped: list[float] = []
    for _ in range(rounds):
        tf_probe.measure()
        torch_probe.append(worker.probe())
        for probe in shaped.values():
            probe.measure()
        torch_shaped.append(worker.probe(shape))
        for (mode, _), side in sides.items():
            ours_s = dict.fromkeys(fns[mode], 0.0)
            original_s = 0.0
            for x, key in zip(side.ours, side.original):
                for v, fn in fns[mode].items():
                    ours_s[v] += timed(lambda f=fn, x=x: f(*x).numpy())
                original_s += worker.run(mode, key)
            for v, seconds in ours_s.items():
                side.ours_s[v].append(seconds)
            side.original_s.append(original_s)
    shaped_probe = {
        "shape": list(shape),
        "what": "[batch x regions, d] x [d, 4d] float32, the feed-forward up-projection",
        "gflops": {
            "torch": summary(torch_shaped),
            **{k: summary(p.samples) for k, p in shaped.items()},
        },
    }
    return sides, tf_probe, torch_probe, shaped_probe


def model_shape(size: BenchSize, batch: int) -> tuple[int, int, int]:
    """The model's own largest matmul kind at ``batch``: the feed-forward up-projection over the
    image regions, [batch x regions, d] x [d, 4d] (at paper size b64: 6400 x 512 x 2048)."""
    return (batch * size.max_regions, size.hidden_size, 4 * size.hidden_size)


def _variant_result(side: Side, variant: str, examples: int) -> dict:
    return {
        "ours_examples_per_s": summary([examples / s for s in side.ours_s[variant]]),
        # per round: the original's seconds over ours on the same examples
        "ours_over_original": summary(
            [o / u for u, o in zip(side.ours_s[variant], side.original_s)]
        ),
        "first_call_s": side.first_call_s[variant],
    }


def run_original(
    src: str,
    size: BenchSize,
    batches: dict,
    rounds: int = 5,
    threads: int = 0,
    realistic_batches_per_round: tuple[int, int] = (10, 4),
    extra_variants: dict[str, tuple[str, ...]] | None = None,
) -> dict:
    """Side by side: ours (default path) and the original, interleaved batch by batch, every
    round preceded by both frameworks' matmul probes. ``batches``: mode -> batch size.
    ``extra_variants`` (mode -> variants of ours, :func:`parse_variants`) are timed in the same
    interleave, each reported under ``variants`` with its first call per batch (compiles)."""
    import tempfile

    threads = threads or os.cpu_count() or 1
    extra = extra_variants or {}
    defaults = default_variants(size)
    worker = Worker(src, size, threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sides, tf_probe, torch_probe, shaped_probe = _interleave(
                worker, tmp, size, batches, rounds, realistic_batches_per_round, extra, defaults
            )
    finally:
        worker.close()
    results = {}
    for (mode, name), side in sides.items():
        examples = sum(int(x[0]["text_ids"].shape[0]) for x in side.ours)
        default = _variant_result(side, defaults[mode], examples)
        results[f"{mode}_b{batches[mode]}_{name}"] = {
            "ours_variant": defaults[mode],
            "batches_per_round": len(side.ours),
            "examples_per_round": examples,
            "ours_slots": [int(x[0]["image_features"].shape[1]) for x in side.ours],
            "original_slots": size.max_regions,
            "ours_examples_per_s": default["ours_examples_per_s"],
            "original_examples_per_s": summary([examples / s for s in side.original_s]),
            "ours_over_original": default["ours_over_original"],
            "variants": {v: _variant_result(side, v, examples) for v in side.ours_s},
        }
    return {
        "status": "ok",
        "size": size.name,
        "rounds": rounds,
        "threads": {"torch": worker.info["threads"], "tensorflow_intra_op": _tf_threads()},
        "torch": worker.info["torch"],
        "process": "the original in a worker process of its own, driven over a pipe",
        "original_src": os.path.abspath(src),
        "comparisons": results,
        "matmul_probe_gflops": {
            "tensorflow": summary(tf_probe.samples),
            "torch": summary(torch_probe),
        },
        # the same rounds, at the model's feed-forward shape: TensorFlow's graph kernel, XLA's,
        # and torch's (what the original's steps run on)
        "model_shape_probe": shaped_probe,
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }


def _tf_threads() -> int:
    """TensorFlow's intra-op thread count as configured (0: its default, one per core)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


if __name__ == "__main__":  # the worker: python -m bench.original SRC SIZE THREADS
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
