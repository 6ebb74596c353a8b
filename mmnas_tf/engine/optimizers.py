"""Optimizer pieces shared by the retrain loop and the search model: the original's Adam and the
replica-summed, globally clipped gradient."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


def make_adam(
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.98,
    epsilon: float = 1e-9,
    name: str = "adam",
) -> keras.optimizers.Adam:
    """Adam as the original (PyTorch ``Adam``: eps added to sqrt(v_hat))."""
    return keras.optimizers.Adam(
        learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name
    )


def global_sum_gradients(
    grads: Sequence[tf.Tensor], clip_norm: float
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """In a replica context: the all-reduced (SUM) gradients clipped by their global norm, divided
    by the replica count (Keras's optimizer sums replicas again), and that global norm."""
    ctx = tf.distribute.get_replica_context()
    grads = [tf.convert_to_tensor(g) for g in grads]  # dense, as PyTorch's embedding gradients
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    if replicas > 1:
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    norm = tf.linalg.global_norm(grads)
    if clip_norm > 0:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
    if replicas > 1:
        grads = [g / replicas for g in grads]
    return grads, norm
