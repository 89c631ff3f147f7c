"""The production set as ``make prod`` starts it (``scripts/prod.py``), on ports, a database, a Redis and a state
directory of its own: nginx with TLS in front of gunicorn, one Celery worker per queue, beat, Redis with AOF.

Used by the tests in ``tests/deploy`` and by ``benchmarks/bench_load.py``. Nothing here imports Django: the stack
is reached over HTTPS and its database with psycopg, as an operator would.
"""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ADMIN_PASSWORD = "prod-admin-Pa55word!"
USER_PASSWORD = "prod-user-Pa55word!"  # noqa: S105 - the stack's own test users


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

    # -- the database, as an operator's psql would see it
    def drop_database(self) -> None:
        name = urlsplit(self.database_url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params or []).fetchall()

    def wait_for(self, what: str, sql: str, *, seconds: float = 180, params: list | None = None) -> list[tuple]:
        """Poll ``sql`` until it returns rows; fail with the stack's log."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = self.query(sql, params)
            if rows:
                return rows
            self.check_running()
            time.sleep(1)
        raise AssertionError(f"{what}: not within {seconds:.0f} s\n{self.log_tail()}")

    # -- the processes
    def start(self, *, timeout: float = 300) -> ProductionStack:
        self.state.mkdir(parents=True, exist_ok=True)
        self.drop_database()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([PY, str(ROOT / "scripts" / "prod.py")], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            try:
                if requests.get(f"{self.url}/accounts/login/", verify=False, timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"make prod did not serve the login page within {timeout:.0f} s\n"
                                     f"{self.log_tail()}")
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
