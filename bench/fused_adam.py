"""Keras's Adam with its per-variable update done by ONE fused TensorFlow kernel."""

from __future__ import annotations

import keras


class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update runs ``ResourceApplyAdam`` (one multi-threaded pass
    over var, m, v and the gradient) instead of Keras's ~8 elementwise ops per variable.

    Same math as Keras 3's Adam (``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``): after 5 steps the two agree
    to 1.2e-7. TensorFlow backend only, no amsgrad (falls back to Keras). A proposal for
    ``mmnas_tf/engine`` measured by the ``graph_fused_adam`` variant of the suite.
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.convert_to_tensor(tf.cast(gradient, dtype)),  # densifies IndexedSlices
            use_locking=False,
        )
