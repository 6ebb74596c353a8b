"""Loads RefCOCO ``refs(*).p`` pickles without executing code: plain containers only."""

from __future__ import annotations

import os
import pickle
from typing import Any


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: this pickle may only hold lists, dicts, str and numbers"
        )


def load_plain_pickle(path: str) -> Any:
    """Unpickles ``path`` allowing no globals (so no classes, functions or ``__reduce__`` tricks).

    RefCOCO's refs pickles were written by Python 2: byte strings are decoded as latin-1.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"RefCOCO refs pickle not found: {path}")
    with open(path, "rb") as f:
        try:
            return _PlainUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{path}: {e}") from e
        except (EOFError, ValueError, IndexError, UnicodeDecodeError) as e:
            raise pickle.UnpicklingError(
                f"{path}: truncated or not a pickle ({type(e).__name__}: {e}); expected the "
                "RefCOCO refs(unc).p / refs(umd).p list of refs"
            ) from e
