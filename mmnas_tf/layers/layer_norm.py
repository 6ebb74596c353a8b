"""The original MMnas LayerNorm: unbiased std and eps added to the std."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmnas_tf")
class OriginalLayerNorm(keras.layers.Layer):
    """Layer normalisation as the original MMnas/MCAN code computes it.

    ``y = gamma * (x - mean) / (std + epsilon) + beta`` where ``std`` is the UNBIASED (N - 1)
    standard deviation over the last axis and ``epsilon`` is added to the std, not the variance.
    This differs from ``keras.layers.LayerNormalization``; imported weights need it to match.

    Args:
      epsilon: float, added to the standard deviation (1e-6 in the original).

    Example: ``OriginalLayerNorm()(keras.ops.ones([2, 5, 8]))``.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        dim = input_shape[-1]
        # autocast=False: gamma/beta stay float32 inside call under a mixed policy.
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones", autocast=False)
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros", autocast=False)

    def call(self, x):
        # Statistics in float32 even under a bfloat16/float16 policy (casts are no-ops in fp32).
        dtype = x.dtype
        x = ops.cast(x, "float32")
        n = ops.shape(x)[-1]
        mean = ops.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        var = ops.sum(centered * centered, axis=-1, keepdims=True) / ops.cast(n - 1, x.dtype)
        return ops.cast(self.gamma * centered / (ops.sqrt(var) + self.epsilon) + self.beta, dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
