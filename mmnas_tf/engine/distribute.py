"""Distribution strategies and exact global-batch splitting.

The original sums its losses over the batch. Under a strategy every replica sums the loss of its
slice; the trainer all-reduces (SUM) the replica gradients, so the update equals the single-device
update on the whole global batch (see ``Trainer``). For that the replicas of one step must together
see exactly one global batch: :func:`distribute_dataset` slices each global batch into per-replica
parts instead of relying on auto-sharding (which would give workers different batches).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def replicas_in_sync() -> int:
    """Replicas of the running distributed step (1 on one device or outside a replica context)."""
    ctx = tf.distribute.get_replica_context()
    return ctx.num_replicas_in_sync if ctx is not None else 1


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local devices) or ``multi_worker``
    (``MultiWorkerMirroredStrategy``, cluster from the ``TF_CONFIG`` environment variable)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; accepted: {STRATEGIES}")


def worker_info() -> tuple[int, bool]:
    """(worker index, is chief) from ``TF_CONFIG`` (0, True without one)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
    return index, is_chief


def needs_distribution(strategy: tf.distribute.Strategy) -> bool:
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )


def check_jit_compile(jit_compile: bool, strategy: tf.distribute.Strategy) -> None:
    """The one rule for XLA under a distribution strategy, the same for training and search
    (``Trainer``, ``Searcher`` and their drivers; evaluation runs on one device without XLA):
    refused, naming the flags, since XLA with MirroredStrategy fails on CPU. A fallback to graph
    mode would run a slower step than the one asked for without saying so in the results."""
    if jit_compile and needs_distribution(strategy):
        raise ValueError(
            f"train.jit_compile=true (--jit_compile) is refused with a distribution strategy "
            f"({type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas): XLA with "
            "MirroredStrategy fails on CPU; drop --jit_compile (or "
            "--override=train.jit_compile=false) or run with --strategy=default"
        )


def distribute_dataset(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """``dataset`` of GLOBAL batches -> what ``strategy.run`` consumes: replica r of a step gets
    rows ``[r * b, (r + 1) * b)`` of the same global batch (b = global batch / replicas). Each
    worker reads the whole dataset and keeps its replicas' rows, so the data order does not depend
    on sharding. Batches must be divisible by the replica count."""
    if not needs_distribution(strategy):
        return dataset
    replicas = strategy.num_replicas_in_sync

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def split(*element):
            def part(t):
                b = tf.shape(t)[0]
                tf.debugging.assert_equal(
                    b % replicas, 0, message="global batch not divisible by the replica count"
                )
                shaped = tf.reshape(t, tf.concat([[replicas, b // replicas], tf.shape(t)[1:]], 0))
                return shaped[first : first + local]

            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(part, element))

        ds = dataset.flat_map(split)
        return ds.map(lambda *e: e[0] if len(e) == 1 else e)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(per_worker, options)
