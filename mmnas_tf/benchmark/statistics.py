"""Statistics of the ground-truth tables and of search results over seeds (numpy only, seeded).

The table rules (robust seed std, informative family) are the ones each table records under
``rules``; the builder ``bench/search_space_table.py`` imports them from here. The tests are
exact where the number of seeds allows it: the sign-flip permutation test enumerates all 2^n
sign vectors up to :data:`EXACT_MAX_PERMUTATION` seeds, the Wilcoxon signed-rank test counts its
exact null distribution up to :data:`EXACT_MAX_WILCOXON` non-zero differences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

ROBUST = 0.6745 * math.sqrt(2)  # |a - b| of two normal draws: median = ROBUST * std
INFORMATIVE_RATIO = 3.0  # a family is informative when between-genotype std >= 3 x seed std
EXACT_MAX_PERMUTATION = 16  # 2^16 sign vectors; above, a seeded Monte Carlo
EXACT_MAX_WILCOXON = 50  # the exact null distribution by counting (cheap); above, normal
BOOTSTRAP_DRAWS = 10_000
ALTERNATIVES = ("two-sided", "greater", "less")
_TIE = 1e-9  # differences of 3-decimal table values: equal below this


# ---- the tables' written rules ------------------------------------------------------------------
def _pairs(values) -> list[float]:
    return [abs(a - b) for a, b in itertools.combinations(values, 2)]


def robust_seed_std(seed_lists) -> float:
    """Median over the lists with >= 2 values of the median |a - b| over their pairs, divided by
    0.6745 * sqrt(2) (a normal std; the bimodal genotypes do not inflate it). NaN: no pairs."""
    per = [float(np.median(_pairs(s))) for s in seed_lists if len(s) > 1]
    return float(np.median(per) / ROBUST) if per else float("nan")


def family_stats(table: dict, noise: dict | None = None) -> dict:
    """Per question family: the std between the genotypes' mean accuracies in ``table``, the
    robust seed std of the family in ``noise`` (default ``table``; the large table has one seed
    per genotype and takes the first table's) and whether the family is informative
    (:data:`INFORMATIVE_RATIO`)."""
    noise = noise or table
    out = {}
    for family in table["families"]:
        means = [e["per_family"][family] for e in table["genotypes"].values()]
        between = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
        seed = robust_seed_std(
            [[r["per_family"][family] for r in e["runs"]] for e in noise["genotypes"].values()]
        )
        informative = bool(between > 0 and between >= INFORMATIVE_RATIO * seed)
        out[family] = {"between_std": between, "seed_std": seed, "informative": informative}
    return out


def informative_families(table: dict, noise: dict | None = None) -> list[str]:
    """The families the table can rank genotypes on (docs/search_results.md, "Protocol")."""
    return [f for f, s in family_stats(table, noise).items() if s["informative"]]


def macros(entry: dict, informative: list[str]) -> dict:
    """A genotype's mean over seeds of the macro over every family and over the informative
    ones (NaN when none is)."""
    per = entry["per_family"]
    return {
        "all": round(float(np.mean(entry["seeds"])), 3),
        "informative": round(float(np.mean([per[f] for f in informative])), 3)
        if informative
        else float("nan"),
    }


# ---- intervals and tests ----------------------------------------------------------------------
def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled with
    replacement, ``draws`` times, numpy ``default_rng(seed)``). One value: (value, value)."""
    x = np.asarray(values, float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"bootstrap_interval needs a non-empty list of numbers, got {values!r}")
    if len(x) == 1:
        return float(x[0]), float(x[0])
    idx = np.random.default_rng(seed).integers(len(x), size=(draws, len(x)))
    if statistic is np.mean:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx])
    tail = 100 * (1 - level) / 2
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: accepted values are {ALTERNATIVES}")


def sign_flip_test(
    differences: Sequence[float],
    alternative: str = "two-sided",
    draws: int = 100_000,
    seed: int = 0,
) -> dict:
    """Paired permutation test of mean(differences) = 0: under the null each paired difference
    is as likely to have either sign. Exact (all 2^n sign vectors) for n <= 16, else ``draws``
    seeded random sign vectors (p = (1 + hits) / (1 + draws)). ``greater``: the alternative that
    the mean difference is above 0."""
    _check_alternative(alternative)
    d = np.asarray(differences, float)
    n = len(d)
    if n == 0:
        return {"n": 0, "mean_difference": float("nan"), "p": 1.0, "exact": True}
    observed = d.sum()
    exact = n <= EXACT_MAX_PERMUTATION
    if exact:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    else:
        bits = np.random.default_rng(seed).integers(2, size=(draws, n))
    sums = (1 - 2 * bits) @ d
    tol = _TIE * max(1.0, np.abs(d).sum())
    if alternative == "greater":
        hits = np.sum(sums >= observed - tol)
    elif alternative == "less":
        hits = np.sum(sums <= observed + tol)
    else:
        hits = np.sum(np.abs(sums) >= abs(observed) - tol)
    p = hits / len(sums) if exact else (1 + hits) / (1 + len(sums))
    return {"n": n, "mean_difference": float(observed / n), "p": float(p), "exact": exact}


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, ties (within 1e-9) sharing the average of their ranks."""
    x = np.asarray(values, float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] - x[order[i]] <= _TIE:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def wilcoxon_signed_rank(differences: Sequence[float], alternative: str = "two-sided") -> dict:
    """Wilcoxon's signed-rank test of paired differences (zero differences dropped, tied
    |differences| share their average rank). ``statistic`` is W+, the sum of the ranks of the
    positive differences. Exact null distribution (every sign vector, counted) for up to 50
    non-zero differences, else the normal approximation with tie and continuity corrections."""
    _check_alternative(alternative)
    d = np.asarray(differences, float)
    d = d[np.abs(d) > _TIE]
    n = len(d)
    if n == 0:
        return {"n": 0, "statistic": 0.0, "p": 1.0, "exact": True}
    ranks = average_ranks(np.abs(d))
    w = float(ranks[d > 0].sum())
    if n <= EXACT_MAX_WILCOXON:
        doubled = np.rint(2 * ranks).astype(int)  # average ranks are multiples of 1/2
        counts = np.zeros(doubled.sum() + 1)
        counts[0] = 1.0
        for r in doubled:
            counts[r:] = counts[r:] + counts[:-r]  # a new array: no aliasing
        probs = counts / 2.0**n
        k = int(round(2 * w))
        upper, lower = float(probs[k:].sum()), float(probs[: k + 1].sum())
        exact = True
    else:
        mean = n * (n + 1) / 4
        _, tie_counts = np.unique(np.round(ranks * 2).astype(int), return_counts=True)
        var = n * (n + 1) * (2 * n + 1) / 24 - np.sum(tie_counts**3 - tie_counts) / 48
        sd = math.sqrt(var)
        upper = 0.5 * math.erfc((w - 0.5 - mean) / sd / math.sqrt(2))
        lower = 0.5 * math.erfc((mean - w - 0.5) / sd / math.sqrt(2))
        exact = False
    p = {"greater": upper, "less": lower}.get(alternative, min(1.0, 2 * min(upper, lower)))
    return {"n": n, "statistic": w, "p": float(p), "exact": exact}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences (ties as in tau-b); 0 when one of them is
    constant (a ranking that says nothing)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(
            f"kendall_tau needs two sequences of equal length >= 2, got {len(x)} and {len(y)}"
        )
    upper = np.triu_indices(len(x), 1)
    sx = np.sign(x[:, None] - x[None])[upper]
    sy = np.sign(y[:, None] - y[None])[upper]
    denom = math.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
    return float(np.sum(sx * sy) / denom) if denom else 0.0


def ranking_by_group(
    scores: Sequence[float], truth: Sequence[float], in_group: Sequence[bool]
) -> dict[str, float]:
    """Where a ranking (``scores``) agrees with ``truth``, split by a group of its items:
    Kendall's tau-b over all pairs (``all``), within the group (``within_group``), within the
    rest (``within_rest``), and ``across``: over the pairs of one member and one non-member, the
    share that ``scores`` orders as ``truth`` does minus the share it orders the other way (ties
    in either count as neither). ValueError unless the group and the rest each hold >= 2 items."""
    x, y = np.asarray(scores, float), np.asarray(truth, float)
    member = np.asarray(in_group, bool)
    if not (len(x) == len(y) == len(member)):
        raise ValueError(
            f"ranking_by_group needs equally long scores, truth and in_group, got {len(x)}, "
            f"{len(y)} and {len(member)}"
        )
    if member.sum() < 2 or (~member).sum() < 2:
        raise ValueError(
            f"ranking_by_group needs >= 2 items in the group and in the rest, got "
            f"{int(member.sum())} and {int((~member).sum())}"
        )
    sx = np.sign(x[member][:, None] - x[~member][None])
    sy = np.sign(y[member][:, None] - y[~member][None])
    return {
        "all": kendall_tau(x, y),
        "within_group": kendall_tau(x[member], y[member]),
        "within_rest": kendall_tau(x[~member], y[~member]),
        "across": float(np.mean(sx * sy)),
    }
