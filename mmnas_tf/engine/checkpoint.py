"""Checkpoints that let a killed run continue exactly where it stopped (train and search).

One ``tf.train.CheckpointManager`` holds: model weights, optimizer(s), the dropout RNG states,
epoch/step counters, arbitrary JSON state (a string variable, so it is written
atomically with the checkpoint it belongs to) and, mid-epoch, the tf.data iterator position.

Model weights are saved as a flat ``{canonical path: variable}`` dict (:func:`model_variables`),
not through the Keras object graph: ``tf.train.Checkpoint(model=keras_model)`` silently leaves out
variables of Keras 3 models (the attention projections of every block, seen with TF 2.21 / Keras
3.15) and never includes the seed generators. Canonical paths drop the instance names Keras
uniquifies (``vqa_1``, ``m_mnas_backbone_2``), so any process that builds the same model restores it.

A run restarted with the same command restores the latest checkpoint, rebuilds the iterator of the
epoch it was in and restores its position: it then sees the same batches, dropout masks and
learning rates as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

#: Name of the model in every checkpoint this project writes (evaluate/export restore just it).
MODEL_KEY = "model"


_BACKBONE = re.compile(r"^m_mnas_backbone(_\d+)?$")
_SEED_STATE = "seed_generator_state"


def canonical_path(path: str) -> str:
    """A variable path without the instance-specific model names (``vqa_1/m_mnas_backbone_2/x``
    -> ``backbone/x``), equal for every model of the same structure."""
    parts = path.split("/")[1:]  # drop the outer model's own name
    return "/".join("backbone" if _BACKBONE.match(p) else p for p in parts)


def model_variables(model: keras.Model) -> dict[str, tf.Variable]:
    """{canonical path: tf.Variable} of every model variable but the seed-generator states (whose
    names depend on how many layers the process built before; see :func:`seed_generator_states`)."""
    out = {}
    for v in model.variables:
        if v.path.endswith(_SEED_STATE):
            continue
        key = canonical_path(v.path)
        if key in out:
            raise ValueError(f"two variables of {model.name} share the path {key!r}")
        out[key] = v.value if isinstance(v, keras.Variable) else v
    return out


def seed_generator_states(model: keras.Model) -> list[tf.Variable]:
    """The state variables of every Keras seed generator in ``model`` (dropout RNGs), in a
    deterministic order (the model's variable order)."""
    return [
        v.value if isinstance(v, keras.Variable) else v
        for v in model.non_trainable_variables
        if v.path.endswith(_SEED_STATE)
    ]


#: The checkpoint key of a run's ``TrainingState`` (:class:`Checkpointer`).
STATE_KEY = "state"


def saved_json_state(directory: str) -> dict | None:
    """``TrainingState.json`` as the latest checkpoint in ``directory`` saved it, read from the
    file without building the run; None when ``directory`` holds no checkpoint."""
    path = tf.train.latest_checkpoint(directory)
    if path is None:
        return None
    raw = tf.train.load_checkpoint(path).get_tensor(f"{STATE_KEY}/_json/.ATTRIBUTES/VARIABLE_VALUE")
    return json.loads(raw or "{}")


class TrainingState(tf.Module):
    """Counters and JSON state of a run, as variables (so checkpoints carry them).

    Attributes:
      epoch: int64 variable, epochs completed.
      step: int64 variable, optimizer steps taken (weight steps in a search).
      step_in_epoch: int64 variable, batches consumed in the current epoch (0 = at a boundary).
      json: the JSON state as a dict (property; e.g. the genotype history of a search).
    """

    def __init__(self):
        super().__init__(name="training_state")
        # Created outside any distribution strategy: plain variables, saved once by the chief.
        with tf.init_scope():
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.step_in_epoch = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="step_in_epoch"
            )
            self._json = tf.Variable("{}", dtype=tf.string, trainable=False, name="json")

    @property
    def json(self) -> dict:
        return json.loads(self._json.numpy().decode("utf-8"))

    @json.setter
    def json(self, value: Mapping[str, Any]) -> None:
        self._json.assign(json.dumps(value, sort_keys=True))

    def counters(self) -> dict[str, int]:
        return {
            "epoch": int(self.epoch.numpy()),
            "step": int(self.step.numpy()),
            "step_in_epoch": int(self.step_in_epoch.numpy()),
        }


class Checkpointer:
    """Saves and restores everything a run needs to continue bit-for-bit.

    Args:
      directory: str, where checkpoints go (``ckpt-<step>`` files and the ``checkpoint`` index).
      model: the Keras model (its variables under ``"model"``, see :func:`model_variables`; its
        dropout RNG states under ``"rng"``).
      max_to_keep: int, checkpoints kept.
      state: a ``TrainingState`` (one is made if omitted).
      is_chief: bool; under multi-worker training every worker must call ``save`` (it runs
        collectives) but only the chief writes to ``directory``; the others write to a scratch
        folder that is deleted right away.
      **trackables: more objects to save, e.g. ``optimizer=...``, ``arch_optimizer=...``,
        ``negatives=...`` (anything ``tf.train.Checkpoint`` accepts).

    Example::

        ckpt = Checkpointer(model_dir, model, optimizer=opt)
        ckpt.restore()                 # None on a fresh start
        ... ckpt.save(iterator=it)     # mid-epoch: the iterator position is saved too
        ckpt.restore_iterator(it)      # after rebuilding the epoch's iterator
    """

    def __init__(
        self,
        directory: str,
        model: keras.Model | None = None,
        max_to_keep: int = 3,
        state: TrainingState | None = None,
        is_chief: bool = True,
        worker_id: int = 0,
        **trackables: Any,
    ):
        self.directory = directory
        self.state = state or TrainingState()
        self.is_chief = is_chief
        objects = {**trackables, STATE_KEY: self.state}
        if model is not None:
            objects[MODEL_KEY] = model_variables(model)
            objects["rng"] = seed_generator_states(model)
        self._root = tf.train.Checkpoint(**objects)
        write_dir = directory if is_chief else os.path.join(directory, f".worker{worker_id}")
        self._write_dir = write_dir
        self.manager = tf.train.CheckpointManager(self._root, write_dir, max_to_keep=max_to_keep)
        self.restored_path: str | None = None

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def save(self, iterator: Any = None) -> str:
        """Writes a checkpoint numbered by the step counter. Pass the epoch's iterator when saving
        mid-epoch; at an epoch boundary (``step_in_epoch == 0``) none is needed."""
        if iterator is not None:
            self._root.iterator = iterator
        elif hasattr(self._root, "iterator"):
            del self._root.iterator
        number = int(self.state.step.numpy())
        try:
            path = self.manager.save(checkpoint_number=number)
        except BaseException:  # a full disk, Ctrl-C: keep only the checkpoints that are whole
            self._remove_partial(number)
            raise
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
        return path

    def _remove_partial(self, number: int) -> None:
        """Deletes what an interrupted write of checkpoint ``number`` left: its ``ckpt-N_temp/``
        folder, its files unless an earlier save of the same number is registered, and temporary
        copies of the ``checkpoint`` index. The checkpoints registered before stay."""
        prefix = os.path.join(self._write_dir, f"ckpt-{number}")
        leftovers = tf.io.gfile.glob(prefix + "_temp*") + tf.io.gfile.glob(
            os.path.join(self._write_dir, "checkpoint.tmp*")
        )
        if prefix not in self.manager.checkpoints:
            leftovers += tf.io.gfile.glob(prefix + ".index") + tf.io.gfile.glob(prefix + ".data-*")
        for path in leftovers:
            try:
                if tf.io.gfile.isdir(path):
                    tf.io.gfile.rmtree(path)
                else:
                    tf.io.gfile.remove(path)
            except tf.errors.OpError:
                pass  # already gone; the error being raised is the one to report

    def restore(self, path: str | None = None) -> str | None:
        """Restores ``path`` (default: the latest in ``directory``) except the iterator, which the
        caller restores with :meth:`restore_iterator` once it has rebuilt the epoch's dataset.
        Returns the restored path, or None when there is nothing to restore."""
        path = path or self.latest
        if path is None:
            return None
        status = self._root.restore(path)
        status.expect_partial()  # the iterator is restored separately
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            raise ValueError(
                f"{path} was written by a different run (other model, optimizer or sizes); use a "
                f"new model directory or the original command. Details: {str(e)[:400]}"
            ) from None
        self.restored_path = path
        return path

    def restore_iterator(self, iterator: Any) -> bool:
        """Moves ``iterator`` to the position saved in the restored checkpoint (if it has one)."""
        if self.restored_path is None:
            return False
        names = {name for name, _ in tf.train.list_variables(self.restored_path)}
        if not any(n.startswith("iterator/") for n in names):
            return False
        tf.train.Checkpoint(iterator=iterator).restore(self.restored_path).expect_partial()
        return True


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint)."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in directory {path}")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"checkpoint {path!r} not found (give a directory or a prefix such as DIR/ckpt-100)"
        )
    return path


def restore_model(model: keras.Model, path: str) -> str:
    """Restores only the model weights from a checkpoint written by :class:`Checkpointer`
    (directory or prefix). The checkpoint may hold more (e.g. a search model's own variables);
    raises if one of ``model``'s weights is missing from it."""
    path = resolve_checkpoint(path)
    wanted = model_variables(model)
    status = tf.train.Checkpoint(**{MODEL_KEY: wanted}).restore(path)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(
            f"{path} lacks weights of this model (another architecture or size?): {str(e)[:500]}"
        ) from None
    return path


def checkpoint_variables(path: str) -> dict[str, Any]:
    """{checkpoint key: numpy value} of every saved tensor (for weight inheritance and tests)."""
    path = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(path)
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }
