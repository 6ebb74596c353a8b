"""The named choices of the search (pure Python: the experiment configs and the flags read them
without importing TensorFlow)."""

from __future__ import annotations

#: theta gradient estimators (``nas.estimators``).
ESTIMATORS = ("gumbel", "proxyless", "uniform")
#: warm-up sampling: uniform (paper) or from a prior-biased theta (original).
WARMUP_MODES = ("uniform", "prior")
#: what a gumbel theta step computes: every candidate, or only the sampled one.
ARCH_PATHS = ("all", "sampled")


def check_choice(kind: str, value: str, accepted: tuple[str, ...]) -> str:
    """Returns ``value`` or raises ValueError naming the accepted values."""
    if value not in accepted:
        raise ValueError(f"unknown {kind} {value!r}; accepted: {', '.join(accepted)}")
    return value
