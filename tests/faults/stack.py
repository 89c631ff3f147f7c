"""Real services of a test's own, and the platform's processes on them, for fault tests that stop and start them.

- ``RedisServer``: ``redis-server`` on a free port and its own dir, with or without the append-only file; stopped
  with ``SHUTDOWN`` and started again on the same port and dir.
- ``PostgresCluster``: ``initdb`` + ``pg_ctl`` (as the ``postgres`` OS user when we are root) on a free port, trust
  auth; ``stop()`` is ``pg_ctl stop -m fast``, as an operator restarting it would.
- ``Stack``: the platform as production runs it, one environment for all of it: gunicorn
  (``deploy/gunicorn.conf.py``), Celery workers (``-Q interactive,bulk``, solo pool), ``manage.py`` commands, and
  ``action``: a function of this module run in a fresh Django process with that environment (``python -m
  tests.faults.stack NAME JSON``), for writes that send to the broker (the test process's Celery app talks to the
  suite's Redis, not ours, so nothing that sends runs in the test process).

Everything started here is stopped by ``close()`` (the fixtures call it in ``finally``), by process group.
The benchmark (``benchmarks/bench_faults_services.py``) reuses this module.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
WEB_START_TIMEOUT = 90  # s; each Django process imports torch and pytorch-grad-cam (~6 s alone on 2 busy cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_binaries(*, postgres: bool = False) -> list[str]:
    """The service binaries this machine lacks (a test skips with them named)."""
    wanted = [REDIS_SERVER, REDIS_CLI] + ([PG_BIN / "initdb", PG_BIN / "pg_ctl"] if postgres else [])
    return [str(p) for p in wanted if not os.access(p, os.X_OK)]


def face_png(seed: int) -> bytes:
    """A distinct 48x48 grey PNG (an upload of this size is used whole as the face)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(48, 48), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


# --- processes ---------------------------------------------------------------------------------------------------

@dataclass
class Process:
    """A child process in its own process group, its output in ``log``."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 4000) -> str:
        return f"--- {self.name} log ({self.log}) ---\n{self.log_text()[-chars:]}"

    def stop(self, *, timeout: float = 30) -> None:
        """SIGTERM to the group (gunicorn and Celery shut down gracefully; Redis exits), SIGKILL after ``timeout``."""
        if self.popen.poll() is not None:
            return
        self.signal_stop()
        self.wait_or_kill(timeout)

    def wait_or_kill(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{self.name} (pid {self.pid}) did not stop within {timeout:g} s: killed", file=sys.stderr)
            self.kill()

    def signal_stop(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()


def spawn(name: str, command: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT) -> Process:
    """``command`` in a new session (its own process group, so that stopping it stops its children too)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        popen = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return Process(name=name, popen=popen, log=log)


# --- Redis -------------------------------------------------------------------------------------------------------

class RedisServer:
    """``redis-server`` of our own. ``appendonly``: every write goes to the AOF, so a stop loses nothing; without it
    (and with RDB snapshots off) a restart starts empty: the queue is lost."""

    def __init__(self, base: Path, *, appendonly: bool, port: int | None = None) -> None:
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: Process | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0, timeout: float = 0.5):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_connect_timeout=timeout,
                           socket_timeout=timeout)

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisServer:
        self.starts += 1
        command = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                   "--appendonly", "yes" if self.appendonly else "no", "--save", "", "--daemonize", "no",
                   "--protected-mode", "no"]
        self.process = spawn(f"redis-{self.port}", command, env=dict(os.environ), log=self.dir / "redis.log")
        try:
            wait_until(lambda: self.ping() or not self.process.alive(), timeout=20, what=f"Redis on {self.port}")
            if not self.process.alive():
                raise RuntimeError(f"redis-server did not start\n{self.process.tail()}")
        except BaseException:
            self.process.stop(timeout=5)
            raise
        return self

    def stop(self) -> None:
        """``SHUTDOWN`` (which writes out the AOF when there is one), then wait for the process to end."""
        if self.process is None or not self.process.alive():
            return
        subprocess.run([str(REDIS_CLI), "-p", str(self.port), "shutdown"], capture_output=True, timeout=20)
        try:
            self.process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.stop()

    def waiting(self, queue: str, db: int = 0) -> int:
        """Messages waiting in ``queue`` (kombu keeps each queue as a list named after it)."""
        return int(self.client(db).llen(queue))

    def describe(self, db: int = 0) -> dict[str, object]:
        """Every key and its size (lists, sets, hashes, sorted sets): what a failed assertion shows."""
        client = self.client(db)
        sizes = {"list": client.llen, "set": client.scard, "hash": client.hlen, "zset": client.zcard}
        out = {}
        for key in client.keys("*"):
            kind = client.type(key).decode()
            out[key.decode(errors="replace")] = sizes[kind](key) if kind in sizes else kind
        return out

    def close(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)


# --- PostgreSQL --------------------------------------------------------------------------------------------------

class PostgresCluster:
    """A PostgreSQL cluster of our own in a temp dir owned by ``postgres`` (not under pytest's tmp, which only
    root may enter), listening on 127.0.0.1 only, trust auth, fsync off (a test's data need not survive a crash)."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix="ferplatform-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self._chown(self.base)

    @staticmethod
    def _as_postgres() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([*self._as_postgres(), *args], capture_output=True, text=True, timeout=timeout,
                                cwd=self.base, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.log.read_text()[-3000:] if self.log.exists() else ''}")
        return result

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> PostgresCluster:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def execute(self, sql: str, params: tuple = (), *, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


# --- the platform ------------------------------------------------------------------------------------------------

@dataclass
class Stack:
    """The platform's processes on our services, one environment for all of them."""

    base: Path
    database_url: str
    redis_url: str
    media_root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MEDIA_ROOT": str(self.media_root),
            "TRAINING_DIR": str(self.base / "training"),
            "REVIEW_SCORING_DIR": str(self.base / "scoring"),
            "INFERENCE_REFRESH_ON_ACTIVATE": "0",  # activating a version queues nothing the test did not ask for
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }

    # web
    def start_web(self, *, workers: int = 1, threads: int = 4) -> Web:
        port = free_port()
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers),
               "GUNICORN_THREADS": str(threads), "GUNICORN_TIMEOUT": "60"}
        # No control socket: its default path is one per user, shared with any other gunicorn running here.
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                   "--no-control-socket", "ferplatform.wsgi:application"]
        process = spawn("web", command, env=env, log=self.base / "logs" / f"web-{port}.log")
        self.processes.append(process)
        return Web(process=process, url=f"http://127.0.0.1:{port}")

    # workers
    def start_worker(self, *, name: str = "faults", queues: str = "interactive,bulk") -> Worker:
        node = f"{name}-{os.getpid()}-{len(self.processes)}@{socket.gethostname()}"
        command = [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "-Q", queues, "--pool", "solo",
                   "--without-gossip", "--without-mingle", "-n", node, "-l", "info"]
        process = spawn(f"worker {node}", command, env=self.env, log=self.base / "logs" / f"worker-{name}.log")
        self.processes.append(process)
        return Worker(process=process, node=node)

    # one-off processes
    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        """``manage.py ARGS`` with the stack's environment (plus ``env``); its stdout (stderr in the error)."""
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                                env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                               f"{result.stderr[-5000:]}")
        return result.stdout

    def sweep(self, **env: str) -> dict[str, dict[str, list[int]]]:
        """``manage.py sweep_work --json``: what one pass of the sweeper did, per kind."""
        return json.loads(self.manage("sweep_work", "--json", env=env).strip().splitlines()[-1])

    def action_start(self, name: str, **kwargs: Any) -> Action:
        """Run ``ACTIONS[name](**kwargs)`` in a new Django process with the stack's environment (in the background:
        ``.result()`` waits for its JSON answer)."""
        log = self.base / "logs" / f"action-{name}-{time.monotonic_ns()}.log"
        out = log.with_suffix(".json")
        command = [sys.executable, "-m", "tests.faults.stack", name, json.dumps(kwargs), str(out)]
        process = spawn(f"action {name}", command, env=self.env, log=log)
        self.processes.append(process)
        return Action(process=process, out=out)

    def action(self, name: str, *, timeout: float = 180, **kwargs: Any) -> Any:
        return self.action_start(name, **kwargs).result(timeout=timeout)

    def beat_sweep(self, *, timeout: float = 60) -> dict[str, dict[str, list[int]]]:
        """What beat does every ``WORK_SWEEP_SECONDS``: send ``core.sweep_work`` to the ``interactive`` queue; a
        worker of the stack runs the sweeper (with the stack's settings) and this returns its report. Sent by a bare
        Celery app on our Redis (not the current app: the test process's app stays as it is)."""
        from celery import Celery

        app = Celery("faults-beat", broker=self.redis_url, backend=self.redis_url, set_as_current=False)
        app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
        try:
            return app.send_task("core.sweep_work", queue="interactive").get(timeout=timeout)
        finally:
            app.close()

    def close(self) -> None:
        """Stop every process at once, then wait for each (SIGKILL after 30 s)."""
        for process in self.processes:
            if process.alive():
                process.signal_stop()
        for process in self.processes:
            process.wait_or_kill(30)


@dataclass
class Action:
    process: Process
    out: Path

    def result(self, *, timeout: float = 180) -> Any:
        try:
            self.process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise TimeoutError(f"{self.process.name} took over {timeout} s\n{self.process.tail()}") from None
        if self.process.popen.returncode != 0 or not self.out.exists():
            raise RuntimeError(f"{self.process.name} failed\n{self.process.tail()}")
        return json.loads(self.out.read_text())


@dataclass
class Web:
    process: Process
    url: str

    def session(self, *, token: str | None = None, session_cookie: str | None = None):
        import requests

        http = requests.Session()
        if token:
            http.headers["Authorization"] = f"Token {token}"
        if session_cookie:
            http.cookies.set("sessionid", session_cookie)
        return http

    def answers(self) -> bool:
        """The web answers HTTP (the login page needs no database)."""
        import requests

        if not self.process.alive():
            raise RuntimeError(f"the web process ended\n{self.process.tail()}")
        try:
            return requests.get(self.url + "/accounts/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = WEB_START_TIMEOUT) -> Web:
        try:
            wait_until(self.answers, timeout=timeout, what="gunicorn to answer", interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.process.tail()}") from None
        return self

    def upload(self, http, png: bytes, name: str = "face.png", *, timeout: float = 30):
        return http.post(self.url + "/api/uploads/?no_face=use_whole", files={"images": (name, png, "image/png")},
                         timeout=timeout)

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes (children of the master): a worker that crashed is booted anew (new pid)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(p) for p in children.read_text().split()) if children.exists() else []


@dataclass
class Worker:
    process: Process
    node: str

    def ready(self) -> bool:
        if not self.process.alive():
            raise RuntimeError(f"the worker ended\n{self.process.tail()}")
        return f"{self.node} ready." in self.process.log_text()

    def wait_ready(self, timeout: float = WEB_START_TIMEOUT) -> Worker:
        try:
            wait_until(self.ready, timeout=timeout, what=f"worker {self.node}", interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.process.tail()}") from None
        return self

    def tasks_succeeded(self, task: str) -> int:
        """Tasks named ``task`` this worker ran to the end, from its log."""
        return self.tasks_ended(task, outcomes=(" succeeded in ",))

    def tasks_ended(self, task: str, *, outcomes: tuple[str, ...] = (" succeeded in ", " raised ")) -> int:
        """Tasks named ``task`` that ended on this worker with one of ``outcomes`` (from its log)."""
        lines = self.process.log_text().splitlines()
        return sum(f"Task {task}[" in line and any(o in line for o in outcomes) for line in lines)


class LoadThread(threading.Thread):
    """GETs ``urls`` in turn, with a short pause, recording (time, url, status or exception, seconds, body start),
    until ``stop()``: what a steady trickle of users sees through a fault."""

    def __init__(self, http, urls: list[str], *, pause: float = 0.05, timeout: float = 15) -> None:
        super().__init__(name="fault-load", daemon=True)
        self.http, self.urls, self.pause, self.timeout = http, urls, pause, timeout
        self.answers: list[Answer] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        import requests

        while not self._stop_event.is_set():
            for url in self.urls:
                started = time.monotonic()
                try:
                    response = self.http.get(url, timeout=self.timeout, allow_redirects=False)
                    answer = Answer(started, url, response.status_code, time.monotonic() - started,
                                    response.headers.get("Content-Type", ""), response.text[:4000],
                                    response.headers.get("Retry-After", ""))
                except requests.RequestException as exc:
                    answer = Answer(started, url, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
                self.answers.append(answer)
            self._stop_event.wait(self.pause)

    def stop(self) -> list[Answer]:
        self._stop_event.set()
        self.join(timeout=self.timeout + 5)
        return self.answers

    def first(self, url: str, status: int, *, after: float) -> Answer | None:
        return next((a for a in list(self.answers) if a.url == url and a.status == status and a.at >= after), None)


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when sent
    url: str
    status: int | str  # a string: the exception instead of an answer
    seconds: float
    content_type: str = ""
    body: str = ""
    retry_after: str = ""


# --- actions: run in a Django process of the stack (``python -m tests.faults.stack NAME JSON OUT``) ----------------

def _action_platform_setup(*, migrate: bool = False, checkpoint_dir: str, faces_per_class: int = 0,
                           split_job: str = "") -> dict:
    """Optionally migrate; a reviewer with an API token and a logged-in session; an active tiny model version;
    optionally synthetic fer2013 Training faces and a split job over them (``split_job``: ``"send"`` to ``bulk``,
    or ``"row"``: queued, not sent, for the sweeper to send)."""
    from django.core.management import call_command
    from django.test import Client

    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    from apps.accounts.roles import Role
    from apps.accounts.services import api_token_create, user_create
    from apps.inference.services.registry import model_version_register
    from tests.inference.conftest import write_tiny_checkpoint

    user = user_create(username="rita-reviewer", role=Role.REVIEWER, password="correct-horse-battery",
                       validate=False)
    token = api_token_create(user=user)[1]
    client = Client()
    client.force_login(user)
    checkpoint = write_tiny_checkpoint(Path(checkpoint_dir) / "tiny-v1.pt", seed=1)
    version = model_version_register(checkpoint_path=checkpoint, name="tiny-v1", activate=True)
    out = {"token": token, "session": client.cookies["sessionid"].value, "version": version.pk, "user": user.pk}
    if faces_per_class:
        out["faces"] = _action_synthetic_faces(per_class=faces_per_class)
    if split_job:
        out["split_job"] = _action_split_job_enqueue(send=split_job == "send")
    return out


def _action_synthetic_faces(*, per_class: int = 10, test_per_class: int = 0) -> int:
    """The training tests' synthetic fer2013 faces (7 classes, a bright band each): the number of faces."""
    from apps.faces.models import FaceImage
    from tests.training.conftest import synthetic_faces

    synthetic_faces(per_class=per_class, test_per_class=test_per_class)
    return FaceImage.objects.count()


def _action_split_job_enqueue(*, dataset: str = "fer2013", split: str = "Training", methods: list[str] | None = None,
                              send: bool = True) -> int:
    """A split job (GradCAM by default), sent to ``bulk``; ``send=False``: only its row, for the sweeper to send."""
    from apps.faces.models import Dataset
    from apps.inference.services.jobs import inference_job_create, inference_job_enqueue

    enqueue = inference_job_enqueue if send else inference_job_create
    return enqueue(dataset=Dataset.objects.get(name=dataset), split=split, methods=methods or ["gradcam"]).pk


def _action_training_run_start(*, epochs: int = 1) -> int:
    """A run of the tiny "scoring" recipe the training tests use (a second or so per epoch on synthetic faces)."""
    from apps.training.services import training_run_start
    from tests.training.conftest import TINY

    return training_run_start(trigger="admin", recipe_name="scoring", epochs=epochs, recipe_overrides=TINY).pk


def _action_uploads_create(*, user: int, seeds: list[int]) -> list[str]:
    """One upload request per seed (a distinct 48x48 face each), through the service the upload API calls."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.uploads.services import upload_create

    owner = get_user_model().objects.get(pk=user)
    return [str(u.pk) for seed in seeds for u in upload_create(
        user=owner, files=[SimpleUploadedFile(f"face-{seed}.png", face_png(seed), "image/png")])]


def _action_work_enqueue(*, user: int, uploads: int = 3, epochs: int = 1, methods: list[str] | None = None,
                         first_seed: int = 0) -> dict:
    """Upload requests (sent to ``interactive``), a split job (fer2013 Training, ``methods``, default GradCAM) and a
    short training run (both sent to ``bulk``)."""
    return {"uploads": _action_uploads_create(user=user, seeds=list(range(first_seed, first_seed + uploads))),
            "split_job": _action_split_job_enqueue(methods=methods),
            "training_run": _action_training_run_start(epochs=epochs)}


ACTIONS: dict[str, Callable[..., Any]] = {
    "platform_setup": _action_platform_setup,
    "synthetic_faces": _action_synthetic_faces,
    "split_job_enqueue": _action_split_job_enqueue,
    "training_run_start": _action_training_run_start,
    "uploads_create": _action_uploads_create,
    "work_enqueue": _action_work_enqueue,
}


def main(argv: list[str]) -> None:
    import django

    name, kwargs, out = argv[0], json.loads(argv[1]), Path(argv[2])
    django.setup()
    result = ACTIONS[name](**kwargs)
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
