"""The named choices of the search (pure Python: the experiment configs and the flags read them
without importing TensorFlow)."""

from __future__ import annotations

#: Names of the theta gradient estimators. The built-in ones are listed here so that configs and
#: flags know them without importing TensorFlow; their classes live in ``nas.estimators``, and
#: ``nas.estimators.register_estimator`` adds the name of any other estimator class it registers
#: (the list is shared, so a check made after the registration accepts it).
ESTIMATORS: list[str] = ["gumbel", "proxyless", "uniform", "gumbel_selection"]
#: warm-up sampling: uniform (paper) or from a prior-biased theta (original).
WARMUP_MODES = ("uniform", "prior")
#: what a gumbel theta step computes: every candidate, or only the sampled one.
ARCH_PATHS = ("all", "sampled")


def add_estimator_name(name: str) -> None:
    """Makes ``name`` an accepted estimator (``nas.estimators.register_estimator`` calls it)."""
    if name not in ESTIMATORS:
        ESTIMATORS.append(name)


def check_choice(kind: str, value: str, accepted) -> str:
    """Returns ``value`` or raises ValueError naming the accepted values."""
    if value not in accepted:
        raise ValueError(f"unknown {kind} {value!r}; accepted: {', '.join(accepted)}")
    return value
