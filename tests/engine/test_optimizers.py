"""The fused Adam update (one ResourceApplyAdam kernel per variable) is Keras's Adam, and
``make_adam``'s switch chooses between them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.engine import optimizers
from mmnas_tf.engine.optimizers import FusedAdam, make_adam

STEPS = 5


def run(optimizer, sparse=False):
    """Five steps on a matrix and a vector (a 3-row embedding-like gradient with ``sparse``)."""
    r = np.random.RandomState(0)
    variables = [tf.Variable(r.randn(4, 3).astype("float32")), tf.Variable(r.randn(3))]
    variables[1] = tf.Variable(variables[1].numpy().astype("float32"))
    optimizer.build(variables)

    @tf.function
    def step(grads):
        optimizer.apply(grads, variables)

    for s in range(STEPS):
        grads = [
            tf.constant(r.randn(*v.shape).astype("float32") * 10 ** (s - 2)) for v in variables
        ]
        if sparse:
            rows = tf.constant([0, 2])
            grads[0] = tf.IndexedSlices(tf.gather(grads[0], rows), rows, tf.constant([4, 3]))
        step(grads)
    return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize("sparse", [False, True])
def test_fused_adam_equals_keras_adam_after_several_steps(sparse):
    args = dict(learning_rate=0.01, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    fused, opt = run(FusedAdam(**args), sparse)
    plain, _ = run(keras.optimizers.Adam(**args), sparse)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(opt.iterations.numpy()) == STEPS
    start, _ = run(FusedAdam(learning_rate=0.0), sparse)
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(fused, start))  # it did move


def test_make_adam_switch(monkeypatch):
    assert type(make_adam(0.1, fused=True)) is FusedAdam
    assert type(make_adam(0.1, fused=False)) is keras.optimizers.Adam
    monkeypatch.setattr(optimizers, "FUSED_ADAM", False)
    assert type(make_adam(0.1)) is keras.optimizers.Adam
    opt = make_adam(0.1, 0.8, 0.9, 1e-7, fused=True)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.8, 0.9, 1e-7)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(restored) is FusedAdam
