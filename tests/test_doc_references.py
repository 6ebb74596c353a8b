"""Every file, folder and module the docs name exists.

Read: README.md, docs/*.md and the READMEs of bench/, tf_serving/ and tfrecords/, plus the docstrings
and comments of the package. Checked: a code span that is a repository path (``mmnas_tf/...``,
``tests/...``, ``docs/...``, ...), a relative Markdown link, and every dotted name under
``mmnas_tf.`` or ``bench.`` (a module, a package, or a name defined at the top of one). Placeholders
(``<name>``, ``{a,b}``, ``*``) are left alone. A module path is checked in the source tree, without
importing anything.
"""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Top-level folders of the repository a path in the docs may start from (``configs/`` and
#: ``serving/``, now ``tf_serving/``, are gone, so a path in them is stale; ``tfrecords/`` holds
#: generated data beside its README, so it is left out).
#: A path under ``mmnas_tf/`` may also be written without it (``tasks/base.py``), as tables do.
TOP_DIRS = ("mmnas_tf", "tests", "docs", "bench", "tf_serving", "serving", "configs")
PATH_SUFFIXES = (".py", ".md", ".json", ".txt", ".config", ".png", ".toml", ".cfg")

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_DOTTED = re.compile(r"(?<![\w./-])((?:mmnas_tf|bench)(?:\.[A-Za-z_]\w*)+)")
_TOP = "(?:" + "|".join(TOP_DIRS) + ")"
_BARE_PATH = re.compile(
    r"(?<![\w./-])(" + _TOP + r"/[\w./-]*\w\.(?:py|md|json|txt|config|png))(?![\w/<{*])"
)
#: Subpackages whose dotted names the docs also write without ``mmnas_tf.`` (``nas.selection``);
#: ``data`` is left out, being also a config section (``data.bucketing``), and ``ops`` (Keras's).
RELATIVE_PACKAGES = (
    "benchmark compat devserver engine layers models nas serving synthbench tasks viz"
)
_RELATIVE = re.compile(
    r"^((?:" + RELATIVE_PACKAGES.replace(" ", "|") + r")(?:\.[A-Za-z_]\w*)+)(?:\(.*\))?$"
)
#: Placeholders: ``<name>``, ``{a,b}``, globs, ``...``, and a file named ``X`` or ``NAME``.
_PLACEHOLDER = re.compile(r"[<>{}*?$]|\.\.\.|(?:^|/)(?:[A-Z]|NAME)\.\w+$")
#: Former names the docs give on purpose, each beside what replaced it.
FORMER_NAMES = {
    "mmnas_tf.metrics",  # architecture.md, "What moved": now tasks.<task>.metrics
    "mmnas_tf.tasks.grounding",  # architecture.md, "What moved": now tasks.vg
    "bench/fused_adam.py",  # performance.md: "then bench/fused_adam.py, now ...FusedAdam"
    "mmnas_tf.inspect",  # README, "Renamed": now mmnas_tf.inspect_genotype
    "serving/",  # README, "Renamed": now tf_serving/
}


def doc_files(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    files += [root / d / "README.md" for d in ("bench", "tf_serving", "tfrecords")]
    return [f for f in files if f.exists()]


def _comment_text(path: pathlib.Path) -> str:
    """The docstrings and comments of a Python file (code is left to the import checks)."""
    source = path.read_text(encoding="utf-8")
    parts = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
    return "\n".join(parts)


def _path_exists(token: str, root: pathlib.Path, base: pathlib.Path) -> bool:
    token = token.rstrip("/").rstrip(".,:;")
    candidates = [root / token, base / token, root / "mmnas_tf" / token]
    return any(c.exists() for c in candidates)


def _looks_like_repo_path(token: str, root: pathlib.Path) -> bool:
    if " " in token or "=" in token or token.startswith(("/", "~", "-")) or "://" in token:
        return False
    first = token.split("/", 1)[0]
    if "/" not in token:
        return False
    if first in TOP_DIRS:
        return True
    # "tasks/base.py": a path inside the package, written from mmnas_tf/
    return token.endswith(PATH_SUFFIXES) and (root / "mmnas_tf" / first).is_dir()


def _top_level_names(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _module_file(parts: list[str], root: pathlib.Path) -> pathlib.Path | None:
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def dotted_name_exists(name: str, root: pathlib.Path = ROOT) -> bool:
    """``mmnas_tf.a.b[.attr[.attr]]``: the longest module prefix exists and, when the name goes on,
    its next part is a top-level name of that module (an attribute of that name is not followed)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        module = _module_file(parts[:n], root)
        if module is None:
            continue
        if n == len(parts):
            return True
        return parts[n] in _top_level_names(module)
    return False


def missing_references(files: list[pathlib.Path], root: pathlib.Path = ROOT) -> list[str]:
    """``file: reference`` for every path or dotted name in ``files`` that does not exist."""
    missing = []
    for f in files:
        text = _comment_text(f) if f.suffix == ".py" else f.read_text(encoding="utf-8")
        where = f.relative_to(root)
        seen = set()
        tokens = [t.strip() for t in _CODE_SPAN.findall(text)] + _BARE_PATH.findall(text)
        for token in tokens:
            if token in FORMER_NAMES or _PLACEHOLDER.search(token):
                continue
            if not _looks_like_repo_path(token, root):
                continue
            if token not in seen and not _path_exists(token, root, f.parent):
                missing.append(f"{where}: {token}")
            seen.add(token)
        for link in [] if f.suffix == ".py" else _LINK.findall(text):
            if "://" in link or link.startswith("mailto:") or _PLACEHOLDER.search(link):
                continue
            if link not in seen and not (f.parent / link).exists():
                missing.append(f"{where}: ({link})")
            seen.add(link)
        names = [m.group(1) for m in _DOTTED.finditer(text) if text[m.end() : m.end() + 1] != "/"]
        spans = [t for t in _CODE_SPAN.findall(text) if not t.endswith(PATH_SUFFIXES)]
        relative = [m.group(1) for t in spans if (m := _RELATIVE.match(t))]
        names += ["mmnas_tf." + name for name in relative]
        for name in names:  # a name followed by "/1" is a format id (mmnas_tf.tfrecord/1)
            if name.endswith((".py", ".md", ".json")) or name in FORMER_NAMES:
                continue
            if name not in seen and not dotted_name_exists(name, root):
                missing.append(f"{where}: {name}")
            seen.add(name)
    return missing


def test_every_path_and_module_the_docs_name_exists():
    missing = missing_references(doc_files())
    assert not missing, "the docs name files or modules that do not exist:\n" + "\n".join(missing)


def test_every_module_the_docstrings_name_exists():
    files = sorted((ROOT / "mmnas_tf").rglob("*.py"))
    missing = missing_references(files)
    assert not missing, "docstrings or comments name modules that do not exist:\n" + "\n".join(
        missing
    )


def test_checker_names_a_missing_path_link_and_module(tmp_path):
    (tmp_path / "mmnas_tf" / "tasks").mkdir(parents=True)
    (tmp_path / "mmnas_tf" / "__init__.py").write_text("")
    (tmp_path / "mmnas_tf" / "tasks" / "__init__.py").write_text("def get_task(name): ...\n")
    (tmp_path / "mmnas_tf" / "tasks" / "base.py").write_text("class Task: ...\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("")
    doc = tmp_path / "docs" / "a.md"
    doc.write_text(
        "Fine: `mmnas_tf/tasks/base.py`, `tasks/base.py`, `mmnas_tf/tasks/<name>/`, [o](other.md),\n"
        "`mmnas_tf.tasks.base.Task`, `mmnas_tf.tasks.get_task`, `python -m mmnas_tf.tasks`,\n"
        "`runs/search/genotypes.json` (a user's path), [web](https://example.com/x.md).\n"
        "Stale: `mmnas_tf/metrics/vqa.py`, `tasks/grounding.py`, [g](gone.md),\n"
        "`mmnas_tf.tasks.gone`, `mmnas_tf.tasks.base.VQATask`, `configs/genotypes/`,\n"
        "`tasks.base.Gone`, `models.config` (a file), `mmnas_tf.tfrecord/1` (a format id).\n"
    )
    assert missing_references([doc], tmp_path) == [
        "docs/a.md: mmnas_tf/metrics/vqa.py",
        "docs/a.md: tasks/grounding.py",
        "docs/a.md: configs/genotypes/",
        "docs/a.md: (gone.md)",
        "docs/a.md: mmnas_tf.tasks.gone",
        "docs/a.md: mmnas_tf.tasks.base.VQATask",
        "docs/a.md: mmnas_tf.tasks.base.Gone",
    ]
    module = tmp_path / "mmnas_tf" / "tasks" / "vqa.py"
    module.write_text(
        '"""Reads ``mmnas_tf.tasks.base.Task`` and ``mmnas_tf.data.schema``."""\n'
        "x = 1  # see mmnas_tf.tasks.get_task\n"
        's = "mmnas_tf.not_checked_in_code"\n'
    )
    assert missing_references([module], tmp_path) == ["mmnas_tf/tasks/vqa.py: mmnas_tf.data.schema"]
