"""The attention weights the models return on request are the ones their layers used."""

import numpy as np
import pytest
from keras import ops

from mmnas_tf.genotype import Genotype
from mmnas_tf.layers import AttentionPooling, GuidedAttention, SelfAttention
from mmnas_tf.tasks import get_task
from tests.models.test_backbone import batch, tiny

GENOTYPE = Genotype(("SA", "FFN"), ("GA", "RSA", "GA", "FFN"))
N_REAL, T_REAL = (7, 4), (6, 3)


def _masks(config):
    regions = np.arange(config.max_regions)[None] < np.array(N_REAL)[:, None]
    tokens = np.arange(config.max_tokens)[None] < np.array(T_REAL)[:, None]
    return regions, tokens


def _check_weights(weights, real):
    weights = np.asarray(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert (weights[~real] == 0).all()
    assert (weights[real] > 0).all()


def _repool(layer, x, weights):
    """The pooling layer's output recomputed from the returned weights (one glimpse)."""
    pooled = np.einsum("bl,bld->bd", np.asarray(weights), np.asarray(x))
    return np.asarray(layer.merge_dense(pooled))


@pytest.mark.parametrize("task", ["vqa", "itm"])
def test_classifier_pooling_weights_repool_to_the_pooled_output(task):
    config = tiny(GENOTYPE)
    model = get_task(task).build_model(config.replace(num_answers=5 if task == "vqa" else None))
    inputs = batch(config, N_REAL, T_REAL)
    plain = model(inputs)
    out = model(inputs, return_intermediates=True, return_attention=True)
    # Asking for the weights changes no number.
    np.testing.assert_array_equal(np.asarray(plain["logits"]), np.asarray(out["logits"]))
    att, acts = out["attention"], out["intermediates"]
    regions, tokens = _masks(config)
    _check_weights(att["image_pooling"], regions)
    _check_weights(att["text_pooling"], tokens)
    image = acts["decoder_3"]  # the backbone's last output is what the image pooling sees
    text = acts["encoder_1"]
    np.testing.assert_allclose(
        _repool(model.image_pooling, image, att["image_pooling"]),
        np.asarray(acts["image_pooling"]),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        _repool(model.text_pooling, text, att["text_pooling"]),
        np.asarray(acts["text_pooling"]),
        rtol=1e-5,
        atol=1e-5,
    )
    assert sorted(k for k in att if k.startswith("decoder")) == ["decoder_0", "decoder_2"]


def test_decoder_ga_maps_are_the_head_mean_of_the_layer_attention():
    config = tiny(GENOTYPE)
    model = get_task("vqa").build_model(config.replace(num_answers=5))
    inputs = batch(config, N_REAL, T_REAL)
    out = model(inputs, return_intermediates=True, return_attention=True)
    acts = out["intermediates"]
    block = model.backbone.decoder_blocks[2]
    assert isinstance(block, GuidedAttention)
    regions, tokens = _masks(config)
    context = {"mask": regions, "guide": acts["encoder_1"], "guide_mask": tokens}
    y, maps = block(acts["decoder_1"], context, return_attention=True)
    np.testing.assert_allclose(np.asarray(y), np.asarray(acts["decoder_2"]), atol=1e-5)
    got = np.asarray(out["attention"]["decoder_2"])
    assert got.shape == (2, config.max_regions, config.max_tokens)
    np.testing.assert_allclose(got, np.asarray(ops.mean(maps, axis=1)), atol=1e-6)
    # Every region row (padded regions too: queries are not masked) is a distribution over
    # the real words.
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)
    assert (got[~np.broadcast_to(tokens[:, None], got.shape)] == 0).all()


def test_grounder_returns_region_scores_and_text_weights():
    config = tiny(GENOTYPE)
    model = get_task("vg").build_model(config)
    inputs = batch(config, N_REAL, T_REAL)
    out = model(inputs, return_intermediates=True, return_attention=True)
    att = out["attention"]
    np.testing.assert_allclose(
        np.asarray(att["region_scores"]), np.exp(np.asarray(out["object_scores"])), rtol=1e-6
    )
    _, tokens = _masks(config)
    _check_weights(att["text_pooling"], tokens)
    np.testing.assert_allclose(
        _repool(model.text_pooling, out["intermediates"]["encoder_1"], att["text_pooling"]),
        np.asarray(out["intermediates"]["text_pooling"]),
        rtol=1e-5,
        atol=1e-5,
    )
    assert "image_pooling" not in att


def test_layers_return_their_weights_only_when_asked():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    pooling = AttentionPooling(8, 6, 2, 10, dropout=0.0)
    pooled, alpha = pooling(x, mask, return_weights=True)
    np.testing.assert_array_equal(np.asarray(pooling(x, mask)), np.asarray(pooled))
    alpha = np.asarray(alpha)
    assert alpha.shape == (2, 5, 2)
    np.testing.assert_allclose(alpha.sum(1), 1.0, rtol=1e-5)
    assert (alpha[0, 3:] == 0).all()
    by_glimpse = np.einsum("blg,bld->bgd", alpha, x).reshape(2, 16)
    np.testing.assert_allclose(
        np.asarray(pooling.merge_dense(by_glimpse)), np.asarray(pooled), rtol=1e-5, atol=1e-5
    )
    sa = SelfAttention(8, 2, dropout=0.0)
    y, maps = sa(x, {"mask": mask}, return_attention=True)
    np.testing.assert_array_equal(np.asarray(sa(x, {"mask": mask})), np.asarray(y))
    assert tuple(maps.shape) == (2, 2, 5, 5)
    # the output is the attention map times the values, projected
    v = np.asarray(sa.attention.value_dense(x)).reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    heads = np.einsum("bhqk,bhkd->bhqd", np.asarray(maps), v).transpose(0, 2, 1, 3).reshape(2, 5, 8)
    core = np.asarray(sa.attention.output_dense(heads))
    np.testing.assert_allclose(np.asarray(sa.transform(x, {"mask": mask})), core, atol=1e-5)


def test_ops_without_attention_say_so():
    config = tiny(GENOTYPE)
    model = get_task("vqa").build_model(config.replace(num_answers=5))
    ffn = model.backbone.decoder_blocks[3]
    with pytest.raises(ValueError, match="op FFN has no attention map.*SA, GA and RSA"):
        ffn(np.zeros((1, 7, 16), "float32"), {}, return_attention=True)
