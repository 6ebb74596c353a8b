import numpy as np
import pytest
from support.layer_test import run_layer_test

from mmnas_tf.layers import (
    AttentionPooling,
    FeedForward,
    GuidedAttention,
    MultiHeadAttention,
    OriginalLayerNorm,
    RelationSelfAttention,
    SelfAttention,
    SentenceLSTM,
    make_op,
)

rng = np.random.default_rng(0)
B, L, M, D, R = 2, 5, 4, 16, 6
y = rng.normal(size=(B, L, D)).astype("float32")
x = rng.normal(size=(B, M, D)).astype("float32")
y_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
x_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool)
relation = np.abs(rng.normal(size=(B, L, L, R))).astype("float32")
context = {"mask": y_mask, "guide": x, "guide_mask": x_mask, "relation": relation}

ATT_PARAMS = 4 * D * D + 2 * D  # q, k, v, o without bias + LN


def test_layer_norm_matches_original_formula():
    v = rng.normal(size=(3, 7)).astype("float32")
    out = np.asarray(OriginalLayerNorm()(v))
    mean = v.mean(-1, keepdims=True)
    std = v.std(-1, ddof=1, keepdims=True)
    np.testing.assert_allclose(out, (v - mean) / (std + 1e-6), rtol=1e-5, atol=1e-6)
    run_layer_test(OriginalLayerNorm, {"epsilon": 1e-6}, (v,), (3, 7), 2, 14)


def test_self_attention_harness_and_mask():
    layer = run_layer_test(
        SelfAttention,
        {"hidden_size": D, "num_heads": 4, "dropout": 0.1},
        (y, context),
        (B, L, D),
        6,
        ATT_PARAMS,
    )
    # Changing padded positions must not change real positions' outputs (keys are masked).
    y2 = y.copy()
    y2[0, 3:] = 100.0
    out1, out2 = np.asarray(layer(y, context)), np.asarray(layer(y2, context))
    np.testing.assert_allclose(out1[0, :3], out2[0, :3], atol=1e-5)
    assert not np.allclose(out1[0, 3:], out2[0, 3:])


def test_guided_attention_uses_guide_mask():
    layer = run_layer_test(
        GuidedAttention,
        {"hidden_size": D, "num_heads": 2, "dropout": 0.1},
        (y, context),
        (B, L, D),
        6,
        ATT_PARAMS,
    )
    x2 = x.copy()
    x2[0, 2:] = -50.0  # padded text positions of sample 0
    out2 = np.asarray(layer(y, dict(context, guide=x2)))
    np.testing.assert_allclose(np.asarray(layer(y, context)), out2, atol=1e-5)
    with pytest.raises(ValueError, match="guide"):
        layer(y, {"mask": y_mask})


def test_relation_self_attention_bias():
    layer = run_layer_test(
        RelationSelfAttention,
        {"hidden_size": D, "num_heads": 4, "dropout": 0.1},
        (y, context),
        (B, L, D),
        8,
        ATT_PARAMS + R * 4 + 4,
    )
    # A different geometry must change the output (the bias is used).
    other = dict(context, relation=relation[:, ::-1])
    assert not np.allclose(np.asarray(layer(y, context)), np.asarray(layer(y, other)))


def test_feed_forward():
    run_layer_test(
        FeedForward,
        {"hidden_size": D, "ffn_size": 32, "dropout": 0.1},
        (y, {}),
        (B, L, D),
        6,
        D * 32 + 32 + 32 * D + D + 2 * D,
    )


def test_attention_core_bias_and_heads():
    mha = MultiHeadAttention(D, 4, 0.0)
    out = mha(y, x, key_mask=x_mask)
    assert tuple(out.shape) == (B, L, D)
    bias = np.zeros((B, 4, L, M), "float32")
    bias[..., 0] = -1e4  # forbid key 0 through the bias
    biased = np.asarray(mha(y, x, key_mask=x_mask, bias=bias))
    x2 = x.copy()
    x2[:, 0] = 7.0
    np.testing.assert_allclose(
        biased, np.asarray(mha(y, x2, key_mask=x_mask, bias=bias)), atol=1e-5
    )
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 4)


def test_attention_pooling_masks_padding():
    layer = run_layer_test(
        AttentionPooling,
        {"hidden_size": D, "mlp_size": 8, "glimpses": 2, "output_size": 12, "dropout": 0.1},
        (y, y_mask),
        (B, 12),
        6,
        D * 8 + 8 + 8 * 2 + 2 + 2 * D * 12 + 12,
        # the glimpse bias shifts every position's logit alike: the softmax over positions cancels it
        zero_gradient=("glimpse/bias",),
    )
    y2 = y.copy()
    y2[0, 3:] = 9.0
    np.testing.assert_allclose(
        np.asarray(layer(y, y_mask)), np.asarray(layer(y2, y_mask)), atol=1e-5
    )


def test_sentence_lstm_matches_numpy_recurrence():
    layer = run_layer_test(SentenceLSTM, {"units": 8}, (x,), (B, M, 8), 4, 4 * 8 * (D + 8) + 2 * 32)
    k, rk, bi, bh = (np.asarray(w) for w in layer.weights)
    h = np.zeros((B, 8))
    c = np.zeros((B, 8))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    outs = []
    for t in range(M):
        z = x[:, t] @ k + h @ rk + bi + bh
        i, f, g, o = sig(z[:, :8]), sig(z[:, 8:16]), np.tanh(z[:, 16:24]), sig(z[:, 24:])
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    np.testing.assert_allclose(np.asarray(layer(x)), np.stack(outs, 1), atol=1e-5)


def test_make_op_rejects_unknown_names():
    assert make_op("FFN", D, 4, 32).op_name == "FFN"
    with pytest.raises(ValueError, match="accepted"):
        make_op("CONV", D, 4, 32)
