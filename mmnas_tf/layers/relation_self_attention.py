"""RSA: relation self-attention op (self-attention with a geometric bias per head)."""

import keras
from keras import ops

from mmnas_tf.layers.multi_head_attention import MultiHeadAttention
from mmnas_tf.layers.post_norm_op import PostNormOp


@keras.saving.register_keras_serializable(package="mmnas_tf")
class RelationSelfAttention(PostNormOp):
    """RSA(y, R) = MHA(y, y, y) + a per-head additive bias from box geometry (paper Eq. 6).

    The bias is ``log(max(ReLU(E W_r + b_r), 1e-6))`` per head, where ``E`` is the shared relation
    embedding ``ReLU(Linear_{4->r}(R))`` computed once per forward pass by the backbone (the paper
    writes ``log(MLP(R) + eps)``; the original code clamps instead, and so do we). Each RSA op owns
    its ``r -> h`` layer.

    Args:
      hidden_size: int, width d.
      num_heads: int, number of heads h.
      dropout: float, dropout on the attention map and on the op output.

    Call: ``op(y, {"mask": mask, "relation": E})``, ``E`` [B, n, n, r].
    """

    has_attention = True

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1, **kwargs):
        super().__init__(hidden_size, dropout, **kwargs)
        self.num_heads = num_heads
        self.attention = MultiHeadAttention(
            hidden_size, num_heads, dropout, self.dropout_generator, name="attention"
        )
        self.relation_dense = keras.layers.Dense(num_heads, name="relation")

    def build_op(self, y_shape, context_shape):
        self.attention.build(y_shape, y_shape)
        relation_shape = context_shape.get("relation")
        if relation_shape is None:
            raise ValueError("RelationSelfAttention needs context['relation'] to build")
        self.relation_dense.build(relation_shape)

    def transform(self, y, context, training=None, return_attention=False):
        if context.get("relation") is None:
            raise ValueError("RelationSelfAttention needs context['relation'] (relation embedding)")
        gate = ops.relu(self.relation_dense(context["relation"]))  # [B, n, n, h]
        bias = ops.log(ops.maximum(gate, 1e-6))
        bias = ops.transpose(bias, (0, 3, 1, 2))
        return self.attention(
            y,
            y,
            key_mask=context.get("mask"),
            bias=bias,
            training=training,
            return_attention=return_attention,
        )

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}
