"""``# fmt: skip`` only where a table would be unreadable otherwise (docs/architecture.md,
"Formatting"); the checker is ``tests/support/fmt_skip.py``."""

from __future__ import annotations

import ast
import pathlib
import textwrap

from support import fmt_skip

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Swept: no marker anywhere in these may keep anything but a table (the whole tree).
SWEPT = ("mmnas_tf", "bench", "tests")

SOURCE = textwrap.dedent(
    """\
    ALIGNED = {
        "SA":  (1,    "self"),
        "GA":  (22,   "guided"),
    }  # fmt: skip
    MATRIX = [
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0],
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0],
    ]  # fmt: skip
    WORDS = {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8",
             "i": "9", "j": "10", "k": "11", "l": "12"}  # fmt: skip
    CALL = dict(alpha=1, beta=2, gamma=3, delta=4, epsilon=5, zeta=6, eta=7, theta=8,
                iota=9)  # fmt: skip
    SHORT = [1, 2]  # fmt: skip
    PAIRS = [
        (1, 2),
        (3, 4),
    ]  # fmt: skip
    INSIDE = [
        1,  # fmt: skip
    ]
    """
)


def test_tables_stay_and_everything_else_is_listed(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    found = [(m.line, m.reason) for m in fmt_skip.unjustified_markers(path)]
    assert found == [
        (12, "not a table: let ruff format it"),  # CALL: arguments, no table
        (13, "not a table: let ruff format it"),  # SHORT: two values
        (17, "rows that ruff format leaves alone"),  # PAIRS: one row per line already
        (19, "not on the last line of a statement"),  # INSIDE: ruff reads no marker there
    ]


def test_kinds_of_table():
    tree = ast.parse(SOURCE)
    lines = SOURCE.splitlines()
    kinds = [
        fmt_skip.table_kind(node, lines[node.lineno - 1 : node.end_lineno]) for node in tree.body
    ]
    assert kinds == ["aligned columns", "rows", "data table", None, None, "rows", None]


def test_fix_removes_only_the_listed_markers_and_formats_their_statements(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    fmt_skip.remove_markers(path, fmt_skip.unjustified_markers(path))
    after = path.read_text()
    assert ast.dump(ast.parse(after)) == ast.dump(ast.parse(SOURCE))
    assert after.count("# fmt: skip") == 3  # the aligned columns, the rows, the data table
    assert "\nCALL = dict(alpha=1, beta=2," in after and "\nSHORT = [1, 2]\n" in after
    assert after.startswith(SOURCE.split("CALL")[0])  # the tables are left as they were
    assert fmt_skip.unjustified_markers(path) == []


def test_swept_folders_keep_markers_on_tables_only():
    files = fmt_skip.python_files([str(ROOT / p) for p in SWEPT])
    found = [str(m) for f in files for m in fmt_skip.unjustified_markers(f)]
    assert not found, "markers that keep no table:\n" + "\n".join(found)
