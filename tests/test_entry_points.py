"""Every entry point follows one command-line convention (``mmnas_tf.cli``): ``define_flags(fv)``,
``main(argv)``, ``cli.run(main)`` under ``__main__``, nothing defined at import, no flag accepted
and ignored."""

import ast
import importlib
import pathlib

import pytest
import tensorflow  # noqa: F401  (TensorFlow registers absl flags of its own when imported)
from absl import app, flags
from test_layering import ORDER

import mmnas_tf

#: The entry-point layer of the layering test (one list: the docs' layer table equals it).
ENTRY_POINTS = dict(ORDER)["entry points"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_convention(name):
    before = set(flags.FLAGS)
    module = importlib.import_module(f"mmnas_tf.{name}")
    assert set(flags.FLAGS) == before, f"mmnas_tf.{name} defines global flags at import"
    assert callable(module.main) and callable(module.define_flags)
    source = pathlib.Path(module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    last = tree.body[-1]
    assert isinstance(last, ast.If) and ast.unparse(last.test) == "__name__ == '__main__'"
    assert [ast.unparse(s) for s in last.body] == ["cli.run(main)"]
    # module level: docstring, imports, constants, functions; no calls
    for node in tree.body[:-1]:
        assert not isinstance(node, ast.Expr) or isinstance(node.value, ast.Constant), (
            f"mmnas_tf.{name} line {node.lineno} runs {ast.unparse(node)} at import"
        )
    # mmnas_tf.cli (through mmnas_tf.console) quiets TensorFlow before anything imports it
    imported = [
        n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert "mmnas_tf" in imported, f"mmnas_tf.{name} does not import mmnas_tf.cli"
    before_cli = imported[: imported.index("mmnas_tf")]
    assert not {"tensorflow", "keras"} & {m.split(".")[0] for m in before_cli}, before_cli
    fv = flags.FlagValues()
    module.define_flags(fv)
    fv2 = flags.FlagValues()
    module.define_flags(fv2)  # twice in one process: no duplicate-flag error


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_lists_the_flags(name, capsys):
    module = importlib.import_module(f"mmnas_tf.{name}")
    with pytest.raises(SystemExit) as e:
        module.main([name, "--help"])
    assert e.value.code == 0
    fv = flags.FlagValues()
    module.define_flags(fv)
    out = capsys.readouterr().out
    for flag in fv:
        if len(flag) > 1:
            assert f"--{flag}" in out or f"--[no]{flag}" in out, flag


@pytest.mark.parametrize(
    "name, argv",
    [
        # a search explores the op pools: there is no genotype to take
        ("search", ["--config=vqa_tiny", "--model_dir=/nonexistent", "--genotype=g.json"]),
        # evaluation runs on one device
        ("evaluate", ["--config=vqa_tiny", "--checkpoint=/nonexistent", "--strategy=mirrored"]),
    ],
)
def test_unused_flags_are_refused_with_the_accepted_ones(name, argv):
    module = importlib.import_module(f"mmnas_tf.{name}")
    flag = argv[-1].split("=")[0]
    with pytest.raises(
        app.UsageError, match=f"Unknown command line flag '{flag[2:]}'.*accepts .*--config"
    ):
        module.main([name, *argv])


def test_entry_points_are_the_package_s_top_level_drivers():
    root = pathlib.Path(mmnas_tf.__file__).parent
    drivers = set()
    for path in root.glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
                drivers.add(path.stem)
    assert drivers == set(ENTRY_POINTS)


def test_cli_imports_the_console_before_anything_that_imports_tensorflow():
    from mmnas_tf import cli

    tree = ast.parse(pathlib.Path(cli.__file__).read_text(encoding="utf-8"))
    first = next(
        n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module.startswith("mmnas_tf")
    )
    assert ast.unparse(first) == "from mmnas_tf import console"
    others = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(
        (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
        in (
            "__future__",
            "dataclasses",
            "errno",
            "os",
            "re",
            "sys",
            "traceback",
            "collections",
            "absl",
        )
        for n in others[: others.index(first)]
    )


def test_no_module_beside_the_entry_points_has_a_standard_library_name():
    """``python mmnas_tf/<name>.py`` puts ``mmnas_tf/`` first on ``sys.path``: a module there named
    like one of the standard library (``inspect.py`` was) replaces it for every import of the
    process, Python's own modules included."""
    import sys

    package = pathlib.Path(mmnas_tf.__file__).parent
    modules = {p.stem for p in package.glob("*.py")}
    packages = {p.name for p in package.iterdir() if p.is_dir()}
    assert sorted((modules | packages) & set(sys.stdlib_module_names)) == []
