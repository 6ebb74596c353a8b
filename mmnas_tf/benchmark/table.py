"""A ground-truth table as a benchmark: a genotype's accuracy, size and cost, and a pick's place.

A table is the JSON that ``bench/search_space_table.py`` writes (docs/search_results.md, "Using
the tables as a benchmark"): ``genotypes`` -> genotype string -> ``seeds`` (the headline macro
accuracy of each training seed), ``runs`` (each with ``per_family`` and ``train_cpu_seconds``),
``params`` and ``flops`` (the library's own counters at the table's model sizes) and
``per_family`` (means over seeds). A table with a ``sample`` (the second space, too big to
enumerate) is judged against that sample: a pick's percentile is its place among the sample's
genotypes (the pick is not added to them) and its regret is against the sample's best, a lower
bound of the regret against the whole space.
"""

from __future__ import annotations

import json
import re

import numpy as np

from mmnas_tf.benchmark import statistics

TABLE_KEYS = ("space", "families", "genotypes")
ENTRY_KEYS = ("seeds", "seed_ids", "runs", "params", "flops", "per_family")
RUN_KEYS = ("per_family", "train_cpu_seconds")
GENOTYPE_FORMAT = "enc[OP ...] dec[OP ...], e.g. 'enc[SA] dec[GA RSA FFN]'"
_GENOTYPE = re.compile(r"^enc\[([A-Z ]*)\] dec\[([A-Z ]+)\]$")


class TableError(ValueError):
    """A table file or a genotype the table cannot answer for."""


def parse_genotype(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(encoder ops, decoder ops) of a genotype string as ``str(Genotype)`` writes it."""
    match = _GENOTYPE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise TableError(f"genotype {text!r} is not in the accepted format {GENOTYPE_FORMAT}")
    return tuple(match.group(1).split()), tuple(match.group(2).split())


def format_genotype(encoder, decoder) -> str:
    return f"enc[{' '.join(encoder)}] dec[{' '.join(decoder)}]"


def check_table(data: dict, where: str = "table") -> None:
    """Raises :class:`TableError` naming the first key a table (or one of its entries or runs)
    lacks."""
    if not isinstance(data, dict):
        raise TableError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for key in TABLE_KEYS:
        if key not in data:
            raise TableError(f"{where}: missing key {key!r} (a table needs {list(TABLE_KEYS)})")
    if not data["genotypes"]:
        raise TableError(f"{where}: 'genotypes' is empty")
    for name, entry in data["genotypes"].items():
        for key in ENTRY_KEYS:
            if key not in entry:
                raise TableError(
                    f"{where}: genotype {name!r} lacks key {key!r} (an entry needs {list(ENTRY_KEYS)})"
                )
        for i, run in enumerate(entry["runs"]):
            for key in RUN_KEYS:
                if key not in run:
                    raise TableError(f"{where}: genotype {name!r} run {i} lacks key {key!r}")
    if "sample" in data and "space_size" not in data:
        raise TableError(f"{where}: missing key 'space_size' (a sampled table needs it)")


class Table:
    """A loaded ground-truth table.

    Args:
      data: the table's JSON object (see the module docstring); checked on construction.
      name: how errors name it (the file's path when loaded with :meth:`load`).

    Example:
      >>> table = Table.load("bench/results/search_space_table.json")
      >>> table.accuracy("enc[SA] dec[GA RSA GA]")
      55.3085
      >>> table.score(["enc[SA] dec[GA RSA RSA]"])["mean_percentile"]
      97.65625
    """

    def __init__(self, data: dict, name: str = "table"):
        check_table(data, name)
        self.data, self.name = data, name
        # genotype string -> its entry / ground truth, once looked up (a simulated search asks
        # for the same few genotypes hundreds of thousands of times; the data is not changed)
        self._entries: dict[str, dict] = {}
        self._accuracies: dict[str, float] = {}
        self.families: list[str] = list(data["families"])
        genotypes = data["genotypes"]
        if "sample" in data:
            self.reference = [g for g in data["sample"] if g in genotypes]
        else:
            self.reference = list(genotypes)
        if not self.reference:
            raise TableError(f"{name}: no genotype of its sample has a result yet")
        values = np.array([self.accuracy(g) for g in self.reference])
        self._values = values
        best = int(np.argmax(values))
        self.best = (self.reference[best], float(values[best]))

    @classmethod
    def load(cls, path: str) -> Table:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise TableError(f"no table file {path!r}") from None
        except json.JSONDecodeError as e:
            raise TableError(f"{path}: not JSON ({e})") from None
        return cls(data, path)

    # ---- one genotype -------------------------------------------------------------------------
    @property
    def sampled(self) -> bool:
        """Whether the reference is a uniform sample of a larger space."""
        return "sample" in self.data

    @property
    def space_size(self) -> int:
        """Genotypes in the space: the recorded ``space_size``, else the product of the pools."""
        if "space_size" in self.data:
            return int(self.data["space_size"])
        space = self.data["space"]
        return int(np.prod([len(p) for p in space["encoder"] + space["decoder"]]))

    @property
    def complete(self) -> bool:
        """Whether every genotype of the reference has a result: the whole sample of a sampled
        table, every genotype of the space otherwise."""
        if self.sampled:
            return len(self.reference) == len(self.data["sample"])
        return len(self.data["genotypes"]) >= self.space_size

    def entry(self, genotype: str) -> dict:
        if isinstance(genotype, str) and genotype in self._entries:
            return self._entries[genotype]
        parse_genotype(genotype)
        try:
            entry = self._entries[genotype] = self.data["genotypes"][genotype.strip()]
            return entry
        except KeyError:
            example = next(iter(self.data["genotypes"]))
            raise TableError(
                f"genotype {genotype!r} is not in {self.name} ({len(self.data['genotypes'])} "
                f"genotypes, e.g. {example!r})"
            ) from None

    def __contains__(self, genotype: str) -> bool:
        return genotype in self.data["genotypes"]

    def seeds(self, genotype: str) -> dict[int, float]:
        """The headline macro accuracy per training seed."""
        e = self.entry(genotype)
        return dict(zip(e["seed_ids"], e["seeds"]))

    def accuracy(self, genotype: str) -> float:
        """The ground truth: the mean over seeds of the macro accuracy over every family."""
        if isinstance(genotype, str) and genotype in self._accuracies:
            return self._accuracies[genotype]
        value = float(np.mean(self.entry(genotype)["seeds"]))
        self._accuracies[genotype] = value
        return value

    def per_family(self, genotype: str, seed: int | None = None) -> dict[str, float]:
        """Accuracy per question family: the mean over seeds, or one seed's."""
        e = self.entry(genotype)
        if seed is None:
            return dict(e["per_family"])
        if seed not in e["seed_ids"]:
            raise TableError(f"{genotype}: no seed {seed}; recorded seeds {e['seed_ids']}")
        return dict(e["runs"][e["seed_ids"].index(seed)]["per_family"])

    def informative_accuracy(self, genotype: str, families: list[str]) -> float:
        """The macro over ``families`` (e.g. :meth:`informative_families`) of the seed means."""
        return statistics.macros(self.entry(genotype), families)["informative"]

    def params(self, genotype: str) -> int:
        return int(self.entry(genotype)["params"])

    def flops(self, genotype: str) -> int:
        return int(self.entry(genotype)["flops"])

    def cost_seconds(self, genotype: str) -> list[float]:
        """CPU seconds (user + system) of each recorded stand-alone training, per seed."""
        return [float(r["train_cpu_seconds"]) for r in self.entry(genotype)["runs"]]

    def describe(self, genotype: str) -> dict:
        """Everything the table holds about ``genotype`` and its place in the reference."""
        return {
            "genotype": genotype,
            "accuracy": self.accuracy(genotype),
            "seeds": self.seeds(genotype),
            "per_family": self.per_family(genotype),
            "params": self.params(genotype),
            "flops": self.flops(genotype),
            "train_cpu_seconds": self.cost_seconds(genotype),
            "percentile": self.percentile(genotype),
            "regret": self.regret(genotype),
            "in_reference": genotype in self.reference,
        }

    # ---- a pick's place -----------------------------------------------------------------------
    def _value(self, pick: str | float) -> float:
        return self.accuracy(pick) if isinstance(pick, str) else float(pick)

    def percentile(self, pick: str | float) -> float:
        """Percent of the reference genotypes below the pick (ties count half)."""
        x, v = self._value(pick), self._values
        return float(100 * (np.sum(v < x) + 0.5 * np.sum(v == x)) / len(v))

    def regret(self, pick: str | float) -> float:
        """The reference's best minus the pick (a lower bound on a sampled table)."""
        return self.best[1] - self._value(pick)

    def robust_seed_std(self) -> float:
        return statistics.robust_seed_std([e["seeds"] for e in self.data["genotypes"].values()])

    def informative_families(self, noise: Table | None = None) -> list[str]:
        """Families informative by the table's written rule (seed noise from ``noise``)."""
        return statistics.informative_families(self.data, noise.data if noise else None)

    def cpu_seconds(self) -> float:
        """CPU seconds of every training recorded in the table (and of its checks)."""
        runs = sum(sum(self.cost_seconds(g)) for g in self.data["genotypes"])
        checks = sum(
            v.get("run", {}).get("train_cpu_seconds", 0.0)
            for v in self.data.get("verifications", [])
        )
        return float(runs + checks)

    def score(self, picks: list[str], seed: int = 0) -> dict:
        """Ground truth, percentile and regret of each pick (one per search seed), their means
        and 95% bootstrap intervals (:func:`statistics.bootstrap_interval`, ``seed``)."""
        if not picks:
            raise TableError("score needs at least one pick")
        rows = [
            {
                "genotype": g,
                "ground_truth": self.accuracy(g),
                "percentile": self.percentile(g),
                "regret": self.regret(g),
                "in_reference": g in self.reference,
            }
            for g in picks
        ]
        out: dict = {"picks": rows, "reference": len(self.reference), "best": list(self.best)}
        for key in ("ground_truth", "percentile", "regret"):
            values = [r[key] for r in rows]
            out[f"mean_{key}"] = float(np.mean(values))
            out[f"{key}_interval"] = list(statistics.bootstrap_interval(values, seed=seed))
        return out
