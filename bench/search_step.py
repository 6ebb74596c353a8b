"""One search cycle of the supernet (u = 5 weight steps + 1 theta step) per estimator, against 6
training steps of a fixed network of the same width (the paper searches at d = 256, 4 heads).

The cycle is ``SearchModel.train_step`` through the model's own compiled train function (graph
mode: ``jit_compile=False``), fed one pre-made cycle element ``((inputs, targets) [B, u, ...],
(inputs, targets) [B, ...])``; the fixed network runs ``bench.model_step.make_train_step`` six times
on the same D_m batches. Estimators and the fixed network are interleaved round by round.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.common import MatmulProbe, load_average, peak_rss_mb, summary, timed
from bench.model_step import PAPER, SMOKE, build_vqa, make_batch, step_function

WEIGHT_STEPS = 5
#: the gumbel cycle's 5 weight steps alone (the same compiled cycle in the warm-up phase, where
#: the theta step is skipped): splits the cycle's cost into weight steps and theta step
SPLIT = "gumbel_weight_steps"


def variants() -> dict[str, tuple[str, str]]:
    """measured variant -> (estimator, arch_paths): every registered estimator
    (``mmnas_tf.nas.estimators``; its theta step computes every candidate) and ``gumbel_sampled``
    (only the sampled op in the theta step too)."""
    from mmnas_tf.nas.estimators import estimator_names

    return {
        **{name: (name, "all") for name in estimator_names()},
        "gumbel_sampled": ("gumbel", "sampled"),
    }


def _stack_cycle(batches: list[tuple[dict, dict]]):
    """u ``(inputs, targets)`` batches -> one with every tensor [B, u, ...] (``cycle_dataset``)."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda *t: tf.stack(t, axis=1), *batches)


def build_cycles(smoke: bool, estimators: tuple[str, ...], batch: int | None = None):
    """``(size, batch, one_fixed_cycle, {estimator: one_search_cycle}, fixed_variant,
    fixed_counter)``: callables that run 6 fixed-network training steps and one search cycle of
    each of ``estimators`` (keys of :func:`variants`; d=256 supernet; smoke: a 2-slot one) on
    the same pre-made batches."""
    from mmnas_tf.engine import optimizers as engine_optimizers
    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.tasks import get_task

    paper = dataclasses.replace(PAPER, name="search_d256", hidden_size=256, num_heads=4)
    # smoke: a 2-slot supernet (tracing a cycle is what costs; each slot holds every candidate)
    size = dataclasses.replace(SMOKE, encoder=("SA",), decoder=("GA",)) if smoke else paper
    batch = batch or (2 if smoke else 8)
    rng = np.random.default_rng(3)
    data = [make_batch(size, batch, rng) for _ in range(WEIGHT_STEPS + 1)]
    cycle = (_stack_cycle(data[:WEIGHT_STEPS]), data[WEIGHT_STEPS])

    shared = smoke  # smoke: reuse the fixed step traced by the model entries of this process
    built = build_vqa(size, shared)
    # the fixed network updates with the Adam a retraining uses (make_adam: fused or not, as the
    # search's SampledPathAdam)
    fixed_variant = "graph_fused_adam" if engine_optimizers.FUSED_ADAM else "graph"
    fixed_step, fixed_counter = step_function(
        built, size, "train", batch, fixed_variant, size.max_regions, shared
    )
    task = get_task("vqa")
    supernet_config = dataclasses.replace(size.model_config(task), genotype=None)
    supernet = task.build_model(supernet_config.replace(num_answers=size.num_answers))
    searches, models = {}, {}
    for estimator in estimators:
        kind, paths = variants()[estimator]
        search = SearchModel(
            task, supernet, estimator=kind, weight_steps=WEIGHT_STEPS, arch_paths=paths
        )
        search.compile(jit_compile=False)
        search.set_state("search")
        searches[estimator], models[estimator] = search.make_train_function(), search

    def one_fixed_cycle():
        loss = None
        for inputs, targets in data:
            loss = fixed_step(inputs, targets)
        return loss.numpy()

    def one_search_cycle(fn):
        out = fn(iter([cycle]))
        return {k: v.numpy() for k, v in out.items()}

    cycles = {name: (lambda fn=fn: one_search_cycle(fn)) for name, fn in searches.items()}
    if "gumbel" in searches:  # the same cycle with the theta step switched off (phase warm-up)

        def weight_steps_only():
            models["gumbel"].set_state("warmup")
            try:
                return one_search_cycle(searches["gumbel"])
            finally:
                models["gumbel"].set_state("search")

        cycles[SPLIT] = weight_steps_only
    return size, batch, one_fixed_cycle, cycles, fixed_variant, fixed_counter


def run_search(
    smoke: bool,
    estimators: tuple[str, ...] = ("gumbel",),
    batch: int | None = None,
    rounds: int | None = None,
) -> dict:
    """Seconds per search cycle per estimator and per 6 fixed-network steps; ratio = cycle / 6.

    The first call of each estimator's cycle (trace + Grappler of 30 mixed slots) took 246 s and
    7.2 GB at d=256 (load 3-5), so the full run measures ``gumbel`` (the target) unless asked."""
    from mmnas_tf.engine import optimizers as engine_optimizers

    rounds = rounds or (1 if smoke else 6)
    known = variants()
    unknown = sorted(set(estimators) - set(known))
    if unknown:
        raise ValueError(f"unknown search estimators {unknown}; accepted: {', '.join(known)}")
    estimators = tuple(e for e in known if e in estimators)
    size, batch, one_fixed_cycle, cycles, fixed_variant, fixed_counter = build_cycles(
        smoke, estimators, batch
    )
    first = {"fixed_6_steps": timed(one_fixed_cycle)}
    for name, cycle_fn in cycles.items():
        first[name] = timed(cycle_fn)
    matmul = MatmulProbe()
    times: dict[str, list[float]] = {"fixed_6_steps": [], **{e: [] for e in cycles}}
    for _ in range(rounds):
        matmul.measure()
        times["fixed_6_steps"].append(timed(one_fixed_cycle))
        for name, cycle_fn in cycles.items():
            times[name].append(timed(cycle_fn))
    stats = {k: summary(v) for k, v in times.items()}
    # Per-round ratios (each round runs the fixed steps and every cycle back to back), then their
    # median: load bursts on a shared machine last seconds and would skew a ratio of medians.
    fixed = times["fixed_6_steps"]
    return {
        "status": "ok",
        "size": size.name,
        "hidden_size": size.hidden_size,
        "batch": batch,
        "weight_steps": WEIGHT_STEPS,
        "variant": "graph (jit_compile=False)",
        "first_call_s": first,
        "cycle_s": stats,
        "ratios": {
            e: summary([c / f for c, f in zip(times[e], fixed)])["median"] for e in estimators
        },
        "ratios_per_round": {
            e: summary([c / f for c, f in zip(times[e], fixed)]) for e in estimators
        },
        "split": _split(times) if SPLIT in times else None,
        "skipped_estimators": {
            e: "not asked (--search_estimators): a first call costs ~4 min at d=256"
            for e in known
            if e not in estimators
        },
        "fixed_traces": fixed_counter["traces"],
        "fixed_variant": fixed_variant,
        "fused_adam": engine_optimizers.FUSED_ADAM,
        "matmul_probe": matmul.result(),
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }


def _split(times: dict[str, list[float]]) -> dict:
    """Per-round medians: the 5 weight steps over 5 fixed steps, and the theta step (cycle minus
    its weight steps) over one fixed step."""
    fixed, cycle, weights = times["fixed_6_steps"], times["gumbel"], times[SPLIT]
    return {
        "weight_steps_over_5_fixed": summary([w / (f * 5 / 6) for w, f in zip(weights, fixed)]),
        "theta_step_over_1_fixed": summary(
            [(c - w) / (f / 6) for c, w, f in zip(cycle, weights, fixed)]
        ),
    }
