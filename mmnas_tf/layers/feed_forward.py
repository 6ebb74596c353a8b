"""FFN: position-wise feed-forward op."""

import keras
from keras import ops

from mmnas_tf.layers.dropout import Dropout
from mmnas_tf.layers.post_norm_op import PostNormOp


@keras.saving.register_keras_serializable(package="mmnas_tf")
class FeedForward(PostNormOp):
    """FFN(y) = W2 Dropout(ReLU(W1 y + b1)) + b2, post-norm residual (paper Eq. 7).

    Args:
      hidden_size: int, width d.
      ffn_size: int, inner width (4d in the paper).
      dropout: float, dropout after the ReLU and on the op output.

    Call: ``FeedForward(512, 2048)(y, {})``; the context is ignored.
    """

    def __init__(self, hidden_size: int, ffn_size: int, dropout: float = 0.1, **kwargs):
        super().__init__(hidden_size, dropout, **kwargs)
        self.ffn_size = ffn_size
        self.inner_dense = keras.layers.Dense(ffn_size, name="inner")
        self.inner_dropout = Dropout(dropout, self.dropout_generator)
        self.outer_dense = keras.layers.Dense(hidden_size, name="outer")

    @classmethod
    def from_sizes(cls, hidden_size, num_heads, ffn_size, dropout=0.1, **kwargs):
        return cls(hidden_size, ffn_size, dropout, **kwargs)

    def build_op(self, y_shape, context_shape):
        self.inner_dense.build(y_shape)
        self.outer_dense.build(tuple(y_shape[:-1]) + (self.ffn_size,))

    def transform(self, y, context, training=None):
        h = ops.relu(self.inner_dense(y))
        return self.outer_dense(self.inner_dropout(h, training=training))

    def get_config(self):
        return {**super().get_config(), "ffn_size": self.ffn_size}
