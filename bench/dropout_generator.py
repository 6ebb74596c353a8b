"""The training step at batch 8 with each dropout generator (``ModelConfig.dropout_generator``),
interleaved A/B: entry ``dropout_generator`` of ``python -m bench.run``.

One model per generator (the same sizes, genotype and initial weights: the second copies the
first's), each with the default training path (graph, ``FusedAdam``, clip 1.0, the step of
``bench.model_step``), on the same batches. After a first call and one untimed step each, every
round times ``steps`` consecutive steps of one generator then of the other, the order alternating
from round to round (ABBA...), so a change of load hits both alike. Reported per generator: step
seconds (median, min, max over every timed step) and examples/s; and the ratio uniform / bytes of
each round's mean step times (> 1: ``"bytes"`` faster), median with min and max. The same for the
process's CPU seconds per step (user + system, every thread): on a machine shared with other jobs
the wall time of a step also holds the time it waited for a core, its CPU time much less so.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench.common import load_average, peak_rss_mb, summary, timed

GENERATORS = ("uniform", "bytes")


def run_dropout_generators(size, batch: int, rounds: int, steps: int, batches: int = 3) -> dict:
    import keras

    from bench.model_step import build_vqa, make_batch, step_function

    rng = np.random.default_rng(0)
    data = [make_batch(size, batch, rng) for _ in range(batches)]
    fns, models = {}, {}
    for generator in GENERATORS:
        keras.utils.set_random_seed(0)
        built = build_vqa(size, dropout_generator=generator)
        model = built[1]
        model(data[0][0], training=False)  # built, so the weights can be copied
        if models:
            model.set_weights(next(iter(models.values())).get_weights())
        fns[generator] = step_function(
            built, size, "train", batch, "graph_fused_adam", size.max_regions
        )
        models[generator] = model
    start_load = load_average()
    out = {g: {"first_call_s": timed(lambda f=f: f(*data[0]).numpy())} for g, (f, _) in fns.items()}
    for f, _ in fns.values():
        f(*data[1 % batches]).numpy()  # one untimed step each
    times: dict[str, list[float]] = {g: [] for g in GENERATORS}
    cpu: dict[str, list[float]] = {g: [] for g in GENERATORS}
    ratios, cpu_ratios, orders, i = [], [], [], 0
    for r in range(rounds):
        order = GENERATORS if r % 2 == 0 else GENERATORS[::-1]
        orders.append("".join(g[0] for g in order))
        means, cpu_means = {}, {}
        for g in order:
            f = fns[g][0]
            ts, cs = [], []
            for k in range(steps):
                c0 = time.process_time()
                ts.append(timed(lambda f=f, b=data[(i + k) % batches]: f(*b).numpy()))
                cs.append(time.process_time() - c0)
            times[g].extend(ts)
            cpu[g].extend(cs)
            means[g], cpu_means[g] = statistics.fmean(ts), statistics.fmean(cs)
        i += steps
        ratios.append(means["uniform"] / means["bytes"])
        cpu_ratios.append(cpu_means["uniform"] / cpu_means["bytes"])
    for g, (f, counter) in fns.items():
        s = summary(times[g])
        out[g].update(
            step_s=s,
            examples_per_s=batch / s["median"],
            step_cpu_s=summary(cpu[g]),
            traces=counter["traces"],
            tracing_count=f.experimental_get_tracing_count(),
        )
    return {
        "status": "ok",
        "size": size.name,
        "batch": batch,
        "regions": size.max_regions,
        "tokens": size.max_tokens,
        "dropout": models["uniform"].backbone.config.dropout,
        "variant": "graph_fused_adam",
        "rounds": rounds,
        "steps_per_round": steps,
        "round_orders": orders,
        "generators": out,
        "uniform_over_bytes": {**summary(ratios), "per_round": ratios},
        "uniform_over_bytes_cpu": {**summary(cpu_ratios), "per_round": cpu_ratios},
        "keep_probability": {
            g: models[g].backbone.decoder_blocks[0].output_dropout.keep_probability
            for g in GENERATORS
        },
        "load_average_1min": {"start": start_load, "end": load_average()},
        "peak_rss_mb": peak_rss_mb(),
    }
