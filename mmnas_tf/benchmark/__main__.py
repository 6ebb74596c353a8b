"""Command line of the benchmark tables (prints JSON; errors to stderr, exit status 2).

python -m mmnas_tf.benchmark show TABLE "enc[SA] dec[GA RSA GA]"
python -m mmnas_tf.benchmark score TABLE "enc[SA] dec[GA RSA RSA]" "enc[SA] dec[GA RSA SA]"
python -m mmnas_tf.benchmark baseline TABLE --method=evolution --budget 10 30 [--runs=200]
python -m mmnas_tf.benchmark stats SCOREBOARD TABLE [--noise_table=FIRST_TABLE] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys

from mmnas_tf.benchmark import baselines, scoreboard
from mmnas_tf.benchmark.table import Table, TableError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmnas_tf.benchmark", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="everything the table holds about one genotype")
    show.add_argument("table")
    show.add_argument("genotype")
    score = sub.add_parser("score", help="ground truth, percentile and regret of picks")
    score.add_argument("table")
    score.add_argument("picks", nargs="+")
    base = sub.add_parser("baseline", help="a simulated search's mean ground truth at a budget")
    base.add_argument("table")
    base.add_argument("--method", choices=baselines.METHODS, default="random")
    base.add_argument(
        "--budget",
        type=float,
        nargs="+",
        required=True,
        help="CPU-minutes of training, one or more",
    )
    base.add_argument("--runs", type=int, default=200)
    base.add_argument("--population", type=int, default=8, help="evolution's population")
    base.add_argument("--sample_size", type=int, default=3, help="evolution's tournament size")
    base.add_argument("--seed", type=int, default=0)
    stats = sub.add_parser("stats", help="statistics of a scoreboard against its table")
    stats.add_argument("scoreboard")
    stats.add_argument("table")
    stats.add_argument("--noise_table", help="the table giving family seed noise (first table)")
    stats.add_argument("--runs", type=int, default=500)
    stats.add_argument("--markdown", action="store_true")
    return p


def _json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise TableError(f"cannot read {path!r}: {e}") from None


def run(args: argparse.Namespace) -> dict | str:
    table = Table.load(args.table)
    if args.command == "show":
        return table.describe(args.genotype)
    if args.command == "score":
        return table.score(args.picks)
    if args.command == "baseline":
        options = (
            {"population": args.population, "sample_size": args.sample_size}
            if args.method == "evolution"
            else {}
        )
        return baselines.curve(table, args.method, args.budget, args.runs, args.seed, **options)
    noise = Table.load(args.noise_table) if args.noise_table else None
    out = scoreboard.scoreboard_statistics(_json(args.scoreboard), table, noise, args.runs)
    return scoreboard.render_markdown(out) if args.markdown else out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        out = run(args)
    except (TableError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out if isinstance(out, str) else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
