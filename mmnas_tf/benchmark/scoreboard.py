"""The statistics of an estimator scoreboard (``bench/results/search_quality*.json``) against its
ground-truth table: what differences the seeds can support.

Per estimator: mean ground truth, percentile and regret of its picks with 95% bootstrap intervals
over seeds, the informative-family macro beside the 6-family one, Kendall's tau of its supernet.
Per pair of estimators: paired tests over the seeds both ran (exact sign-flip permutation and
Wilcoxon signed-rank, two-sided). The default estimator against random search at equal cost:
each seed's search CPU-minutes plus one stand-alone training of its pick buys random search that
many CPU-minutes of training (simulated on the table); the one-sided tests ask whether the
default's picks beat the expected random-search result at each seed's cost.
"""

from __future__ import annotations

import itertools

import numpy as np

from mmnas_tf.benchmark import baselines, statistics
from mmnas_tf.benchmark.table import Table, TableError

SIGNIFICANCE = 0.05
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


def _taus(result: dict, table: Table) -> list[float]:
    supernets = result.get("supernets") or result.get("supernet") or []  # one per seed, or seed 0's
    supernets = [supernets] if isinstance(supernets, dict) else supernets
    taus = []
    for scores in supernets:
        common = [g for g in scores if g in table.reference]
        if len(common) >= 2:
            truth = [table.accuracy(g) for g in common]
            taus.append(statistics.kendall_tau([scores[g] for g in common], truth))
    return taus


def _by_seed(name: str, result: dict) -> dict[int, str]:
    for key in ("picks", "seeds"):
        if key not in result:
            raise TableError(f"scoreboard estimator {name!r} lacks key {key!r}")
    return dict(zip(result["seeds"], result["picks"]))


def estimator_statistics(name: str, result: dict, table: Table, informative, seed: int = 0) -> dict:
    picks = _by_seed(name, result)
    known = {s: g for s, g in picks.items() if g in table}
    out: dict = {
        "seeds": sorted(picks),
        "picks": [picks[s] for s in sorted(picks)],
        "missing_from_table": [g for g in picks.values() if g not in table],
    }
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
    out["kendall_tau"] = {
        "per_seed": taus,
        "mean": float(np.mean(taus)) if taus else None,
        "interval": list(statistics.bootstrap_interval(taus, seed=seed)) if len(taus) > 1 else None,
    }
    search = dict(zip(result["seeds"], result.get("cpu_minutes", [])))
    if len(search) == len(picks):
        retrain = {s: float(np.mean(table.cost_seconds(g))) / 60 for s, g in known.items()}
        out["cpu_minutes"] = {
            "search": float(np.mean(list(search.values()))),
            "retrain_pick": float(np.mean(list(retrain.values()))),
            "per_seed_with_retraining": {str(s): search[s] + retrain[s] for s in sorted(known)},
        }
        out["cpu_minutes"]["total"] = float(
            np.mean(list(out["cpu_minutes"]["per_seed_with_retraining"].values()))
        )
    return out


def paired(a: str, b: str, board: dict, table: Table) -> dict:
    """Paired tests of ground truth (a minus b) over the seeds where both picks are in the table."""
    pa, pb = _by_seed(a, board["estimators"][a]), _by_seed(b, board["estimators"][b])
    seeds = sorted(s for s in set(pa) & set(pb) if pa[s] in table and pb[s] in table)
    d = [table.accuracy(pa[s]) - table.accuracy(pb[s]) for s in seeds]
    return {
        "a": a,
        "b": b,
        "seeds": seeds,
        "differences": d,
        "sign_flip": statistics.sign_flip_test(d),
        "wilcoxon": statistics.wilcoxon_signed_rank(d),
    }


def against_random(est: dict, table: Table, runs: int, seed: int) -> dict:
    """The default's picks against random search given each seed's CPU-minutes (retraining of
    the pick included), one-sided (the default finds more)."""
    costs = est.get("cpu_minutes", {}).get("per_seed_with_retraining", {})
    if not costs:
        return {"note": "the scoreboard records no CPU minutes"}
    truth = dict(zip(est["seeds"], est["ground_truth"]["values"])) if "ground_truth" in est else {}
    seeds = [int(s) for s in costs if int(s) in truth]
    rand = [baselines.expected_found(table, "random", costs[str(s)], runs, seed) for s in seeds]
    d = [truth[s] - r for s, r in zip(seeds, rand)]
    return {
        "seeds": seeds,
        "cpu_minutes": [costs[str(s)] for s in seeds],
        "random_search_expected": rand,
        "differences": d,
        "sign_flip": statistics.sign_flip_test(d, "greater"),
        "wilcoxon": statistics.wilcoxon_signed_rank(d, "greater"),
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
            "reference": len(table.reference),
            "sampled": table.sampled,
            "best": list(table.best),
            "robust_seed_std": std,
            "informative_families": informative,
            "cpu_hours": table.cpu_seconds() / 3600,
        },
        "estimators": {},
    }
    for name, result in scoreboard["estimators"].items():
        out["estimators"][name] = estimator_statistics(name, result, table, informative, seed)
    names = sorted(scoreboard["estimators"])
    out["pairs"] = [paired(a, b, scoreboard, table) for a, b in itertools.combinations(names, 2)]
    cpu = [m for r in scoreboard["estimators"].values() for m in r.get("cpu_minutes", [])]
    out["scoreboard_cpu_hours"] = float(sum(cpu)) / 60
    default = scoreboard.get("default_estimator")
    if default in out["estimators"] and "ground_truth" in out["estimators"][default]:
        est = out["estimators"][default]
        vs = against_random(est, table, runs, seed)
        tau = est["kendall_tau"]["mean"]
        p = min(vs.get("sign_flip", {}).get("p", 1.0), vs.get("wilcoxon", {}).get("p", 1.0))
        out["default"] = {
            "estimator": default,
            "against_random_search": vs,
            "goals": {
                "mean_percentile_at_least_90": est["percentile"]["mean"]
                >= GOALS["mean_percentile"],
                "percentile_interval_low_at_least_80": est["percentile"]["interval"][0]
                >= GOALS["percentile_interval_low"],
                "mean_regret_at_most_2_robust_seed_std": est["regret"]["mean"]
                <= GOALS["regret_seed_stds"] * std,
                "beats_random_search_p_below_0.05": p < GOALS["p_against_random"],
                "kendall_tau_at_least_0.5": tau is not None and tau >= GOALS["kendall_tau"],
            },
        }
    return out


def _ci(stat: dict | None, digits: int = 2) -> str:
    if not stat:
        return "-"
    lo, hi = stat["interval"]
    return f"{stat['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _p(test: dict) -> str:
    return f"{test['p']:.3g}" + ("" if test["exact"] else " (approx.)")


def render_markdown(stats: dict) -> str:
    """The statistics as markdown tables (per estimator, per pair, the default's goals)."""
    lines = [
        "| estimator | seeds | mean ground truth [95% CI] | informative macro [95% CI] | mean percentile [95% CI] | mean regret [95% CI] | Kendall tau (supernets) | CPU-min: search + retraining |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in stats["estimators"].items():
        tau = e.get("kendall_tau", {})
        tau_text = (
            f"{tau['mean']:.2f} ({len(tau['per_seed'])})" if tau.get("mean") is not None else "-"
        )
        cpu = e.get("cpu_minutes")
        cpu_text = f"{cpu['search']:.1f} + {cpu['retrain_pick']:.1f}" if cpu else "-"
        lines.append(
            f"| `{name}` | {len(e['seeds'])} | {_ci(e.get('ground_truth'))} | {_ci(e.get('informative_macro'))} | "
            f"{_ci(e.get('percentile'), 1)} | {_ci(e.get('regret'))} | {tau_text} | {cpu_text} |"
        )
    lines += [
        "",
        "| pair (a - b) | seeds | mean difference | sign-flip p (two-sided) | Wilcoxon p (two-sided) |",
        "|---|---|---|---|---|",
    ]
    for p in stats["pairs"]:
        mean = f"{np.mean(p['differences']):+.2f}" if p["differences"] else "-"
        lines.append(
            f"| `{p['a']}` - `{p['b']}` | {len(p['seeds'])} | {mean} | {_p(p['sign_flip'])} | {_p(p['wilcoxon'])} |"
        )
    default = stats.get("default")
    if default and "differences" in default["against_random_search"]:
        vs = default["against_random_search"]
        lines += [
            "",
            f"Default `{default['estimator']}` against random search at equal cost: mean difference "
            f"{np.mean(vs['differences']):+.2f} over {len(vs['seeds'])} seeds; one-sided sign-flip "
            f"p = {_p(vs['sign_flip'])}, Wilcoxon p = {_p(vs['wilcoxon'])}. Goals: "
            + ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in default["goals"].items())
            + ".",
        ]
    return "\n".join(lines) + "\n"
