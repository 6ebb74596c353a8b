"""The package's import graph: layers import downwards only and no two packages import each other.

Every import counts, at module level or inside a function (a lower package may not import a higher
one even lazily). The order is the one drawn in docs/architecture.md; a package or top-level module
that is not listed fails the test, so a new one has to be placed explicitly.
"""

from __future__ import annotations

import ast
import os
import pathlib

import pytest

import mmnas_tf

#: Lowest first. Units are the top-level modules and subpackages of ``mmnas_tf`` ("" = its
#: ``__init__``). A unit may import units of its own layer or of lower layers, never a higher one.
ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core types",
        (
            "",
            "console",
            "files",
            "inputs",
            "config",
            "genotype",
            "text",
            "ops",
            "precision",
            "machine",
        ),
    ),
    ("layers and the mixed op", ("layers",)),
    ("models", ("models",)),
    ("data", ("data",)),
    ("synthetic scenes and texts", ("synthbench",)),
    ("tasks", ("tasks",)),
    ("pictures", ("viz",)),
    ("engine", ("engine",)),
    ("nas", ("nas",)),
    ("experiments", ("experiments", "runs", "explain_run")),
    ("export and compatibility", ("serving", "compat")),
    ("tools around the library", ("devserver", "benchmark")),
    ("driver plumbing", ("cli",)),
    (
        "entry points",
        (
            "convert",
            "synthetic",
            "search",
            "train",
            "evaluate",
            "export",
            "serve",
            "predict",
            "import_official",
            "quickstart",
            "inspect_genotype",
        ),
    ),
)


def _module_name(package: str, root: pathlib.Path, path: pathlib.Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(package: str, root: pathlib.Path, dotted: str) -> bool:
    rel = pathlib.Path(*dotted.split(".")[1:]) if "." in dotted else pathlib.Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def package_imports(root: str | os.PathLike, package: str):
    """Yields (module, line, imported module) for every import of ``package`` inside it."""
    root = pathlib.Path(root)
    for path in sorted(root.rglob("*.py")):
        module = _module_name(package, root, path)
        is_init = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base if is_init else base[:-1]
                    base = base[: len(base) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # ``from pkg import sub`` imports the submodule ``pkg.sub`` when it is one
                targets = [
                    f"{origin}.{a.name}"
                    if _is_module(package, root, f"{origin}.{a.name}")
                    else origin
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target == package or target.startswith(package + "."):
                    yield module, node.lineno, target


def _unit(package: str, module: str) -> str:
    return module[len(package) + 1 :].split(".")[0] if module != package else ""


def check_layering(root: str | os.PathLike, package: str, order=ORDER) -> list[str]:
    """Problems of ``package`` (its source folder ``root``) against ``order``: unlisted units,
    upward imports, cycles between units, module-level ``__getattr__`` (a lazy-import hook)."""
    rank = {unit: i for i, (_, units) in enumerate(order) for unit in units}
    layer = {unit: name for name, units in order for unit in units}
    problems, edges = [], {}
    root = pathlib.Path(root)
    for path in sorted(root.rglob("*.py")):
        module = _module_name(package, root, path)
        unit = _unit(package, module)
        if unit not in rank:
            problems.append(f"{module}: unit {unit!r} is not in the layer order; place it there")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            problems.append(f"{module}: module-level __getattr__ (lazy imports hide the layering)")
    for module, line, target in package_imports(root, package):
        src, dst = _unit(package, module), _unit(package, target)
        if src == dst or src not in rank or dst not in rank:
            continue
        edges.setdefault(src, {}).setdefault(dst, (module, line, target))
        if rank[dst] > rank[src]:
            problems.append(
                f"upward import: {module} (line {line}, layer {layer[src]!r}) imports {target} "
                f"(layer {layer[dst]!r})"
            )
    for cycle in _cycles(edges):
        hops = [edges[a][b] for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        problems.append(
            "import cycle between "
            + " -> ".join(repr(u) for u in [*cycle, cycle[0]])
            + ": "
            + "; ".join(f"{m} (line {ln}) imports {t}" for m, ln, t in hops)
        )
    return list(dict.fromkeys(problems))  # ``from a import b, c`` is one import


def _cycles(edges: dict[str, dict[str, tuple]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one unit."""
    found, done = [], set()
    for start in sorted(edges):
        if start in done:
            continue
        stack, path = [(start, iter(sorted(edges.get(start, {}))))], [start]
        on_path = {start}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(path.pop())
                done.add(node)
            elif child in on_path:
                cycle = path[path.index(child) :]
                if not any(set(cycle) == set(c) for c in found):
                    found.append(cycle)
            elif child not in done:
                stack.append((child, iter(sorted(edges.get(child, {})))))
                path.append(child)
                on_path.add(child)
    return found


def test_package_imports_point_downwards_without_cycles():
    root = pathlib.Path(mmnas_tf.__file__).parent
    problems = check_layering(root, "mmnas_tf")
    assert not problems, "\n".join(problems)


def test_every_unit_of_the_order_exists():
    root = pathlib.Path(mmnas_tf.__file__).parent
    missing = [
        unit
        for _, units in ORDER
        for unit in units
        if unit and not _is_module("mmnas_tf", root, f"mmnas_tf.{unit}")
    ]
    assert not missing, f"listed in ORDER but not in the package: {missing}"


def _documented_order(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The layer table of docs/architecture.md (the rows after "In text, lowest first")."""
    rows, inside = [], False
    for line in text.splitlines():
        if "In text, lowest first" in line:
            inside = True
        elif inside and line.startswith("|") and not line.startswith(("| layer |", "|---")):
            name, units = (cell.strip() for cell in line.strip("|").split("|"))
            rows.append((name, tuple(u.strip().strip("`") for u in units.split(","))))
        elif inside and rows and not line.startswith("|"):
            break
    return [(name, tuple("" if u == "__init__" else u for u in units)) for name, units in rows]


def test_the_documented_layers_equal_the_order():
    doc = pathlib.Path(__file__).parents[1] / "docs" / "architecture.md"
    text = doc.read_text(encoding="utf-8")
    assert _documented_order(text) == [(name, tuple(units)) for name, units in ORDER]
    chain = next(line for line in text.splitlines() if line.strip().startswith("core -->"))
    assert len(chain.split("-->")) == len(ORDER), chain


# Task knowledge stays in tasks/ ------------------------------------------------------------------

#: (file under mmnas_tf/, word) -> why that task name or output key may appear outside ``tasks/``.
#: Only named defaults belong here; a stale entry (the word gone from the file) fails the test.
TASK_WORD_WHITELIST: dict[tuple[str, str], str] = {
    ("quickstart.py", "vqa_tiny"): "the quickstart's named experiment (it is a VQA demo)",
    ("predict.py", "vqa"): "the --model_name default (the served model's name)",
    ("nas/selection.py", "score"): "the selection's own ranking key, not ITM's output",
    ("viz/search_plots.py", "score"): "reads the selection's ranking key from selection.json "
    "(nas/selection.py's SCORE_KEY; viz is below nas and cannot import it)",
    ("benchmark/__main__.py", "score"): "the tables CLI's subcommand that scores picks, not "
    "ITM's output",
    ("models/grounder.py", "score"): "a layer's name, part of the variable paths of every VG "
    "checkpoint",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


def task_words_outside(root: str | os.PathLike, words: set[str], inside: str = "tasks"):
    """Yields (file relative to ``root``, line, word) for every string literal outside the
    ``inside`` folder that is exactly one of ``words`` (docstrings and comments do not count)."""
    root = pathlib.Path(root)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == inside:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in words
                and id(node) not in skip
            ):
                yield rel, node.lineno, node.value


def task_words() -> set[str]:
    """Every registered task's name, its ``<name>_tiny`` experiment and its own output keys."""
    from mmnas_tf.tasks import get_task, task_names

    words = set()
    for name in task_names():
        task = get_task(name)
        words |= {name, f"{name}_tiny", task.prediction_output, *task.output_keys}
    return words - {""}


def test_no_task_name_or_output_key_outside_tasks():
    root = pathlib.Path(mmnas_tf.__file__).parent
    found = list(task_words_outside(root, task_words()))
    problems = [
        f"{rel}:{line}: {word!r} (a task's name or output key; ask the Task instead, or whitelist "
        "a named default in TASK_WORD_WHITELIST)"
        for rel, line, word in found
        if (rel, word) not in TASK_WORD_WHITELIST
    ]
    assert not problems, "\n".join(problems)
    stale = set(TASK_WORD_WHITELIST) - {(rel, word) for rel, _, word in found}
    assert not stale, f"whitelisted but no longer there: {sorted(stale)}"


def test_task_words_checker_on_a_small_package(tmp_path):
    files = {
        "tasks/toy.py": 'NAME = "toy"\n',  # inside tasks/: allowed
        "viz.py": '"""Draws the toy task."""\n\n\ndef f(o):\n    """o["toy"]"""\n    return o\n',
        "engine.py": 'def f(o):\n    return o["toy"] if "box" in o else None\n',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = list(task_words_outside(tmp_path, {"toy", "box"}))
    assert sorted(found) == [("engine.py", 2, "box"), ("engine.py", 2, "toy")]


# The checker on a small synthetic package ------------------------------------------------------

SMALL_ORDER = (("base", ("", "core")), ("middle", ("mid",)), ("top", ("app",)))


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


CLEAN = {
    "__init__.py": "",
    "core.py": "X = 1\n",
    "mid/__init__.py": "",
    "mid/thing.py": "from pkg import core\nfrom pkg.mid import other\n",
    "mid/other.py": "from . import thing\n",  # inside one unit: allowed
    "app.py": "from pkg.mid.thing import core\nimport pkg.core\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    assert check_layering(_write(tmp_path, CLEAN), "pkg", SMALL_ORDER) == []


def test_checker_names_a_planted_upward_import(tmp_path):
    files = dict(
        CLEAN, **{"core.py": "def f():\n    from pkg.mid import thing\n    return thing\n"}
    )
    problems = check_layering(_write(tmp_path, files), "pkg", SMALL_ORDER)
    assert any(
        p.startswith("upward import: pkg.core (line 2, layer 'base') imports pkg.mid.thing")
        for p in problems
    ), problems


def test_checker_resolves_relative_and_from_package_imports(tmp_path):
    files = dict(CLEAN, **{"mid/other.py": "from .. import app\n"})
    problems = check_layering(_write(tmp_path, files), "pkg", SMALL_ORDER)
    assert problems == [
        "upward import: pkg.mid.other (line 1, layer 'middle') imports pkg.app (layer 'top')",
        # app imports mid (downwards), so the upward import also closes a cycle
        "import cycle between 'app' -> 'mid' -> 'app': pkg.app (line 1) imports pkg.mid.thing; "
        "pkg.mid.other (line 1) imports pkg.app",
    ]


def test_checker_names_a_cycle_within_one_layer(tmp_path):
    order = (("base", ("", "core", "util")), ("middle", ("mid",)), ("top", ("app",)))
    files = dict(CLEAN, **{"core.py": "import pkg.util\n", "util.py": "from pkg import core\n"})
    problems = check_layering(_write(tmp_path, files), "pkg", order)
    assert problems == [
        "import cycle between 'core' -> 'util' -> 'core': pkg.core (line 1) imports pkg.util; "
        "pkg.util (line 1) imports pkg.core"
    ]


def test_checker_rejects_unlisted_units_and_lazy_getattr(tmp_path):
    files = dict(CLEAN, **{"extra.py": "", "mid/__init__.py": "def __getattr__(name):\n    pass\n"})
    problems = check_layering(_write(tmp_path, files), "pkg", SMALL_ORDER)
    assert problems == [
        "pkg.extra: unit 'extra' is not in the layer order; place it there",
        "pkg.mid: module-level __getattr__ (lazy imports hide the layering)",
    ]


@pytest.mark.parametrize("unit", ["", "core"])
def test_small_order_units_exist(tmp_path, unit):
    root = _write(tmp_path, CLEAN)
    assert _is_module("pkg", root, f"pkg.{unit}" if unit else "pkg")
