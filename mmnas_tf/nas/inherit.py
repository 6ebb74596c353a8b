"""Inheriting searched weights: supernet slot i holds one candidate per op, named by the op;
the fixed network's slot i is that op alone. So a fixed weight
``<backbone>/encoder_3_FFN/inner/kernel`` comes from ``<backbone>/encoder_3_mixed/FFN/inner/kernel``;
every other weight (embedding, LSTM, projections, relation embedding, heads) has the same path.

Only the weights are inherited (not theta, not optimizer state); shapes must match, i.e. the
retrain model must have the search model's sizes (the paper retrains at d=512 from scratch after a
d=256 search, which has nothing to inherit).
"""

from __future__ import annotations

import re

import keras

from mmnas_tf.engine.checkpoint import canonical_path, model_variables

_FIXED_SLOT = re.compile(r"^(encoder|decoder)_(\d+)_(SA|GA|RSA|FFN)$")


def supernet_path(fixed_path: str) -> str:
    """The supernet variable path holding the weights of a fixed model's variable (canonical)."""
    parts = canonical_path(fixed_path).split("/")
    out = []
    for p in parts:
        match = _FIXED_SLOT.match(p)
        out += [f"{match.group(1)}_{match.group(2)}_mixed", match.group(3)] if match else [p]
    return "/".join(out)


def inherit_from_supernet(fixed: keras.Model, supernet: keras.Model) -> list[str]:
    """Copies into ``fixed`` the weights of the chosen candidate of every supernet slot (and all
    shared weights); returns the copied canonical paths. Raises on a missing or misshaped source."""
    source = model_variables(supernet)
    copied = []
    for v in fixed.weights:
        if v.path.endswith("seed_generator_state"):
            continue
        key = supernet_path(v.path)
        if key not in source:
            raise ValueError(f"the supernet has no weight {key!r} (for {v.path})")
        if tuple(source[key].shape) != tuple(v.shape):
            raise ValueError(
                f"shape mismatch for {key}: supernet {tuple(source[key].shape)} vs retrain "
                f"{tuple(v.shape)}; --init_from_supernet needs the search model's sizes"
            )
        v.assign(source[key].numpy())
        copied.append(key)
    return copied
