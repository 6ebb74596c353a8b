"""Architecture-gradient estimators and the seeded sampling they share (docs/original_behaviour.md,
"Search").

Every sample is drawn with a stateless RNG from ``(seed, counter)``, both variables of the search
model: the same counter gives the same architecture on every replica and worker, and a restored
checkpoint continues the same sequence of architectures.

- ``gumbel`` (default): Gumbel-softmax straight-through. Forward: the hard one-hot of
  ``argmax(theta + G)`` (in a weight step only that op runs); backward: the gradient of
  ``softmax((theta + G) / tau)``, i.e. ``dL/dtheta_i = s_i (a_i - sum_j s_j a_j) / tau`` with
  ``a_j = <o_j, dL/dout>``, which needs every candidate's output ``o_j`` (the theta step computes
  them all unless the search model is told ``arch_paths="sampled"``).
- ``proxyless``: the original's binary gates. Sample ``k ~ softmax(theta)``, gate = one-hot(k)
  forward; every candidate runs (non-sampled outputs stop-gradient'ed) so ``dL/dg_j =
  <o_j, dL/dout>``, and ``gate = onehot + p - stop_gradient(p)`` turns that into
  ``dL/dtheta_i = sum_j dL/dg_j p_j (delta_ij - p_i)``.
- ``uniform``: uniform random paths, weights only (SPOS-style baseline; theta never moves).
"""

from __future__ import annotations

import tensorflow as tf

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas.choices import ARCH_PATHS, ESTIMATORS, WARMUP_MODES, check_choice

__all__ = [
    "ARCH_PATHS", "ESTIMATORS", "WARMUP_MODES", "check_choice", "gumbel_noise", "original_prior",
    "prior_logits", "sample_indices", "straight_through_gates",
]  # fmt: skip


def gumbel_noise(seed, num_slots: int, width: int) -> tf.Tensor:
    """Standard Gumbel noise [num_slots, width] from a stateless seed (int64 [2])."""
    u = tf.random.stateless_uniform(
        [num_slots, width], seed=seed, minval=1e-10, maxval=1.0, dtype=tf.float32
    )
    return -tf.math.log(-tf.math.log(u))


def sample_indices(logits: list, noise: tf.Tensor, uniform) -> list[tf.Tensor]:
    """One op index per slot: ``argmax(l + G)`` (a sample of softmax(l), Gumbel-max trick) with
    ``l = theta``, or ``l = 0`` (uniform) where the bool tensor ``uniform`` is true."""
    out = []
    for s, theta in enumerate(logits):
        theta = tf.convert_to_tensor(theta)
        base = tf.where(uniform, tf.zeros_like(theta), theta)
        out.append(tf.argmax(base + noise[s, : theta.shape[0]], output_type=tf.int32))
    return out


def straight_through_gates(estimator: str, logits: list, noise: tf.Tensor, temperature) -> list:
    """Gate vectors [P] per slot, one-hot forward, with the estimator's gradient to theta.

    Must run under the tape that differentiates theta. ``noise`` is the Gumbel noise of
    :func:`gumbel_noise` (its argmax is the sample of both estimators)."""
    gates = []
    for s, theta in enumerate(logits):
        theta = tf.convert_to_tensor(theta)
        perturbed = theta + noise[s, : theta.shape[0]]
        hard = tf.one_hot(tf.argmax(perturbed), theta.shape[0], dtype=theta.dtype)
        if estimator == "gumbel":
            soft = tf.nn.softmax(perturbed / tf.cast(temperature, theta.dtype))
        elif estimator == "proxyless":
            soft = tf.nn.softmax(theta)
        else:
            raise ValueError(f"estimator {estimator!r} has no architecture gradient")
        gates.append(hard + soft - tf.stop_gradient(soft))
    return gates


def prior_logits(genotype: Genotype, slots: list[tuple[str, int, tuple[str, ...]]]) -> list:
    """The original's initial theta: +1 on the prior genotype's op, -1 elsewhere, per mixed slot
    ``(stage, index, candidates)``; warm-up then samples the prior op with probability
    e/(e + (P-1)/e): 0.88 for two ops, 0.71 for four."""
    out = []
    for stage, index, candidates in slots:
        op = (genotype.encoder if stage == "encoder" else genotype.decoder)[index]
        if op not in candidates:
            raise ValueError(f"prior {stage} block {index}: op {op!r} not in the pool {candidates}")
        out.append([1.0 if c == op else -1.0 for c in candidates])
    return out


def original_prior(num_encoder: int, num_decoder: int) -> Genotype:
    """The prior of the original search (``init_gene_flat``): encoder [SA, FFN] repeated,
    decoder [RSA, GA, FFN] repeated, cut to M / N blocks."""
    enc = [("SA", "FFN")[i % 2] for i in range(num_encoder)]
    dec = [("RSA", "GA", "FFN")[i % 3] for i in range(num_decoder)]
    return Genotype(enc, dec, 64)
