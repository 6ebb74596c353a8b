"""A fifth op, defined and registered in this file only, goes through every path that reads the op
registry: genotypes (ours and the original format), the layer factory and the mixed op, FLOPs, the
search driver with its pictures, the train driver, and a SavedModel export that loads and answers.

It follows "Adding an op" in docs/architecture.md: a layer class on the op call interface and one
``register_op`` call; nothing else in the package changes.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.genotype import (
    DECODER_OPS,
    ENCODER_OPS,
    Genotype,
    OpDef,
    OpPools,
    dense_flops,
    get_op,
    op_names,
    register_op,
    unregister_op,
)
from mmnas_tf.layers import PostNormOp, make_op
from mmnas_tf.layers.mixed_op import MixedOp

D, LENGTH = 8, 5
COLOUR = "#d62728"  # a red no paper op uses


@keras.saving.register_keras_serializable(package="mmnas_tf_tests")
class ToyLinear(PostNormOp):
    """TOY(y) = tanh(W y + b), post-norm residual: a token-wise op with no heads and no context.

    Args:
      hidden_size: int, width d.
      dropout: float, dropout on the op output.
    """

    @classmethod
    def from_sizes(cls, hidden_size, num_heads, ffn_size, dropout=0.1, **kwargs):
        return cls(hidden_size, dropout, **kwargs)

    def __init__(self, hidden_size: int, dropout: float = 0.1, **kwargs):
        super().__init__(hidden_size, dropout, **kwargs)
        self.dense = keras.layers.Dense(hidden_size, name="dense")

    def build_op(self, y_shape, context_shape):
        self.dense.build(y_shape)

    def transform(self, y, context, training=None):
        return ops.tanh(self.dense(y))


TOY = OpDef(
    "TOY",
    "mmnas_tf_tests>ToyLinear",
    flops=lambda d, length, **_: dense_flops(length, d, d),
    encoder=True,
    decoder=True,
    colour=COLOUR,
    label="Toy",
)


@pytest.fixture(scope="module")
def toy_op():
    register_op(TOY)
    yield TOY
    unregister_op("TOY")


def rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def colours_of(image):
    return {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def test_registry_accepts_the_op_and_refuses_bad_ones(toy_op):
    assert op_names()[-1] == "TOY" and get_op("TOY") is toy_op
    assert op_names("encoder")[-1] == op_names("decoder")[-1] == "TOY"
    # the paper's pools stay the default search space
    assert OpPools() == OpPools(ENCODER_OPS, DECODER_OPS) and "TOY" not in ENCODER_OPS
    with pytest.raises(ValueError, match="op 'TOY' is already registered"):
        register_op(toy_op)
    with pytest.raises(ValueError, match="unknown op 'CONV'; accepted: SA, GA, RSA, FFN, TOY"):
        get_op("CONV")
    with pytest.raises(ValueError, match="which only decoder blocks have"):
        OpDef("BAD", "x>Y", flops=len, encoder=True, decoder=True, colour="red", needs=("guide",))
    with pytest.raises(ValueError, match="may appear nowhere"):
        OpDef("BAD", "x>Y", flops=len, encoder=False, decoder=False, colour="red")
    register_op(dataclasses.replace(toy_op, name="GHOST", layer="nowhere>Ghost", original=""))
    try:
        with pytest.raises(ValueError, match="'nowhere>Ghost' is not a Keras registered class"):
            make_op("GHOST", D, 2, 16)
    finally:
        unregister_op("GHOST")


def test_genotypes_carry_the_op_in_both_formats(toy_op, tmp_path):
    g = Genotype(("TOY", "SA"), ("GA", "TOY"), head_size=4)
    assert str(g) == "enc[TOY SA] dec[GA TOY]"
    assert g.to_original() == {
        "enc": [["TOY"], ["self_att_4"]],
        "dec": [["guided_att_4"], ["TOY"]],
    }
    for original in (False, True):
        path = tmp_path / f"g{original}.json"
        g.save(str(path), original=original)
        assert Genotype.load(str(path)) == g
    assert OpPools(("SA", "TOY"), ("GA", "TOY")).search_space_size(1, 2) == 8
    with pytest.raises(ValueError, match=r"accepted: self_att_<head size>, .*feed_forward, TOY"):
        Genotype.from_original({"enc": [["conv_3"]], "dec": [["TOY"]]})


def test_layer_factory_mixed_op_and_flops(toy_op):
    from mmnas_tf.models.flops import backbone_flops, op_flops
    from mmnas_tf.tasks import get_task

    layer = make_op("TOY", D, 2, 16, dropout=0.0)
    assert isinstance(layer, ToyLinear) and layer.op_name == "TOY"
    y = tf.constant(np.random.RandomState(0).randn(2, LENGTH, D).astype("float32"))
    out = layer(y, {})
    # post-norm residual around tanh(W y + b), the original's LN (unbiased std, eps on the std)
    z = y.numpy() + np.tanh(y.numpy() @ layer.dense.kernel.numpy() + layer.dense.bias.numpy())
    want = (z - z.mean(-1, keepdims=True)) / (z.std(-1, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    clone = ToyLinear.from_config(layer.get_config())
    assert clone.hidden_size == D and clone.op_name == "TOY"

    mixed = MixedOp(("SA", "TOY"), hidden_size=D, num_heads=2, ffn_size=16, dropout=0.0)
    mixed(y, {})
    np.testing.assert_allclose(
        mixed(y, {}, choice=1).numpy(), mixed.candidate_ops[1](y, {}).numpy(), atol=1e-6
    )

    assert op_flops("TOY", d=D, length=LENGTH) == 2 * LENGTH * D * D
    config = get_task("vqa").model_config(
        hidden_size=D,
        num_heads=2,
        ffn_size=16,
        max_tokens=6,
        max_regions=4,
        genotype=Genotype(("TOY",), ("GA", "TOY")),
        num_encoder_blocks=1,
        num_decoder_blocks=2,
    )
    flops = backbone_flops(config)
    assert flops["encoder_0"] == dense_flops(6, D, D) and flops["decoder_1"] == dense_flops(4, D, D)
    assert "relation_embedding" not in flops  # no op of this genotype reads the relations


@pytest.fixture(scope="module")
def vqa_run(toy_op, tmp_path_factory):
    """A search over pools holding TOY, then a retrain of a genotype holding it, on tiny data."""
    from mmnas_tf.experiments import apply_overrides, get_experiment
    from mmnas_tf.search import search
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task
    from mmnas_tf.train import train

    root = tmp_path_factory.mktemp("toy_op")
    data_dir = str(root / "data")
    benchmark.generate(get_task("vqa"), data_dir, "tiny", 12, 0, "float32", None, 32)
    exp = apply_overrides(
        get_experiment("vqa_tiny"),
        [
            f"data.data_dir={data_dir}",
            "data.batch_size=4",
            "data.eval_batch_size=8",
            "train.epochs=1",
            "train.steps_per_epoch=2",
            "search.warmup_epochs=0",
            "search.search_epochs=1",
            "search.weight_steps_per_arch_step=1",
            "search.prior_logit=0",
        ],  # uniform: the original's prior names ops outside these pools
    )
    supernet = dataclasses.replace(
        exp.search_model,
        pools=OpPools(("SA", "TOY"), ("GA", "TOY")),
        num_encoder_blocks=1,
        num_decoder_blocks=2,
    )
    exp = dataclasses.replace(
        exp,
        search_model=supernet,
        genotype={"format": "mmnas_tf.genotype/1", "encoder": ["TOY"], "decoder": ["GA", "TOY"]},
        train=dataclasses.replace(exp.train, steps_per_epoch=1),
    )
    search_dir, train_dir = str(root / "search"), str(root / "train")
    status = search(exp, search_dir, tensorboard=False)
    logs = train(exp, train_dir, progress=False)
    return dataclasses.make_dataclass("Run", ["exp", "root", "status", "logs"])(
        exp, root, status, logs
    )


def test_search_over_a_pool_with_the_op_and_its_pictures(vqa_run):
    from mmnas_tf.viz import draw_genotype, plot_theta_history
    from mmnas_tf.viz.search_plots import genotype_figure, genotype_labels

    search_dir = vqa_run.root / "search"
    record = vqa_run.status["history"]["epoch1"]
    assert record["phase"] == "search" and np.isfinite(record["loss"])
    with open(search_dir / "theta_history.json", encoding="utf-8") as f:
        history = json.load(f)
    theta = history["epoch1"]["theta"]
    assert theta["ops"] == {"encoder": ["SA", "TOY"], "decoder": ["GA", "TOY"]}
    found = Genotype.load(str(search_dir / "genotypes.json"))
    assert set(found.encoder) <= {"SA", "TOY"} and set(found.decoder) <= {"GA", "TOY"}
    # the search drew its pictures with the op's colour: a theta curve per pool op
    for name in ("theta.png", "genotype.png"):
        assert os.path.getsize(search_dir / name) > 5_000
    image = plot_theta_history(history)
    assert rgb(COLOUR) in colours_of(image)
    genotype = Genotype(("TOY",), ("GA", "TOY"))
    assert rgb(COLOUR) in colours_of(draw_genotype(genotype))
    fig = genotype_figure(genotype)
    assert genotype_labels(fig) == ["encoder 0: TOY", "decoder 0: GA", "decoder 1: TOY"]
    assert "Toy" in [t.get_text() for t in fig.axes[0].texts]


def test_train_and_export_a_fixed_net_with_the_op(vqa_run):
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.models.flops import backbone_flops
    from mmnas_tf.runs import find_run
    from mmnas_tf.serving.from_checkpoint import export_checkpoint
    from mmnas_tf.tasks import get_task

    train_dir = str(vqa_run.root / "train")
    assert len(vqa_run.logs) == 1 and np.isfinite(vqa_run.logs[0]["loss"])
    run = find_run(train_dir)
    config = run["model"]
    assert str(config.genotype) == "enc[TOY] dec[GA TOY]"
    d, m = config.hidden_size, config.max_tokens
    assert backbone_flops(config)["encoder_0"] == dense_flops(m, d, d)

    task = get_task("vqa")
    model = task.build_model(config)
    restore_model(model, train_dir)
    assert [b.op_name for b in model.backbone.encoder_blocks] == ["TOY"]
    path = export_checkpoint("vqa", train_dir, str(vqa_run.root / "export"), overwrite=True)
    served = tf.saved_model.load(path).signatures["serving_default"]
    inputs, _ = next(iter(task.build_inputs(vqa_run.exp.data, config, "val", training=False)))
    keys = (names.TEXT_IDS, names.IMAGE_FEATURES, names.BOXES)
    got = served(**{k: inputs[k] for k in keys})["logits"].numpy()
    want = model({k: inputs[k] for k in keys}, training=False)["logits"].numpy()
    # the same float32 graph traced twice: a few steps of float32's resolution at the logits' size
    step = np.finfo(np.float32).eps * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=16 * step)
