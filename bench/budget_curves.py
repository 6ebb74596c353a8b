"""Budget curves of simulated searches on the ground-truth tables, with the estimators placed on
the same axes (docs/search_results.md, "Baselines and budget curves").

    python -m bench.budget_curves --out=bench/results/budget_curves.json \\
        --plot=docs/budget_curves.png --plot_large=docs/budget_curves_large.png [--runs=500]

Per table: random search (on the second table, drawn from its sample), and on the complete first
table regularised evolution and local search (``mmnas_tf.benchmark.baselines``), each as the mean
ground truth found against CPU-minutes of stand-alone training, over ``--runs`` simulated seeds.
Each estimator of the table's scoreboard is placed at its mean CPU-minutes (search plus one
stand-alone training of its pick) and the mean ground truth of its picks, with 95% bootstrap
intervals over its search seeds, and the report keeps the scoreboard's statistics
(``mmnas_tf.benchmark.scoreboard_statistics``: intervals, paired tests, the default against
random search at equal cost). A scoreboard file that does not exist yet is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from bench.common import report_context
from mmnas_tf.benchmark import baselines, scoreboard
from mmnas_tf.benchmark.table import Table

RESULTS = "bench/results"
SPACES = {  # name -> (table, scoreboard, methods)
    "first": ("search_space_table.json", "search_quality.json", baselines.METHODS),
    "large": ("search_space_table_large.json", "search_quality_large.json", ("random",)),
}
#: scoreboards of the same space at another search budget, placed beside the main one when
#: their file exists (their estimators named with the budget)
OTHER_BUDGETS = {
    "first": ("search_quality_warmup1800.json",),
    "large": ("search_quality_large_warmup1800.json",),
}
COLOURS = {
    "random": "#7f7f7f",
    "evolution": "#17becf",
    "local": "#8c564b",
    "gumbel": "#d62728",
    "gumbel_sampled": "#ff7f0e",
    "proxyless": "#2ca02c",
    "uniform": "#9467bd",
    "gumbel_selection": "#e377c2",
}
OPTIONS = {"evolution": {"population": 8, "sample_size": 3}}  # 64 genotypes: a small population


def budgets(table: Table, points: int = 24) -> list[float]:
    """From one mean training to every genotype of the reference trained once, log-spaced."""
    one = float(np.mean([np.mean(table.cost_seconds(g)) for g in table.reference])) / 60
    return [float(b) for b in np.geomspace(one, one * len(table.reference), points)]


def budget_label(board: dict) -> str:
    """``warm-up W + search S cycles`` of a scoreboard's recorded budget."""
    b = board.get("search")
    if not b:
        return "budget not recorded"
    return f"warm-up {b['warmup_cycles']} + search {b['search_cycles']} cycles"


def placements(stats: dict, default: str | None, suffix: str = "") -> dict:
    """Each estimator's cost (search + retraining of its pick) and ground truth, with intervals
    (keyed by its name and ``suffix``)."""
    out = {}
    for name, e in stats["estimators"].items():
        if "ground_truth" in e and "cpu_minutes" in e:
            cost = list(e["cpu_minutes"]["per_seed_with_retraining"].values())
            out[name + suffix] = {
                "estimator": name,
                "seeds": len(cost),
                "cpu_minutes": float(np.mean(cost)),
                "cpu_minutes_range": [min(cost), max(cost)],
                "ground_truth": e["ground_truth"]["mean"],
                "interval": e["ground_truth"]["interval"],
                "default": name == default,
            }
    return out


def space_report(
    name: str, runs: int, seed: int, noise: Table | None = None, results: str = RESULTS
) -> dict:
    """The curves of one table, and the statistics of its scoreboard when that file exists
    (``noise``: the table giving the family seed noise of the informative rule)."""
    table_file, board_file, methods = SPACES[name]
    table = Table.load(os.path.join(results, table_file))
    grid = budgets(table)
    out = {
        "table": os.path.join(results, table_file),
        "scoreboard": os.path.join(results, board_file),
        "reference": len(table.reference),
        "sampled": table.sampled,
        "best": list(table.best),
        "mean": scoreboard.table_summary(table)["mean"],
        "table_cpu_hours": table.cpu_seconds() / 3600,
        "curves": {
            m: baselines.curve(table, m, grid, runs, seed, **OPTIONS.get(m, {})) for m in methods
        },
        "estimators": {},
    }
    others = [os.path.join(results, other) for other in OTHER_BUDGETS[name]]
    for path in [out["scoreboard"], *others]:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        stats = scoreboard.scoreboard_statistics(board, table, noise, runs, seed)
        if path == out["scoreboard"]:
            out["statistics"] = stats
            suffix = ""
        else:
            label = budget_label(board)
            out.setdefault("other_budgets", {})[path] = {"budget": label, "statistics": stats}
            suffix = f" ({label})"
        out["estimators"].update(placements(stats, board.get("default_estimator"), suffix))
    return out


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for method, c in report["curves"].items():
        x, lo_hi = c["budget_minutes"], np.array(c["interval"])
        ax.plot(x, c["mean"], color=COLOURS[method], label=f"{method} (mean of {c['runs']} runs)")
        ax.fill_between(x, lo_hi[:, 0], lo_hi[:, 1], color=COLOURS[method], alpha=0.25, lw=0)
    for name, e in report["estimators"].items():
        lo, hi = e["interval"]
        other = name != e["estimator"]  # a board of another budget: hollow markers
        ax.errorbar(
            e["cpu_minutes"],
            e["ground_truth"],
            yerr=[[e["ground_truth"] - lo], [hi - e["ground_truth"]]],
            fmt="D" if e["default"] else "o",
            mfc="white" if other else None,
            capsize=3,
            color=COLOURS.get(e["estimator"]),
            label=f"{name}{' (default)' if e['default'] else ''}, {e['seeds']} seeds",
        )
    ax.axhline(report["best"][1], color="k", ls=":", lw=1, label="best of the reference")
    ax.axhline(report["mean"], color="k", ls="--", lw=1, label="a random genotype (mean)")
    ax.set_xscale("log")
    ax.set_xlabel(
        "CPU-minutes of stand-alone training (estimators: search + retraining of the pick)"
    )
    ax.set_ylabel("mean ground truth found (macro accuracy, %)")
    what = "sample of" if report["sampled"] else "all"
    ax.set_title(f"{what} {report['reference']} genotypes: {os.path.basename(report['table'])}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.budget_curves", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", default=os.path.join(RESULTS, "budget_curves.json"))
    p.add_argument("--plot", default="docs/budget_curves.png")
    p.add_argument("--plot_large", default="docs/budget_curves_large.png")
    p.add_argument("--runs", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default=RESULTS, help="the folder holding the tables")
    args = p.parse_args(argv)
    report = {
        **report_context("bench.budget_curves", argv),
        "runs": args.runs,
        "seed": args.seed,
        "options": OPTIONS,
        "spaces": {},
    }
    first = Table.load(os.path.join(args.results, SPACES["first"][0]))
    for name, path in (("first", args.plot), ("large", args.plot_large)):
        report["spaces"][name] = space_report(name, args.runs, args.seed, first, args.results)
        if path:
            plot(report["spaces"][name], path)
        for method, c in report["spaces"][name]["curves"].items():
            i = min(int(np.searchsorted(c["budget_minutes"], 10.0)), len(c["mean"]) - 1)
            print(
                f"{name}: {method} at {c['budget_minutes'][i]:.1f} CPU-min finds {c['mean'][i]:.2f}"
            )
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
