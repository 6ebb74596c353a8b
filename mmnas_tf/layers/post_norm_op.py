"""The residual + post-norm wrapper shared by every primitive op (paper Sec. 3.1)."""

import keras

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR
from mmnas_tf.genotype import op_for_layer, op_names
from mmnas_tf.layers.dropout import Dropout
from mmnas_tf.layers.layer_norm import OriginalLayerNorm
from mmnas_tf.layers.ops_registry import op_layer_class


class PostNormOp(keras.layers.Layer):
    """Base of the primitive ops: ``y <- LN(y + Dropout(op(y, context)))``.

    Subclasses implement ``transform(y, context, training)``. Every op has the same call interface,
    so a block slot (fixed or mixed) can call any of them:
    ``op(y, context, training=None)`` where ``context`` is a dict with
    ``"mask"`` bool [B, L] (True = real position of ``y``), ``"guide"`` [B, Lx, d] and
    ``"guide_mask"`` bool [B, Lx] (the encoder output, used by GA), ``"relation"`` [B, L, L, r]
    (the shared relation embedding, used by RSA). Ops ignore the entries they do not need.
    Attention ops (``has_attention``: SA, GA, RSA) also take ``return_attention=True`` and then
    return ``(y, attention)``, ``attention`` [B, h, L, L_keys] the map their attention core used.

    Args:
      hidden_size: int, width d.
      dropout: float, dropout on the op output before the residual sum.
      dropout_generator: str, the mask generator of every dropout of the op
        (``layers.dropout``; subclasses pass ``self.dropout_generator`` to the dropouts they make).
    """

    #: whether ``transform`` takes ``return_attention`` (the attention ops).
    has_attention = False

    def __init__(
        self,
        hidden_size: int,
        dropout: float = 0.1,
        dropout_generator: str = DEFAULT_DROPOUT_GENERATOR,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.dropout_generator = dropout_generator
        self.norm = OriginalLayerNorm(name="norm")
        self.output_dropout = Dropout(dropout, dropout_generator)

    @classmethod
    def from_sizes(cls, hidden_size, num_heads, ffn_size, dropout=0.1, **kwargs):
        """The op at a model's sizes (what ``make_op`` calls); an attention op by default."""
        return cls(hidden_size, num_heads, dropout, **kwargs)

    @property
    def op_name(self) -> str:
        """The op's genotype name, from the registry entry naming this class."""
        return op_for_layer(keras.saving.get_registered_name(type(self))).name

    def build(self, y_shape, context_shape=None):
        self.build_op(y_shape, context_shape or {})
        self.norm.build(y_shape)

    def build_op(self, y_shape, context_shape):
        raise NotImplementedError

    def transform(self, y, context, training=None):
        raise NotImplementedError

    def call(self, y, context, training=None, return_attention=False):
        if not return_attention:
            out = self.transform(y, context, training=training)
            return self.norm(y + self.output_dropout(out, training=training))
        if not self.has_attention:
            *others, last = [
                op for op in op_names() if getattr(op_layer_class(op), "has_attention", False)
            ]
            raise ValueError(
                f"op {self.op_name} has no attention map; return_attention is accepted by "
                f"{', '.join(others)} and {last}"
            )
        out, attention = self.transform(y, context, training=training, return_attention=True)
        return self.norm(y + self.output_dropout(out, training=training)), attention

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "dropout": self.dropout,
            "dropout_generator": self.dropout_generator,
        }
