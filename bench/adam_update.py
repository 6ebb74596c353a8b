"""The optimizer update alone: Keras's Adam vs ``FusedAdam`` over the paper-size MMnasNet-VQA
variables, interleaved. The update does not depend on the batch size or on the dtype policy
(the variables stay float32 under mixed_bfloat16), so its difference is the difference of the
training step at any batch size and either policy."""

from __future__ import annotations

from bench.common import load_average, peak_rss_mb, summary, timed


def run_adam_update(size, rounds: int = 7) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from bench.model_step import build_vqa
    from mmnas_tf.engine.optimizers import FusedAdam

    _, model, _ = build_vqa(size)
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.standard_normal(s, dtype=np.float32) * 1e-3) for s in shapes]
    steps = {}
    for name, cls in (("keras_adam", keras.optimizers.Adam), ("fused_adam", FusedAdam)):
        variables = [tf.Variable(tf.zeros(s)) for s in shapes]
        opt = cls(1e-4, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
        opt.build(variables)
        fn = tf.function(lambda g, opt=opt, vs=variables: opt.apply(g, vs))
        fn(grads)  # trace + first run
        steps[name] = (fn, variables)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, (fn, variables) in steps.items():
            times[name].append(timed(lambda fn=fn, v=variables: (fn(grads), v[0].numpy())))
    ratio = summary([f / k for f, k in zip(times["fused_adam"], times["keras_adam"])])
    return {
        "status": "ok",
        "size": size.name,
        "parameters": int(sum(np.prod(s) for s in shapes)),
        "variables": len(shapes),
        "update_s": {k: summary(v) for k, v in times.items()},
        "fused_over_keras_per_round": ratio,
        "load_average_1min": load_average(),
        "peak_rss_mb": peak_rss_mb(),
    }
