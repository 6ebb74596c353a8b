"""One shared layer-test harness (keras-hub's ``run_layer_test`` habit).

It checks what every layer must do: config round-trip, weight counts, eager and traced calls that
agree, one ``fit`` step that changes the weights, and a serialise + weights save/reload that gives the same
outputs.
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _to_numpy(tree):
    return tf.nest.map_structure(lambda t: np.asarray(t), tree)


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    args: tuple,
    expected_output_shape: tuple,
    expected_num_weights: int,
    expected_num_params: int | None = None,
    call_kwargs: dict | None = None,
    atol: float = 1e-6,
):
    """Runs the common checks on ``layer_cls(**init_kwargs)(*args, **call_kwargs)``.

    ``args`` are numpy arrays or nested dicts of them (the op context). Returns the layer.
    """
    call_kwargs = call_kwargs or {}
    layer = layer_cls(**init_kwargs)
    out = layer(*args, **call_kwargs)
    assert tuple(out.shape) == tuple(expected_output_shape), (out.shape, expected_output_shape)
    assert len(layer.weights) == expected_num_weights, [w.path for w in layer.weights]
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params, layer.count_params()

    # Config round-trip: same class, same config, same outputs once the weights are copied.
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert config[key] == value, (key, config[key], value)
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone(*args, **call_kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(_to_numpy(clone(*args, **call_kwargs)), _to_numpy(out), atol=atol)

    # Eager and traced calls agree (no Python state baked in at trace time).
    traced = tf.function(lambda *a: layer(*a, **call_kwargs))
    np.testing.assert_allclose(_to_numpy(traced(*args)), _to_numpy(out), atol=atol)

    # One fit step through a tiny model changes every trainable weight that gets a gradient.
    before = [np.array(w) for w in layer.trainable_weights]
    optimizer = keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(*args, training=True, **call_kwargs)))
    grads = tape.gradient(loss, layer.trainable_weights)
    missing = [w.path for w, g in zip(layer.trainable_weights, grads) if g is None]
    assert not missing, f"no gradient for {missing}"
    optimizer.apply(grads, layer.trainable_weights)
    changed = [not np.allclose(b, np.array(w)) for b, w in zip(before, layer.trainable_weights)]
    assert any(changed), "one SGD step changed no weight"

    # Save / reload: serialise the layer, rebuild it from its config, load the saved weights.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer_weights.npz")
        expected = _to_numpy(layer(*args, **call_kwargs))
        serialized = keras.saving.serialize_keras_object(layer)
        np.savez(path, *layer.get_weights())
        reloaded = keras.saving.deserialize_keras_object(serialized)
        assert type(reloaded) is layer_cls
        reloaded(*args, **call_kwargs)
        with np.load(path) as saved:
            reloaded.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
        np.testing.assert_allclose(_to_numpy(reloaded(*args, **call_kwargs)), expected, atol=atol)
    return layer
