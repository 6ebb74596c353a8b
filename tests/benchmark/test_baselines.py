"""Simulated searches on the smoke table: deterministic per seed, monotone in budget, paying one
training per new genotype."""

from __future__ import annotations

import numpy as np
import pytest

from mmnas_tf.benchmark import Table, TableError, baselines


@pytest.mark.parametrize("method", baselines.METHODS)
def test_deterministic_per_seed(smoke, method):
    t = Table(smoke.make_table())
    runs = [baselines.SEARCHES[method](t, 8.0, seed) for seed in (5, 5, 6)]
    assert runs[0].trajectory == runs[1].trajectory
    assert [r.trajectory for r in baselines.simulate(t, method, 8.0, 20)] != [
        r.trajectory for r in baselines.simulate(t, method, 8.0, 20, seed=1)
    ]


@pytest.mark.parametrize("method", baselines.METHODS)
def test_pays_one_training_per_new_genotype(smoke, method):
    t = Table(smoke.make_table())
    run = baselines.SEARCHES[method](t, 1e9, seed=2)  # the budget never runs out
    assert len(run.seen) == len(run.trajectory) == 9  # every genotype once, then it stops
    spent = set()
    for seed in range(6):
        run = baselines.SEARCHES[method](t, 1e9, seed)
        spent |= set(np.round(np.diff([0.0] + [m for m, _, _ in run.trajectory]) * 60, 6))
    assert spent == {60.0, 66.0}  # each training draws seed 0's or seed 1's run, and pays it
    observed = [o for _, _, o in run.trajectory]
    assert observed == sorted(observed)  # the incumbent's observation never drops


@pytest.mark.parametrize("method", baselines.METHODS)
def test_mean_found_is_monotone_in_budget_and_reaches_the_best(smoke, method):
    t = Table(smoke.single_seed())  # noiseless: the incumbent is the best evaluated
    c = baselines.curve(t, method, [1.0, 2.0, 3.0, 5.0, 9.0], runs=50)
    assert c["mean"] == sorted(c["mean"])
    assert c["mean"][-1] == 58.0  # 9 trainings of 1 minute: every genotype
    assert c["mean"][0] == pytest.approx(np.mean([t.accuracy(g) for g in t.reference]), abs=3.0)
    for (lo, hi), m in zip(c["interval"], c["mean"]):
        assert lo <= m <= hi


def test_found_at_counts_trainings_finished_within_the_budget(smoke):
    t = Table(smoke.single_seed())
    run = baselines.random_search(t, 3.0, seed=0)
    assert [m for m, _, _ in run.trajectory] == [1.0, 2.0, 3.0]
    assert baselines.found_at(run, 0.5) == run.trajectory[0][1]  # the first always counts
    assert baselines.found_at(run, 2.5) == run.trajectory[1][1]


def test_evolution_mutates_one_slot(smoke):
    t = Table(smoke.make_table())
    name = smoke.name(("GA", "RSA"))
    assert sorted(baselines._neighbours(t, name)) == sorted(
        [
            smoke.name(("RSA", "RSA")),
            smoke.name(("FFN", "RSA")),
            smoke.name(("GA", "GA")),
            smoke.name(("GA", "FFN")),
        ]
    )
    with pytest.raises(ValueError, match="sample_size 4: expected 1..population"):
        baselines.regularised_evolution(t, 5.0, population=3, sample_size=4)


def test_evolution_and_local_need_a_complete_table(smoke):
    t = Table(smoke.make_table(sample=smoke.ALL[:4]))
    for method in ("evolution", "local"):
        with pytest.raises(
            TableError, match="needs every genotype of the space.*use random search"
        ):
            baselines.simulate(t, method, 5.0, 1)
    run = baselines.random_search(t, 1e9)
    assert set(run.seen) == set(smoke.ALL[:4])  # random search draws from the sample


def test_bad_arguments_are_named(smoke):
    t = Table(smoke.make_table())
    with pytest.raises(
        ValueError,
        match=r"unknown method 'annealing'; accepted: \['random', 'evolution', 'local'\]",
    ):
        baselines.simulate(t, "annealing", 5.0)
    with pytest.raises(ValueError, match="must be positive"):
        baselines.simulate(t, "random", 0.0)


def smooth_table(smoke) -> Table:
    """27 genotypes (3 decoder slots), one seed each: 40 + 5 x slots equal to dec[GA RSA GA]."""
    ops = smoke.OPS
    seeds = {
        (a, b, c): [40.0 + 5 * ((a == "GA") + (b == "RSA") + (c == "GA"))]
        for a in ops
        for b in ops
        for c in ops
    }
    data = smoke.make_table(seeds)
    data["space"]["decoder"].append(list(ops))
    return Table(data)


def test_local_search_climbs_and_evolution_selects_the_better_parent(smoke):
    t = smooth_table(smoke)
    assert t.best == ("enc[SA] dec[GA RSA GA]", 55.0)
    # hill climbing: the best within 1 + 3 x 6 neighbours from any start (random: 19/27 per run)
    for seed in range(20):
        run = baselines.local_search(t, 19.0, seed)
        assert run.best == (55.0, "enc[SA] dec[GA RSA GA]"), seed
    evolution = baselines.curve(t, "evolution", [12.0], runs=200)["mean"][0]
    random = baselines.curve(t, "random", [12.0], runs=200)["mean"][0]
    assert evolution > random + 0.5, (evolution, random)


def test_evolution_removes_the_oldest_member(smoke):
    # a population of one: each child replaces its parent, a walk that reaches every genotype
    # (removing the child instead would only ever mutate the first genotype: 1 + 6 of 27)
    run = baselines.regularised_evolution(smooth_table(smoke), 1e9, 0, population=1, sample_size=1)
    assert len(run.seen) == 27
