"""Dropout, the one layer every dropout site of the models uses, with its two mask generators.

``ModelConfig.dropout_generator`` names the generator (``config.DROPOUT_GENERATORS``):

- ``"uniform"``: one Philox uniform float (in the input's dtype) per element, kept where it is
  >= rate, kept values times 1 / (1 - rate): ``keras.layers.Dropout`` itself (this class calls
  it), so the masks are bit-identical to Keras's for the same seed generator state.
- ``"bytes"``: one 32-bit Philox integer (``tf.random.stateless_uniform``, full range) per 4
  elements; each of its bytes decides one element: kept where byte < T, T = round(256 (1 -
  rate)) clamped to [1, 256], so the keep probability is exactly T / 256 (within 1/512 of
  1 - rate) and kept values are scaled by 256 / T: the expectation is the input's exactly (in the
  scale's dtype: a bfloat16 input gets the bfloat16 nearest 256 / T, as Keras's 1 / (1 - rate)).
  A quarter of the random numbers of ``"uniform"``; another random stream.

Both draw their seed from the layer's Keras ``SeedGenerator`` (one per layer, created as Keras
creates it), so the checkpointed seed states (``engine.checkpoint.seed_generator_states``) resume
either generator bit for bit. Rate 0 and inference (``training`` false) return the input.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR, check_dropout_generator


def keep_threshold(rate: float) -> int:
    """T of the ``"bytes"`` generator: a byte b keeps its element when b < T (1 <= T <= 256)."""
    return min(256, max(1, round(256 * (1.0 - rate))))


def keep_probability(rate: float, generator: str) -> float:
    """The probability that ``generator`` keeps an element at ``rate`` (what kept values are
    divided by): ``1 - rate`` for ``"uniform"``, ``T / 256`` for ``"bytes"``."""
    check_dropout_generator(generator)
    return 1.0 - rate if generator == "uniform" else keep_threshold(rate) / 256


def byte_mask(shape, seed, threshold: int):
    """bool [shape]: element i kept when byte i of the 32-bit draws (seeded by ``seed``, int32
    [2]) is < ``threshold``; ceil(n / 4) draws for n elements, in the draws' memory order."""
    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform(
        [(size + 3) // 4], seed=seed, minval=None, maxval=None, dtype=tf.uint32
    )
    octets = tf.reshape(tf.bitcast(words, tf.uint8), [-1])[:size]
    # byte < T as byte <= T - 1: T - 1 fits a uint8 for every T in [1, 256]
    return tf.reshape(octets, shape) <= tf.constant(threshold - 1, tf.uint8)


def _int32_seed(seed):
    """Keras's cast of a seed generator state to the int32 seed TF's stateless ops take (the one
    its TensorFlow backend applies to ``"uniform"``'s seed)."""
    if seed.dtype == tf.int32:
        return seed
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


@keras.saving.register_keras_serializable(package="mmnas_tf")
class Dropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` with a choice of mask generator (module docstring).

    Args:
      rate: float in [0, 1), the drop probability asked for.
      generator: ``"uniform"`` or ``"bytes"`` (``config.DROPOUT_GENERATORS``).
      seed: optional int, the seed generator's initial seed (Keras's default: drawn from Python's
        ``random``, which ``keras.utils.set_random_seed`` seeds).

    Attributes:
      keep_probability: float, the probability an element is kept in training (kept values are
        divided by it).

    Call: ``Dropout(0.1, "bytes")(x, training=True)``, ``x`` float of any shape -> same shape.
    """

    def __init__(self, rate, generator: str = DEFAULT_DROPOUT_GENERATOR, seed=None, **kwargs):
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        super().__init__(rate, seed=seed, **kwargs)
        self.keep_probability = keep_probability(rate, generator)  # refuses an unknown one
        self.generator = generator

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.generator == "uniform":
            return super().call(inputs, training=training)
        if self.keep_probability == 1.0:  # a rate below 1/512: every byte is kept
            return inputs
        seed = _int32_seed(self.seed_generator.next())
        keep = byte_mask(tf.shape(inputs), seed, keep_threshold(self.rate))
        scaled = inputs * tf.cast(1.0 / self.keep_probability, inputs.dtype)
        return tf.where(keep, scaled, tf.zeros([], inputs.dtype))

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")  # not taken: every element draws its own
        return {**config, "generator": self.generator}
