"""GA: guided-attention op (image queries attend to the encoded sentence)."""

import keras

from mmnas_tf.layers.multi_head_attention import MultiHeadAttention
from mmnas_tf.layers.post_norm_op import PostNormOp


@keras.saving.register_keras_serializable(package="mmnas_tf")
class GuidedAttention(PostNormOp):
    """GA(y, x) = MHA(y, x, x) with the guide's padding mask, post-norm residual (paper Eq. 5).

    Args:
      hidden_size: int, width d.
      num_heads: int, number of heads h.
      dropout: float, dropout on the attention map and on the op output.

    Call: ``GuidedAttention(512, 8)(y, {"guide": x, "guide_mask": x_mask})``; ``y`` [B, n, d] is
    the image stream, ``x`` [B, m, d] the encoder output X^(M), ``x_mask`` bool [B, m].
    """

    has_attention = True

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1, **kwargs):
        super().__init__(hidden_size, dropout, **kwargs)
        self.num_heads = num_heads
        self.attention = MultiHeadAttention(
            hidden_size, num_heads, dropout, self.dropout_generator, name="attention"
        )

    def build_op(self, y_shape, context_shape):
        self.attention.build(y_shape, context_shape.get("guide", y_shape))

    def transform(self, y, context, training=None, return_attention=False):
        if context.get("guide") is None:
            raise ValueError("GuidedAttention needs context['guide'] (the encoder output)")
        return self.attention(
            y,
            context["guide"],
            key_mask=context.get("guide_mask"),
            training=training,
            return_attention=return_attention,
        )

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}
