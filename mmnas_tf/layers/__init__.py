"""Keras layers of MMnas: the paper's four primitive ops (each named by its entry in the op registry,
``genotype.register_op``), the attention core, dropout, LN, pooling, geometry, and the
mixed op (a supernet slot holding every candidate op).

``mixed_op`` is imported as ``mmnas_tf.layers.mixed_op`` (it imports this package's ``make_op``).
"""

from mmnas_tf.layers.attention_pooling import AttentionPooling
from mmnas_tf.layers.dropout import Dropout
from mmnas_tf.layers.feed_forward import FeedForward
from mmnas_tf.layers.guided_attention import GuidedAttention
from mmnas_tf.layers.layer_norm import OriginalLayerNorm
from mmnas_tf.layers.multi_head_attention import MultiHeadAttention
from mmnas_tf.layers.ops_registry import make_op, op_layer_class
from mmnas_tf.layers.post_norm_op import PostNormOp
from mmnas_tf.layers.relation_features import box_features, relation_features
from mmnas_tf.layers.relation_self_attention import RelationSelfAttention
from mmnas_tf.layers.self_attention import SelfAttention
from mmnas_tf.layers.sentence_lstm import SentenceLSTM

__all__ = [
    "AttentionPooling",
    "Dropout",
    "FeedForward",
    "GuidedAttention",
    "MultiHeadAttention",
    "OriginalLayerNorm",
    "PostNormOp",
    "RelationSelfAttention",
    "SelfAttention",
    "SentenceLSTM",
    "box_features",
    "make_op",
    "op_layer_class",
    "relation_features",
]
