"""Searches simulated on a ground-truth table, and their curves of quality against CPU budget.

A simulated search pays one stand-alone training per genotype it evaluates for the first time:
the CPU seconds the table recorded for one of the genotype's training seeds, drawn at random, and
it observes that seed's accuracy (the noise a real search would see). Evaluating a genotype again
costs nothing and returns the same observation. The search keeps the genotype with the best
observed accuracy; what it found is that genotype's ground truth (the table's mean over seeds).

- :func:`random_search`: genotypes in a random order, without repeats (on a sampled table, from
  its sample);
- :func:`regularised_evolution`: Real et al. 2019 (aging evolution): a population of
  ``population`` genotypes drawn at random; each step samples ``sample_size`` of them, mutates
  one slot of the best observed one (another op of that slot's pool), adds the child and removes
  the oldest member;
- :func:`local_search`: from a random genotype, evaluate every one-slot neighbour, move to the
  best observed neighbour while it improves, else restart from a random unevaluated genotype.

Every search is deterministic given its ``numpy.random.Generator`` seed. The simulated searches
need every genotype a mutation can reach: evolution and local search run on a complete table.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mmnas_tf.benchmark.statistics import bootstrap_interval
from mmnas_tf.benchmark.table import Table, TableError, format_genotype, parse_genotype

METHODS = ("random", "evolution", "local")


class SimulatedRun:
    """One simulated search: the genotypes it paid to train (``seen``: genotype -> observed
    accuracy), the CPU-minutes spent, the incumbent (``best``: observed accuracy, genotype) and
    the ``trajectory`` (after each paid training: CPU-minutes so far, ground truth of the
    incumbent, its observed accuracy)."""

    def __init__(self, table: Table, names: list[str], rng: np.random.Generator, budget: float):
        self.table, self.names, self.rng, self.budget = table, names, rng, budget
        self.seen: dict[str, float] = {}
        self.minutes = 0.0
        self.best: tuple[float, str] | None = None
        self.found = float("nan")  # ground truth of the incumbent
        self.trajectory: list[tuple[float, float, float]] = []  # minutes, found, observed

    @property
    def done(self) -> bool:
        return self.minutes >= self.budget or len(self.seen) == len(self.names)

    def evaluate(self, name: str) -> float:
        if name in self.seen:
            return self.seen[name]
        entry = self.table.entry(name)
        k = int(self.rng.integers(len(entry["seeds"])))
        observed = float(entry["seeds"][k])
        self.minutes += float(entry["runs"][k]["train_cpu_seconds"]) / 60
        self.seen[name] = observed
        if self.best is None or observed > self.best[0]:
            self.best = (observed, name)
            self.found = self.table.accuracy(name)
        self.trajectory.append((self.minutes, self.found, self.best[0]))
        return observed

    def unseen(self) -> str | None:
        rest = [g for g in self.names if g not in self.seen]
        return rest[int(self.rng.integers(len(rest)))] if rest else None


def _complete(table: Table, method: str) -> None:
    if table.sampled or not table.complete:
        raise TableError(
            f"{method} needs every genotype of the space; {table.name} holds "
            f"{len(table.data['genotypes'])} of {table.space_size} (use random search)"
        )


def _neighbours(table: Table, name: str) -> list[str]:
    """Every genotype one slot away (another op of that slot's pool)."""
    encoder, decoder = parse_genotype(name)
    space = table.data["space"]
    slots, pools = list(encoder + decoder), space["encoder"] + space["decoder"]
    out = []
    for i, pool in enumerate(pools):
        for op in pool:
            if op != slots[i]:
                ops = slots[:i] + [op] + slots[i + 1 :]
                out.append(format_genotype(ops[: len(encoder)], ops[len(encoder) :]))
    return out


def random_search(table: Table, budget_minutes: float, seed: int = 0) -> SimulatedRun:
    rng = np.random.default_rng(seed)
    run = SimulatedRun(table, table.reference, rng, budget_minutes)
    for i in rng.permutation(len(table.reference)):
        if run.done:
            break
        run.evaluate(table.reference[i])
    return run


def regularised_evolution(
    table: Table, budget_minutes: float, seed: int = 0, population: int = 8, sample_size: int = 3
) -> SimulatedRun:
    _complete(table, "regularised evolution")
    if not 1 <= sample_size <= population:
        raise ValueError(f"sample_size {sample_size}: expected 1..population ({population})")
    rng = np.random.default_rng(seed)
    names = table.reference
    run = SimulatedRun(table, names, rng, budget_minutes)
    members: deque[tuple[str, float]] = deque()
    while len(members) < population and not run.done:
        name = names[int(rng.integers(len(names)))]
        members.append((name, run.evaluate(name)))
    for _ in range(100 * len(names)):  # children already seen cost nothing: bound the loop
        if run.done:
            break
        chosen = rng.choice(len(members), sample_size, replace=False)
        parent = max((members[i] for i in chosen), key=lambda m: m[1])[0]
        options = _neighbours(table, parent)
        child = options[int(rng.integers(len(options)))]
        members.append((child, run.evaluate(child)))
        members.popleft()
    return run


def local_search(table: Table, budget_minutes: float, seed: int = 0) -> SimulatedRun:
    _complete(table, "local search")
    rng = np.random.default_rng(seed)
    run = SimulatedRun(table, table.reference, rng, budget_minutes)
    current = run.unseen()
    value = run.evaluate(current)
    while not run.done:
        options = _neighbours(table, current)
        scored = [
            (run.evaluate(options[i]), options[i])
            for i in rng.permutation(len(options))
            if not run.done
        ]
        best = max(scored) if scored else (value, current)
        if best[0] > value:
            value, current = best
        else:
            current = run.unseen()
            if current is None:
                break
            value = run.evaluate(current)
    return run


SEARCHES = {"random": random_search, "evolution": regularised_evolution, "local": local_search}


def found_at(run: SimulatedRun, minutes: float) -> float:
    """Ground truth of the incumbent after the trainings finished within ``minutes`` (the first
    training always counts: a search returns at least one trained genotype)."""
    found = run.trajectory[0][1]
    for spent, truth, _ in run.trajectory:
        if spent > minutes:
            break
        found = truth
    return found


def simulate(
    table: Table, method: str, budget_minutes: float, runs: int = 200, seed: int = 0, **options
):
    """``runs`` simulated searches (seeds ``seed`` .. ``seed + runs - 1``); ``options`` go to
    the search (evolution: ``population``, ``sample_size``)."""
    if method not in SEARCHES:
        raise ValueError(f"unknown method {method!r}; accepted: {list(SEARCHES)}")
    if not budget_minutes > 0 or runs < 1:
        raise ValueError(f"budget {budget_minutes} min and runs {runs}: both must be positive")
    return [SEARCHES[method](table, budget_minutes, seed + r, **options) for r in range(runs)]


def expected_found(
    table: Table, method: str, minutes: float, runs: int = 500, seed: int = 0
) -> float:
    """Mean ground truth found by ``method`` at a budget of ``minutes`` CPU-minutes."""
    return float(
        np.mean([found_at(r, minutes) for r in simulate(table, method, minutes, runs, seed)])
    )


def curve(
    table: Table, method: str, budgets: list[float], runs: int = 200, seed: int = 0, **options
) -> dict:
    """Mean ground truth found at each budget (CPU-minutes), with the 95% bootstrap interval of
    that mean and the 2.5-97.5% range of single runs, over ``runs`` simulated searches."""
    budgets = sorted(float(b) for b in budgets)
    sims = simulate(table, method, budgets[-1], runs, seed, **options)
    found = np.array([[found_at(r, b) for b in budgets] for r in sims])
    intervals = [
        bootstrap_interval(found[:, j], draws=2000, seed=seed) for j in range(len(budgets))
    ]
    return {
        "method": method,
        "options": options,
        "runs": runs,
        "seed": seed,
        "budget_minutes": budgets,
        "mean": found.mean(axis=0).tolist(),
        "interval": [list(i) for i in intervals],
        "range_of_runs": np.percentile(found, [2.5, 97.5], axis=0).T.tolist(),
        "mean_trainings": float(np.mean([len(r.trajectory) for r in sims])),
    }
