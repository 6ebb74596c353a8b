"""Import an original MMnas checkpoint + architecture file into a Keras model."""

from __future__ import annotations

import keras

from mmnas_tf.compat.original import detect_task, infer_config, load_original_weights
from mmnas_tf.compat.torch_checkpoint import load_state_dict
from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import Genotype
from mmnas_tf.tasks import get_task


def import_original(
    task: str,
    checkpoint: str,
    arch: str | Genotype | dict,
    arch_epoch: str | None = None,
    **config_overrides,
) -> tuple[keras.Model, ModelConfig]:
    """Builds the Keras model of an original checkpoint and loads its weights.

    Args:
      task: a registered task name (vqa, itm, vg); must match the checkpoint's head.
      checkpoint: path of the original ``.pkl`` (read safely, no torch needed) or an ``.npz``
        of the same state dict.
      arch: the original ``arch/*.json`` (or our genotype JSON), a Genotype or its dict.
      arch_epoch: which ``epochK`` of the architecture file (default: the last).
      config_overrides: sizes the tensors cannot tell (``max_tokens``, ``max_regions``).

    Returns:
      (model, config). Every size is inferred from the tensors; mismatches raise ValueError.
    """
    task_obj = get_task(task)
    state_dict = load_state_dict(checkpoint)
    if isinstance(arch, Genotype):
        genotype = arch
    elif isinstance(arch, dict):
        genotype = Genotype.from_dict(arch, arch_epoch)
    else:
        genotype = Genotype.load(arch, arch_epoch)
    found = detect_task(state_dict)
    if found != task:
        raise ValueError(f"{checkpoint} holds a {found!r} model, not a {task!r} one")
    config = infer_config(state_dict, genotype, task, **config_overrides)
    model = task_obj.build_model(config)
    load_original_weights(model, state_dict, task)
    return model, config
