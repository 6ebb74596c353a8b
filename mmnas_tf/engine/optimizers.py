"""Optimizer pieces shared by the retrain loop and the search model: the original's Adam (its
update fused into one kernel per variable) and the replica-summed, globally clipped gradient."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mmnas_tf.engine.distribute import replicas_in_sync

#: The one switch: ``make_adam`` (retraining, the theta optimizer) and the search's
#: ``SampledPathAdam`` run their update as one ``ResourceApplyAdam`` kernel per variable (one
#: multi-threaded pass over the variable, both moments and the gradient) instead of Keras's ~8
#: elementwise ops. Same formula; measured by ``bench.run`` (docs/performance.md, "Fused Adam").
FUSED_ADAM = True


def fused_adam_update(variable, m, v, gradient, learning_rate, beta_1, beta_2, epsilon, step):
    """``m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    variable -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + epsilon)`` in one kernel, with
    ``t = step`` (a float tensor); the variables are Keras or ``tf`` variables."""
    dtype = variable.dtype
    beta_1, beta_2 = tf.cast(beta_1, dtype), tf.cast(beta_2, dtype)
    step = tf.cast(step, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=m.handle,
        v=v.handle,
        beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step),
        lr=tf.cast(learning_rate, dtype),
        beta1=beta_1,
        beta2=beta_2,
        epsilon=tf.cast(epsilon, dtype),
        grad=tf.convert_to_tensor(tf.cast(gradient, dtype)),  # densifies IndexedSlices
        use_locking=False,
    )


@keras.saving.register_keras_serializable(package="mmnas_tf")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with the update of :func:`fused_adam_update`: Keras's formula
    (epsilon added to ``sqrt(v)`` before the bias correction), one kernel per variable; agrees
    with Keras's Adam to float32 rounding (tests/engine/test_optimizers.py). amsgrad falls back
    to Keras's update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        fused_adam_update(
            variable,
            self._momentums[index],
            self._velocities[index],
            gradient,
            learning_rate,
            self.beta_1,
            self.beta_2,
            self.epsilon,
            self.iterations + 1,
        )


def make_adam(
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.98,
    epsilon: float = 1e-9,
    name: str = "adam",
    fused: bool | None = None,
) -> keras.optimizers.Adam:
    """Adam with the original's betas and epsilon (Keras's formula adds epsilon to ``sqrt(v)``
    before the bias correction, PyTorch's after it: the same up to a factor ``sqrt(1 - b2^t)`` on
    epsilon). ``fused`` (default :data:`FUSED_ADAM`): :class:`FusedAdam`, else Keras's Adam."""
    cls = FusedAdam if (FUSED_ADAM if fused is None else fused) else keras.optimizers.Adam
    return cls(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name)


def global_sum_gradients(
    grads: Sequence[tf.Tensor], clip_norm: float, nonzero: Sequence | None = None
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """In a replica context: the all-reduced (SUM) gradients clipped by their global norm, divided
    by the replica count (Keras's optimizer sums replicas again), and that global norm.

    ``nonzero``: optional per gradient a bool tensor, or None (always), that is False only where
    the gradient is known to be exactly zero (a supernet candidate the step did not sample): such
    a gradient is neither read for the norm nor scaled, which changes no value (it adds 0 to the
    norm and stays 0) but saves passes over it."""
    grads = [tf.convert_to_tensor(g) for g in grads]  # dense, as PyTorch's embedding gradients
    replicas = replicas_in_sync()
    if replicas > 1:
        ctx = tf.distribute.get_replica_context()
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    if nonzero is None or all(f is None for f in nonzero):
        norm = tf.linalg.global_norm(grads)
        if clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
    else:
        norm, grads = _clip_known_zeros(grads, clip_norm, nonzero)
    if replicas > 1:
        grads = [g / replicas for g in grads]
    return grads, norm


def _clip_known_zeros(grads, clip_norm, nonzero):
    """``tf.linalg.global_norm`` and ``tf.clip_by_global_norm``'s arithmetic, each pass over a
    gradient under ``tf.cond(nonzero)`` (a zero gradient adds 0 and stays 0)."""

    def when(flag, fn, otherwise):
        return fn() if flag is None else tf.cond(flag, fn, otherwise)

    halves = [
        when(f, lambda g=g: tf.nn.l2_loss(g), lambda g=g: tf.zeros((), g.dtype))
        for g, f in zip(grads, nonzero)
    ]
    norm = tf.sqrt(tf.reduce_sum(tf.stack(halves)) * 2)
    if clip_norm <= 0:
        return norm, grads
    scale = clip_norm * tf.minimum(1.0 / norm, tf.constant(1.0, norm.dtype) / clip_norm)
    scale = scale + (norm - norm)  # NaN / inf norm -> NaN scale, as tf.clip_by_global_norm
    clipped = [
        when(f, lambda g=g: g * tf.cast(scale, g.dtype), lambda g=g: g)
        for g, f in zip(grads, nonzero)
    ]
    return norm, clipped
