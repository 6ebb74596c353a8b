"""Command lines of the entry points, as tests run them in a subprocess."""

from __future__ import annotations

import sys


def entry_point(name: str, *flags: str) -> list[str]:
    """``python -m mmnas_tf.<name> <flags>`` with this interpreter."""
    return [sys.executable, "-m", f"mmnas_tf.{name}", *flags]
