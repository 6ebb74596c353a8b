"""Builds a primitive op from its short genotype name."""

from mmnas_tf.layers.feed_forward import FeedForward
from mmnas_tf.layers.guided_attention import GuidedAttention
from mmnas_tf.layers.relation_self_attention import RelationSelfAttention
from mmnas_tf.layers.self_attention import SelfAttention

OP_CLASSES = {
    cls.op_name: cls for cls in (SelfAttention, GuidedAttention, RelationSelfAttention, FeedForward)
}


def make_op(
    op: str, hidden_size: int, num_heads: int, ffn_size: int, dropout: float = 0.1, **kwargs
):
    """Returns a new op layer for ``op`` in ("SA", "GA", "RSA", "FFN")."""
    if op not in OP_CLASSES:
        raise ValueError(f"unknown op {op!r}; accepted: {sorted(OP_CLASSES)}")
    if op == "FFN":
        return FeedForward(hidden_size, ffn_size, dropout, **kwargs)
    return OP_CLASSES[op](hidden_size, num_heads, dropout, **kwargs)
