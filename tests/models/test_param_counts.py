"""Parameter counts equal the original's at the default sizes, part by part
(docs/original_behaviour.md, "Sizes").

``tests/fixtures/reference/mmnas_measurements.json`` holds counts taken from the original PyTorch
models: the word embedding, the LSTM, the image feature projection, the backbone's ops, and the
head with everything else. Each part is asserted on its own, so a weight that moved from one part to
another cannot hide behind an unchanged total.
"""

import json
import os

import numpy as np
import pytest

from mmnas_tf.experiments import GENOTYPE_DIR
from mmnas_tf.genotype import Genotype, mcan
from mmnas_tf.tasks import get_task

GENOTYPES = GENOTYPE_DIR
MEASURED = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "reference", "mmnas_measurements.json"
)


def counts():
    with open(MEASURED) as f:
        return json.load(f)["param_counts"]


#: The original's search network also holds ``linear_x_rel = nn.Linear(3, 64)``, a text relation
#: embedding that no encoder op reads; our supernet does not build it.
ORIGINAL_UNUSED_TEXT_RELATION = 3 * 64 + 64


def _size(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def breakdown(model) -> dict:
    """The original's parts: embedding, lstm, imgfeat_linear, backbone (the ops), head_and_rest.

    Architecture parameters (a supernet's theta) are counted apart, as the original does.
    """
    backbone = model.backbone
    theta = {id(v) for v in backbone.architecture_variables()}
    parts = {
        "embedding": backbone.get_layer("embedding").count_params(),
        "lstm": backbone.lstm.count_params(),
        "imgfeat_linear": backbone.get_layer("image_projection").count_params(),
        "backbone": sum(
            _size([w for w in block.weights if id(w) not in theta])
            for block in backbone.encoder_blocks + backbone.decoder_blocks
        ),
    }
    total = _size([w for w in model.weights if id(w) not in theta])
    parts["head_and_rest"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def build(task, genotype):
    t = get_task(task)
    config = t.model_config(
        genotype=genotype,
        num_encoder_blocks=len(genotype.encoder),
        num_decoder_blocks=len(genotype.decoder),
        max_regions=8,  # sizes of inputs do not change parameter counts; keeps the build fast
        max_tokens=4,
    )
    return t.build_model(config.replace(num_answers=3129))


@pytest.mark.parametrize(
    "m,n,expected",
    [(4, 6, 28_375_159), (8, 12, 43_075_703), (12, 18, 57_776_247), (16, 24, 72_476_791)],
)
def test_mcan_sizes(m, n, expected):
    assert counts()[f"mcan_M{m}_N{n}"]["total"] == expected
    assert build("vqa", mcan(m, n)).count_params() == expected


@pytest.mark.parametrize(
    "task,arch,key",
    [
        ("vqa", "mmnas_vqa.json", "VQAhead+mmnas_vqa.json"),
        ("vqa", "mcan.json", "VQAhead+mcan.json"),
        ("itm", "mmnas_itm.json", "ITM_model+mmnas_itm.json(vocab=20573)"),
        ("vg", "mmnas_vgd.json", "VG_model+mmnas_vgd.json(vocab=20573)"),
    ],
)
def test_published_architectures(task, arch, key):
    model = build(task, Genotype.load(os.path.join(GENOTYPES, arch)))
    expected = counts()[key]
    got = breakdown(model)
    assert got == {part: expected[part] for part in got}
    assert model.count_params() == expected["total"]


def test_mmnas_vqa_total_and_per_op_counts():
    model = build("vqa", Genotype.load(os.path.join(GENOTYPES, "mmnas_vqa.json")))
    assert model.count_params() == 59_880_599
    per_op = {b.op_name: b.count_params() for b in model.backbone.decoder_blocks}
    assert per_op == {"SA": 1_049_600, "GA": 1_049_600, "RSA": 1_050_120, "FFN": 2_100_736}


@pytest.mark.slow
def test_vqa_supernet_d256_matches_the_original_part_by_part():
    want = counts()["supernet_vqa_hidden256"]
    task = get_task("vqa")
    # the original search config: HSIZE 256, 4 heads (head size 64), ATTFLAT_MLP_SIZE 512,
    # ATTFLAT_OUT_SIZE 2 * HSIZE, 20,573 words, 3,129 answers
    config = task.model_config(
        hidden_size=256,
        num_heads=4,
        ffn_size=1024,
        pool_mlp_size=512,
        pool_output_size=512,
        genotype=None,
        max_regions=8,
        max_tokens=4,
    )
    model = task.build_model(config.replace(num_answers=3129))
    got = breakdown(model)
    # every candidate op of every block: 12 x (SA + FFN) + 18 x (SA + GA + RSA + FFN) at d=256
    assert (
        got["backbone"]
        == want["backbone"]
        == 12 * (262_656 + 526_080) + 18 * (2 * 262_656 + 262_916 + 526_080)
    )
    assert got["embedding"] == want["total"] - want["wo_emb"] == 20_573 * 300
    # the original's net weights = ours + its unused text relation layer; nothing else differs
    assert got["total"] == want["net_weights"] - ORIGINAL_UNUSED_TEXT_RELATION
    theta = model.backbone.architecture_variables()
    # the original holds alpha_prob and alpha_gate (the binary gates) of one size each
    assert _size(theta) == want["alpha_prob"] == want["alpha_gate"] == 12 * 2 + 18 * 4
