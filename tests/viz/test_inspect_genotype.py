"""python -m mmnas_tf.inspect_genotype and the FLOPs count it prints."""

import os

import numpy as np
import pytest
import tensorflow as tf
from absl import app

from mmnas_tf import inspect_genotype
from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import Genotype
from mmnas_tf.layers import FeedForward, GuidedAttention, RelationSelfAttention, SelfAttention
from mmnas_tf.models.backbone import MMnasBackbone
from mmnas_tf.models.flops import backbone_flops, op_flops


def test_self_attention_flops_by_hand():
    # d=8, 5 tokens: Q, K, V, O projections 4 x (5 x 8 x 8 multiply-adds) = 4 x 320 = 1280 MACs;
    # scores 5 x 5 x 8 = 200 MACs (over both heads of size 4), attention x values another 200.
    # 1280 + 400 = 1680 MACs = 3360 FLOPs.
    assert op_flops("SA", d=8, length=5) == 3360
    # GA, 5 regions onto 3 words: Q, O on 5 (2 x 320), K, V on 3 (2 x 192), 2 x (5 x 3 x 8).
    assert op_flops("GA", d=8, length=5, guide_length=3) == 2 * (640 + 384 + 240)
    with pytest.raises(ValueError, match="unknown op 'XX'; accepted: SA, GA, RSA, FFN"):
        op_flops("XX", d=8, length=5)


def _profiled_matmul_flops(layer, y, context):
    """TensorFlow's profiler count of the layer's matrix products (MatMul / BatchMatMul)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(lambda y: layer(y, context))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(tf.TensorSpec(y.shape)))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, options=opts)
    return sum(c.total_float_ops for c in info.children if "MatMul" in c.name)


@pytest.mark.parametrize("op", ["SA", "GA", "RSA", "FFN"])
def test_op_flops_match_tensorflow_profiler(op):
    d, h, n, m, r, ffn = 8, 2, 5, 3, 6, 16
    rng = np.random.default_rng(0)
    y = rng.normal(size=(1, n, d)).astype("float32")
    context = {
        "mask": np.ones((1, n), bool),
        "guide": rng.normal(size=(1, m, d)).astype("float32"),
        "guide_mask": np.ones((1, m), bool),
        "relation": rng.normal(size=(1, n, n, r)).astype("float32"),
    }
    layer = {
        "SA": lambda: SelfAttention(d, h),
        "GA": lambda: GuidedAttention(d, h),
        "RSA": lambda: RelationSelfAttention(d, h),
        "FFN": lambda: FeedForward(d, ffn),
    }[op]()
    layer(y, context)
    want = op_flops(op, d=d, length=n, guide_length=m, ffn_size=ffn, relation_size=r, heads=h)
    assert _profiled_matmul_flops(layer, y, context) == want


def test_inspect_prints_counts_and_draws(tmp_path, capsys):
    genotype = Genotype(("SA", "FFN"), ("GA", "RSA", "FFN"))
    path = tmp_path / "genotypes.json"
    genotype.save(str(path), original=True, epoch="epoch3")
    argv = [
        "inspect_genotype",
        str(path),
        "--hidden_size=128",
        "--heads=4",
        "--tokens=6",
        "--regions=9",
        "--feature_size=16",
        "--vocab_size=50",
    ]
    text = inspect_genotype.main(argv)
    config = ModelConfig(
        hidden_size=128,
        num_heads=2,
        ffn_size=512,
        max_tokens=6,
        max_regions=9,
        feature_size=16,
        vocab_size=50,
        num_encoder_blocks=2,
        num_decoder_blocks=3,
        genotype=genotype,
    )
    assert "at d=128, 2 heads, FFN 512, 6 tokens, 9 regions" in text  # head size 64 of the file
    backbone = MMnasBackbone(config)
    backbone.build()
    assert f"backbone parameters: {backbone.count_params():,} (" in text
    total = backbone_flops(config)["total"]
    assert f"forward FLOPs per example: {total / 1e9:.3f} G" in text
    assert "encoder (2 blocks): 0:SA, 1:FFN" in text
    assert "decoder (3 blocks): 0:GA, 1:RSA, 2:FFN" in text
    diagram = tmp_path / "genotypes.png"
    assert f"diagram: {diagram}" in text and os.path.getsize(diagram) > 3000
    assert capsys.readouterr().out.strip() == text


def test_inspect_errors(tmp_path):
    with pytest.raises(app.UsageError, match="give one genotype file"):
        inspect_genotype.main(["inspect_genotype"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"enc": [["self_att_64"]], "dec": [["conv"]]}')
    with pytest.raises(ValueError, match="unknown op 'conv'"):
        inspect_genotype.main(["inspect_genotype", str(bad), "--nodraw"])
