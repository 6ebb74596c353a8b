"""Attentional pooling ("AttFlat") of a sequence into one vector (paper Sec. 3.3)."""

import keras
from keras import ops

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR
from mmnas_tf.layers.dropout import Dropout
from mmnas_tf.layers.multi_head_attention import NEG_INF


@keras.saving.register_keras_serializable(package="mmnas_tf")
class AttentionPooling(keras.layers.Layer):
    """``alpha = softmax_positions(W2 Dropout(ReLU(W1 x + b1)) + b2)`` with padding masked, then
    ``Linear(concat_g(sum_i alpha_ig x_i))`` (paper Eq. 9-10, the original's AttFlat).

    Args:
      hidden_size: int, input width d.
      mlp_size: int, width a of the attention MLP.
      glimpses: int, number g of attention glimpses.
      output_size: int, o, width of the pooled output (a size of its own, not derived from d).
      dropout: float, dropout after the ReLU of the attention MLP.
      dropout_generator: str, its mask generator (``layers.dropout``).

    Call: ``AttentionPooling(512, 512, 1, 1024)(x, mask)``, ``x`` [B, L, d], ``mask`` bool [B, L]
    (True = real) -> [B, o]. With ``return_weights=True`` returns ``(pooled, alpha)``, ``alpha``
    [B, L, g] the pooling weights (each glimpse sums to 1 over real positions, 0 on padding),
    float32 under any policy (the softmax is computed in float32).
    """

    def __init__(
        self,
        hidden_size: int,
        mlp_size: int,
        glimpses: int,
        output_size: int,
        dropout: float = 0.1,
        dropout_generator: str = DEFAULT_DROPOUT_GENERATOR,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.mlp_size = mlp_size
        self.glimpses = glimpses
        self.output_size = output_size
        self.dropout = dropout
        self.dropout_generator = dropout_generator
        self.mlp_dense = keras.layers.Dense(mlp_size, name="mlp")
        self.mlp_dropout = Dropout(dropout, dropout_generator)
        self.glimpse_dense = keras.layers.Dense(glimpses, name="glimpse")
        self.merge_dense = keras.layers.Dense(output_size, name="merge")

    def build(self, x_shape, mask_shape=None):
        self.mlp_dense.build(x_shape)
        self.glimpse_dense.build(tuple(x_shape[:-1]) + (self.mlp_size,))
        self.merge_dense.build(tuple(x_shape[:-2]) + (self.hidden_size * self.glimpses,))

    def call(self, x, mask=None, training=None, return_weights=False):
        logits = self.glimpse_dense(
            self.mlp_dropout(ops.relu(self.mlp_dense(x)), training=training)
        )  # [B, L, g]
        logits = ops.cast(logits, "float32")  # softmax in float32 under a mixed policy
        if mask is not None:
            logits = ops.where(mask[..., None], logits, NEG_INF)
        alpha = ops.softmax(logits, axis=1)
        pooled = ops.einsum("blg,bld->bgd", ops.cast(alpha, x.dtype), x)
        b = ops.shape(pooled)[0]
        pooled = ops.reshape(pooled, (b, self.glimpses * self.hidden_size))
        pooled = self.merge_dense(pooled)
        return (pooled, alpha) if return_weights else pooled

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "mlp_size": self.mlp_size,
            "glimpses": self.glimpses,
            "output_size": self.output_size,
            "dropout": self.dropout,
            "dropout_generator": self.dropout_generator,
        }
