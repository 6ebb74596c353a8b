"""Compatibility with the original PyTorch MMnas: checkpoints and architecture files."""

from mmnas_tf.compat.importer import import_original
from mmnas_tf.compat.original import detect_task, infer_config, load_original_weights
from mmnas_tf.compat.torch_checkpoint import load_state_dict, read_torch_checkpoint

__all__ = [
    "detect_task",
    "import_original",
    "infer_config",
    "load_original_weights",
    "load_state_dict",
    "read_torch_checkpoint",
]
