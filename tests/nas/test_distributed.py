"""Distributed search steps equal single-device ones (subprocesses: devices and clusters must be set
before TensorFlow initialises)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

#: Runs two search cycles on a fixed global batch with the strategy named by argv[1], per estimator
#: of argv[3] (comma-separated), and writes the weights and theta to argv[2] % estimator (npz).
#: M/N 1/2, dropout off, SGD for both partitions: Adam would hide a wrong gradient scale and
#: amplify the float noise of parameters whose gradient is zero analytically (pooling biases).
SCRIPT = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

mode, out, estimators = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from mmnas_tf.engine.distribute import distribute_dataset
from mmnas_tf.nas.search_model import SearchModel, cycle_dataset
from mmnas_tf.tasks import get_task

if mode == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
elif mode == "multi_worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = tf.distribute.get_strategy()
sizes = json.loads(os.environ["TINY"])
task = get_task("vqa")
r = np.random.RandomState(0)
n, m, k, f = 8, sizes["max_tokens"], sizes["max_regions"], sizes["feature_size"]
ids = r.randint(1, sizes["vocab_size"], (n, m)).astype("int32")
xy = r.rand(n, k, 2).astype("float32") * 40
inputs = {"text_ids": ids, "image_features": r.rand(n, k, f).astype("float32"),
          "boxes": np.concatenate([xy, xy + 10], -1), "image_size": np.full((n, 2), 60.0, "float32")}
targets = {"answer_scores": (r.rand(n, 10) > 0.7).astype("float32")}
data = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(4).repeat()
for estimator in estimators:
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = task.build_model(task.model_config(**sizes), 10)
        search = SearchModel(task, model, estimator=estimator, weight_steps=2, seed=5)
        search.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.5), jit_compile=False)
    search.set_state("search", temperature=2.0)
    iterator = iter(distribute_dataset(strategy, cycle_dataset(data, data, 2)))
    train = search.make_train_function()
    for _ in range(2):
        logs = train(iterator)
    np.savez(out % estimator, theta=np.concatenate([v.numpy() for v in search.arch_variables]),
             **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    print("done", estimator, {k: float(v) for k, v in logs.items()})
"""


def tiny_sizes(nas):
    sizes = {k: v for k, v in nas.TINY.items() if k != "genotype"}
    return {**sizes, "num_encoder_blocks": 1, "num_decoder_blocks": 2}


def launch(nas, tmp_path, mode, name, estimators, env=None):
    script = tmp_path / "run_search.py"
    script.write_text(SCRIPT)
    full_env = {
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": nas.REPO,
        "TINY": json.dumps(tiny_sizes(nas)), **(env or {}),
    }  # fmt: skip
    out = str(tmp_path / f"{name}_%s.npz")
    process = subprocess.Popen(
        [sys.executable, str(script), mode, out, ",".join(estimators)], cwd=nas.REPO,
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return process, out


def wait(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


@pytest.fixture(scope="module")
def runs(nas, tmp_path_factory):
    """One process per setting, all started at once: single device (reference), MirroredStrategy
    over 2 logical CPUs, and 2 MultiWorkerMirroredStrategy workers on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("distributed")
    cluster = {"worker": [f"127.0.0.1:{nas.free_port()}", f"127.0.0.1:{nas.free_port()}"]}
    started = {
        "single": launch(nas, tmp, "single", "single", ESTIMATORS),
        "mirrored": launch(nas, tmp, "mirrored", "mirrored", ESTIMATORS),
    }
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {"TF_CONFIG": tf_config}
        started[f"worker{index}"] = launch(
            nas, tmp, "multi_worker", f"worker{index}", ["proxyless"], env
        )
    for process, _ in started.values():
        wait(process)
    return {name: out for name, (_, out) in started.items()}


ESTIMATORS = ("proxyless", "gumbel")


def assert_same(a_path, b_path):
    with np.load(a_path) as a, np.load(b_path) as b:
        assert sorted(a.files) == sorted(b.files)
        assert np.abs(a["theta"]).max() > 1e-3  # the runs did move theta
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_mirrored_two_devices_matches_one_device(runs, estimator):
    assert_same(runs["single"] % estimator, runs["mirrored"] % estimator)


@pytest.mark.slow
def test_multi_worker_two_processes_match_one_process(runs):
    assert_same(runs["single"] % "proxyless", runs["worker0"] % "proxyless")
    assert_same(runs["worker0"] % "proxyless", runs["worker1"] % "proxyless")
