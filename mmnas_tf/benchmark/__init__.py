"""The ground-truth tables as a benchmark: load a table, ask a genotype's accuracy, size and cost,
score picks, simulate baseline searches and compute the statistics of a scoreboard.

numpy only (no TensorFlow): ``python -m mmnas_tf.benchmark --help`` and
docs/search_results.md ("Using the tables as a benchmark").
"""

from mmnas_tf.benchmark.baselines import curve, expected_found, simulate
from mmnas_tf.benchmark.scoreboard import render_markdown, scoreboard_statistics
from mmnas_tf.benchmark.table import Table, TableError, parse_genotype

__all__ = [
    "Table",
    "TableError",
    "curve",
    "expected_found",
    "parse_genotype",
    "render_markdown",
    "scoreboard_statistics",
    "simulate",
]
