"""Architecture-gradient estimators and the seeded sampling they share (docs/original_behaviour.md,
"Search").

Every sample is drawn with a stateless RNG from ``(seed, counter)``, both variables of the search
model: the same counter gives the same architecture on every replica and worker, and a restored
checkpoint continues the same sequence of architectures.

- ``gumbel`` (``SearchModel``'s default; the search driver's default recipe is ``gumbel_selection``, below): Gumbel-softmax straight-through. Forward: the hard one-hot of
  ``argmax(theta + G)`` (in a weight step only that op runs); backward: the gradient of
  ``softmax((theta + G) / tau)``, i.e. ``dL/dtheta_i = s_i (a_i - sum_j s_j a_j) / tau`` with
  ``a_j = <o_j, dL/dout>``, which needs every candidate's output ``o_j`` (the theta step computes
  them all unless the search model is told ``arch_paths="sampled"``).
- ``proxyless``: the original's binary gates. Sample ``k ~ softmax(theta)``, gate = one-hot(k)
  forward; every candidate runs (non-sampled outputs stop-gradient'ed) so ``dL/dg_j =
  <o_j, dL/dout>``, and ``gate = onehot + p - stop_gradient(p)`` turns that into
  ``dL/dtheta_i = sum_j dL/dg_j p_j (delta_ij - p_i)``.
- ``uniform``: uniform random paths, weights only (SPOS-style baseline; theta never moves), then
  the selection step of ``nas.selection``.
- ``gumbel_selection``: ``gumbel``'s theta search, then a selection step among the argmax and
  genotypes drawn from the final softmax(theta).

Each estimator is one :class:`Estimator` subclass registered with :func:`register_estimator`; the
search model, the search driver, the flags and the benchmarks read the registry.
"""

from __future__ import annotations

import tensorflow as tf

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas.choices import (
    ARCH_PATHS,
    ESTIMATORS,
    WARMUP_MODES,
    add_estimator_name,
    check_choice,
)

__all__ = [
    "ARCH_PATHS",
    "ESTIMATORS",
    "WARMUP_MODES",
    "Estimator",
    "check_choice",
    "estimator_names",
    "get_estimator",
    "gumbel_noise",
    "original_prior",
    "prior_logits",
    "register_estimator",
    "sample_indices",
    "straight_through_gates",
]


def gumbel_noise(seed, num_slots: int, width: int) -> tf.Tensor:
    """Standard Gumbel noise [num_slots, width] from a stateless seed (int64 [2])."""
    u = tf.random.stateless_uniform(
        [num_slots, width], seed=seed, minval=1e-10, maxval=1.0, dtype=tf.float32
    )
    return -tf.math.log(-tf.math.log(u))


def sample_indices(logits: list, noise: tf.Tensor, uniform) -> list[tf.Tensor]:
    """One op index per slot: ``argmax(l + G)`` (a sample of softmax(l), Gumbel-max trick) with
    ``l = theta``, or ``l = 0`` (uniform) where the bool tensor ``uniform`` is true."""
    out = []
    for s, theta in enumerate(logits):
        theta = tf.convert_to_tensor(theta)
        base = tf.where(uniform, tf.zeros_like(theta), theta)
        out.append(tf.argmax(base + noise[s, : theta.shape[0]], output_type=tf.int32))
    return out


def straight_through_gates(estimator: str, logits: list, noise: tf.Tensor, temperature) -> list:
    """Gate vectors [P] per slot, one-hot forward, with the gradient to theta of the registered
    estimator named ``estimator`` (:meth:`Estimator.gates`).

    Must run under the tape that differentiates theta. ``noise`` is the Gumbel noise of
    :func:`gumbel_noise` (its argmax is the sample of both built-in theta estimators)."""
    return get_estimator(estimator).gates(logits, noise, temperature)


def _straight_through(logits: list, noise: tf.Tensor, soft_of) -> list:
    """``onehot(argmax(theta + G)) + soft - stop_gradient(soft)`` per slot, ``soft =
    soft_of(theta, theta + G)``: the forward value is the sample, the gradient that of ``soft``."""
    gates = []
    for s, theta in enumerate(logits):
        theta = tf.convert_to_tensor(theta)
        perturbed = theta + noise[s, : theta.shape[0]]
        hard = tf.one_hot(tf.argmax(perturbed), theta.shape[0], dtype=theta.dtype)
        soft = soft_of(theta, perturbed)
        gates.append(hard + soft - tf.stop_gradient(soft))
    return gates


# ---- the estimators as registered classes ------------------------------------------------------
_REGISTRY: dict[str, type[Estimator]] = {}


def register_estimator(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: registers an :class:`Estimator` subclass under its ``name`` (the search
    model, ``mmnas_tf.search``'s ``--estimator``, the experiment configs and the benchmarks then
    accept it). Raises ValueError when the name is taken by another class."""
    name = getattr(cls, "name", "")
    if not name or not isinstance(name, str):
        raise ValueError(f"{cls.__name__} needs a class attribute `name` (a non-empty string)")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"estimator {name!r} is already registered by {_REGISTRY[name].__name__}")
    _REGISTRY[name] = cls
    add_estimator_name(name)
    return cls


def get_estimator(name: str) -> Estimator:
    """A new instance of the estimator registered as ``name``; ValueError naming the accepted
    names otherwise."""
    check_choice("estimator", name, ESTIMATORS)
    if name not in _REGISTRY:  # a name listed in choices.py whose class is missing
        raise ValueError(
            f"estimator {name!r} is listed but no class is registered for it; "
            f"registered: {', '.join(_REGISTRY)}"
        )
    return _REGISTRY[name]()


def estimator_names() -> list[str]:
    """The names of the registered estimators, in registration order."""
    return list(_REGISTRY)


class Estimator:
    """How a search samples its architectures and moves theta; subclass it and decorate the class
    with :func:`register_estimator` to add one (docs/architecture.md, "Adding an estimator").

    Class attributes:
      name: str, the registry name (``--estimator``, ``search.estimator``).
      learns_theta: bool, whether a search epoch runs theta steps (one per cycle of u weight
        steps). False: theta never moves.
      uniform_weight_steps: bool, whether weight steps sample paths uniformly in every phase
        (else uniformly only during a ``uniform`` warm-up, from softmax(theta) otherwise).
      ends_with_selection: bool, whether the search ends with a selection step: candidates scored
        with the supernet's inherited weights on D_a (:meth:`select`), written to
        ``selection.json``, the chosen genotype closing ``genotypes.json``.

    Methods a theta estimator overrides: :meth:`gates` (its gradient); an estimator ending with a
    selection: :meth:`select`.
    """

    name: str = ""
    learns_theta: bool = True
    uniform_weight_steps: bool = False
    ends_with_selection: bool = False

    def uniform_sampling(self, searching, warmup: str):
        """Bool tensor: does a weight step sample uniformly, given ``searching`` (bool tensor,
        the search phase) and the warm-up mode (``uniform`` or ``prior``)?"""
        if self.uniform_weight_steps:
            return tf.constant(True)
        return tf.logical_and(tf.logical_not(searching), warmup == "uniform")

    def gates(self, logits: list, noise: tf.Tensor, temperature) -> list:
        """Gate vectors [P] per mixed slot for a theta step: the sampled architecture forward,
        the estimator's gradient to ``logits`` (theta, watched by the caller's tape) backward."""
        raise ValueError(f"estimator {self.name!r} has no architecture gradient")

    def all_paths(self, arch_paths: str) -> bool:
        """Whether a theta step computes every candidate (``arch_paths``: the search's
        ``all`` / ``sampled`` setting)."""
        return arch_paths == "all"

    def select(self, search_model, batches: list, seed: int, settings) -> dict:
        """The selection step (estimators with ``ends_with_selection``): returns
        :func:`nas.selection.select`'s result. ``settings``: the experiment's ``SearchConfig``."""
        raise ValueError(f"estimator {self.name!r} does not end with a selection step")


@register_estimator
class Gumbel(Estimator):
    """Gumbel-softmax straight-through (module docstring)."""

    name = "gumbel"

    def gates(self, logits, noise, temperature):
        def soft(theta, perturbed):
            return tf.nn.softmax(perturbed / tf.cast(temperature, theta.dtype))

        return _straight_through(logits, noise, soft)


@register_estimator
class Proxyless(Estimator):
    """The original's binary gates (module docstring); every candidate runs in a theta step."""

    name = "proxyless"

    def gates(self, logits, noise, temperature):
        return _straight_through(logits, noise, lambda theta, perturbed: tf.nn.softmax(theta))

    def all_paths(self, arch_paths):
        return True


@register_estimator
class Uniform(Estimator):
    """Uniform random paths, weights only, then the evolutionary selection step of
    ``nas.selection`` (SPOS)."""

    name = "uniform"
    learns_theta = False
    uniform_weight_steps = True
    ends_with_selection = True

    def select(self, search_model, batches, seed, settings):
        from mmnas_tf.nas import selection

        return selection.select(
            search_model,
            batches,
            population=settings.selection_population,
            generations=settings.selection_generations,
            seed=seed,
        )


@register_estimator
class GumbelSelection(Gumbel):
    """The ``gumbel`` theta search, ended with a selection step: the argmax genotype and
    candidates drawn from the final softmax(theta) per block, scored with inherited weights on
    D_a (``nas.selection.select_from_theta``). The theta search is the same as ``gumbel``'s (same
    samples, same gradients): the argmax of one run is what ``gumbel`` would return."""

    name = "gumbel_selection"
    ends_with_selection = True

    def select(self, search_model, batches, seed, settings):
        from mmnas_tf.nas import selection

        return selection.select_from_theta(
            search_model, batches, candidates=settings.selection_candidates, seed=seed
        )


def prior_logits(genotype: Genotype, slots: list[tuple[str, int, tuple[str, ...]]]) -> list:
    """The original's initial theta: +1 on the prior genotype's op, -1 elsewhere, per mixed slot
    ``(stage, index, candidates)``; warm-up then samples the prior op with probability
    e/(e + (P-1)/e): 0.88 for two ops, 0.71 for four."""
    out = []
    for stage, index, candidates in slots:
        op = (genotype.encoder if stage == "encoder" else genotype.decoder)[index]
        if op not in candidates:
            raise ValueError(f"prior {stage} block {index}: op {op!r} not in the pool {candidates}")
        out.append([1.0 if c == op else -1.0 for c in candidates])
    return out


def original_prior(num_encoder: int, num_decoder: int) -> Genotype:
    """The prior of the original search (``init_gene_flat``): encoder [SA, FFN] repeated,
    decoder [RSA, GA, FFN] repeated, cut to M / N blocks."""
    enc = [("SA", "FFN")[i % 2] for i in range(num_encoder)]
    dec = [("RSA", "GA", "FFN")[i % 3] for i in range(num_decoder)]
    return Genotype(enc, dec, 64)
