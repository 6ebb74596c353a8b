"""A small smoke table generated in the test: one encoder slot {SA}, two decoder slots over
{GA, RSA, FFN} (9 genotypes), two question families whose mean is each seed's headline value:
``a`` carries the genotypes' differences (informative), ``b`` is the same for every genotype."""

from __future__ import annotations

import copy
import itertools

import pytest

OPS = ("GA", "RSA", "FFN")
#: Headline accuracy per seed; the best is dec[GA RSA], the worst dec[FFN FFN].
SEEDS = {
    ("GA", "GA"): [50.0, 52.0], ("GA", "RSA"): [58.0, 57.0], ("GA", "FFN"): [49.0, 48.0],
    ("RSA", "GA"): [53.0, 54.0], ("RSA", "RSA"): [55.0, 55.0], ("RSA", "FFN"): [47.0, 47.5],
    ("FFN", "GA"): [46.0, 51.0], ("FFN", "RSA"): [45.0, 45.5], ("FFN", "FFN"): [40.0, 41.0],
}  # fmt: skip


def name(dec) -> str:
    return f"enc[SA] dec[{' '.join(dec)}]"


def make_table(seeds: dict = SEEDS, cost: float = 60.0, sample: list | None = None) -> dict:
    """A table in the builder's format; every training costs ``cost`` CPU seconds plus 6 per
    seed id (so the cost of a drawn seed shows in the simulated budget)."""
    genotypes = {}
    for i, (dec, values) in enumerate(seeds.items()):
        runs = [
            {
                "macro_accuracy": v,
                "train_cpu_seconds": cost + 6 * k,
                "per_family": {"a": 2 * v - 30 - k, "b": 30 + k},
            }
            for k, v in enumerate(values)
        ]
        genotypes[name(dec)] = {
            "seeds": list(values),
            "seed_ids": list(range(len(values))),
            "runs": runs,
            "params": 1000 + i,
            "flops": 20000 + i,
            "per_family": {f: sum(r["per_family"][f] for r in runs) / len(runs) for f in "ab"},
        }
    table = {
        "metric": "macro_accuracy",
        "families": ["a", "b"],
        "genotypes": genotypes,
        "space": {"encoder": [["SA"]], "decoder": [list(OPS), list(OPS)]},
    }
    if sample is not None:
        table.update(sample=sample, space_size=9)
    return table


def single_seed(seeds: dict = SEEDS) -> dict:
    """The same space with one seed per genotype (a noiseless search sees the ground truth)."""
    return make_table({dec: values[:1] for dec, values in seeds.items()})


ALL = [name(d) for d in itertools.product(OPS, OPS)]


@pytest.fixture
def table_dict():
    return copy.deepcopy(make_table())


@pytest.fixture
def smoke():
    """The functions above (test modules cannot import a conftest by name under importlib)."""
    import types

    return types.SimpleNamespace(
        ALL=ALL, OPS=OPS, SEEDS=SEEDS, name=name, make_table=make_table, single_seed=single_seed
    )
