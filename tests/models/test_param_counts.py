"""Parameter counts equal the original's at the default sizes (docs/original_behaviour.md,
"Sizes")."""

import json
import os

import pytest

from mmnas_tf.genotype import Genotype, mcan
from mmnas_tf.tasks import get_task

GENOTYPES = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "genotypes")
MEASURED = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "reference", "mmnas_measurements.json"
)


def counts():
    with open(MEASURED) as f:
        return json.load(f)["param_counts"]


def build(task, genotype):
    t = get_task(task)
    config = t.model_config(
        genotype=genotype,
        num_encoder_blocks=len(genotype.encoder),
        num_decoder_blocks=len(genotype.decoder),
        max_regions=8,  # sizes of inputs do not change parameter counts; keeps the build fast
        max_tokens=4,
    )
    return t.build_model(config, num_answers=3129)


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
    assert model.count_params() == expected["total"]
    backbone_blocks = sum(
        layer.count_params()
        for layer in model.backbone.encoder_blocks + model.backbone.decoder_blocks
    )
    assert backbone_blocks == expected["backbone"]
    assert model.backbone.lstm.count_params() == expected["lstm"]


def test_mmnas_vqa_total_is_spec_value():
    model = build("vqa", Genotype.load(os.path.join(GENOTYPES, "mmnas_vqa.json")))
    assert model.count_params() == 59_880_599
    per_op = {b.op_name: b.count_params() for b in model.backbone.decoder_blocks}
    assert per_op == {"SA": 1_049_600, "GA": 1_049_600, "RSA": 1_050_120, "FFN": 2_100_736}
