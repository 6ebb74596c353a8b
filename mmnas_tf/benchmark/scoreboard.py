"""The statistics of an estimator scoreboard (``bench/results/search_quality*.json``) against its
ground-truth table: what differences the seeds can support. The one owner of every
per-estimator figure of a scoreboard (``bench/search_quality.py`` and the documentation's tables
read them from here).

The table: its reference's distribution (mean, spread, percentiles, best, completeness), its
seed noise (robust and pooled) and the cost of one training. Per estimator: mean ground truth,
percentile and regret of its picks with 95% bootstrap intervals over seeds, the informative-family
macro beside the 6-family one, Kendall's tau of each recorded supernet, the CPU-minutes, and
random search at equal cost: each seed's search CPU-minutes plus one stand-alone training of its
pick buys random search that many CPU-minutes of training (simulated on the table). Picks the
table does not hold yet are listed, not scored. Per pair of estimators: paired tests over the
seeds both ran (exact sign-flip permutation and Wilcoxon signed-rank, two-sided). The default
estimator: one-sided tests of whether its picks beat the expected random-search result at each
seed's cost, and the goals. :func:`render_markdown` prints them.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable

import numpy as np

from mmnas_tf.benchmark import baselines, statistics
from mmnas_tf.benchmark.table import Table, TableError, parse_genotype

SIGNIFICANCE = 0.05
PERCENTILES = (10, 25, 50, 75, 90, 100)
GOALS = {
    "mean_percentile": 90.0,
    "percentile_interval_low": 80.0,
    "regret_seed_stds": 2.0,
    "p_against_random": SIGNIFICANCE,
    "kendall_tau": 0.5,
}


def _interval(values: list[float], seed: int) -> dict:
    return {
        "values": [float(v) for v in values],
        "mean": float(np.mean(values)),
        "interval": list(statistics.bootstrap_interval(values, seed=seed)),
    }


def _supernets(result: dict) -> list[dict]:
    supernets = result.get("supernets") or result.get("supernet") or []  # one per seed, or seed 0's
    return [supernets] if isinstance(supernets, dict) else supernets


def _supernet_range(result: dict, table: Table) -> dict:
    """Per recorded supernet, the max and the median of its inherited-weight accuracy over the
    table's reference genotypes: a supernet that learned nothing an op depends on scores every
    genotype alike (and no tau or selection can rank them)."""
    scores = [[s[g] for g in s if g in table.reference] for s in _supernets(result)]
    scores = [v for v in scores if v]
    return {
        "max": [float(np.max(v)) for v in scores],
        "median": [float(np.median(v)) for v in scores],
    }


def _taus(result: dict, table: Table) -> list[float]:
    taus = []
    for scores in _supernets(result):
        common = [g for g in scores if g in table.reference]
        if len(common) >= 2:
            truth = [table.accuracy(g) for g in common]
            taus.append(statistics.kendall_tau([scores[g] for g in common], truth))
    return taus


def decoder_starts_with(op: str) -> Callable[[str], bool]:
    """The group of :func:`ranking_split`: genotypes whose first decoder op is ``op``."""
    return lambda genotype: parse_genotype(genotype)[1][0] == op


def ranking_split(result: dict, table: Table, group: Callable[[str], bool]) -> dict:
    """How the supernets of a scoreboard entry rank the table's reference genotypes against their
    means, split by ``group`` (:func:`mmnas_tf.benchmark.statistics.ranking_by_group`): a list per
    part, one value per recorded supernet; and, as the scale the table's own noise sets, its seed
    1 ranked against its seed 0 (``seeds``, None without two seeds for every genotype)."""
    names = table.reference
    member = [group(g) for g in names]
    truth = [table.accuracy(g) for g in names]
    parts: dict[str, list[float]] = {}
    for scores in _supernets(result):
        if all(g in scores for g in names):
            split = statistics.ranking_by_group([scores[g] for g in names], truth, member)
            for key, value in split.items():
                parts.setdefault(key, []).append(value)
    seeds = None
    if all({0, 1} <= set(table.seeds(g)) for g in names):
        first, second = ([table.seeds(g)[s] for g in names] for s in (0, 1))
        seeds = statistics.ranking_by_group(second, first, member)
    return {
        "supernets": parts,
        "seeds": seeds,
        "group": sum(member),
        "rest": len(names) - sum(member),
    }


def _by_seed(name: str, result: dict) -> dict[int, str]:
    for key in ("picks", "seeds"):
        if key not in result:
            raise TableError(f"scoreboard estimator {name!r} lacks key {key!r}")
    return dict(zip(result["seeds"], result["picks"]))


def estimator_statistics(
    name: str, result: dict, table: Table, informative, seed: int = 0, runs: int = 500
) -> dict:
    """One estimator's figures: its picks (``missing_from_table``: those the table does not hold
    yet), ground truth, percentile, regret and informative macro of the picks the table holds
    with bootstrap intervals, Kendall's tau of each recorded supernet, the CPU-minutes (search,
    retraining of the pick) and random search given each seed's CPU-minutes (``runs`` simulated
    searches, ``seed``)."""
    picks = _by_seed(name, result)
    known = {s: g for s, g in picks.items() if g in table}
    out: dict = {
        "seeds": sorted(picks),
        "picks": [picks[s] for s in sorted(picks)],
        "missing_from_table": [picks[s] for s in sorted(picks) if s not in known],
    }
    search = dict(zip(result["seeds"], result.get("cpu_minutes", [])))
    if len(search) == len(picks):
        out["cpu_minutes"] = {"search": float(np.mean(list(search.values())))}
    if not known:
        return out
    gs = [known[s] for s in sorted(known)]
    out["ground_truth"] = _interval([table.accuracy(g) for g in gs], seed)
    out["percentile"] = _interval([table.percentile(g) for g in gs], seed)
    out["regret"] = _interval([table.regret(g) for g in gs], seed)
    if informative:
        out["informative_macro"] = _interval(
            [table.informative_accuracy(g, informative) for g in gs], seed
        )
    taus = _taus(result, table)
    out["supernet_range"] = _supernet_range(result, table)
    out["kendall_tau"] = {
        "per_seed": taus,
        "mean": float(np.mean(taus)) if taus else None,
        "interval": list(statistics.bootstrap_interval(taus, seed=seed)) if len(taus) > 1 else None,
    }
    if "cpu_minutes" in out:
        retrain = {s: float(np.mean(table.cost_seconds(g))) / 60 for s, g in known.items()}
        cost = {str(s): search[s] + retrain[s] for s in sorted(known)}
        out["cpu_minutes"].update(
            retrain_pick=float(np.mean(list(retrain.values()))),
            per_seed_with_retraining=cost,
            total=float(np.mean(list(cost.values()))),
        )
        found = [baselines.expected_found(table, "random", c, runs, seed) for c in cost.values()]
        out["random_search_equal_cost"] = {
            "per_seed": found,
            "mean": float(np.mean(found)),
            "mean_percentile": float(np.mean([table.percentile(f) for f in found])),
        }
    return out


def _differences(pa: dict, pb: dict, table: Table) -> tuple[list[int], list[float]]:
    """The seeds where both pick maps (seed -> genotype) have a pick in the table, and the
    ground-truth differences a minus b on them."""
    seeds = sorted(s for s in set(pa) & set(pb) if pa[s] in table and pb[s] in table)
    return seeds, [table.accuracy(pa[s]) - table.accuracy(pb[s]) for s in seeds]


def paired(a: str, b: str, board: dict, table: Table) -> dict:
    """Paired tests of ground truth (a minus b) over the seeds where both picks are in the table."""
    pa, pb = _by_seed(a, board["estimators"][a]), _by_seed(b, board["estimators"][b])
    seeds, d = _differences(pa, pb, table)
    return {
        "a": a,
        "b": b,
        "seeds": seeds,
        "differences": d,
        "sign_flip": statistics.sign_flip_test(d),
        "wilcoxon": statistics.wilcoxon_signed_rank(d),
    }


def budget_paired(name: str, board: dict, baseline: dict, table: Table) -> dict:
    """Estimator ``name`` on ``board`` against the same estimator on ``baseline`` (another
    scoreboard of the same table, seeds paired: e.g. a longer warm-up against the ten-seed
    board), over the seeds both ran with both picks in the table: the ground-truth differences
    (board minus baseline), one-sided tests that ``board`` finds more, each board's budget
    (``search``) and mean search CPU-minutes over those seeds."""
    for where, b in (("board", board), ("baseline", baseline)):
        if name not in b.get("estimators", {}):
            raise TableError(f"{where} scoreboard has no estimator {name!r}")
    ra, rb = board["estimators"][name], baseline["estimators"][name]
    seeds, d = _differences(_by_seed(name, ra), _by_seed(name, rb), table)

    def minutes(result: dict) -> float | None:
        cpu = dict(zip(result["seeds"], result.get("cpu_minutes", [])))
        if not seeds or len(cpu) != len(result["seeds"]):
            return None
        return float(np.mean([cpu[s] for s in seeds]))

    return {
        "estimator": name,
        "seeds": seeds,
        "differences": d,
        "budget": board.get("search"),
        "baseline_budget": baseline.get("search"),
        "search_cpu_minutes": minutes(ra),
        "baseline_search_cpu_minutes": minutes(rb),
        "sign_flip": statistics.sign_flip_test(d, "greater") if d else None,
        "wilcoxon": statistics.wilcoxon_signed_rank(d, "greater") if d else None,
    }


def render_budget_pairs(pairs: list[dict]) -> str:
    """:func:`budget_paired` results as one markdown table."""
    lines = [
        "| estimator | budget (warm-up + search cycles) against | seeds | mean difference | "
        "one-sided sign-flip p | one-sided Wilcoxon p | CPU-min per search |",
        "|---|---|---|---|---|---|---|",
    ]

    def budget(b: dict | None) -> str:
        return f"{b['warmup_cycles']} + {b['search_cycles']}" if b else "not recorded"

    def minutes(v: float | None) -> str:
        return f"{v:.1f}" if v is not None else "-"

    for p in pairs:
        cells = ["-"] * 3
        if p["differences"]:
            cells = [f"{np.mean(p['differences']):+.2f}", _p(p["sign_flip"]), _p(p["wilcoxon"])]
        lines.append(
            f"| `{p['estimator']}` | {budget(p['budget'])} against {budget(p['baseline_budget'])} "
            f"| {len(p['seeds'])} | {' | '.join(cells)} "
            f"| {minutes(p['search_cpu_minutes'])} against {minutes(p['baseline_search_cpu_minutes'])} |"
        )
    return "\n".join(lines) + "\n"


def against_random(est: dict) -> dict:
    """The default's picks against random search given each seed's CPU-minutes (retraining of
    the pick included; :func:`estimator_statistics`), one-sided (the default finds more)."""
    if "random_search_equal_cost" not in est:
        return {"note": "the scoreboard records no CPU minutes"}
    seeds = [int(s) for s in est["cpu_minutes"]["per_seed_with_retraining"]]
    rand = est["random_search_equal_cost"]["per_seed"]
    d = [t - r for t, r in zip(est["ground_truth"]["values"], rand)]
    return {
        "seeds": seeds,
        "cpu_minutes": list(est["cpu_minutes"]["per_seed_with_retraining"].values()),
        "random_search_expected": rand,
        "differences": d,
        "sign_flip": statistics.sign_flip_test(d, "greater"),
        "wilcoxon": statistics.wilcoxon_signed_rank(d, "greater"),
    }


def table_summary(table: Table) -> dict:
    """The reference's distribution: size, completeness, mean, spread, percentiles, best, seed
    noise (robust and pooled) and the mean CPU-minutes of one stand-alone training."""
    values = np.array([table.accuracy(g) for g in table.reference])
    seeds = [e["seeds"] for e in table.data["genotypes"].values() if len(e["seeds"]) > 1]
    pooled = np.sqrt(np.mean([np.var(s, ddof=1) for s in seeds])) if seeds else float("nan")
    cpu = [c for g in table.data["genotypes"] for c in table.cost_seconds(g)]
    return {
        "reference": len(table.reference),
        "sampled": table.sampled,
        "space_size": table.space_size,
        "complete": table.complete,
        "mean": float(values.mean()),
        "std_between_genotypes": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
        "percentiles": {str(p): float(np.percentile(values, p)) for p in PERCENTILES},
        "best": list(table.best),
        "robust_seed_std": table.robust_seed_std(),
        "pooled_seed_std": float(pooled),
        "training_cpu_minutes": float(np.mean(cpu)) / 60,
    }


def scoreboard_statistics(
    scoreboard: dict,
    table: dict | Table,
    noise_table: dict | Table | None = None,
    runs: int = 500,
    seed: int = 0,
) -> dict:
    """Every statistic of ``scoreboard`` (a ``search_quality*.json`` object) against ``table``.

    ``noise_table``: where the family seed noise of the informative rule comes from (the second
    table has one seed per genotype and takes the first table's). ``runs``: simulated random
    searches per cost; ``seed``: of the bootstrap and of the simulations.
    """
    table = table if isinstance(table, Table) else Table(table)
    noise = (
        noise_table if isinstance(noise_table, Table) or noise_table is None else Table(noise_table)
    )
    if "estimators" not in scoreboard:
        raise TableError("scoreboard lacks key 'estimators'")
    informative = table.informative_families(noise)
    std = (noise or table).robust_seed_std()
    out: dict = {
        "method": {
            "bootstrap": f"percentile bootstrap over seeds, {statistics.BOOTSTRAP_DRAWS} draws, seed {seed}",
            "paired_tests": "two-sided; sign flips exact up to "
            f"{statistics.EXACT_MAX_PERMUTATION} seeds; Wilcoxon signed-rank, zero differences dropped",
            "random_search": f"expected ground truth of {runs} simulated random searches at each seed's CPU-minutes (search + retraining of the pick)",
        },
        "table": {
            **table_summary(table),
            "robust_seed_std": std,
            "informative_families": informative,
            "cpu_hours": table.cpu_seconds() / 3600,
        },
        "estimators": {},
    }
    for name, result in scoreboard["estimators"].items():
        out["estimators"][name] = estimator_statistics(name, result, table, informative, seed, runs)
    names = sorted(scoreboard["estimators"])
    out["pairs"] = [paired(a, b, scoreboard, table) for a, b in itertools.combinations(names, 2)]
    cpu = [m for r in scoreboard["estimators"].values() for m in r.get("cpu_minutes", [])]
    out["scoreboard_cpu_hours"] = float(sum(cpu)) / 60
    default = scoreboard.get("default_estimator")
    if default in out["estimators"] and "ground_truth" in out["estimators"][default]:
        est = out["estimators"][default]
        vs = against_random(est)
        # one test, fixed: the exact paired sign-flip (Wilcoxon is reported beside it, not taken
        # when smaller)
        p = vs.get("sign_flip", {}).get("p", 1.0)
        figures = {  # goal: (the default's figure, the bar)
            "mean_percentile_at_least_90": (est["percentile"]["mean"], GOALS["mean_percentile"]),
            "percentile_interval_low_at_least_80": (
                est["percentile"]["interval"][0],
                GOALS["percentile_interval_low"],
            ),
            "mean_regret_at_most_2_robust_seed_std": (
                est["regret"]["mean"],
                GOALS["regret_seed_stds"] * std,
            ),
            "beats_random_search_p_below_0.05": (p, GOALS["p_against_random"]),
            "kendall_tau_at_least_0.5": (est["kendall_tau"]["mean"], GOALS["kendall_tau"]),
        }
        out["default"] = {
            "estimator": default,
            "against_random_search": vs,
            "goals": {k: _met(k, v, bar) for k, (v, bar) in figures.items()},
            "goal_figures": {k: {"value": v, "bar": bar} for k, (v, bar) in figures.items()},
        }
    return out


def _met(goal: str, value: float | None, bar: float) -> bool:
    if value is None or not np.isfinite(value):
        return False
    if goal.startswith("beats_random"):  # p below the bar
        return bool(value < bar)
    if goal.startswith("mean_regret"):  # at most the bar
        return bool(value <= bar)
    return bool(value >= bar)


# ---- markdown -----------------------------------------------------------------------------------
PARTS = ("estimators", "pairs", "default")
#: How the goals read: (what is measured, the comparison), filled with the figure and the bar.
GOAL_TEXT = {
    "mean_percentile_at_least_90": "mean percentile {value:.1f} (goal >= {bar:g})",
    "percentile_interval_low_at_least_80": "lower end of its 95% CI {value:.1f} (goal >= {bar:g})",
    "mean_regret_at_most_2_robust_seed_std": "mean regret {value:.2f} (goal <= 2 x the robust "
    "seed std {std:.2f} = {bar:.2f})",
    "beats_random_search_p_below_0.05": "beats random search at equal cost: one-sided "
    "sign-flip p {value:.3g} (goal < {bar:g})",
    "kendall_tau_at_least_0.5": "Kendall tau {value} (goal >= {bar:g})",
}


def _ci(stat: dict | None, digits: int = 2) -> str:
    if not stat:
        return "-"
    lo, hi = stat["interval"]
    return f"{stat['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _p(test: dict) -> str:
    return f"{test['p']:.3g}" + ("" if test["exact"] else " (approx.)")


def _tau(tau: dict | None) -> str:
    if not tau or tau["mean"] is None:
        return "-"
    shown = _ci(tau) if tau["interval"] else f"{tau['mean']:.2f}"
    return f"{shown} ({len(tau['per_seed'])})"


def compact_picks(picks: list[str], missing=()) -> str:
    """Each distinct pick with how many seeds found it, most frequent first (ties in the order
    of the seeds); a pick the table does not hold yet says so."""
    counts = collections.Counter(picks)
    return "<br>".join(
        f"`{g}` x{n}" + (" (not in the table yet)" if g in missing else "")
        for g, n in counts.most_common()
    )


def _estimator_rows(stats: dict) -> list[str]:
    lines = [
        "| estimator | seeds | picks (seeds) | mean ground truth [95% CI] | informative macro [95% CI] "
        "| mean percentile [95% CI] | mean regret [95% CI] | Kendall tau [95% CI] (supernets) "
        "| CPU-min: search + retraining | random search at equal cost: expected found |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in stats["estimators"].items():
        cpu, rnd = e.get("cpu_minutes", {}), e.get("random_search_equal_cost")
        if "retrain_pick" in cpu:
            cpu_text = f"{cpu['search']:.1f} + {cpu['retrain_pick']:.1f}"
        else:
            cpu_text = f"{cpu['search']:.1f} + -" if cpu else "-"
        rnd_text = f"{rnd['mean']:.2f}" if rnd else "-"
        truth = _ci(e.get("ground_truth")) if "ground_truth" in e else "no pick in the table yet"
        missing = len(e["missing_from_table"])
        seeds = f"{len(e['seeds'])}" + (f" ({missing} not in the table yet)" if missing else "")
        lines.append(
            f"| `{name}` | {seeds} | {compact_picks(e['picks'], e['missing_from_table'])} "
            f"| {truth} | {_ci(e.get('informative_macro'))} | {_ci(e.get('percentile'), 1)} "
            f"| {_ci(e.get('regret'))} | {_tau(e.get('kendall_tau'))} | {cpu_text} "
            f"| {rnd_text} |"
        )
    return lines


def _pair_rows(stats: dict) -> list[str]:
    lines = [
        "| pair (a - b) | seeds | mean difference | sign-flip p (two-sided) | Wilcoxon p (two-sided) |",
        "|---|---|---|---|---|",
    ]
    for p in stats["pairs"]:
        if p["differences"]:
            mean, tests = f"{np.mean(p['differences']):+.2f}", (p["sign_flip"], p["wilcoxon"])
            cells = [mean, *map(_p, tests)]
        else:  # no seed where both picks are in the table
            cells = ["-"] * 3
        lines.append(f"| `{p['a']}` - `{p['b']}` | {len(p['seeds'])} | {' | '.join(cells)} |")
    return lines


def _default_lines(stats: dict) -> list[str]:
    default = stats.get("default")
    if not default:
        return ["No pick of the default estimator is in the table yet: no goal is judged."]
    vs, std = default["against_random_search"], stats["table"]["robust_seed_std"]
    lines = []
    if "differences" in vs:
        lines.append(
            f"Default `{default['estimator']}` against random search at equal cost: mean difference "
            f"{np.mean(vs['differences']):+.2f} over {len(vs['seeds'])} seeds; one-sided sign-flip "
            f"p = {_p(vs['sign_flip'])}, Wilcoxon p = {_p(vs['wilcoxon'])}."
        )
        lines.append("")
    goals = []
    for key, met in default["goals"].items():
        fig = default["goal_figures"][key]
        value = fig["value"]
        if key == "kendall_tau_at_least_0.5":
            tau = stats["estimators"][default["estimator"]]["kendall_tau"]
            n = len(tau["per_seed"])
            value = f"{value:.2f} ({n} supernet{'s' * (n != 1)})" if value is not None else "-"
        text = GOAL_TEXT[key].format(value=value, bar=fig["bar"], std=std)
        goals.append(f"{text}: {'met' if met else 'missed'}")
    lines.append(f"Goals of the default (6-family macro): {'; '.join(goals)}.")
    return lines


def render_markdown(stats: dict, parts: tuple[str, ...] = PARTS) -> str:
    """The statistics as markdown: ``estimators`` (a row per estimator), ``pairs`` (the paired
    tests), ``default`` (the default against random search, and its goals)."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"render_markdown parts {list(parts)}: accepted values are {PARTS}")
    blocks = {"estimators": _estimator_rows, "pairs": _pair_rows, "default": _default_lines}
    return "\n\n".join("\n".join(blocks[p](stats)) for p in parts) + "\n"
