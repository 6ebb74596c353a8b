"""The ``python -m mmnas_tf.search`` entry point: a killed run resumes to the same result."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR, DROPOUT_GENERATORS
from mmnas_tf.engine.checkpoint import checkpoint_variables
from mmnas_tf.tasks import get_task


@pytest.fixture(scope="module")
def vqa_data(tmp_path_factory):
    from mmnas_tf.synthbench import benchmark

    out = str(tmp_path_factory.mktemp("vqa_data"))
    benchmark.generate(get_task("vqa"), out, "tiny", 12, 0, "float16", None, 32)
    return out


def command(data_dir, model_dir, generator=DEFAULT_DROPOUT_GENERATOR):
    return [
        sys.executable,
        "-m",
        "mmnas_tf.search",
        "--config=vqa_tiny",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--estimator=gumbel",
        "--warmup_epochs=1",
        "--search_epochs=1",
        "--batch_size=4",
        "--weight_steps=2",
        "--checkpoint_every_steps=1",
        "--tensorboard=false",
        "--override=search_model.num_encoder_blocks=1;search_model.num_decoder_blocks=1",
        f"--override=search_model.dropout_generator={generator}",
    ]


def start(nas, data_dir, model_dir, generator=DEFAULT_DROPOUT_GENERATOR):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": nas.REPO}
    return subprocess.Popen(
        command(data_dir, model_dir, generator),
        cwd=nas.REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=240):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    return out


def final_state(model_dir):
    values = checkpoint_variables(model_dir)
    keys = [k for k in values if k.startswith(("model/", "weight_optimizer/", "arch_optimizer/"))]
    return {k: values[k] for k in keys}


def read(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_a_killed_search_resumes_to_the_same_genotype_and_weights(
    nas, vqa_data, tmp_path, generator
):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = start(nas, vqa_data, straight, generator)
    victim = start(nas, vqa_data, killed, generator)
    # a hang guard only: a search that ends without a checkpoint fails on poll() below, and a
    # loaded machine may take minutes to start two searches (180 s failed at load above 15)
    deadline = time.time() + 1200
    # a checkpoint counts once the manager's state file names it (its files are written first)
    while tf.train.latest_checkpoint(str(killed)) is None:
        assert victim.poll() is None, victim.communicate()[0][-3000:]
        assert time.time() < deadline, "no checkpoint appeared in 20 minutes"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    # killed inside the first epoch: no epoch has ended yet
    assert not (killed / "genotypes.json").exists()
    out = finish(start(nas, vqa_data, killed, generator))
    assert "resumed from" in out
    # the per-epoch evaluation reads every D_a example (none dropped in a partial batch)
    counts = [int(n) for n in re.findall(r"\((\d+) examples\)", out)]
    assert counts and min(counts) > 0, out[-2000:]
    finish(reference)

    assert read(killed / "genotypes.json") == read(straight / "genotypes.json")
    assert read(killed / "theta_history.json") == read(straight / "theta_history.json")
    a, b = final_state(straight), final_state(killed)
    assert sorted(a) == sorted(b)
    # weights, theta (via the optimizers that track them), the sampler state
    assert any(k.startswith("arch_optimizer/_trainable_variables/") for k in a)
    assert sum(k.startswith("weight_optimizer/_trainable_variables/") for k in a) > 20
    assert any(k.startswith("model/sample_counter") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_itm_search_mines_hard_negatives_at_each_epoch_start(tmp_path, capsys, graph_rewrites_off):
    """ITM search: negatives are mined by the argmax architecture before every epoch, added to
    every D_m / D_a / evaluation batch, and checkpointed with the search."""
    from mmnas_tf import search
    from mmnas_tf.data.feature_store import FeatureStore
    from mmnas_tf.synthbench import benchmark

    data = str(tmp_path / "itm")
    benchmark.generate(get_task("itm"), data, "tiny", 12, 0, "float16", None, 32)
    model_dir = tmp_path / "search"
    state = search.main(
        [
            "search",
            "--config=itm_tiny",
            f"--data_dir={data}",
            f"--model_dir={model_dir}",
            "--estimator=gumbel",
            "--warmup_epochs=1",
            "--search_epochs=1",
            "--batch_size=4",
            "--weight_steps=2",
            "--tensorboard=false",
            "--override=search_model.num_encoder_blocks=1;search_model.num_decoder_blocks=1;"
            "train.hard_negatives.num_candidates=4;train.hard_negatives.top_k=2",
        ]
    )
    out = capsys.readouterr().out
    assert out.count("mining hard negatives for epoch") == 2
    assert sorted(state["history"]) == ["epoch1", "epoch2"]
    last = state["history"]["epoch2"]
    assert last["phase"] == "search" and np.isfinite(last["arch_loss"])
    assert np.isfinite(last["eval"]["loss"]) and last["eval"]["examples"] > 0
    values = checkpoint_variables(str(model_dir))
    negatives = [v for k, v in values.items() if k.startswith("neg_caption")]
    store = FeatureStore(data, "train", 32, 14)
    assert len(negatives) == 1 and negatives[0].shape == (store.num_captions,)
    owner = np.asarray(store.caption_image)[negatives[0]]  # a negative is never the own image's
    assert not np.any(owner == np.asarray(store.caption_image))
    assert read(model_dir / "genotypes.json")["epoch2"]["dec"]
