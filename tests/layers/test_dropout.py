"""The project's dropout layer (``mmnas_tf.layers.dropout``) and its two mask generators.

``"uniform"`` must be Keras's ``Dropout`` bit for bit; ``"bytes"`` is checked statistically: keep
fraction, mean, independence of calls, positions and the bytes of one draw. Every statistical
bound is a fixed multiple of the standard error at a fixed seed (deterministic), loose enough for
a correct generator (about 4-6 standard errors) and far from what the faults named in each test
produce. No timing here (the speed is a bench entry: ``python -m bench.run --entries=dropout``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.config import (
    DEFAULT_DROPOUT_GENERATOR,
    DROPOUT_GENERATORS,
    LEGACY_DROPOUT_GENERATOR,
    ModelConfig,
)
from mmnas_tf.layers import Dropout
from mmnas_tf.layers.dropout import byte_mask, keep_probability, keep_threshold

RATES = (0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95)
N = 1 << 22  # elements of the large tensors (4 M)


def _bits(t):
    t = tf.convert_to_tensor(t)
    return tf.bitcast(t, tf.uint16 if t.dtype == tf.bfloat16 else tf.uint32).numpy()


def _kept(layer, x, calls=1):
    """[calls, *x.shape] bool: which elements ``layer`` kept (x has no zeros) in ``calls`` calls."""
    return np.stack([np.asarray(layer(x, training=True)) != 0 for _ in range(calls)])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("traced", [False, True])
def test_uniform_is_keras_dropout_bit_for_bit(dtype, traced):
    x = tf.cast(tf.random.stateless_normal([3, 37, 64], seed=[1, 2]), dtype)
    policy = "mixed_bfloat16" if dtype == "bfloat16" else "float32"  # bf16 masks under bf16
    ours = Dropout(0.1, "uniform", seed=11, dtype=policy)
    theirs = keras.layers.Dropout(0.1, seed=11, dtype=policy)
    call = (lambda f: tf.function(f)) if traced else (lambda f: f)
    a = call(lambda x: ours(x, training=True))
    b = call(lambda x: theirs(x, training=True))
    for _ in range(3):  # the seed generators advance alike
        out, ref = a(x), b(x)
        assert out.dtype == ref.dtype == dtype
        np.testing.assert_array_equal(_bits(out), _bits(ref))
    np.testing.assert_array_equal(ours.seed_generator.state.numpy(), theirs.seed_generator.state)


@pytest.mark.parametrize("rate", RATES)
def test_keep_probability_is_within_1_over_256_of_1_minus_rate(rate):
    p = keep_probability(rate, "bytes")
    assert abs(p - (1 - rate)) <= 1 / 512 + 1e-12  # round(): half a step of 1/256
    assert p * 256 == keep_threshold(rate)  # a whole number of 256ths
    assert keep_probability(rate, "uniform") == 1 - rate
    assert Dropout(rate, "bytes").keep_probability == p


def test_thresholds_at_the_ends_of_the_rate_range():
    assert keep_threshold(0.0) == 256 and keep_threshold(1e-3) == 256  # every byte kept
    assert keep_threshold(0.999) == 1  # never 0: the scale 256 / T stays finite
    mask = np.asarray(byte_mask([4096], tf.constant([3, 4]), 1))
    assert 0 < mask.mean() < 4 / 256  # T = 1: byte 0 only


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3, 0.5, 0.9])
def test_bytes_keep_fraction_is_binomial_around_the_stated_probability(rate):
    layer = Dropout(rate, "bytes", seed=5)
    kept = _kept(layer, tf.ones([N // 1024, 1024]))
    p = layer.keep_probability
    bound = 5 * np.sqrt(p * (1 - p) / kept.size)  # ~5e-4 at N = 4 M
    assert abs(kept.mean() - p) < bound, (kept.mean(), p)


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_the_mean_of_the_output_is_the_inputs_within_its_standard_error(generator, rate):
    x = 1.0 + 0.5 * tf.random.stateless_normal([N // 512, 512], seed=[7, 8])
    y = Dropout(rate, generator, seed=9)(x, training=True)
    diff = (np.asarray(y, np.float64) - np.asarray(x, np.float64)).ravel()
    standard_error = diff.std() / np.sqrt(diff.size)
    # 4 standard errors; a scale of 1 / (1 - rate) with the bytes' keep probability (rate 0.1:
    # 0.8984 kept, not 0.9) moves the mean by ~10 standard errors.
    assert abs(diff.mean()) < 4 * standard_error, (diff.mean(), standard_error)
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(
        np.asarray(y)[kept], np.asarray(x)[kept] / keep_probability(rate, generator), rtol=1e-6
    )


def _correlation(a, b) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_masks_of_calls_positions_and_bytes_are_not_correlated(generator):
    layer = Dropout(0.5, generator, seed=13)
    kept = _kept(layer, tf.ones([N // 256, 256]), calls=2).reshape(2, -1)
    bound = 5 / np.sqrt(kept.shape[1] // 4)  # 5 standard errors of a correlation, pairs / 4
    assert abs(_correlation(kept[0], kept[1])) < bound  # two calls
    first = kept[0]
    # neighbours (bytes of one draw for "bytes"), the next draw, far apart
    for lag in (1, 2, 3, 4, 5, 256, 4099):
        assert abs(_correlation(first[:-lag], first[lag:])) < bound, lag
    words = first.reshape(-1, 4)  # the 4 bytes of each 32-bit draw
    for i in range(4):
        for j in range(i + 1, 4):
            assert abs(_correlation(words[:, i], words[:, j])) < bound, (i, j)
    # kept bytes per draw: Binomial(4, p), chi-square with 4 degrees of freedom
    p = layer.keep_probability
    counts = np.bincount(words.sum(1), minlength=5)
    expected = words.shape[0] * np.array([_binomial(4, k, p) for k in range(5)])
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 25.0, (counts, expected)  # p-value ~5e-5 at 4 d.o.f.


def _binomial(n, k, p):
    from math import comb

    return comb(n, k) * p**k * (1 - p) ** (n - k)


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_rate_zero_and_inference_are_the_identity(generator):
    x = tf.random.stateless_normal([4, 33, 16], seed=[1, 1])
    zero = Dropout(0.0, generator)
    np.testing.assert_array_equal(np.asarray(zero(x, training=True)), np.asarray(x))
    layer = Dropout(0.3, generator, seed=2)
    for training in (False, None):
        np.testing.assert_array_equal(np.asarray(layer(x, training=training)), np.asarray(x))
    assert not np.array_equal(np.asarray(layer(x, training=True)), np.asarray(x))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bytes_keeps_the_dtype_and_shape_of_any_input(dtype):
    policy = "mixed_bfloat16" if dtype == "bfloat16" else "float32"
    layer = Dropout(0.1, "bytes", seed=3, dtype=policy)
    for shape in ([7], [3, 5], [2, 3, 7, 5]):  # element counts not multiples of 4 included
        x = tf.ones(shape, dtype)
        y = layer(x, training=True)
        assert y.dtype == x.dtype and y.shape == x.shape
    traced = tf.function(
        lambda x: layer(x, training=True), input_signature=[tf.TensorSpec([None, 6], dtype)]
    )
    assert traced(tf.ones([5, 6], dtype)).shape == (5, 6)
    xla = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    out = np.asarray(tf.cast(xla(tf.ones([8, 64], dtype)), "float32"))
    assert set(np.unique(out)) <= {0.0, float(tf.cast(1 / layer.keep_probability, dtype))}


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_the_seed_generator_state_decides_the_mask(generator):
    """What resume relies on: restoring a layer's seed state replays its masks."""
    x = tf.ones([16, 64])
    layer = Dropout(0.2, generator, seed=21)
    layer(x, training=True)
    saved = layer.seed_generator.state.numpy()
    first = np.asarray(layer(x, training=True))
    other = Dropout(0.2, generator, seed=99)
    other.seed_generator.state.assign(saved)
    np.testing.assert_array_equal(np.asarray(other(x, training=True)), first)


def test_bytes_and_uniform_draw_different_masks_from_one_seed():
    x = tf.ones([64, 64])
    a = np.asarray(Dropout(0.5, "uniform", seed=1)(x, training=True)) != 0
    b = np.asarray(Dropout(0.5, "bytes", seed=1)(x, training=True)) != 0
    assert (a != b).mean() > 0.3


def test_an_unknown_generator_is_refused_naming_the_accepted_ones():
    with pytest.raises(ValueError, match="uniform, bytes"):
        Dropout(0.1, "philox")
    with pytest.raises(ValueError, match=r"dropout_generator must be one of uniform, bytes"):
        ModelConfig(dropout_generator="philox")


def test_config_round_trip_and_old_configs_read_as_uniform():
    assert DEFAULT_DROPOUT_GENERATOR in DROPOUT_GENERATORS
    written = ModelConfig().to_dict()
    assert written["dropout_generator"] == DEFAULT_DROPOUT_GENERATOR  # new configs write it
    old = {k: v for k, v in written.items() if k != "dropout_generator"}
    assert ModelConfig.from_dict(old).dropout_generator == LEGACY_DROPOUT_GENERATOR == "uniform"
    for generator in DROPOUT_GENERATORS:
        back = ModelConfig.from_dict({**written, "dropout_generator": generator})
        assert back.dropout_generator == generator
    layer = Dropout(0.2, "bytes", name="d")
    again = Dropout.from_config(layer.get_config())
    assert (again.rate, again.generator) == (0.2, "bytes")


def test_a_restart_keeps_the_recorded_generator_and_says_so():
    """What both a restarted training and a restarted search call (keep_dropout_generator)."""
    from mmnas_tf.config import keep_dropout_generator

    asks = ModelConfig(dropout_generator="bytes")
    kept, line = keep_dropout_generator(asks, "uniform", "this search began (its checkpoint)")
    assert kept == asks.replace(dropout_generator="uniform")
    assert line == (
        "resuming with dropout generator 'uniform', as this search began (its checkpoint); "
        "this experiment says 'bytes'"
    )
    assert keep_dropout_generator(asks, "bytes", "x") == (asks, "")  # the same: no line
    assert keep_dropout_generator(asks, None, "x") == (asks, "")  # nothing to resume


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_every_dropout_site_of_the_models_uses_the_configured_generator(generator):
    from mmnas_tf.experiments import get_experiment
    from mmnas_tf.tasks import get_task

    exp = get_experiment("vqa_tiny")
    supernet = exp.search_model.replace(dropout_generator=generator, num_answers=5)
    for task, config in (("vqa", supernet), ("vg", supernet.replace(num_answers=None))):
        model = get_task(task).build_model(config)
        _ = model(_inputs(config), training=True)  # builds the lazily made attention dropouts
        sites = [layer for layer in _layers(model) if isinstance(layer, keras.layers.Dropout)]
        assert len(sites) > 10
        assert all(type(s) is Dropout and s.generator == generator for s in sites), sites


def _layers(layer):
    seen, stack = [], [layer]
    while stack:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend(getattr(current, "_layers", []))
        stack.extend(v for v in vars(current).values() if isinstance(v, keras.layers.Layer))
        for v in vars(current).values():
            if isinstance(v, (list, tuple)):
                stack.extend(x for x in v if isinstance(x, keras.layers.Layer))
    return seen


def _inputs(config):
    rng = np.random.default_rng(0)
    b, m, n = 2, config.max_tokens, config.max_regions
    xy = rng.uniform(0, 100, (b, n, 2))
    return {
        "text_ids": rng.integers(1, config.vocab_size, (b, m)).astype("int32"),
        "image_features": rng.normal(size=(b, n, config.feature_size)).astype("float32"),
        "boxes": np.concatenate([xy, xy + 20], -1).astype("float32"),
        "image_size": np.full((b, 2), 200.0, "float32"),
    }
