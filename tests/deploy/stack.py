"""The production set as ``make prod`` starts it (``scripts/prod.py``), on ports, a database, a Redis and a state
directory of its own: nginx with TLS in front of gunicorn, one Celery worker per queue, beat, Redis with AOF.

Used by the tests in ``tests/deploy`` and by ``benchmarks/bench_load.py``. Nothing here imports Django: the stack
is reached over HTTPS and its database with psycopg, as an operator would.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ADMIN_PASSWORD = "prod-admin-Pa55word!"
USER_PASSWORD = "prod-user-Pa55word!"  # noqa: S105 - the stack's own test users
QUEUES = ("interactive", "bulk")  # one Celery worker each (scripts/run_all.py)
BULK = "bulk"  # split jobs, scoring, training, faithfulness, overlays computed ahead: one task at a time
# kombu's Redis transport keeps a queue's messages in a list named after it (priorities 3/6/9 in lists of their own)
# and a message delivered to a worker in the hash ``unacked`` until the worker acknowledges it. Tasks acknowledge
# late (CELERY_TASK_ACKS_LATE): a task's message stays there until the task has run.
PRIORITY_SEPARATOR = "\x06\x16"
UNACKED = "unacked"
# Rows that record what the workers produce: one more of any of them is progress.
RESULT_TABLES = ("inference_prediction", "inference_explanation", "review_labelscore", "review_reviewitem")
# How long a wait lets the stack show no sign of progress at all (no bulk task queued, taken or finished, no job row
# queued, claimed or its progress written, no prediction, heatmap or score stored; during the first start, nothing
# logged and no file written) before it gives up. A wait has no deadline besides this one, so a slower machine makes
# it longer instead of failing it. A healthy stack shows progress far more often: the longest quiet stretch measured
# in these tests on a shared 2-core machine was 7 s, in a first start and in a bulk worker's first task (loading torch
# and the model). The one longer pause a healthy stack has is a lost message, which the sweeper sends again after
# WORK_RESEND_AFTER (60 s) at its next round (every 30 s): this covers that too, so only a stuck stack waits this long.
STALL_SECONDS = 120.0
T = TypeVar("T")


def synthetic_fer_csv(path: Path, *, training_per_class: int = 8, public_test_per_class: int = 3,
                      seed: int = 0) -> Path:
    """A tiny FER-2013 file in Kaggle's layout: random 48x48 grey faces, every class in Training and PublicTest."""
    rng = random.Random(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, per_class in (("Training", training_per_class), ("PublicTest", public_test_per_class)):
        for label in range(7):
            for _ in range(per_class):
                lines.append(f"{label},{' '.join(str(rng.randrange(256)) for _ in range(48 * 48))},{usage}")
    with gzip.open(path, "wt") as file:
        file.write("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProductionStack:
    """``scripts/prod.py`` in its own process group; ``start()`` returns once nginx serves the login page over
    HTTPS, ``stop()`` sends SIGTERM as Ctrl-C would (SIGKILL after 40 s)."""

    def __init__(self, state: Path, *, database: str, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.https_port, self.http_port, self.web_port, self.redis_port = (free_port() for _ in range(4))
        base = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferplatform"))
        self.database_url = base._replace(path=f"/{database}").geturl()
        self.admin_url = base._replace(path="/postgres").geturl()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "SECRET_KEY",
                                                                "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}},
            "FERPLATFORM_VAR_DIR": str(state),
            "DATABASE_URL": self.database_url,
            "REDIS_PORT": str(self.redis_port),
            "NGINX_HTTPS_PORT": str(self.https_port),
            "NGINX_HTTP_PORT": str(self.http_port),
            "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "FERPLATFORM_ADMIN_USERNAME": "admin",
            "FERPLATFORM_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **(env or {}),
        }
        self.log = state / "prod.log"
        self.process: subprocess.Popen | None = None
        self._job_tables: dict[str, str] | None = None

    # -- the database, as an operator's psql would see it
    def drop_database(self) -> None:
        name = urlsplit(self.database_url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params or []).fetchall()

    def wait_for(self, what: str, sql: str, *, params: list | None = None,
                 seconds: float | None = None) -> list[tuple]:
        """Poll ``sql`` until it returns rows, for as long as the stack's work moves (``wait_until``); ``seconds``
        adds a deadline for callers that want one (the load benchmark)."""
        return self.wait_until(what, lambda: self.query(sql, params), seconds=seconds)

    def wait_until(self, what: str, condition: Callable[[], T], *, stall: float = STALL_SECONDS,
                   seconds: float | None = None) -> T:
        """Call ``condition`` until it returns something true, and return that. The wait fails when the stack has
        shown no progress for ``stall`` seconds (``Work.progress``: a task taken or finished, a job row's progress
        written, a result stored), with what was left to do and the stack's log; it has no deadline of its own
        unless ``seconds`` sets one."""
        started = quiet_since = time.monotonic()
        mark = None
        while True:
            result = condition()
            if result:
                return result
            self.check_running()
            work = self.work()
            now = time.monotonic()
            if work.progress != mark:
                mark, quiet_since = work.progress, now
            elif now - quiet_since > stall:
                raise AssertionError(f"{what}: nothing moved for {stall:.0f} s ({now - started:.0f} s in all); "
                                     f"{work.describe()}\n{self.log_tail()}")
            if seconds is not None and now - started > seconds:
                raise AssertionError(f"{what}: not within {seconds:.0f} s; {work.describe()}\n{self.log_tail()}")
            time.sleep(1)

    def wait_idle(self, queue: str = BULK) -> Work:
        """Wait until nothing is left for ``queue``'s worker (``Work.idle``), for as long as the work moves. The work
        a test starts next there is then the only work, whatever the first start or an earlier test queued."""
        def idle() -> Work | None:
            work = self.work()
            return work if work.idle(queue) else None

        return self.wait_until(f"the {queue} worker idle", idle)

    def job_tables(self) -> dict[str, str]:
        """Each kind of job's table and the queue its task is sent to, as the code declares them (apps.core.work),
        asked once through ``manage.py shell`` as an operator would."""
        if self._job_tables is None:
            code = ("import json; from apps.core.work import work_kinds; print(json.dumps("
                    "{kind.rows.model._meta.db_table: kind.routed_queue for kind in work_kinds()}))")
            self._job_tables = json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])
        return self._job_tables

    def work(self) -> Work:
        """What the workers have to do now, as the broker and the database say."""
        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=10)
        try:
            waiting = {queue: tuple(_task_id(raw) for key in _queue_keys(queue) for raw in client.lrange(key, 0, -1))
                       for queue in QUEUES}
            reserved: dict[str, tuple[str, ...]] = {queue: () for queue in QUEUES}
            for raw in client.hvals(UNACKED):
                message, _exchange, routing_key = json.loads(raw)
                reserved[routing_key] = (*reserved.get(routing_key, ()), _task_id(message))
        finally:
            client.close()
        tables = self.job_tables()
        with psycopg.connect(self.database_url) as connection:
            # Every job is a row whose status is queued or running until it finishes (apps.core.models.WorkRow). Its
            # heartbeat (and the sweeper's last_sent_at) say it is alive, not that it moves: left out of the progress.
            jobs = tuple((table, queue, *row) for table, queue in sorted(tables.items()) for row in connection.execute(
                f'SELECT id, status, (to_jsonb(t) - \'heartbeat_at\' - \'last_sent_at\')::text FROM "{table}" t '
                "WHERE status IN ('queued', 'running') ORDER BY id"))
            existing = {table for (table,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
            results = tuple(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                            for table in RESULT_TABLES if table in existing)
        return Work(waiting=waiting, reserved=reserved, jobs=jobs, results=results)

    @contextmanager
    def holding(self, table: str) -> Iterator[None]:
        """Hold every write to ``table`` until the block ends (a SHARE lock: reads go on). Work that writes it waits
        at that write in the state it has reached, as behind a slow database, and goes on when the block ends."""
        with psycopg.connect(self.database_url) as connection:
            connection.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
            yield

    # -- the processes
    def start(self) -> ProductionStack:
        """Start ``scripts/prod.py``; return once nginx serves the login page over HTTPS. The first start (migrate,
        collectstatic, bootstrap's import, then the processes) takes as long as the machine needs: the wait fails
        only when prod.py exits, or when for ``STALL_SECONDS`` it has logged nothing and written no file into its
        state directory (collectstatic's files, the imported faces)."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.drop_database()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([PY, str(ROOT / "scripts" / "prod.py")], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        mark, quiet_since = None, time.monotonic()
        while True:
            self.check_running()
            try:
                if requests.get(f"{self.url}/accounts/login/", verify=False, timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            progress = (self.log.stat().st_size, sum(len(files) for _, _, files in os.walk(self.state)))
            if progress != mark:
                mark, quiet_since = progress, time.monotonic()
            elif time.monotonic() - quiet_since > STALL_SECONDS:
                raise AssertionError(f"make prod has logged nothing and written no file for {STALL_SECONDS:.0f} s, "
                                     f"and does not serve the login page\n{self.log_tail()}")
            time.sleep(1)

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"scripts/prod.py exited with {self.process.returncode}\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None
        finally:
            # Anything of the group still alive (a worker's child) goes too.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """``scripts/prod.py manage ARGS``: ``manage.py`` with the stack's environment, as an operator runs it."""
        result = subprocess.run([PY, str(ROOT / "scripts" / "prod.py"), "manage", *args], cwd=ROOT, env=self.env,
                                input=stdin, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                                 f"{result.stderr[-3000:]}")
        return result.stdout

    def create_user(self, username: str, role: str) -> None:
        self.manage("create_user", "--role", role, "--username", username, "--password-stdin", stdin=USER_PASSWORD)

    def session(self, username: str, password: str = USER_PASSWORD) -> requests.Session:
        """A logged-in browser-like session over HTTPS (CSRF cookie, then the login form)."""
        session = requests.Session()
        session.verify = False
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify=False
        login = f"{self.url}/accounts/login/"
        session.get(login, timeout=30)
        response = session.post(login, data={"username": username, "password": password,
                                             "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                                headers={"Referer": login}, timeout=30, allow_redirects=False)
        if response.status_code != 302:
            raise AssertionError(f"login as {username} failed: {response.status_code}")
        return session


@dataclass(frozen=True)
class Work:
    """The workers' work at one moment: task ids waiting in the broker and delivered to a worker but not finished,
    per queue; the job rows queued or running, as (table, the queue its kind is sent to, id, status, the row without
    its heartbeat); and how many results are stored."""

    waiting: dict[str, tuple[str, ...]]
    reserved: dict[str, tuple[str, ...]]
    jobs: tuple[tuple[str, str, int, str, str], ...]
    results: tuple[int, ...]

    @property
    def progress(self) -> tuple:
        """Changes whenever the stack's work moves: a bulk task is queued, taken or finishes, a job row is queued,
        claimed or finished or its progress written, a result is stored. The interactive and chores queues' messages
        are left out: beat sends chores every 30 s whether anything moves or not, and the interactive work a test
        waits for (an upload's prediction chunk, a heatmap) has rows and results of its own."""
        return self.waiting.get(BULK, ()), self.reserved.get(BULK, ()), self.jobs, self.results

    def idle(self, queue: str) -> bool:
        """Nothing waits for ``queue``'s worker or runs there: no message, and no job of a kind sent to it (a queued
        row whose message is lost counts: the sweeper sends it again)."""
        return not self.waiting.get(queue) and not self.reserved.get(queue) and not any(
            job_queue == queue for _, job_queue, *_ in self.jobs)

    def describe(self) -> str:
        queues = ", ".join(f"{queue}: {len(self.waiting.get(queue, ()))} waiting, {len(self.reserved.get(queue, ()))} "
                           "taken" for queue in QUEUES)
        jobs = ", ".join(f"{table} #{pk} {status} ({queue})" for table, queue, pk, status, _ in self.jobs) or "none"
        return f"broker ({queues}); jobs queued or running: {jobs}"


def _queue_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in (3, 6, 9))]


def _task_id(message: bytes | str | dict) -> str:
    """A kombu message's task id (its raw JSON, or the dict the unacked hash keeps)."""
    message = json.loads(message) if isinstance(message, (bytes, str)) else message
    return str((message.get("headers") or {}).get("id", ""))
