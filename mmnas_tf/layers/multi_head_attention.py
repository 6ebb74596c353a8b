"""Multi-head scaled dot-product attention core (paper Eq. 1-3, original MHAtt)."""

import math

import keras
from keras import ops

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR
from mmnas_tf.layers.dropout import Dropout

NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with a key padding mask and an optional additive score bias.

    ``softmax(Q K^T / sqrt(d_h) + bias)`` with padded keys set to -1e9 (replaced, as the original's
    ``masked_fill``), dropout on the attention map, then the output projection. Q, K, V and output
    projections have no bias, as in the original MMnas code. Heads are contiguous ``d_h``-sized
    chunks of the projected vectors.

    Args:
      hidden_size: int, width d of inputs and outputs.
      num_heads: int, h; d must be divisible by h.
      dropout: float, dropout rate on the attention map (training only).
      dropout_generator: str, its mask generator (``layers.dropout``).

    Call: ``mha(query, key_value, key_mask=None, bias=None, training=None,
    return_attention=False)``; ``query`` [B, Lq, d], ``key_value`` [B, Lk, d], ``key_mask`` bool
    [B, Lk] (True = real key), ``bias`` [B, h, Lq, Lk]. Padded queries are not masked (their rows
    are ignored later by pooling). With ``return_attention=True`` returns ``(output, attention)``,
    ``attention`` [B, h, Lq, Lk] the map multiplied with the values (after dropout when training);
    a Python flag, so graphs traced without it hold no extra output.

    Precision: under a mixed policy the projections and the two attention matmuls run in the
    compute dtype (bfloat16); the scores, the bias, the mask and the softmax are float32 (a
    bfloat16 softmax over 100 keys keeps 3 significant digits), the map is cast back for the
    matmul with the values.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.1,
        dropout_generator: str = DEFAULT_DROPOUT_GENERATOR,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by num_heads={num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.dropout = dropout
        self.dropout_generator = dropout_generator
        self.head_size = hidden_size // num_heads

    def build(self, query_shape, key_value_shape=None, *args, **kwargs):
        key_value_shape = key_value_shape or query_shape
        dense = lambda name: keras.layers.Dense(self.hidden_size, use_bias=False, name=name)  # noqa: E731
        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("output")
        self.query_dense.build(query_shape)
        self.key_dense.build(key_value_shape)
        self.value_dense.build(key_value_shape)
        self.output_dense.build(tuple(query_shape[:-1]) + (self.hidden_size,))
        self.attention_dropout = Dropout(self.dropout, self.dropout_generator)

    def _split_heads(self, x):
        b, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (b, length, self.num_heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))

    def _project(self, query, key_value):
        """The Q, K, V heads [B, h, L, d_h]: three matmuls. (One [d, 3d] matmul over the
        concatenated kernels was measured slower on CPU: docs/performance.md, "bfloat16".)"""
        q, k, v = self.query_dense(query), self.key_dense(key_value), self.value_dense(key_value)
        return [self._split_heads(t) for t in (q, k, v)]

    def call(
        self, query, key_value, key_mask=None, bias=None, training=None, return_attention=False
    ):
        q, k, v = self._project(query, key_value)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = ops.cast(scores, "float32") / math.sqrt(self.head_size)
        if bias is not None:
            scores = scores + ops.cast(bias, "float32")
        if key_mask is not None:
            scores = ops.where(key_mask[:, None, None, :], scores, NEG_INF)
        attention = ops.softmax(scores, axis=-1)
        attention = self.attention_dropout(ops.cast(attention, v.dtype), training=training)
        out = ops.matmul(attention, v)
        b, length = ops.shape(out)[0], ops.shape(out)[2]
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (b, length, self.hidden_size))
        out = self.output_dense(out)
        return (out, attention) if return_attention else out

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "dropout_generator": self.dropout_generator,
        }
