from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ml_imports_no_django_celery_or_apps():
    code = ("import sys, ml.cli, ml.train, ml.explain, ml.evaluate, ml.checkpoint, ml.data, ml.plots, ml.scoring;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'celery', 'rest_framework', 'apps', "
            "'ferplatform'}); print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_source_file_imports_the_framework():
    for path in (ROOT / "ml").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            for name in ("django", "celery", "rest_framework", "apps", "ferplatform"):
                assert not stripped.startswith((f"import {name}", f"from {name}")), f"{path}: {line}"
