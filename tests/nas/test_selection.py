"""The selection step of a uniform search: candidates scored with inherited weights, best kept."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas import selection
from mmnas_tf.tasks import get_task

POOLS = [
    ("encoder", 0, ("SA",)),
    ("decoder", 0, ("SA", "GA", "RSA", "FFN")),
    ("decoder", 1, ("SA", "GA", "RSA", "FFN")),
]


def test_genotype_of_reads_one_op_per_slot():
    assert str(selection.genotype_of(POOLS, [0, 2, 1])) == "enc[SA] dec[RSA GA]"


def test_evolve_evaluates_each_genotype_once_and_finds_the_best():
    calls = []

    def score(genotype):  # the number of RSA blocks, GA first scores a bonus
        calls.append(str(genotype))
        value = genotype.decoder.count("RSA") + 0.5 * (genotype.decoder[0] == "GA")
        return {"score": value}

    found = selection.evolve(POOLS, score, population=4, generations=6, parents=2, seed=0)
    assert len(calls) == len(set(calls)) == len(found)
    best = selection.best_candidate(found)
    assert best["score"] == max(c["score"] for c in found)
    assert best["genotype"] == "enc[SA] dec[RSA RSA]"  # 2.0: the optimum of the 16 genotypes
    assert {c["generation"] for c in found} >= {0, 1}


def test_random_sampling_covers_a_small_space_without_repeats():
    found = selection.evolve(POOLS, lambda g: {"score": 0.0}, population=50, generations=0)
    assert len(found) == 16  # the whole space, each once, though 50 were asked for
    assert len({c["genotype"] for c in found}) == 16


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="population >= 1"):
        selection.evolve(POOLS, lambda g: {"score": 0.0}, population=0)
    with pytest.raises(ValueError, match="no candidate"):
        selection.best_candidate([])


def test_select_scores_with_inherited_weights_and_keeps_the_best(tmp_path, nas):
    search = nas.build_search_model("vqa", estimator="uniform")
    batches = list(nas.random_dataset(16, 8, seed=3))
    record = {
        "genotype": search.genotype().to_original(),
        "theta": search.theta_table(),
        "eval": {},
    }
    status = {"history": {"epoch1": record}}
    out = selection.select_and_write(
        search,
        batches,
        str(tmp_path),
        status,
        population=6,
        generations=1,
        parents=2,
        seed=1,
    )
    result = out["selection"]
    candidates = result["candidates"]
    assert len(candidates) >= 6
    # every candidate's score is its own inherited-weight D_a accuracy: recompute two of them
    evaluator = selection.ArchEvaluator(search, batches)
    for c in candidates[:2]:
        genotype = selection.genotype_of(selection.slot_pools(search), c["choice"])
        assert evaluator(genotype)["score"] == pytest.approx(c["score"], abs=1e-6)
        arch = search.arch_of(genotype)
        loss = (
            sum(
                float(search.task.compute_loss(search.task_model, i, t, training=False, arch=arch))
                for i, t in batches
            )
            / 16
        )
        assert c["loss"] == pytest.approx(loss, rel=1e-4)
    best = max(candidates, key=lambda c: c["score"])
    assert result["genotype"] == best["genotype"]
    written = json.load(open(tmp_path / selection.SELECTION_FILE))
    assert written["genotype"] == best["genotype"]
    assert [c["genotype"] for c in written["candidates"]] == [c["genotype"] for c in candidates]
    # the history (and genotypes.json) ends with the selected genotype
    on_disk = Genotype.load(str(tmp_path / "genotypes.json"))
    assert str(Genotype(on_disk.encoder, on_disk.decoder)) == best["genotype"]
    assert out["history"]["epoch1"]["genotype"] == written["selected"]


@pytest.mark.slow
def test_uniform_search_driver_writes_the_selection(tmp_path):
    from mmnas_tf.synthbench import benchmark

    data = str(tmp_path / "data")
    benchmark.generate(get_task("vqa"), data, "tiny", 12, 0, "float16", None, 32)
    model_dir = str(tmp_path / "run")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [
        sys.executable,
        "-m",
        "mmnas_tf.search",
        "--config=vqa_tiny",
        f"--data_dir={data}",
        f"--model_dir={model_dir}",
        "--estimator=uniform",
        "--warmup_epochs=1",
        "--search_epochs=1",
        "--batch_size=4",
        "--weight_steps=2",
        "--tensorboard=false",
        "--override=search_model.num_encoder_blocks=1;search_model.num_decoder_blocks=2",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": repo}
    run = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    written = json.load(open(os.path.join(model_dir, selection.SELECTION_FILE)))
    scores = [c["score"] for c in written["candidates"]]
    assert written["best"]["score"] == max(scores) and np.isfinite(scores).all()
    final = Genotype.load(os.path.join(model_dir, "genotypes.json"))
    assert str(Genotype(final.encoder, final.decoder)) == written["genotype"]
