"""docs/settings.md names every environment variable the platform reads, and nothing else.

The names are read off the source with ``ast`` (no import, no database): every ``os.environ`` read (``.get``,
``.setdefault``, ``[...]``, ``in``, ``os.getenv``) and every call of a function that passes its own parameter on to
such a read (``env.py``'s ``_raw`` and the ``env_*`` readers, ``base.py``'s ``_points`` and ``_throttle_rate``, found
by following the calls, so a new helper needs no change here). A dict copied from ``os.environ`` and named ``env``
or ``environ`` counts too (``scripts/prod.py``, ``scripts/run_all.py``: what they ``setdefault`` is the caller's to
set). A read whose name the source does not spell out fails the test, so that nothing slips past it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The Python code of the platform's processes: settings and start-up, the apps, make run's and make prod's launchers
# and gunicorn's configuration. Benchmarks and tests read variables of their own and are not the platform.
SOURCES = ("ferplatform", "apps", "scripts", "deploy", "manage.py")
ENVIRON_NAMES = {"environ", "env", "environment"}
ENVIRON_METHODS = {"get", "setdefault"}  # not pop: removing a variable is not reading one
VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*")
DOC_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", re.MULTILINE)


def _modules() -> list[tuple[Path, ast.Module, dict[ast.AST, ast.AST]]]:
    """Each source file, its syntax tree, and each node's parent."""
    paths: list[Path] = []
    for source in SOURCES:
        path = ROOT / source
        paths.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    paths = [path for path in paths if "migrations" not in path.parts]
    trees = [(path, ast.parse(path.read_text(), filename=str(path))) for path in paths]
    return [(path, tree, _parents(tree)) for path, tree in trees]


def _is_environ(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id in ENVIRON_NAMES


def _name_argument(node: ast.AST, readers: set[str]) -> ast.AST | None:
    """The expression naming the variable when ``node`` reads one, else None."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ENVIRON_METHODS and _is_environ(func.value):
            return node.args[0]
        if isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name):
            return node.args[0] if func.value.id == "os" else None
        if isinstance(func, ast.Name) and func.id in readers:
            return node.args[0]
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
        return node.slice
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
        return node.left if _is_environ(node.comparators[0]) else None
    return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _enclosing(node: ast.AST, parents: dict[ast.AST, ast.AST], kind: type) -> list[ast.AST]:
    found = []
    while node in parents:
        node = parents[node]
        if isinstance(node, kind):
            found.append(node)
    return found


def _loop_constants(name: str, node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[str] | None:
    """``for name, sub in (("MEDIA_ROOT", "media"), ...)``: the strings a loop variable takes, when the loop runs
    over a literal tuple or list."""
    for loop in _enclosing(node, parents, ast.For):
        if not isinstance(loop.iter, (ast.Tuple, ast.List)):
            continue
        if isinstance(loop.target, ast.Name) and loop.target.id == name:
            items = list(loop.iter.elts)
        elif isinstance(loop.target, ast.Tuple):
            position = [i for i, t in enumerate(loop.target.elts) if isinstance(t, ast.Name) and t.id == name]
            if not position:
                continue
            items = [e.elts[position[0]] for e in loop.iter.elts if isinstance(e, (ast.Tuple, ast.List))]
        else:
            continue
        if all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            return [i.value for i in items]
    return None


def _parameters(function: ast.AST) -> set[str]:
    args = function.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


@functools.cache
def read_variables() -> tuple[frozenset[str], tuple[str, ...]]:
    """Every variable name the platform's code reads, and the reads whose name it could not tell."""
    modules = _modules()
    readers: set[str] = set()
    while True:  # a function that hands its own parameter to a read is a reader too; follow until nothing new
        found = set(readers)
        for _path, tree, parents in modules:
            for node in ast.walk(tree):
                argument = _name_argument(node, readers)
                if not isinstance(argument, ast.Name):
                    continue
                for function in _enclosing(node, parents, (ast.FunctionDef, ast.AsyncFunctionDef))[:1]:
                    if argument.id in _parameters(function):
                        found.add(function.name)
        if found == readers:
            break
        readers = found
    names: set[str] = set()
    unknown: list[str] = []
    for path, tree, parents in modules:
        for node in ast.walk(tree):
            argument = _name_argument(node, readers)
            if argument is None:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names.add(argument.value)
                continue
            if isinstance(argument, ast.Name):
                functions = _enclosing(node, parents, (ast.FunctionDef, ast.AsyncFunctionDef))[:1]
                if any(argument.id in _parameters(f) and f.name in readers for f in functions):
                    continue  # inside a reader: its callers name the variable
                constants = _loop_constants(argument.id, node, parents)
                if constants is not None:
                    names.update(constants)
                    continue
            unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return frozenset(n for n in names if VARIABLE.fullmatch(n)), tuple(unknown)


def documented_variables(path: Path) -> list[str]:
    """The first cells of the table rows that name one variable in backticks."""
    return DOC_ROW.findall(path.read_text())


def test_every_variable_read_is_named_in_the_source():
    _names, unknown = read_variables()
    assert not unknown, "environment reads whose variable this test cannot name (spell it out):\n" + "\n".join(unknown)


def test_the_reference_documents_exactly_the_variables_read():
    read, _unknown = read_variables()
    documented = documented_variables(ROOT / "docs" / "settings.md")
    assert len(documented) == len(set(documented)), "a variable has two rows in docs/settings.md"
    assert not (read - set(documented)), f"read but not in docs/settings.md: {sorted(read - set(documented))}"
    assert not (set(documented) - read), f"in docs/settings.md but read nowhere: {sorted(set(documented) - read)}"


def test_the_readme_settings_are_in_the_reference():
    readme = set(documented_variables(ROOT / "README.md"))
    reference = set(documented_variables(ROOT / "docs" / "settings.md"))
    assert readme, "README.md has no settings table"
    assert readme <= reference, f"README.md names variables docs/settings.md lacks: {sorted(readme - reference)}"


def test_the_collector_finds_the_reads_it_claims_to():
    # A guard on the collector itself: one read of each shape it handles.
    read, _unknown = read_variables()
    for name in ("SECRET_KEY",  # env_optional_str
                 "TRAINING_PROMOTION_TOLERANCE",  # _points, a helper of base.py
                 "UPLOADS_THROTTLE_RATE",  # _throttle_rate
                 "DJANGO_SETTINGS_MODULE",  # os.environ[...] and .setdefault
                 "FER2013_CSV",  # os.environ.get in an app
                 "GUNICORN_TIMEOUT",  # deploy/gunicorn.conf.py
                 "REVIEW_SCORING_DIR",  # scripts/prod.py's loop over literal names
                 "OMP_NUM_THREADS"):  # scripts/run_all.py's env copy
        assert name in read, name
