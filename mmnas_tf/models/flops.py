"""Forward FLOPs per example of a backbone, counted analytically from its sizes.

Counted: every matrix product (dense layers, LSTM gates, attention scores and their product with
the values), a multiply-add being 2 FLOPs, as TensorFlow's profiler counts ``MatMul``. Not
counted: element-wise work (softmax, layer norm, activations, residual sums, biases), a few
percent at the paper's sizes.
"""

from __future__ import annotations

from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import attention_flops, dense_flops, get_op

__all__ = ["attention_flops", "backbone_flops", "dense_flops", "op_flops"]


def op_flops(
    op: str,
    d: int,
    length: int,
    guide_length: int = 0,
    ffn_size: int = 0,
    relation_size=0,
    heads: int = 1,
) -> int:
    """One op on a sequence of ``length``, by its registered formula (``genotype.OpDef.flops``):
    SA and RSA attend within it, GA from it to the ``guide_length`` encoder outputs, FFN is
    Linear(d -> ffn_size) then Linear(ffn_size -> d); RSA adds its own Linear(r -> heads) over the
    n x n relation embedding."""
    return get_op(op).flops(
        d=d,
        length=length,
        guide_length=guide_length,
        ffn_size=ffn_size,
        relation_size=relation_size,
        heads=heads,
    )


def backbone_flops(config: ModelConfig) -> dict[str, int]:
    """FLOPs per example of a fixed-genotype backbone at ``config``'s sizes (``max_tokens`` words,
    ``max_regions`` regions, padding included: the network computes it), part by part:
    ``{"lstm", "image_projection", "relation_embedding", "encoder_i", "decoder_i", "total"}``."""
    c = config
    if c.genotype is None:
        raise ValueError("FLOPs are counted for a fixed genotype; this config is a supernet")
    d, m, n = c.hidden_size, c.max_tokens, c.max_regions
    out = {"lstm": dense_flops(m, c.word_embed_size, 4 * d) + dense_flops(m, d, 4 * d)}
    out["image_projection"] = dense_flops(n, c.feature_size + c.box_embedding_size, d)
    if c.box_embedding_size:
        out["box_embedding"] = dense_flops(n, 5, c.box_embedding_size)
    if any("relation" in get_op(op).needs for op in c.genotype.decoder):
        out["relation_embedding"] = dense_flops(n * n, 4, c.relation_size)
    sizes = dict(d=d, ffn_size=c.ffn_size, relation_size=c.relation_size, heads=c.heads)
    for i, op in enumerate(c.genotype.encoder):
        out[f"encoder_{i}"] = op_flops(op, length=m, **sizes)
    for i, op in enumerate(c.genotype.decoder):
        out[f"decoder_{i}"] = op_flops(op, length=n, guide_length=m, **sizes)
    out["total"] = sum(out.values())
    return out
