"""Training step and evaluation forward of MMnasNet-VQA: what one step costs, graph vs XLA.

The measured step is the retrain recipe of the original (docs/original_behaviour.md, "Training
recipe"): forward, sum-reduced
BCE via ``task.compute_loss``, backward, clip by global norm 1.0, Adam (0.9, 0.98, 1e-9). The
evaluation forward is ``model(inputs, training=False)``. Both run as ``tf.function`` with a fixed
``input_signature`` (no retracing) either as a TF graph (``jit_compile=False``) or compiled by XLA
(``jit_compile=True``); the variants are interleaved step by step with a matmul probe, so every
ratio compares measurements taken under the same load of this shared machine.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from bench.common import (
    PROBE_SIZE,
    Probes,
    compute_dtype,
    load_average,
    peak_rss_mb,
    summary,
    timed,
)

GENOTYPE_PATH = os.path.join("mmnas_tf", "genotypes", "mmnas_vqa.json")
#: FLOPs of one VQA MMnasNet example, from mmnas_measurements.json (torch FlopCounterMode at
#: batch 8: 135.21 GFLOP forward+backward, 45.64 GFLOP forward; LSTM and optimizer not counted).
TRAIN_FLOPS_PER_EXAMPLE = 135.21e9 / 8
EVAL_FLOPS_PER_EXAMPLE = 45.64e9 / 8
#: variant -> jit_compile. ``graph`` and ``xla`` update with Keras's Adam (elementwise ops),
#: ``graph_fused_adam`` and ``xla_fused_adam`` with ``mmnas_tf.engine.optimizers.FusedAdam`` (one
#: kernel per variable, what ``make_adam`` returns while ``FUSED_ADAM`` is on; XLA compiles it).
VARIANTS = {"graph": False, "xla": True, "graph_fused_adam": False, "xla_fused_adam": True}


@dataclasses.dataclass(frozen=True)
class BenchSize:
    """The network and input sizes a measurement uses (``paper`` or ``smoke``)."""

    name: str
    hidden_size: int
    vocab_size: int
    num_answers: int
    max_tokens: int
    max_regions: int
    feature_size: int
    encoder: tuple[str, ...] | None = None  # None: the published mmnas_vqa.json genotype
    decoder: tuple[str, ...] | None = None
    num_heads: int = 8
    pool_output_size: int = 1024

    def model_config(self, task, genotype=None):
        from mmnas_tf.genotype import Genotype

        if genotype is None and self.encoder is None:
            genotype = Genotype.load(GENOTYPE_PATH)
        elif genotype is None:
            genotype = Genotype(self.encoder, self.decoder)
        return task.model_config(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            ffn_size=4 * self.hidden_size,
            pool_mlp_size=self.hidden_size,
            pool_output_size=self.pool_output_size,
            vocab_size=self.vocab_size,
            max_tokens=self.max_tokens,
            max_regions=self.max_regions,
            feature_size=self.feature_size,
            num_encoder_blocks=len(genotype.encoder),
            num_decoder_blocks=len(genotype.decoder),
            genotype=genotype,
        )


PAPER = BenchSize("paper", 512, 20573, 3129, 14, 100, 2048)
SMOKE = BenchSize("smoke", 32, 100, 10, 6, 20, 16, ("SA",), ("GA", "RSA", "FFN"), 4, 64)
#: --smoke only: one model and one step function per (mode, batch, variant, signature) for the
#: whole process; tracing, not running, is what costs seconds at smoke size.
_SHARED: dict = {}


ADAM_ARGS = ("learning_rate", "beta_1", "beta_2", "epsilon")


def build_vqa(size: BenchSize, shared: bool = False, dropout_generator: str | None = None):
    """(task, model, optimizer) with the optimizer's slots built OUTSIDE any tf.function: creating
    them inside the first traced step makes that trace ~5x slower (variables lifted out of it).
    ``dropout_generator``: the model's (None: ``ModelConfig``'s default)."""
    import keras

    from mmnas_tf.tasks import get_task

    key = ("model", size, compute_dtype(), dropout_generator)  # smoke: one process
    if shared and key in _SHARED:
        return _SHARED[key]
    task = get_task("vqa")
    config = size.model_config(task).replace(num_answers=size.num_answers)
    if dropout_generator is not None:
        config = config.replace(dropout_generator=dropout_generator)
    model = task.build_model(config)
    optimizer = keras.optimizers.Adam(1e-4, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    optimizer.build(model.trainable_variables)
    if shared:
        _SHARED[key] = task, model, optimizer
    return task, model, optimizer


def step_function(
    built: tuple, size: BenchSize, mode: str, batch: int, variant: str, regions, shared=False
):
    """``(tf.function, trace counter)`` of ``mode`` (train / eval) over ``built`` = (task, model,
    optimizer), or with ``shared`` the process-wide one of the same key."""
    key = (size, mode, batch, variant, regions, compute_dtype())
    if shared and key in _SHARED:
        return _SHARED[key]
    task, model, optimizer = built
    spec = signature(size, batch, regions)
    if variant.endswith("_fused_adam"):
        from mmnas_tf.engine.optimizers import FusedAdam

        optimizer = FusedAdam(**{k: optimizer.get_config()[k] for k in ADAM_ARGS})
        optimizer.build(model.trainable_variables)
    if mode == "train":
        fn = make_train_step(task, model, optimizer, VARIANTS[variant], spec)
    else:
        fn = make_eval_step(model, VARIANTS[variant], spec)
    if shared:
        _SHARED[key] = fn
    return fn


def make_batch(
    size: BenchSize,
    batch: int,
    rng: np.random.Generator,
    regions: int | None = None,
    region_counts=None,
) -> tuple[dict, dict]:
    """A synthetic batch: ``region_counts`` real regions (default all) zero-padded to ``regions``
    slots, questions of 4..m real tokens, ~3 soft-scored answers per question."""
    import tensorflow as tf

    regions = regions or size.max_regions
    counts = np.full(batch, regions) if region_counts is None else np.asarray(region_counts)
    slot = np.arange(regions)[None, :]
    real = slot < counts[:, None]
    features = rng.random((batch, regions, size.feature_size), dtype=np.float32) * real[..., None]
    xy = rng.random((batch, regions, 2)) * 400
    wh = 20 + rng.random((batch, regions, 2)) * 200
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32) * real[..., None]
    lengths = rng.integers(min(4, size.max_tokens), size.max_tokens + 1, batch)
    ids = rng.integers(3, size.vocab_size, (batch, size.max_tokens))
    ids = np.where(np.arange(size.max_tokens)[None] < lengths[:, None], ids, 0)
    scores = np.zeros((batch, size.num_answers), np.float32)
    for row in scores:
        row[rng.integers(0, size.num_answers, 3)] = (1.0, 0.6, 0.3)
    inputs = {
        "text_ids": tf.constant(ids, tf.int32),
        "image_features": tf.constant(features),
        "boxes": tf.constant(boxes),
    }
    return inputs, {"answer_scores": tf.constant(scores)}


def signature(size: BenchSize, batch: int | None, regions: int | None) -> tuple[dict, dict]:
    """TensorSpecs of (inputs, targets); ``None`` dims accept any batch / region count."""
    import tensorflow as tf

    inputs = {
        "text_ids": tf.TensorSpec([batch, size.max_tokens], tf.int32),
        "image_features": tf.TensorSpec([batch, regions, size.feature_size], tf.float32),
        "boxes": tf.TensorSpec([batch, regions, 4], tf.float32),
    }
    return inputs, {"answer_scores": tf.TensorSpec([batch, size.num_answers], tf.float32)}


def make_train_step(task, model, optimizer, jit_compile: bool, spec: tuple[dict, dict]):
    """The training step as a ``tf.function`` and a dict whose ``traces`` counts its traces."""
    import tensorflow as tf

    counter = {"traces": 0}

    def step(inputs, targets):
        counter["traces"] += 1  # Python: runs only while tracing
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            loss = task.compute_loss(model, inputs, targets, training=True)
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply(grads, variables)
        return loss

    return tf.function(step, input_signature=spec, jit_compile=jit_compile), counter


def make_eval_step(model, jit_compile: bool, spec: tuple[dict, dict]):
    """The evaluation forward as a ``tf.function`` (targets ignored) and its trace counter."""
    import tensorflow as tf

    counter = {"traces": 0}

    def step(inputs, targets):
        counter["traces"] += 1
        return model(inputs, training=False)["logits"]

    return tf.function(step, input_signature=spec, jit_compile=jit_compile), counter


def run_fixed(
    size: BenchSize,
    mode: str,
    batch: int,
    variants: tuple[str, ...] = ("graph", "xla"),
    warmup: int = 2,
    steps: int = 8,
    batches: int = 3,
    probe: bool = True,
) -> dict:
    """Steps of ``mode`` (train / eval) at a fixed shape, variants interleaved step by step.

    Returns per variant: first-call seconds (trace + compile + run), step seconds, examples/s,
    GFLOP/s and its share of the matmul probe's median, and the trace counts."""
    rng = np.random.default_rng(0)
    data = [make_batch(size, batch, rng) for _ in range(batches)]
    shared = size.name == "smoke"
    built = build_vqa(size, shared)
    fns = {
        v: step_function(built, size, mode, batch, v, size.max_regions, shared) for v in variants
    }
    out = {v: {"first_call_s": timed(lambda f=f: f(*data[0]).numpy())} for v, (f, _) in fns.items()}
    dtype = compute_dtype()
    probes = Probes(PROBE_SIZE if size.name == "paper" else 512, dtype) if probe else None
    times: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(warmup + steps):
        if probes is not None:
            probes.measure()
        for v, (f, _) in fns.items():
            seconds = timed(lambda f=f, b=data[i % batches]: f(*b).numpy())
            if i >= warmup:
                times[v].append(seconds)
    # The FLOP counts are those of the paper-size network: no FLOP/s for other sizes.
    flops = (TRAIN_FLOPS_PER_EXAMPLE if mode == "train" else EVAL_FLOPS_PER_EXAMPLE) * batch
    flops = flops if size.name == "paper" else None
    # shares against the probe of the step's own compute dtype (bf16 steps: the bf16 matmul)
    probe = probes.gflops() if probes else {}
    peak, peak_max = probe.get("median"), probe.get("max")
    fp32_peak = probes.gflops("float32").get("median") if probes else None
    for v, (f, counter) in fns.items():
        s = summary(times[v])
        gflops = flops / s["median"] / 1e9 if s["n"] and flops else None
        out[v].update(
            step_s=s,
            examples_per_s=batch / s["median"] if s["n"] else None,
            gflops=gflops,
            percent_of_peak=100.0 * gflops / peak if peak and gflops else None,
            # conservative: against the least disturbed probe (a loaded machine slows the
            # 2-thread probe more than the model step, which inflates the median ratio)
            percent_of_peak_max=100.0 * gflops / peak_max if peak_max and gflops else None,
            # least disturbed vs least disturbed: fastest step over fastest probe
            percent_best_of_best=100.0 * flops / s["min"] / 1e9 / peak_max
            if peak_max and gflops
            else None,
            percent_of_fp32_peak=100.0 * gflops / fp32_peak if fp32_peak and gflops else None,
            traces=counter["traces"],
            tracing_count=f.experimental_get_tracing_count(),
            steps_run=1 + warmup + steps,
        )
    valid = [v for v in variants if out[v].get("gflops")]
    best = max(valid, key=lambda v: out[v]["gflops"]) if valid else None
    return {
        "status": "ok",
        "size": size.name,
        "mode": mode,
        "batch": batch,
        "regions": size.max_regions,
        "tokens": size.max_tokens,
        "flops_per_step": flops,
        "dtype_policy": _policy_name(),
        # the model's dropout generator (reports made before the setting: "uniform")
        "dropout_generator": built[1].backbone.config.dropout_generator,
        "peak_dtype": dtype,
        "variants": out,
        "best": best,
        "matmul_probe": probes.result()[dtype] if probes else None,
        "matmul_probes": probes.result() if probes else None,
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }


def _policy_name() -> str:
    import keras

    return keras.mixed_precision.global_policy().name
