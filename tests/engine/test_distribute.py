"""Distributed training gives the single-device update: sum-reduced losses, gradients all-reduced
by SUM, clipped by the global norm of the GLOBAL gradient. Devices are configured in subprocesses
(logical CPUs must be set before TensorFlow initialises)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Builds a one-block-per-stream VQA model (dropout 0: replicas would draw different masks than one
# device) and takes one step with SGD(lr=1) on a fixed global batch of 8; saves the weight update.
COMMON = r"""
import sys, json, numpy as np
sys.path.insert(0, "tests/engine")
import conftest as eh
import keras
from mmnas_tf.tasks import get_task
from mmnas_tf.engine.trainer import Trainer
from mmnas_tf.engine.schedules import EpochSchedule

def run(strategy, model_dir, clip, out, task_name="vqa"):
    from mmnas_tf.genotype import Genotype
    genotype = Genotype(("SA",), ("RSA",))
    config = eh.tiny_model_config(task_name).replace(
        dropout=0.0, genotype=genotype, num_encoder_blocks=1, num_decoder_blocks=1
    )
    examples = eh.random_examples(task_name, config, 8)
    task = get_task(task_name)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = task.build_model(config.replace(num_answers=eh.NUM_ANSWERS))
        optimizer = keras.optimizers.SGD(1.0)
    before = [v.numpy() for v in model.trainable_variables]
    trainer = Trainer(task, model, EpochSchedule(1.0, warmup=()), model_dir, 1, optimizer=optimizer,
                      clip_norm=clip, strategy=strategy)
    history = trainer.fit(eh.dataset_fn(examples, 8, shuffle=False))
    if out:
        np.savez(out, loss=history[0]["loss"], grad_norm=history[0]["grad_norm"],
                 *[v.numpy() - b for v, b in zip(model.trainable_variables, before)])
"""

MIRRORED = (
    COMMON
    + r"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
out_dir = sys.argv[1]
from mmnas_tf.engine.distribute import distribute_dataset
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
# replicas of one step get consecutive halves of the same global batch
ds = tf.data.Dataset.range(16).batch(8)
parts = [mirrored.experimental_local_results(x) for x in distribute_dataset(mirrored, ds)]
assert [[p.numpy().tolist() for p in step] for step in parts] == [[[0,1,2,3],[4,5,6,7]], [[8,9,10,11],[12,13,14,15]]], parts
run(tf.distribute.get_strategy(), out_dir + "/single", 1.0, out_dir + "/single.npz")
run(mirrored, out_dir + "/mirrored", 1.0, out_dir + "/mirrored.npz")
# VG normalises by the positives of the GLOBAL batch, which the two halves do not share evenly
run(tf.distribute.get_strategy(), out_dir + "/single_vg", 1.0, out_dir + "/single_vg.npz", "vg")
run(mirrored, out_dir + "/mirrored_vg", 1.0, out_dir + "/mirrored_vg.npz", "vg")
"""
)

WORKER = (
    COMMON
    + r"""
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
out_dir, index = sys.argv[1], int(sys.argv[2])
run(strategy, out_dir + "/multi", 1.0, out_dir + f"/multi{index}.npz")
"""
)

SINGLE = (
    COMMON
    + r"""
run(__import__("tensorflow").distribute.get_strategy(), sys.argv[1] + "/single", 1.0, sys.argv[1] + "/single.npz")
"""
)


def _python(code, *args, env=None, timeout=150):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def _updates(saved):
    return [k for k in saved.files if k not in ("loss", "grad_norm")]


def _assert_same_update(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    assert float(a["grad_norm"]) == pytest.approx(float(b["grad_norm"]), rel=1e-5)
    updates = _updates(a)
    scale = max(np.abs(a[k]).max() for k in updates)
    assert scale > 0
    for k in updates:
        # round-off only: mathematically-zero gradients (softmax biases) differ at ~1e-8 * scale
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-5 * scale, err_msg=k)


def test_mirrored_two_cpus_matches_one_device(tmp_path):
    """The gradient norm (before clipping) shows a wrongly scaled loss or replica sum; the update
    after a clip to norm 1 shows a per-replica clip (direction) or a double/half sum in the
    optimizer (norm 2 or 1/2)."""
    _check(_python(MIRRORED, tmp_path))
    _assert_same_update(tmp_path / "single.npz", tmp_path / "mirrored.npz")
    _assert_same_update(tmp_path / "single_vg.npz", tmp_path / "mirrored_vg.npz")
    single = np.load(tmp_path / "single.npz")
    assert float(single["grad_norm"]) > 2.0  # the clip is active
    update_norm = np.sqrt(sum((single[k] ** 2).sum() for k in _updates(single)))
    assert update_norm == pytest.approx(1.0, rel=1e-4)  # SGD(lr=1) after the clip


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_match_one_process(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = [
        _python(
            WORKER,
            tmp_path,
            i,
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    single = _python(SINGLE, tmp_path)
    try:
        for p in workers + [single]:
            _check(p)
    finally:
        for p in workers + [single]:
            if p.poll() is None:
                p.kill()
    for index in range(2):  # every worker applied the single-process update
        _assert_same_update(tmp_path / "single.npz", tmp_path / f"multi{index}.npz")
    assert not (tmp_path / "multi" / ".worker1").exists()  # non-chief scratch checkpoints removed
    assert (tmp_path / "multi" / "checkpoint").exists()
