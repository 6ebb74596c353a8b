"""Architecture search: genotypes and op pools, the mixed op, the search model and loop.

``MixedOp``, ``SearchModel``, ``cycle_dataset`` and ``Searcher`` are imported lazily: ``config``
imports this package for the genotypes, and the search model imports the task models.
"""

from mmnas_tf.nas.genotype import DECODER_OPS, ENCODER_OPS, Genotype, OpPools, mcan

_LAZY = {
    "MixedOp": "mmnas_tf.nas.mixed_op",
    "SearchModel": "mmnas_tf.nas.search_model",
    "cycle_dataset": "mmnas_tf.nas.search_model",
    "Searcher": "mmnas_tf.nas.searcher",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmnas_tf.nas' has no attribute {name!r}")


__all__ = [
    "DECODER_OPS",
    "ENCODER_OPS",
    "Genotype",
    "MixedOp",
    "OpPools",
    "SearchModel",
    "Searcher",
    "cycle_dataset",
    "mcan",
]
