"""Backbone behaviour beyond the reference vectors: any depth and op pool, the box embedding,
padding invariance (more and fewer padded regions and tokens)."""

import keras
import numpy as np
import pytest
from support.layer_test import run_model_test

from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import Genotype
from mmnas_tf.models import MMnasBackbone
from mmnas_tf.tasks import get_task

rng = np.random.default_rng(1)


def tiny(genotype, **kw):
    return ModelConfig(
        hidden_size=16,
        num_heads=2,
        ffn_size=32,
        relation_size=8,
        vocab_size=30,
        word_embed_size=12,
        feature_size=10,
        max_tokens=6,
        max_regions=7,
        pool_mlp_size=8,
        pool_output_size=20,
        num_encoder_blocks=len(genotype.encoder),
        num_decoder_blocks=len(genotype.decoder),
        genotype=genotype,
        **kw,
    )


def batch(config, n_real=(7, 4), t_real=(6, 3)):
    b = len(n_real)
    ids = np.zeros((b, config.max_tokens), "int32")
    feats = np.zeros((b, config.max_regions, config.feature_size), "float32")
    boxes = np.zeros((b, config.max_regions, 4), "float32")
    for i, (n, t) in enumerate(zip(n_real, t_real)):
        ids[i, :t] = rng.integers(3, config.vocab_size, t)
        feats[i, :n] = rng.normal(size=(n, config.feature_size))
        xy = rng.uniform(0, 200, (n, 2))
        boxes[i, :n] = np.concatenate([xy, xy + rng.uniform(5, 100, (n, 2))], 1)
    return {
        "text_ids": ids,
        "image_features": feats,
        "boxes": boxes,
        "image_size": np.full((b, 2), 400.0, "float32"),
    }


@pytest.mark.parametrize(
    "genotype",
    [
        Genotype((), ("GA",)),
        Genotype(("SA",) * 3, ("RSA", "FFN", "GA", "SA", "RSA")),
        Genotype(("FFN",), ("FFN",)),
    ],
)
def test_any_depth_and_ops(genotype):
    config = tiny(genotype)
    model = get_task("vqa").build_model(config.replace(num_answers=5))
    out = model(batch(config))
    assert out["logits"].shape == (2, 5)
    assert np.isfinite(np.asarray(out["logits"])).all()


def _repad(inputs, regions, tokens):
    """The same examples with their padding cut or extended to `regions` and `tokens` slots."""

    def fit(v, n):
        v = v[:, :n]
        return np.pad(v, [(0, 0), (0, n - v.shape[1])] + [(0, 0)] * (v.ndim - 2))

    out = dict(inputs, text_ids=fit(inputs["text_ids"], tokens))
    for key in ("image_features", "boxes"):
        out[key] = fit(inputs[key], regions)
    return out


def _real_log_softmax(scores, n_real):
    """Object scores renormalised over the real regions (VG normalises over every slot sent)."""
    rows = []
    for row, n in zip(np.asarray(scores), n_real):
        real = row[:n]
        rows.append(real - np.logaddexp.reduce(real))
    return rows


@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_padding_does_not_change_real_outputs(task):
    config = tiny(Genotype(("SA", "FFN"), ("RSA", "GA", "SA", "FFN")))
    model = get_task(task).build_model(config.replace(num_answers=5))
    n_real, t_real = (4, 2), (3, 5)
    inputs = batch(config, n_real=n_real, t_real=t_real)  # padded to 7 regions, 6 tokens
    expected = model(inputs)
    # No padding left, more padding than the config's maxima, and one slot more of each.
    for regions, tokens in [(max(n_real), max(t_real)), (12, 9), (5, 6)]:
        got = model(_repad(inputs, regions, tokens))
        for key, value in expected.items():
            want, have = np.asarray(value), np.asarray(got[key])
            if key == "object_scores":
                for w, h in zip(_real_log_softmax(want, n_real), _real_log_softmax(have, n_real)):
                    np.testing.assert_allclose(h, w, atol=1e-5)
                continue
            if key == "box_deltas":
                want, have = want[:, : max(n_real)], have[:, : max(n_real)]
            np.testing.assert_allclose(have, want, atol=1e-5, err_msg=f"{key} {regions=} {tokens=}")


def test_box_embedding_option():
    genotype = Genotype(("SA",), ("RSA", "GA"))
    plain = get_task("vqa").build_model(tiny(genotype).replace(num_answers=3))
    config = tiny(genotype, box_embedding_size=6)
    model = get_task("vqa").build_model(config.replace(num_answers=3))
    # Dense(5 -> 6) plus 6 more input rows of the image projection.
    assert model.count_params() - plain.count_params() == 5 * 6 + 6 + 6 * 16
    assert get_task("vqa").input_names(config)[-1] == "image_size"
    inputs = batch(config)
    out = model(inputs)["logits"]
    moved = dict(inputs, image_size=inputs["image_size"] * 2)
    assert not np.allclose(np.asarray(out), np.asarray(model(moved)["logits"]))
    with pytest.raises(ValueError, match="missing input 'image_size'"):
        model({k: v for k, v in inputs.items() if k != "image_size"})


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="hidden_size=30 is not divisible by num_heads=4"):
        ModelConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="ModelConfig.ffn_size must be a positive int"):
        ModelConfig(ffn_size=0)
    with pytest.raises(ValueError, match="expected 12"):
        ModelConfig(genotype=Genotype(("SA",), ("GA",)))
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"width": 3})
    config = tiny(Genotype(("SA",), ("GA",)))
    assert ModelConfig.from_dict(config.to_dict()) == config


HARNESS_GENOTYPE = Genotype(("SA", "FFN"), ("RSA", "GA", "FFN"))


def test_backbone_harness():
    """The shared harness (tests/support/layer_test.py): config and .keras round trips, eager and
    traced calls, one step that moves every weight (RSA in the genotype: the relation projection
    that the original always holds is used)."""
    config = tiny(HARNESS_GENOTYPE)
    keras.utils.set_random_seed(0)
    backbone = MMnasBackbone(config)
    shapes = {"text": (2, 6, 16), "image": (2, 7, 16), "text_mask": (2, 6), "image_mask": (2, 7)}
    run_model_test(backbone, batch(config), shapes)


TASK_OUTPUTS = {
    "vqa": {"logits": (2, 4)},
    "itm": {"logits": (2,)},
    "vg": {"object_scores": (2, 7), "box_deltas": (2, 7, 4)},
}


@pytest.mark.parametrize("task", sorted(TASK_OUTPUTS))
def test_task_model_harness(task):
    """The harness on each task model; the .keras file rebuilds the head and the backbone."""
    config = tiny(HARNESS_GENOTYPE)
    keras.utils.set_random_seed(0)
    model = get_task(task).build_model(config.replace(num_answers=4))
    # Gradients zero by construction: a pooling's glimpse bias shifts every position's logit alike
    # (the softmax over positions cancels it), and so does VG's region-score bias (log-softmax).
    zero = ("pooling/glimpse/bias", "score/bias") if task == "vg" else ("pooling/glimpse/bias",)
    run_model_test(model, batch(config), TASK_OUTPUTS[task], zero_gradient=zero)


def test_tf_checkpoint_holds_every_block_weight(tmp_path):
    import tensorflow as tf

    config = tiny(Genotype(("SA", "FFN"), ("RSA", "GA", "FFN")))
    model = get_task("vqa").build_model(config.replace(num_answers=4))
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    stored = [n for n, _ in tf.train.list_variables(path) if n.endswith("VARIABLE_VALUE")]
    assert len(stored) == len(model.weights)
    inputs = batch(config)
    expected = np.asarray(model(inputs)["logits"])
    other = get_task("vqa").build_model(config.replace(num_answers=4))
    tf.train.Checkpoint(model=other).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(np.asarray(other(inputs)["logits"]), expected, atol=1e-6)
