"""Import the shared FER-2013 file into a fresh PostgreSQL database and print rows/s.

    python benchmarks/bench_import.py [PATH]

PATH defaults to $FER2013_CSV, then ../shared/data/fer2013/fer2013.csv.gz. The database is
``ferplatform_bench`` on the server of $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/);
it is dropped and created again, and media goes to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
BENCH_DB = "ferplatform_bench"


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FER2013_CSV") or DEFAULT_FILE)
    if not path.is_file():
        print(f"FER-2013 file not found at {path}: nothing to benchmark (pass a path or set FER2013_CSV).")
        return 2
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    media = tempfile.mkdtemp(prefix="ferplatform-bench-media-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local",
        "DATABASE_URL": db_url,
        "MEDIA_ROOT": media,
        "DEBUG": "0",
    }
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        started = time.monotonic()
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        print(f"migrated the fresh database in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        subprocess.run([*manage, "import_fer2013", str(path)], env=env, check=True, cwd=ROOT)
        first = time.monotonic() - started
        started = time.monotonic()
        subprocess.run([*manage, "import_fer2013", str(path)], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        second = time.monotonic() - started
        rows = sum(1 for _ in _lines(path)) - 1
    finally:
        shutil.rmtree(media, ignore_errors=True)
        bench_database_drop(BENCH_DB)
    print(f"\n{rows} rows imported into fresh PostgreSQL in {first:.1f} s: {rows / first:.0f} rows/s "
          f"(whole command, including start-up); idempotent re-import: {second:.1f} s")
    return 0


def _lines(path: Path):
    import gzip

    with open(path, "rb") as handle:
        opener = gzip.open if handle.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt") as handle:
        yield from handle


if __name__ == "__main__":
    sys.exit(main())
