"""The VQA supernet at d=256 has the original's parameter count (reference measurements)."""

import json
import os

import numpy as np
import pytest

from mmnas_tf.tasks import get_task

#: The original's search network also holds ``linear_x_rel = nn.Linear(3, REL_SIZE=64)``, a text
#: relation embedding that no encoder op reads (hygr_vqa.py); our supernet has no such layer.
ORIGINAL_UNUSED_TEXT_RELATION = 3 * 64 + 64


@pytest.mark.slow
def test_vqa_supernet_d256_matches_the_original_count(nas):
    path = os.path.join(nas.REPO, "tests", "fixtures", "reference", "mmnas_measurements.json")
    with open(path) as f:
        reference = json.load(f)["param_counts"]["supernet_vqa_hidden256"]
    task = get_task("vqa")
    # the original search config: HSIZE 256, 4 heads (head size 64), ATTFLAT_MLP_SIZE 512,
    # ATTFLAT_OUT_SIZE 2 * HSIZE, 20,573 words, 3,129 answers
    config = task.model_config(
        hidden_size=256, num_heads=4, ffn_size=1024, pool_mlp_size=512, pool_output_size=512,
        genotype=None,
    )  # fmt: skip
    model = task.build_model(config, 3129)
    theta = model.backbone.architecture_variables()
    theta_ids = {id(v) for v in theta}
    net = sum(int(np.prod(v.shape)) for v in model.weights if id(v) not in theta_ids)
    assert net == reference["net_weights"] - ORIGINAL_UNUSED_TEXT_RELATION
    assert sum(int(np.prod(v.shape)) for v in theta) == reference["alpha_prob"] == 12 * 2 + 18 * 4
