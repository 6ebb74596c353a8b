"""The optional drawing libraries, imported on first use with an error that names the extra."""

from __future__ import annotations

import importlib

EXTRA_HINT = 'pip install "mmnas-tf[viz]"'


def require(module: str):
    """Imports ``module`` (``matplotlib`` or ``PIL`` and their submodules) or raises ImportError
    saying which extra brings it."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"drawing needs {module.split('.')[0]} (matplotlib and Pillow come with the 'viz' "
            f"extra): {EXTRA_HINT}"
        ) from e
    if module == "matplotlib":
        mod.use("Agg")  # files only: no display, no GUI backend probing
    return mod


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    require("matplotlib")
    return require("matplotlib.pyplot")
