"""The gumbel theta step's gradient computation in three forms, interleaved, on a reduced supernet
(d=256, 4 heads, 100 regions, batch 8, M/N 2/4 blocks: the per-op costs of the paper's search
size, fewer slots to trace):

- ``forward_only`` (the default since issue 15): the sampled candidate forward and backward, the
  others forward only;
- ``where``: the form before it, ``sum_j gate_j where(j == k, o_j, stop_gradient(o_j))``, whose
  graph runs every candidate's backward pass (on zeros for j != k);
- ``sampled``: only the sampled candidate (``arch_paths="sampled"``, biased), the lower bound.

Same loss, noise and weights for the three; the first two give the same gradient
(tests/nas/test_search_model.py)."""

from __future__ import annotations

import dataclasses

from bench.common import load_average, peak_rss_mb, summary, timed


def run_theta_step(smoke: bool, rounds: int = 7) -> dict:
    import numpy as np
    import tensorflow as tf

    from bench.model_step import PAPER, SMOKE, make_batch
    from mmnas_tf.nas import estimators as est
    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.tasks import get_task

    base = dataclasses.replace(
        PAPER,
        name="theta_d256",
        hidden_size=256,
        num_heads=4,
        encoder=("SA", "FFN"),
        decoder=("GA", "RSA", "FFN", "SA"),
    )
    size = dataclasses.replace(SMOKE, encoder=("SA",), decoder=("GA",)) if smoke else base
    batch = 2 if smoke else 8
    task = get_task("vqa")
    config = dataclasses.replace(size.model_config(task), genotype=None)
    search = SearchModel(
        task, task.build_model(config.replace(num_answers=size.num_answers)), estimator="gumbel"
    )
    search.set_state("search", temperature=1.0)
    inputs, targets = make_batch(size, batch, np.random.default_rng(5))

    def make(all_paths, form="forward_only"):
        @tf.function
        def grads(noise):
            search.set_all_paths_form(form)  # read while tracing
            watched = [v.value for v in search.arch_variables]
            with tf.GradientTape() as tape:
                loss = search.theta_loss(inputs, targets, watched, noise, all_paths=all_paths)
            return tape.gradient(loss, watched)

        return grads

    noises = [
        est.gumbel_noise(tf.constant([3, c], tf.int64), len(search.mixed), 4) for c in range(3)
    ]
    forms = {"forward_only": make(True), "sampled": make(False)}
    first = {k: timed(lambda f=f: f(noises[0])[0].numpy()) for k, f in forms.items()}
    forms["where"] = make(True, "where")
    first["where"] = timed(lambda: forms["where"](noises[0])[0].numpy())
    times: dict[str, list[float]] = {k: [] for k in forms}
    for r in range(rounds):
        for name, fn in forms.items():
            times[name].append(timed(lambda fn=fn, n=noises[r % 3]: fn(n)[0].numpy()))
    per_round = {
        f"{a}_over_{b}": summary([x / y for x, y in zip(times[a], times[b])])
        for a, b in (("where", "forward_only"), ("forward_only", "sampled"), ("where", "sampled"))
    }
    return {
        "status": "ok",
        "size": size.name,
        "batch": batch,
        "mixed_slots": len(search.mixed),
        "first_call_s": first,
        "step_s": {k: summary(v) for k, v in times.items()},
        "ratios_per_round": per_round,
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }
