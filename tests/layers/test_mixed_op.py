"""MixedOp: one branch runs for a hard choice, straight-through gates, the proxyless gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support.layer_test import run_layer_test

from mmnas_tf.layers.mixed_op import MixedOp
from mmnas_tf.nas import estimators as est

D, HEADS, FFN = 8, 2, 16


def make_inputs(seed=0, batch=2, length=5):
    r = np.random.RandomState(seed)
    y = tf.constant(r.randn(batch, length, D).astype("float32"))
    mask = tf.constant(np.arange(length)[None, :].repeat(batch, 0) < length - 1)
    context = {
        "mask": mask,
        "guide": tf.constant(r.randn(batch, 3, D).astype("float32")),
        "guide_mask": tf.ones((batch, 3), tf.bool),
        "relation": tf.constant(np.abs(r.randn(batch, length, length, 4)).astype("float32")),
    }
    return y, context


def build_mixed(candidates=("SA", "GA", "RSA", "FFN"), seed=0):
    keras.utils.set_random_seed(seed)
    mixed = MixedOp(candidates, hidden_size=D, num_heads=HEADS, ffn_size=FFN, dropout=0.0)
    y, context = make_inputs()
    mixed(y, context)  # builds every candidate (softmax mixture)
    return mixed, y, context


def count_runs(mixed):
    """Adds a tf.Variable counter per candidate, incremented whenever the candidate computes."""
    counters = [tf.Variable(0, dtype=tf.int32) for _ in mixed.candidate_ops]
    for op, counter in zip(mixed.candidate_ops, counters):
        original = op.transform

        def transform(y, context, training=None, original=original, counter=counter):
            with tf.control_dependencies([counter.assign_add(1)]):
                return tf.identity(original(y, context, training=training))

        op.transform = transform
    return counters


@pytest.mark.parametrize("jit", [False, True])
def test_only_the_chosen_candidate_runs_in_a_compiled_function(jit):
    mixed, y, context = build_mixed()
    counters = count_runs(mixed)
    outputs = {}

    @tf.function(jit_compile=jit)
    def run(index):
        return mixed(y, context, choice=index)

    for k in (2, 0, 2):
        outputs[k] = run(tf.constant(k)).numpy()
    assert [int(c.numpy()) for c in counters] == [1, 0, 2, 0]
    expected = mixed.candidate_ops[2](y, context).numpy()
    np.testing.assert_allclose(outputs[2], expected, rtol=1e-5, atol=1e-5)


def test_gate_choice_runs_one_candidate_and_passes_the_gradient_to_theta():
    mixed, y, context = build_mixed()
    counters = count_runs(mixed)
    theta = tf.Variable([0.3, -0.2, 0.1, 0.4])
    w = tf.constant(np.random.RandomState(1).randn(*y.shape).astype("float32"))
    noise = tf.constant([[0.0, 0.0, 5.0, 0.0]])  # forces candidate 2 (RSA)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            (gate,) = est.straight_through_gates("gumbel", [theta], noise, 1.0)
            out = mixed(y, context, choice=gate)
            loss = tf.reduce_sum(out * w)
        return out, tape.gradient(loss, theta)

    out, grad = step()
    assert [int(c.numpy()) for c in counters] == [0, 0, 1, 0]
    o2 = mixed.candidate_ops[2](y, context)
    np.testing.assert_allclose(out.numpy(), o2.numpy(), rtol=1e-5, atol=1e-5)
    # straight-through: dL/dtheta = <o_2, w> * d softmax(theta + G)_2 / d theta (tau = 1)
    p = tf.nn.softmax(theta + noise[0]).numpy()
    g2 = float(tf.reduce_sum(o2 * w))
    expected = g2 * p[2] * (np.eye(4)[2] - p)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_proxyless_gradient_matches_the_closed_form():
    """docs/original_behaviour.md, "Search": dL/dg_i = <o_i, dL/dout>, dL/dtheta_i = sum_j dL/dg_j
    p_j (delta_ij - p_i)."""
    mixed, y, context = build_mixed()
    counters = count_runs(mixed)
    theta = tf.Variable([0.5, -0.3, 0.2, 0.1])
    w = tf.constant(np.random.RandomState(2).randn(*y.shape).astype("float32"))  # dL/dout
    noise = tf.constant([[0.0, 4.0, 0.0, 0.0]])  # samples candidate 1 (GA)
    with tf.GradientTape() as tape:
        (gate,) = est.straight_through_gates("proxyless", [theta], noise, 1.0)
        out = mixed(y, context, choice=gate, all_paths=True)
        loss = tf.reduce_sum(out * w)
    grad = tape.gradient(loss, theta).numpy()
    assert [int(c.numpy()) for c in counters] == [1, 1, 1, 1]  # every candidate computed

    outs = [op(y, context).numpy() for op in mixed.candidate_ops]
    np.testing.assert_allclose(out.numpy(), outs[1], rtol=1e-5, atol=1e-5)  # forward = sampled
    dg = np.array([np.sum(o * w.numpy()) for o in outs], np.float64)
    p = np.exp(theta.numpy() - theta.numpy().max())
    p /= p.sum()
    expected = np.array([sum(dg[j] * p[j] * ((i == j) - p[i]) for j in range(4)) for i in range(4)])
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)


def test_gumbel_all_paths_gradient_compares_every_candidate():
    """Straight-through Gumbel with every output: dL/dtheta_i = s_i (a_i - sum_j s_j a_j) / tau,
    a_j = <o_j, dL/dout>, s = softmax((theta + G) / tau). Zero when all candidates agree."""
    mixed, y, context = build_mixed()
    theta = tf.Variable([0.5, -0.3, 0.2, 0.1])
    w = tf.constant(np.random.RandomState(3).randn(*y.shape).astype("float32"))
    noise = tf.constant([[0.3, -0.2, 2.5, 0.1]])  # samples candidate 2 (RSA)
    tau = 2.0
    with tf.GradientTape() as tape:
        (gate,) = est.straight_through_gates("gumbel", [theta], noise, tau)
        out = mixed(y, context, choice=gate, all_paths=True)
        loss = tf.reduce_sum(out * w)
    grad = tape.gradient(loss, theta).numpy()
    outs = [op(y, context).numpy() for op in mixed.candidate_ops]
    np.testing.assert_allclose(out.numpy(), outs[2], rtol=1e-5, atol=1e-5)
    a = np.array([np.sum(o * w.numpy()) for o in outs], np.float64)
    z = (theta.numpy() + noise.numpy()[0]) / tau
    s = np.exp(z - z.max())
    s /= s.sum()
    np.testing.assert_allclose(grad, s * (a - (s * a).sum()) / tau, rtol=1e-4, atol=1e-5)
    assert abs(grad.sum()) < 1e-4  # relative: the logits' mean does not move


def where_form(mixed, y, context, gate, training):
    """The all-paths output as first written: every candidate forward AND backward, the others'
    gradients zeroed by where(); the reference of the cheaper form."""
    index = tf.argmax(gate)
    total = 0.0
    for j, op in enumerate(mixed.candidate_ops):
        out = op(y, context, training=training)
        total = total + gate[j] * tf.where(tf.equal(index, j), out, tf.stop_gradient(out))
    return total


@pytest.mark.parametrize("estimator", ["gumbel", "proxyless"])
def test_all_paths_equals_the_where_form_including_dropout(estimator):
    """Same output and the same gradients (theta, input, every weight) as the sum over every
    candidate with where(): running the others forward only changes no number, and each
    candidate's dropout draws once in both forms (same masks after restoring the seeds)."""
    keras.utils.set_random_seed(0)
    mixed = MixedOp(("SA", "GA", "RSA", "FFN"), D, HEADS, FFN, dropout=0.3)
    y, context = make_inputs()
    mixed(y, context)
    y = tf.Variable(y)
    theta = tf.Variable([0.5, -0.3, 0.2, 0.1])
    w = tf.constant(np.random.RandomState(4).randn(*y.shape).astype("float32"))
    seeds = [v for v in mixed.non_trainable_variables if "seed" in v.path]
    assert len(seeds) >= 4
    for k in range(4):
        noise = tf.constant([[4.0 if j == k else 0.0 for j in range(4)]])

        @tf.function
        def grads(form, noise=noise):
            sources = [theta, y, *mixed.trainable_variables]
            with tf.GradientTape() as tape:
                (gate,) = est.straight_through_gates(estimator, [theta], noise, 2.0)
                out = form(gate)
                loss = tf.reduce_sum(out * w)
            g = tape.gradient(loss, sources)
            return out, [tf.zeros_like(s) if d is None else d for s, d in zip(sources, g)]

        state = [v.numpy() for v in seeds]
        out, new = grads(lambda gate: mixed(y, context, training=True, choice=gate, all_paths=True))
        for v, s in zip(seeds, state):
            v.assign(s)
        ref_out, ref = grads(lambda gate: where_form(mixed, y, context, gate, True))
        np.testing.assert_allclose(out.numpy(), ref_out.numpy(), rtol=0, atol=1e-6)
        assert np.any(ref[0].numpy()) and np.any(ref[1].numpy())
        for a, b in zip(new, ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_non_sampled_outputs_are_stop_gradiented_in_all_paths_mode():
    mixed, y, context = build_mixed(("SA", "FFN"))
    gate = tf.constant([0.0, 1.0])
    with tf.GradientTape() as tape:
        out = mixed(y, context, choice=gate, all_paths=True)
    grads = tape.gradient(out, mixed.candidate_ops[0].trainable_variables)
    assert all(g is None or not np.any(g.numpy()) for g in grads)


def test_arch_logits_weight_config_round_trip_and_errors():
    mixed, _, _ = build_mixed(("SA", "FFN"))
    names = [w.name for w in mixed.weights if "arch_logits" in w.name]
    assert names == ["arch_logits"] and mixed.arch_logits.trainable
    clone = MixedOp.from_config(mixed.get_config())
    assert clone.candidates == ("SA", "FFN") and clone.ffn_size == FFN
    with pytest.raises(ValueError, match="at least two"):
        MixedOp(("SA",), hidden_size=D, num_heads=HEADS, ffn_size=FFN)
    with pytest.raises(ValueError, match="accepted"):
        MixedOp(("SA", "XX"), hidden_size=D, num_heads=HEADS, ffn_size=FFN)
    prior = MixedOp(("SA", "FFN"), D, HEADS, FFN, initial_logits=[1.0, -1.0])
    prior(*make_inputs())
    np.testing.assert_array_equal(prior.arch_logits.numpy(), [1.0, -1.0])


def test_mixed_op_layer_harness():
    """The shared harness on the softmax mixture (every candidate and theta get a gradient) and on
    a hard choice (only the chosen candidate does; theta and the others are named)."""
    y, context = make_inputs()
    init = {
        "candidates": ["SA", "GA", "RSA", "FFN"],
        "hidden_size": D,
        "num_heads": HEADS,
        "ffn_size": FFN,
        "dropout": 0.1,
        "initial_logits": [0.5, -0.5, 0.0, 1.0],
    }
    # SA 6, GA 6, RSA 8 (+ the relation projection), FFN 6 weights; theta
    mixed = run_layer_test(MixedOp, init, (y, context), (2, 5, D), 27)
    assert mixed.count_params() == sum(op.count_params() for op in mixed.candidate_ops) + 4
    run_layer_test(
        MixedOp,
        init,
        (y, context),
        (2, 5, D),
        27,
        call_kwargs={"choice": tf.constant(2)},
        zero_gradient=("arch_logits", "/(SA|GA|FFN)/"),
    )
