"""SA: self-attention op."""

import keras

from mmnas_tf.layers.multi_head_attention import MultiHeadAttention
from mmnas_tf.layers.post_norm_op import PostNormOp


@keras.saving.register_keras_serializable(package="mmnas_tf")
class SelfAttention(PostNormOp):
    """SA(y) = MHA(y, y, y) over the stream's own padding mask, post-norm residual (paper Eq. 4).

    Args:
      hidden_size: int, width d.
      num_heads: int, number of heads h.
      dropout: float, dropout on the attention map and on the op output.

    Call: ``SelfAttention(512, 8)(y, {"mask": mask})``, ``y`` [B, L, d], ``mask`` bool [B, L].
    """

    has_attention = True

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1, **kwargs):
        super().__init__(hidden_size, dropout, **kwargs)
        self.num_heads = num_heads
        self.attention = MultiHeadAttention(
            hidden_size, num_heads, dropout, self.dropout_generator, name="attention"
        )

    def build_op(self, y_shape, context_shape):
        self.attention.build(y_shape, y_shape)

    def transform(self, y, context, training=None, return_attention=False):
        return self.attention(
            y,
            y,
            key_mask=context.get("mask"),
            training=training,
            return_attention=return_attention,
        )

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}
