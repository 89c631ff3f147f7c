"""The code keeps its one-way-per-thing rules (docs/conventions.md): checked on the source, so they cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"


def _py(pattern: str) -> list[Path]:
    return sorted(p for p in APPS.glob(pattern) if "migrations" not in p.parts)


def _names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.ImportFrom):
        return ["." * stmt.level + (stmt.module or "")]
    if isinstance(stmt, ast.Import):
        return [alias.name for alias in stmt.names]
    return []


def _imports(tree: ast.Module, *, nested: bool) -> list[tuple[int, str]]:
    """(line, module) of the imports at module level (``nested=False``) or inside functions (``nested=True``)."""
    if not nested:
        return [(stmt.lineno, name) for stmt in tree.body for name in _names(stmt)]
    return [(stmt.lineno, name) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
            for stmt in ast.walk(func) for name in _names(stmt)]


def test_services_never_import_a_tasks_module():
    """Tasks name their kind and the service that does the work; services send by name (``apps.core.work``), so
    there is no cycle between the two."""
    offenders = []
    for path in APPS.rglob("*.py"):
        if path.name == "tasks.py" or "migrations" in path.parts or path.name == "apps.py":
            continue
        tree = ast.parse(path.read_text())
        for line, module in _imports(tree, nested=False) + _imports(tree, nested=True):
            if module.split(".")[-1] == "tasks":
                offenders.append(f"{path.relative_to(ROOT)}:{line} {module}")
    assert offenders == []


def test_every_task_is_declared_with_its_queue():
    """A task's name and queue live in one place: a kind (``work_task``) or ``platform_task``."""
    offenders = []
    for path in _py("*/tasks.py"):
        text = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(r"@shared_task\b.*", text)]
    assert offenders == []


def test_views_never_build_error_responses_by_hand():
    offenders = []
    for path in _py("*/api.py"):
        text = path.read_text()
        for match in re.finditer(r'Response\(\{\s*"(detail|methods)"|status=status\.HTTP_(4|5)\d\d', text):
            offenders.append(f"{path.relative_to(ROOT)}:{text[:match.start()].count(chr(10)) + 1}")
        if re.search(r"except\s+\(?[^)\n]*\bValueError\b", text):
            offenders.append(f"{path.relative_to(ROOT)}: except ValueError")
    assert offenders == []


def test_labelled_training_faces_and_png_decoding_live_in_one_selector():
    rule = re.compile(r"split=Split\.TRAINING,\s*excluded=False,\s*current_label__isnull=False")
    decoders = re.compile(r"Image\.open\(")
    where_rule, where_decoding = [], []
    for path in _py("**/*.py"):
        text = path.read_text()
        if rule.search(text):
            where_rule.append(str(path.relative_to(ROOT)))
        if decoders.search(text):
            where_decoding.append(str(path.relative_to(ROOT)))
    assert where_rule == ["apps/faces/selectors.py"]
    # Stored faces are decoded by apps.faces.selectors.face_pixels; the importers and uploads decode what they receive.
    assert set(where_decoding) <= {"apps/faces/selectors.py", "apps/faces/services.py", "apps/uploads/images.py"}


def test_one_class_list():
    literal = re.compile(r"""["']angry["'],\s*["']disgust["']""")
    hits = [str(p.relative_to(ROOT)) for p in [*APPS.rglob("*.py"), *(ROOT / "ml").rglob("*.py"),
                                              *(ROOT / "static").rglob("*.js")]
            if "migrations" not in p.parts and literal.search(p.read_text())]
    assert hits == ["ml/labels.py"]
    assert "def class_index" not in (APPS / "faces" / "labels.py").read_text()
