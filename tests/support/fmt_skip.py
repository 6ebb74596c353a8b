"""Lists ``# fmt: skip`` markers that do not keep a table (the rule: docs/architecture.md,
"Formatting").

A marker stays only where ``ruff format`` would make a table or an aligned literal unreadable. A
statement counts as one when it holds

- aligned columns: two or more of its lines with a run of two or more spaces inside the code
  (outside strings and comments), which the formatter would collapse;
- rows: two or more lines that are each one bracketed row of two or more items (a matrix, a list
  of tuples), which the formatter would split one item per line when a row is long;
- a data table: a literal of constants only (numbers, strings, and lists, tuples, dicts or sets of
  them) with at least ``DATA_TABLE_ITEMS`` values, which the formatter would spread one per line.

Any other marker is listed, and so is a marker on a statement the formatter leaves as it is, or
one that ends no statement (ruff ignores it). Commands, from the repository root::

    python tests/support/fmt_skip.py [PATH ...]        # lists them; exit status 1 if any
    python tests/support/fmt_skip.py --fix [PATH ...]  # removes them, then ruff-formats each file

(default PATHs: ``mmnas_tf bench tests``). ``--fix`` formats whole files, so run it on files that
``ruff format --check`` passes: then only the statements that lost their marker change.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import re
import subprocess
import sys
import tokenize

MARKER = "fmt: skip"
DATA_TABLE_ITEMS = 24

_STRING = re.compile(r"""[rbfuRBFU]*("[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*')""")


@dataclasses.dataclass(frozen=True)
class Marker:
    path: str
    line: int  # the marker's line (the statement's last line)
    first: int  # the statement's first line
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason} (lines {self.first}-{self.line})"


def _marker_lines(source: str) -> list[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.start[0] for t in tokens if t.type == tokenize.COMMENT and MARKER in t.string]


def _statement(tree: ast.AST, line: int) -> ast.AST | None:
    """What a trailing marker on ``line`` belongs to (as ruff reads it): the innermost statement
    or decorator ending there, or the compound statement whose header ends there."""
    ending, headers = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        if node.end_lineno == line:
            ending.append(node)
        ending += [d for d in getattr(node, "decorator_list", []) if d.end_lineno == line]
        body = getattr(node, "body", None)
        if body and node.lineno <= line < body[0].lineno:
            headers.append(node)
    if ending:
        return max(ending, key=lambda n: n.lineno)
    return max(headers, key=lambda n: n.lineno) if headers else None


def _code(line: str) -> str:
    """``line`` without its strings, its comment and its indentation."""
    code = _STRING.sub('""', line)
    return code.split("#", 1)[0].strip()


def _is_row(code: str) -> bool:
    code = code.rstrip(",").strip()
    if not code or code[0] not in "([{":
        return False
    depth, commas = 0, 0
    for i, ch in enumerate(code):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                rest = code[i + 1 :].replace(",", "").replace(")", "").replace("]", "")
                return commas >= 1 and not rest.replace("}", "").strip()
        elif ch == "," and depth == 1:
            commas += 1
    return False


def _constant_values(node: ast.AST) -> int | None:
    """How many constants a literal of constants only holds (None if it holds anything else)."""
    if isinstance(node, ast.Constant):
        return 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return 1
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = node.elts
    elif isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            return None
        items = [*node.keys, *node.values]
    else:
        return None
    counts = [_constant_values(item) for item in items]
    return None if None in counts else sum(counts)


def table_kind(statement: ast.AST, lines: list[str]) -> str | None:
    """``aligned columns``, ``rows`` or ``data table`` when the statement is one, else None."""
    code = [_code(line) for line in lines]
    if sum(1 for c in code if "  " in c) >= 2:
        return "aligned columns"
    if sum(1 for c in code if _is_row(c)) >= 2:
        return "rows"
    value = statement if isinstance(statement, ast.expr) else getattr(statement, "value", None)
    if value is not None and (_constant_values(value) or 0) >= DATA_TABLE_ITEMS:
        return "data table"
    return None


def _formatted(source: str, path: str) -> str:
    command = [sys.executable, "-m", "ruff", "format", "--stdin-filename", path, "-"]
    return subprocess.run(command, input=source, capture_output=True, text=True, check=True).stdout


def _without_marker(source_lines: list[str], line: int) -> str:
    text = source_lines[line - 1]
    at = text.index(MARKER)
    hash_at = text.rindex("#", 0, at)
    before = text[:hash_at].rstrip()
    after = text[at + len(MARKER) :]
    edited = before + (("  #" + after) if after.strip() else "") + "\n"
    return "".join(source_lines[: line - 1] + [edited] + source_lines[line:])


def unjustified_markers(path: pathlib.Path | str, check_formatter: bool = True) -> list[Marker]:
    """The markers of one Python file that do not keep a table, or that the formatter would not
    need (``check_formatter``: runs ``ruff format`` once per table-like marker)."""
    path = str(path)
    source = pathlib.Path(path).read_text(encoding="utf-8")
    source_lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    found = []
    for line in _marker_lines(source):
        statement = _statement(tree, line)
        if statement is None:
            found.append(Marker(path, line, line, "not on the last line of a statement"))
            continue
        first = statement.lineno
        kind = table_kind(statement, [source_lines[i - 1] for i in range(first, line + 1)])
        if kind is None:
            found.append(Marker(path, line, first, "not a table: let ruff format it"))
        elif check_formatter:
            unmarked = _without_marker(source_lines, line)
            if _formatted(unmarked, path) == unmarked:
                found.append(Marker(path, line, first, f"{kind} that ruff format leaves alone"))
    return found


def remove_markers(path: pathlib.Path | str, markers: list[Marker]) -> None:
    """Takes ``markers`` out of one file and lets ``ruff format`` lay out their statements (the
    file's other statements, formatted already, stay as they are)."""
    source_lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    for marker in sorted(markers, key=lambda m: -m.line):
        source_lines = _without_marker(source_lines, marker.line).splitlines(keepends=True)
    pathlib.Path(path).write_text("".join(source_lines), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)


def python_files(paths: list[str]) -> list[pathlib.Path]:
    files = []
    for p in map(pathlib.Path, paths):
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def main(argv: list[str]) -> int:
    fix = "--fix" in argv
    paths = [a for a in argv if a != "--fix"] or ["mmnas_tf", "bench", "tests"]
    total = 0
    for f in python_files(paths):
        found = unjustified_markers(f)
        total += len(found)
        for marker in found:
            print(marker)
        if fix and found:
            remove_markers(f, found)
    verb = "removed" if fix else "to remove"
    print(f"{total} marker(s) {verb}", file=sys.stderr)
    return 0 if fix or not total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
