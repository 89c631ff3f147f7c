"""On the embedded SQLite default (``make run``), writers wait for each other instead of failing: a command imports
while another process writes (as the bulk worker does when it stores predictions), and a command that still cannot
get the database says so in one line.

Real processes on a temporary SQLite file with ``make run``'s local settings: ``manage.py`` commands, and a writer
that holds read-then-write transactions in a loop. Before every transaction began IMMEDIATE, ``import_ferplus`` died
with ``database is locked`` (and a 67-line traceback) 4 times in 4 (docs/operations.md)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.faces.labels import FERPLUS_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
ROWS = 120

# Read, then write, then hold the transaction: what a worker storing a batch of predictions does.
WRITER = """
import sys, time
import django
django.setup()
from django.db import transaction
from apps.faces.models import FaceImage
seconds, hold = float(sys.argv[1]), float(sys.argv[2])
end, done = time.monotonic() + seconds, 0
print("writing", flush=True)
while time.monotonic() < end:
    with transaction.atomic():
        ids = list(FaceImage.objects.order_by("?").values_list("pk", flat=True)[:20])
        FaceImage.objects.filter(pk__in=ids).update(current_label=3)
        time.sleep(hold)
    done += 1
    time.sleep(0.01)
print("transactions", done, flush=True)
"""


class SqliteSite:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
        self.env.update(DJANGO_SETTINGS_MODULE="ferplatform.settings.local",
                        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3", FERPLATFORM_VAR_DIR=str(folder))

    def manage(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **env},
                              capture_output=True, text=True, check=check, timeout=300)

    def writer(self, *, seconds: float, hold: float) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(seconds), str(hold)], cwd=ROOT, env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "writing"
        return process

    def ferplus_file(self, seed: int) -> Path:
        """New votes for every row, so that every batch of the import writes."""
        rng = random.Random(seed)
        path = self.folder / f"ferplus-{seed}.csv"
        lines = ["Usage,Image name," + ",".join(FERPLUS_COLUMNS)]
        lines += [f"Training,fer{i:07d}.png," + ",".join(str(rng.randrange(10)) for _ in FERPLUS_COLUMNS)
                  for i in range(ROWS)]
        path.write_text("\n".join(lines) + "\n")
        return path

    def votes(self) -> list[list[int]]:
        code = ("import django; django.setup()\nfrom apps.faces.models import FaceImage\n"
                "print([f.ferplus_votes for f in FaceImage.objects.order_by('source_row')])")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             check=True, timeout=120).stdout
        return eval(out.strip().splitlines()[-1])  # noqa: S307 (our own subprocess's repr of lists of ints)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> SqliteSite:
    site = SqliteSite(tmp_path_factory.mktemp("sqlite-site"))
    site.manage("migrate", "--noinput")
    rng = random.Random(1)
    fer = site.folder / "fer2013.csv"
    fer.write_text("emotion,pixels,Usage\n" + "".join(
        f"{i % 7}," + " ".join(str(rng.randrange(256)) for _ in range(48 * 48)) + ",Training\n" for i in range(ROWS)))
    site.manage("import_fer2013", str(fer))
    return site


def test_a_command_imports_while_another_process_writes(site):
    for attempt in range(2):
        ferplus = site.ferplus_file(seed=attempt)
        writer = site.writer(seconds=120, hold=0.2)
        try:
            started = time.monotonic()
            result = site.manage("import_ferplus", str(ferplus), "--batch-size", "5", check=False)
            took = time.monotonic() - started
        finally:
            writer.terminate()
            writer.communicate(timeout=30)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr and took < 60
        expected = [[int(v) for v in line.split(",")[2:]] for line in ferplus.read_text().splitlines()[1:]]
        assert site.votes() == expected


def test_a_command_that_cannot_get_the_database_says_so_in_one_line(site):
    writer = site.writer(seconds=20, hold=15)  # one transaction that holds the write lock for 15 s
    try:
        started = time.monotonic()
        result = site.manage("import_ferplus", str(site.ferplus_file(seed=9)), check=False, SQLITE_BUSY_TIMEOUT="1")
        took = time.monotonic() - started
    finally:
        writer.terminate()
        writer.communicate(timeout=30)
    assert result.returncode == 1 and took < 14
    errors = [line for line in result.stderr.splitlines() if "CommandError" in line or "Traceback" in line
              or "Error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert errors[0].startswith("CommandError: manage.py import_ferplus: the database stayed locked")
    assert "SQLITE_BUSY_TIMEOUT" in errors[0]


def test_without_redis_the_shared_cache_is_a_table_of_this_database(site):
    """make run (no REDIS_URL): throttle counters and marks live in the database, in the table createcachetable
    makes after migrate (Makefile, scripts/prod.py, docker-compose)."""
    site.manage("createcachetable")
    code = ("import django; django.setup()\nfrom django.conf import settings\nfrom django.core.cache import cache\n"
            "print(settings.CACHES['default']['BACKEND'], cache.add('probe', 1), cache.add('probe', 2), "
            "cache.get('probe'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=site.env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip().splitlines()[-1]
    assert out == "django.core.cache.backends.db.DatabaseCache True False 1"
