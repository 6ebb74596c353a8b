"""One shared test harness for layers, the backbone and the task models (keras-hub's
``run_layer_test`` / ``run_backbone_test`` / ``run_task_test`` habit).

It checks what every layer must do: output shapes, weight counts, a config round trip, eager and
traced calls that agree, one SGD step that changes every trainable weight (a weight whose gradient
is zero by construction must be named in ``zero_gradient``, and its gradient is checked to be
zero), and a ``.keras`` file round trip (``keras.saving.save_model`` / ``load_model``: the config,
the build and the weights as the file stores them) that gives the same weights and outputs.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _to_numpy(tree):
    return tf.nest.map_structure(lambda t: np.asarray(t), tree)


def _assert_same_outputs(actual, expected, atol, what):
    actual, expected = _to_numpy(actual), _to_numpy(expected)
    tf.nest.assert_same_structure(actual, expected)
    paths = [p for p, _ in _flatten_with_paths(expected)]
    for path, a, e in zip(paths, tf.nest.flatten(actual), tf.nest.flatten(expected)):
        if np.issubdtype(e.dtype, np.floating):
            np.testing.assert_allclose(a, e, atol=atol, err_msg=f"{what}: {path}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"{what}: {path}")


def _flatten_with_paths(tree):
    if isinstance(tree, dict):
        return [
            (f"{k}/{p}".rstrip("/"), v)
            for k in sorted(tree)
            for p, v in _flatten_with_paths(tree[k])
        ]
    return [("", tree)]


def _json(config):
    """A config as a .keras file stores it (JSON: tuples become lists)."""
    return json.loads(json.dumps(config))


def _shapes(out):
    return tf.nest.map_structure(lambda t: tuple(t.shape), out)


def _projected_loss(out, seed=0):
    """sum(out * w) over every float output with fixed random w: every output element matters,
    with no symmetry that could cancel a gradient (a sum of squares of a normalised output can)."""
    rng = np.random.RandomState(seed)
    total = 0.0
    for t in tf.nest.flatten(out):
        if t.dtype.is_floating:
            total += tf.reduce_sum(t * rng.normal(size=t.shape).astype(t.dtype.as_numpy_dtype))
    return total


def check_layer(
    layer,
    args: tuple,
    call_kwargs: dict | None = None,
    atol: float = 1e-6,
    zero_gradient: tuple[str, ...] = (),
):
    """The checks shared by layers and models on a built ``layer`` called as
    ``layer(*args, **call_kwargs)``.

    ``zero_gradient``: regular expressions (``re.search``) of the weight paths whose gradient is
    zero or absent by construction (for example a bias before a softmax over positions, or a
    weight that only another op uses); every pattern must match a weight, and those weights must
    get no gradient. Every other trainable weight must change in one SGD step.
    """
    call_kwargs = call_kwargs or {}
    out = layer(*args, **call_kwargs)
    cls = type(layer)

    # Config round trip: same class, same config, same outputs once the weights are copied.
    config = layer.get_config()
    clone = cls.from_config(config)
    assert _json(clone.get_config()) == _json(config)
    clone(*args, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _assert_same_outputs(clone(*args, **call_kwargs), out, atol, "config round trip")

    # Eager and traced calls agree (no Python state baked in at trace time).
    traced = tf.function(lambda *a: layer(*a, **call_kwargs))
    _assert_same_outputs(traced(*args), out, atol, "traced call")

    # One SGD step changes every trainable weight, except the named zero-gradient ones.
    weights = layer.trainable_weights
    assert weights, "no trainable weight"
    frozen = {w.path for w in weights if any(re.search(p, w.path) for p in zero_gradient)}
    for pattern in zero_gradient:
        assert any(re.search(pattern, w.path) for w in weights), f"{pattern!r} matches no weight"
    before = [np.array(w) for w in weights]
    with tf.GradientTape() as tape:
        loss = _projected_loss(layer(*args, training=True, **call_kwargs))
    grads = tape.gradient(loss, weights)
    missing = [w.path for w, g in zip(weights, grads) if g is None and w.path not in frozen]
    assert not missing, f"no gradient for {missing}"
    dense = [None if g is None else np.asarray(tf.convert_to_tensor(g)) for g in grads]
    scale = max(np.abs(g).max() for g in dense if g is not None)
    # A gradient that is zero analytically comes out as round-off: <= 1e-9 of the largest in the
    # task models here, more in a lone AttentionPooling; the smallest real ones (attention queries
    # and keys of the first block, quadratic in the small activations at initialisation) are ~6e-8
    # of it. Unnamed weights need more than 1e-8; named ones at most 1e-5.
    real = {
        w.path for w, g in zip(weights, dense) if g is not None and np.abs(g).max() > 1e-8 * scale
    }
    nonzero = [  # a named one must be zero up to float32 round-off of its terms
        w.path
        for w, g in zip(weights, dense)
        if w.path in frozen and g is not None and np.abs(g).max() > 1e-5 * scale
    ]
    assert not nonzero, f"listed as zero-gradient but get one: {nonzero}"
    vanishing = [w.path for w in weights if w.path not in frozen | real]
    assert not vanishing, f"zero gradient (round-off only) for {vanishing}"
    keras.optimizers.SGD(0.1).apply(grads, weights)
    unchanged = [
        w.path
        for b, w in zip(before, weights)
        if w.path not in frozen and np.array_equal(b, np.array(w))
    ]
    assert not unchanged, f"one SGD step left these weights unchanged: {unchanged}"

    # Save / reload through a real .keras file (after the step, so a reload that re-initialises a
    # weight instead of reading it shows, even a LayerNorm gain that starts at 1).
    expected = layer(*args, **call_kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        keras.saving.save_model(layer, path)
        reloaded = keras.saving.load_model(path)
    assert type(reloaded) is cls
    assert _json(reloaded.get_config()) == _json(layer.get_config())
    # (by position: a task model rebuilt from a file creates its backbone's weights outside the
    # model's name scope, so their paths lose the model's prefix)
    assert len(reloaded.weights) == len(layer.weights)
    for w, r in zip(layer.weights, reloaded.weights):
        np.testing.assert_array_equal(np.asarray(r), np.asarray(w), err_msg=w.path)
    _assert_same_outputs(reloaded(*args, **call_kwargs), expected, atol, ".keras round trip")
    return layer


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    args: tuple,
    expected_output_shape: tuple,
    expected_num_weights: int,
    expected_num_params: int | None = None,
    call_kwargs: dict | None = None,
    atol: float = 1e-6,
    zero_gradient: tuple[str, ...] = (),
):
    """Builds ``layer_cls(**init_kwargs)``, checks its output shape, weight and parameter counts and
    that its config holds ``init_kwargs``, then runs :func:`check_layer`. ``args`` are numpy arrays
    or nested dicts of them (the op context). Returns the layer."""
    call_kwargs = call_kwargs or {}
    layer = layer_cls(**init_kwargs)
    out = layer(*args, **call_kwargs)
    assert _shapes(out) == expected_output_shape, (_shapes(out), expected_output_shape)
    assert len(layer.weights) == expected_num_weights, [w.path for w in layer.weights]
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params, layer.count_params()
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert config[key] == value, (key, config[key], value)
    return check_layer(layer, args, call_kwargs, atol, zero_gradient)


def run_model_test(
    model,
    inputs: dict,
    expected_output_shapes: dict,
    expected_num_params: int | None = None,
    call_kwargs: dict | None = None,
    atol: float = 1e-5,
    zero_gradient: tuple[str, ...] = (),
):
    """The harness for the backbone and the task models: ``model`` is built (a task's
    ``build_model``), called as ``model(inputs, **call_kwargs)``; its outputs dict has
    ``expected_output_shapes``. Returns the model."""
    out = model(inputs, **(call_kwargs or {}))
    assert _shapes(out) == expected_output_shapes, (_shapes(out), expected_output_shapes)
    if expected_num_params is not None:
        assert model.count_params() == expected_num_params, model.count_params()
    return check_layer(model, (inputs,), call_kwargs, atol, zero_gradient)
