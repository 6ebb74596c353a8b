"""Builds an op's layer from its genotype name, through the op registry (``genotype.register_op``)."""

import keras

from mmnas_tf.genotype import get_op


def op_layer_class(op: str) -> type:
    """The layer class of the registered op ``op`` (ValueError naming the accepted ops)."""
    definition = get_op(op)
    cls = keras.saving.get_registered_object(definition.layer)
    if cls is None:
        raise ValueError(
            f"op {op!r}: its layer {definition.layer!r} is not a Keras registered class; define "
            "it with @keras.saving.register_keras_serializable before building the op"
        )
    return cls


def make_op(
    op: str, hidden_size: int, num_heads: int, ffn_size: int, dropout: float = 0.1, **kwargs
):
    """Returns a new layer of the registered op ``op`` (the paper's "SA", "GA", "RSA", "FFN" or one
    added with ``genotype.register_op``), built by its class's ``from_sizes``."""
    return op_layer_class(op).from_sizes(hidden_size, num_heads, ffn_size, dropout, **kwargs)
