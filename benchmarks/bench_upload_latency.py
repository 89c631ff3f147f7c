"""Upload latency end to end on the real stack: with nothing else running, and while a PublicTest split job and a
training run are busy on the same machine. Target: p95 under load within 2x of the quiet p95.

    python benchmarks/bench_upload_latency.py [--uploads 50] [--out results.json] [--keep]
        [--training-recipe default] [--training-epochs 3] [--training-limit N] [--quiet-wait 180]
        [--stack-env OMP_NUM_THREADS=1]

What it builds, all its own (torn down at the end unless ``--keep``):

- a fresh PostgreSQL database ``ferplatform_bench_upload_latency`` on the server of $DATABASE_URL (default
  postgres://postgres@127.0.0.1:5432/), Redis $BENCH_REDIS_URL (default redis://127.0.0.1:6379/9, flushed), and
  MEDIA_ROOT, TRAINING_DIR, REVIEW_SCORING_DIR under a temporary FERPLATFORM_VAR_DIR;
- ``manage.py migrate``, ``bootstrap`` (registers and activates the shipped model; INFERENCE_REFRESH_ON_ACTIVATE=0
  and no data yet, so it queues no split job of its own), ``import_fer2013`` of ../shared/data/fer2013/fer2013.csv.gz
  (every row; ``--training-limit N`` keeps only the first N Training rows, all PublicTest and PrivateTest rows), and
  one uploader (role reviewer) with an API token (``apps.accounts.services.api_token_create``);
- the stack exactly as ``make run`` starts it: ``scripts/run_all.py`` (gunicorn, the ``interactive`` worker, the
  ``bulk`` worker under ``nice -n 10``, beat) as one subprocess group, settings ``ferplatform.settings.local`` with
  DEBUG=0. The per-user upload throttle (60/min) is lifted, or it would refuse uploads sent back to back.

Each condition sends ``--uploads`` photos one at a time, cycling over ../shared/data/photos/*.jpg|png, as
``POST /api/uploads/?wait=30`` (field ``images``, ``Authorization: Token``, default CAM method GradCAM); the time is
from sending the request until the answer says ``done`` (polling ``GET /api/uploads/<id>/?wait=10`` when it came
back unfinished). Warm-up uploads (one per photo, not counted) load the face detector and the model first.

1. quiet: only the idle stack. It first waits (up to ``--quiet-wait`` s) until other processes on the machine use
   less than 0.3 cores, and prints how busy the rest of the machine was during the condition; when they took 0.3
   cores or more meanwhile it measures again (``--attempts``, default 3 in all) and keeps the least disturbed one;
2. loaded: ``manage.py train_model --recipe R --epochs E`` as a process of its own under the bulk worker's ``nice``
   (the one bulk worker runs one task at a time, so a queued run would wait behind the split job), and, once it is
   training batches, ``manage.py predict_split --split PublicTest --method gradcam --queue`` for the bulk worker;
   when both rows are ``running`` (the split job past its first batch), the same uploads, after waiting up to two
   minutes for other processes to go quiet again. Both jobs' state is read again at the end, so the output says
   whether the load lasted the whole condition.

The script runs itself as the leader of a session of its own, and starts the stack and the training run in that
session: with Linux's autogroup scheduling, ``nice`` only ranks processes of one session (see ``in_own_session``).

Prints a Markdown table (p50, p95, max, failures per condition), the loaded/quiet p95 ratio against the 2x target,
server-side stage medians from the rows' timestamps (where the time went), CPU use per process role, and the
machine; ``--out`` writes the same figures as JSON and keeps the logs in ``<out>.logs/`` (the stack's, the commands'),
whose error and warning lines are printed too. Exits 2 when the FER-2013 file or the photos are missing, 1 when an
upload failed or the load did not last.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop
from cpuwatch import cpu_sample, cpu_usage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from run_all import BULK_NICE, commands  # noqa: E402 - the stack's own commands, printed with the results

SHARED = ROOT.parent / "shared" / "data"
DEFAULT_CSV = SHARED / "fer2013" / "fer2013.csv.gz"
PHOTOS = SHARED / "photos"
BENCH_DB = "ferplatform_bench_upload_latency"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
PY = sys.executable
MANAGE = [PY, str(ROOT / "manage.py")]
FINISHED = {"done", "failed", "no_face"}
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
QUIET_OUTSIDE_CORES = 0.3  # other processes' CPU below which the machine counts as quiet
ROLES = {  # process roles for the CPU figures, by command line (first match wins)
    "web": lambda c: "gunicorn" in c,
    "interactive": lambda c: "-Q interactive" in c,
    "bulk_worker": lambda c: "-Q bulk" in c,
    "training": lambda c: "train_model" in c,
    "beat": lambda c: " beat " in c,
    "client": lambda c: "bench_upload_latency" in c,
}


# --- HTTP -------------------------------------------------------------------------------------------------------

def http(url: str, *, token: str, data: bytes | None = None, content_type: str | None = None,
         timeout: float = 60) -> tuple[int, dict]:
    headers = {"Accept": "application/json", "Authorization": f"Token {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"{}")
        except json.JSONDecodeError:
            return exc.code, {"detail": body[:300].decode(errors="replace")}


def multipart(field_name: str, name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Timing:
    photo: str
    sent_at: float  # wall clock (same host as the server), for the server-side stages
    ms: float | None = None
    status: str = ""
    upload_id: str | None = None
    polls: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done"


def upload_one(base: str, token: str, photo: Path, timeout: float) -> Timing:
    body, content_type = multipart("images", photo.name, photo.read_bytes(), CONTENT_TYPES[photo.suffix.lower()])
    timing = Timing(photo=photo.name, sent_at=time.time())
    started = time.perf_counter()
    try:
        code, data = http(f"{base}/api/uploads/?wait=30", token=token, data=body, content_type=content_type,
                          timeout=timeout)
        if code != 201:
            timing.error = f"POST answered {code}: {str(data)[:300]}"
            return timing
        upload = data["uploads"][0]
        timing.upload_id = upload["id"]
        while upload["status"] not in FINISHED:
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                timing.error = f"not finished after {timeout:.0f} s (status {upload['status']})"
                break
            timing.polls += 1
            code, upload = http(f"{base}/api/uploads/{timing.upload_id}/?wait={min(10, max(1, int(left)))}",
                                token=token, timeout=timeout)
            if code != 200:
                timing.error = f"GET answered {code}: {str(upload)[:300]}"
                return timing
        timing.status = upload["status"]
        if upload["status"] != "done":
            timing.error = timing.error or f"status {upload['status']}: {upload.get('error', '')}"
    except (OSError, ValueError, KeyError) as exc:  # connection refused or reset, timeouts, a body that is not JSON
        timing.error = f"{type(exc).__name__}: {exc}"
        return timing
    timing.ms = (time.perf_counter() - started) * 1000
    return timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# --- the stack --------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def group_stop(proc: subprocess.Popen | None, *, grace: float) -> None:
    """SIGTERM the process, give it ``grace`` s, then SIGKILL what is left of its process group (ours alone: each
    child was started in a process group of its own)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a Celery pool child or a CAM thread that outlived its parent
    except ProcessLookupError:
        pass
    proc.wait()


class Stack:
    """The database, Redis db, work dirs and ``scripts/run_all.py``; ``stop()`` ends the processes, ``cleanup()``
    removes the rest."""

    def __init__(self, extra_env: dict[str, str]) -> None:
        self.extra_env = extra_env
        self.tmp = Path(tempfile.mkdtemp(prefix="ferplatform-bench-latency-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
        self.db_url: str | None = None
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.training: subprocess.Popen | None = None
        self.token = ""

    def create(self) -> None:
        self.db_url = bench_database_create(BENCH_DB)
        if self.db_url is None:
            raise SystemExit(2)
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()
        var = self.tmp / "var"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local",
            "DEBUG": "0",
            "DATABASE_URL": self.db_url,
            "REDIS_URL": self.redis_url,
            "FERPLATFORM_VAR_DIR": str(var),
            "MEDIA_ROOT": str(var / "media"),
            "TRAINING_DIR": str(var / "training"),
            "REVIEW_SCORING_DIR": str(var / "scoring"),
            "INFERENCE_REFRESH_ON_ACTIVATE": "0",
            "UPLOADS_THROTTLE_RATE": "1000000/min",
            "FERPLATFORM_ADMIN_USERNAME": "bench-admin",
            "FERPLATFORM_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("FER2013_CSV", "GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
            self.env.pop(name, None)  # run_all.py's and gunicorn.conf.py's defaults, as `make run` has them
        self.env.update(self.extra_env)

    def manage(self, *args: str, log: str) -> str:
        path = self.logs / f"{log}.log"
        result = subprocess.run([*MANAGE, *args], cwd=ROOT, env=self.env, text=True, capture_output=True)
        path.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{log_tail(path)}")
        return result.stdout

    def prepare(self, csv_path: Path) -> dict[str, int]:
        self.manage("migrate", "--noinput", "-v0", log="migrate")
        self.manage("bootstrap", log="bootstrap")
        self.manage("import_fer2013", str(csv_path), log="import")
        code = ("from apps.accounts.roles import Role\n"
                "from apps.accounts.services import api_token_create, user_create\n"
                "user = user_create(username='bench-uploader', role=Role.REVIEWER, password='x', validate=False)\n"
                "user.set_unusable_password(); user.save()\n"
                "print('TOKEN', api_token_create(user=user)[1])\n")
        out = self.manage("shell", "-c", code, log="token")
        self.token = re.search(r"^TOKEN (\S+)$", out, re.M).group(1)
        rows = self.sql("SELECT f.split, count(*) FROM faces_faceimage f JOIN faces_dataset d ON d.id = f.dataset_id "
                        "WHERE d.name = 'fer2013' GROUP BY f.split ORDER BY f.split")
        return {split: count for split, count in rows}

    def start(self, timeout: float = 180) -> None:
        log = open(self.logs / "run_all.log", "w")  # noqa: SIM115 - the child holds it until it ends
        self.proc = subprocess.Popen([PY, str(ROOT / "scripts" / "run_all.py")], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, process_group=0)
        log.close()
        deadline = time.monotonic() + timeout
        web = False
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scripts/run_all.py exited with {self.proc.returncode}:\n"
                                   f"{log_tail(self.logs / 'run_all.log', 40)}")
            if not web:
                try:
                    web = http(f"{self.base}/api/me/", token=self.token, timeout=5)[0] == 200
                except OSError:
                    pass
            text = (self.logs / "run_all.log").read_text(errors="replace")
            if web and re.search(r"interactive@\S+ ready", text) and re.search(r"bulk@\S+ ready", text):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not come up within {timeout:.0f} s (web answering: {web}):\n"
                                   f"{log_tail(self.logs / 'run_all.log', 40)}")
            time.sleep(0.5)

    def groups(self) -> list[int]:
        """Process groups of the stack, the training run and this process (with the manage.py commands it runs)."""
        return [os.getpgrp(), *(p.pid for p in (self.proc, self.training) if p is not None and p.poll() is None)]

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.db_url) as conn:
            return conn.execute(query, params).fetchall()

    def training_start(self, recipe: str, epochs: int, niceness: int) -> None:
        log = open(self.logs / "train_model.log", "w")  # noqa: SIM115 - the child holds it until it ends
        cmd = [*MANAGE, "train_model", "--recipe", recipe, "--epochs", str(epochs)]
        if niceness:
            cmd = ["nice", "-n", str(niceness), *cmd]
        self.training = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         process_group=0)
        log.close()

    def stop(self) -> None:
        group_stop(self.training, grace=10)
        group_stop(self.proc, grace=30)  # run_all.py gives its children 20 s

    def cleanup(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()
        if self.db_url is not None:
            bench_database_drop(BENCH_DB)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the bulk jobs ----------------------------------------------------------------------------------------------

def training_state(stack: Stack) -> dict:
    rows = stack.sql("SELECT id, status, epochs, current, error FROM training_trainingrun ORDER BY id DESC LIMIT 1")
    if not rows:
        return {"status": "none"}
    run_id, status, epochs, current, error = rows[0]
    current = current or {}
    return {"id": run_id, "status": status, "epochs": epochs, "epoch": current.get("epoch"),
            "step": current.get("step"), "steps": current.get("steps"), "kind": current.get("kind"),
            "error": error[:300]}


def split_state(stack: Stack, job_id: int) -> dict:
    status, done, total, error = stack.sql(
        "SELECT status, done, total, error FROM inference_inferencejob WHERE id = %s", (job_id,))[0]
    return {"id": job_id, "status": status, "done": done, "total": total, "error": error[:300]}


def wait_for(what: str, check, *, timeout: float, alive: subprocess.Popen | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {alive.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached within {timeout:.0f} s" + (f":\n{log_tail(log)}" if log else ""))
        time.sleep(1)


def bulk_load_start(stack: Stack, args: argparse.Namespace) -> int:
    """Start the training run, wait until it trains batches, queue the PublicTest split job, wait until it runs."""
    print(f"starting the training run (recipe {args.training_recipe}, {args.training_epochs} epochs, "
          f"nice {args.training_nice}) …", flush=True)
    stack.training_start(args.training_recipe, args.training_epochs, args.training_nice)

    def training_busy() -> bool:
        state = training_state(stack)
        if state["status"] in {"failed", "cancelled", "succeeded"}:
            raise RuntimeError(f"the training run ended before the measurement: {state}")
        return state["status"] == "running" and state["kind"] == "batch"

    wait_for("training run in its batches", training_busy, timeout=args.start_timeout, alive=stack.training,
             log=stack.logs / "train_model.log")
    out = stack.manage("predict_split", "--dataset", "fer2013", "--split", "PublicTest", "--method", "gradcam",
                       "--queue", log="predict_split")
    job_id = int(re.search(r"queued job #(\d+)", out).group(1))
    print(f"training run batching; queued split job #{job_id} …", flush=True)

    def split_running() -> bool:
        state = split_state(stack, job_id)
        if state["status"] in {"failed", "done"}:
            raise RuntimeError(f"the split job ended before the measurement: {state}")
        return state["status"] == "running" and state["done"] > 0  # computing heatmaps, not just claimed

    wait_for("split job through its first batch", split_running, timeout=args.start_timeout,
             log=stack.logs / "run_all.log")
    return job_id


# --- measuring --------------------------------------------------------------------------------------------------

def quiet_wait(stack: Stack, max_seconds: float) -> float:
    """Wait until the rest of the machine uses less than QUIET_OUTSIDE_CORES (5 s windows); the last reading."""
    started = time.monotonic()
    said = 0.0
    while True:
        before = cpu_sample(stack.groups())
        time.sleep(5)
        outside = cpu_usage(before, cpu_sample(stack.groups()), ROLES)["outside"]
        waited = time.monotonic() - started
        if outside < QUIET_OUTSIDE_CORES or waited > max_seconds:
            if waited > 10:
                print(f"  waited {waited:.0f} s for a quiet machine; other processes use {outside:.2f} cores now",
                      flush=True)
            return outside
        if waited - said >= 60 or not said:
            said = waited
            print(f"  other processes use {outside:.2f} cores; waiting for a quiet machine …", flush=True)


def server_stages(stack: Stack, timings: list[Timing]) -> dict[str, dict[str, float]]:
    """Per stage, median and p95 ms, from the rows' timestamps (one clock: the client runs on the server's host)."""
    by_id = {t.upload_id: t for t in timings if t.ok}
    if not by_id:
        return {}
    rows = stack.sql(
        "SELECT u.id::text, EXTRACT(EPOCH FROM u.created_at), EXTRACT(EPOCH FROM c.started_at), "
        "EXTRACT(EPOCH FROM c.finished_at) "
        "FROM uploads_upload u JOIN inference_predictionchunk c ON c.id = u.chunk_id WHERE u.id::text = ANY(%s)",
        (list(by_id),))
    # The waiting request derives "done" from the stored rows, so the chunk's end is the last server-side mark.
    stages: dict[str, list[float]] = {"request -> upload row (detect, store)": [],
                                      "row -> interactive worker claims it": [],
                                      "worker: prediction + GradCAM + rows": [],
                                      "chunk done -> client has the answer": []}
    for upload_id, created, claimed, chunk_done in rows:
        timing = by_id[upload_id]
        points = [timing.sent_at, created, claimed, chunk_done, timing.sent_at + timing.ms / 1000]
        if any(p is None for p in points):
            continue
        points = [float(p) for p in points]
        for name, start, end in zip(stages, points, points[1:], strict=False):
            stages[name].append((end - start) * 1000)
    return {name: {"median_ms": round(statistics.median(v)), "p95_ms": round(percentile(v, 0.95))}
            for name, v in stages.items() if v}


def measure(stack: Stack, name: str, photos: list[Path], n: int, timeout: float) -> dict:
    print(f"{name}: {n} uploads …", flush=True)
    before = cpu_sample(stack.groups())
    started = time.monotonic()
    timings = []
    for i in range(n):
        timing = upload_one(stack.base, stack.token, photos[i % len(photos)], timeout)
        if timing.error:
            print(f"  upload {i + 1} ({timing.photo}): {timing.error}", flush=True)
        timings.append(timing)
    seconds = time.monotonic() - started
    cpu = cpu_usage(before, cpu_sample(stack.groups()), ROLES)
    ok = [t.ms for t in timings if t.ok]
    per_upload = {role: round(cpu[role] * seconds / max(n, 1), 3) for role in ("web", "interactive")}
    result = {
        "condition": name, "n": n, "ok": len(ok), "failures": n - len(ok),
        "p50_ms": round(percentile(ok, 0.5)) if ok else None, "p95_ms": round(percentile(ok, 0.95)) if ok else None,
        "max_ms": round(max(ok)) if ok else None, "mean_ms": round(statistics.mean(ok)) if ok else None,
        "min_ms": round(min(ok)) if ok else None, "seconds": round(seconds, 1),
        "polled": sum(1 for t in timings if t.polls), "cpu_cores": cpu, "cpu_seconds_per_upload": per_upload,
        "stages": server_stages(stack, timings),
        "uploads": [asdict(t) for t in timings],
    }
    print(f"  p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms, "
          f"{result['failures']} failed, {seconds:.0f} s", flush=True)
    return result


def measure_least_disturbed(stack: Stack, name: str, photos: list[Path], args: argparse.Namespace, *, wait: float,
                            load_state=None) -> dict:
    """``measure``, again while other processes took QUIET_OUTSIDE_CORES or more during it (``--attempts`` in all);
    the attempt they disturbed least. With ``load_state`` (the bulk jobs' rows), each attempt records it before and
    after, and retrying stops once a bulk job is no longer running."""
    attempts: list[dict] = []
    for attempt in range(args.attempts):
        before = load_state() if load_state else None
        if attempt and before and not all(job["status"] == "running" for job in before.values()):
            print("  a bulk job has ended: no further attempt", flush=True)
            break
        outside = quiet_wait(stack, wait)
        if load_state:
            before = load_state()
        result = measure(stack, name, photos, args.uploads, args.upload_timeout)
        result["outside_cores_before"] = outside
        if load_state:
            result["load_at_start"], result["load_at_end"] = before, load_state()
        attempts.append(result)
        disturbed = result["cpu_cores"]["outside"]
        if disturbed < QUIET_OUTSIDE_CORES:
            break
        print(f"  other processes used {disturbed:.2f} cores during it"
              + ("; measuring again" if attempt + 1 < args.attempts else ""), flush=True)
    best = min(attempts, key=lambda r: r["cpu_cores"]["outside"])
    best["attempts"] = [{"p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "failures": r["failures"],
                         "outside_cores": r["cpu_cores"]["outside"], "kept": r is best} for r in attempts]
    return best


# --- report -----------------------------------------------------------------------------------------------------

def machine_facts(stack: Stack) -> dict:
    probe = subprocess.run([PY, "-c", "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads(),"
                            " torch.__version__)"], env=stack.env, capture_output=True, text=True, cwd=ROOT)
    threads, interop, version = (probe.stdout.split() + ["?", "?", "?"])[:3]
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "memory_gib": round(mem / 2**20, 1), "torch": version, "torch_threads": threads,
            "torch_interop_threads": interop, "OMP_NUM_THREADS": stack.env.get("OMP_NUM_THREADS", "unset"),
            "loadavg_at_start": os.getloadavg()[0], "python": platform.python_version(),
            "autogroup": autogroup()}


def report(results: dict) -> None:
    conditions = results["conditions"]
    print("\n| condition | n | p50 ms | p95 ms | max ms | failures |\n|---|---|---|---|---|---|")
    for c in conditions.values():
        label = {"quiet": "quiet (nothing else running)",
                 "loaded": "loaded (PublicTest split job + training run)"}[c["condition"]]
        print(f"| {label} | {c['n']} | {c['p50_ms']} | {c['p95_ms']} | {c['max_ms']} | {c['failures']} |")
    if results.get("ratio") is not None:
        print(f"\nloaded p95 / quiet p95 = {results['ratio']:.2f} (target <= 2.00: "
              f"{'met' if results['target_met'] else 'NOT met'})")
    for c in conditions.values():
        print(f"\n{c['condition']}: server-side stages, median / p95 ms")
        for stage, v in c["stages"].items():
            print(f"  {stage:42s} {v['median_ms']:6d} / {v['p95_ms']}")
        cpu = c["cpu_cores"]
        print("  CPU, average cores busy: machine {machine}, ours {ours}, other processes {outside}; web {web}, "
              "interactive worker {interactive}, bulk worker {bulk_worker}, training {training}, beat {beat}, "
              "client {client}".format(**cpu))
        if len(c["attempts"]) > 1:
            print("  attempts (p95 ms / other processes' cores): " + ", ".join(
                f"{a['p95_ms']} / {a['outside_cores']}" + (" (kept)" if a["kept"] else "") for a in c["attempts"]))
        per = c["cpu_seconds_per_upload"]
        print(f"  CPU seconds per upload: web {per['web']}, interactive worker {per['interactive']}; other processes "
              f"{c['outside_cores_before']:.2f} cores just before the condition")
    load = results.get("load")
    if load:
        start, end = load["at_start"], load["at_end"]
        print(f"\nload: training run #{end['training']['id']} {start['training']['status']} -> "
              f"{end['training']['status']} (epoch {end['training']['epoch']}/{end['training']['epochs']}, step "
              f"{start['training']['step']} -> {end['training']['step']} of {end['training']['steps']}, reported "
              f"every 20 steps); split job #{end['split']['id']} "
              f"{start['split']['status']} -> {end['split']['status']} ({start['split']['done']} -> "
              f"{end['split']['done']} of {end['split']['total']} faces, counted per batch of 256); both running at "
              "the end: "
              f"{load['both_running_at_end']}")
    m = results["machine"]
    print(f"\nmachine: {m['cpu_count']} CPUs ({m['cpus_usable']} usable, {m['cpu_model']}), {m['memory_gib']} GiB, "
          f"torch {m['torch']} with {m['torch_threads']} threads ({m['torch_interop_threads']} inter-op) per process, "
          f"OMP_NUM_THREADS {m['OMP_NUM_THREADS']}, load average {m['loadavg_at_start']:.2f} at the start, "
          f"autogroup scheduling {m['autogroup']}")
    print("ran:", results["ran"]["imported"], "|", results["ran"]["stack"])
    for line in results["ran"]["commands"]:
        print("  ", line)


def log_problems(logs: Path) -> list[str]:
    """Lines of the stack's and commands' logs that report an error, a traceback or a warning."""
    pattern = re.compile(r"\b(ERROR|CRITICAL|WARNING)\b|Traceback|Exception")
    found = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if pattern.search(line):
                found.append(f"{path.name}: {line.strip()}")
    return found


def logs_keep(stack: Stack, out: Path) -> Path:
    """A copy of the logs next to ``--out`` (``<out>.logs/``), as the work dirs are removed."""
    dest = out.with_suffix(".logs")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(stack.logs, dest)
    return dest


# --- main -------------------------------------------------------------------------------------------------------

def trimmed_csv(source: Path, training_limit: int, dest: Path) -> Path:
    """A copy of ``source`` with the first ``training_limit`` Training rows and every other row."""
    kept = 0
    with gzip.open(source, "rt", newline="") as src, gzip.open(dest, "wt", newline="") as out:
        reader, writer = csv.reader(src), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        usage = header.index("Usage")
        for row in reader:
            if row[usage] == "Training":
                if kept >= training_limit:
                    continue
                kept += 1
            writer.writerow(row)
    return dest


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--uploads", type=int, default=50, help="timed uploads per condition (default 50)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="leave the stack, database and files in place")
    parser.add_argument("--training-recipe", default="default")
    parser.add_argument("--training-epochs", type=int, default=3,
                        help="long enough to keep training through the condition; the run is stopped at the end")
    parser.add_argument("--training-nice", type=int, default=BULK_NICE,
                        help=f"niceness of the training process (default {BULK_NICE}, the bulk worker's)")
    parser.add_argument("--training-limit", type=int, default=None,
                        help="import only the first N Training rows (every PublicTest row is kept)")
    parser.add_argument("--csv", type=Path, default=Path(os.environ.get("FER2013_CSV") or DEFAULT_CSV))
    parser.add_argument("--warmup", type=int, default=None, help="uncounted uploads first (default: one per photo)")
    parser.add_argument("--upload-timeout", type=float, default=120, help="seconds before an upload counts failed")
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait at most for other processes to go quiet before the quiet condition")
    parser.add_argument("--attempts", type=int, default=3,
                        help="measure a condition again (up to this many times in all) while other processes used "
                             f"{QUIET_OUTSIDE_CORES} cores or more during it; the least disturbed attempt counts")
    parser.add_argument("--stack-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for every process of the stack (e.g. OMP_NUM_THREADS=1), repeatable")
    parser.add_argument("--start-timeout", type=float, default=900,
                        help="seconds to wait at most for each bulk job to be running")
    return parser.parse_args()


def in_own_session() -> int | None:
    """Run this script again as the leader of a session of its own, unless it is one already; its exit code.

    Linux's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) shares the CPU fairly between
    sessions and applies ``nice`` only inside one. As under ``make run`` in a terminal, the stack, the bulk worker
    (nice 10) and the training run (nice 10, as the bulk worker would run it) share one session here; processes of
    other sessions (other terminals, test suites) compete with all of it as one equal group.
    """
    if os.getsid(0) == os.getpid():
        return None
    child = subprocess.Popen([PY, *sys.argv], start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    signal.signal(signal.SIGINT, lambda *_: child.terminate())
    return child.wait()


def autogroup() -> str:
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return "unknown"
    return "on (nice applies within a session)" if enabled else "off"


def main() -> int:
    args = parse_args()
    code = in_own_session()
    if code is not None:
        return code
    photos = sorted(p for p in PHOTOS.glob("*") if p.suffix.lower() in CONTENT_TYPES) if PHOTOS.is_dir() else []
    if not args.csv.is_file():
        print(f"The FER-2013 file {args.csv} is missing: this benchmark needs it (PublicTest for the split job, "
              "Training for the run). Nothing was measured.")
        return 2
    if not photos:
        print(f"No photos (*.jpg, *.png) in {PHOTOS}: this benchmark uploads the shared real photos. "
              "Nothing was measured.")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still tears the stack down (finally below)
    stack = Stack(extra_env=dict(v.split("=", 1) for v in args.stack_env))
    results: dict = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "conditions": {},
                     "args": {k: str(v) for k, v in vars(args).items()}}
    code = 1
    try:
        stack.create()
        csv_path = args.csv
        if args.training_limit is not None:
            csv_path = trimmed_csv(args.csv, args.training_limit, stack.tmp / "fer2013-trimmed.csv.gz")
        print(f"database {BENCH_DB}, Redis {stack.redis_url}, work dirs under {stack.tmp}; migrate, bootstrap, "
              f"import {csv_path.name} …", flush=True)
        started = time.monotonic()
        imported = stack.prepare(csv_path)
        prepare_s = time.monotonic() - started
        print(f"  imported {imported} in {prepare_s:.0f} s (migrate + bootstrap + import + token)", flush=True)
        print("starting scripts/run_all.py …", flush=True)
        stack.start()
        results["machine"] = machine_facts(stack)
        results["ran"] = {
            "imported": f"FER-2013 rows per split: {imported}" + (
                f" (first {args.training_limit} Training rows only)" if args.training_limit is not None else ""),
            "stack": (f"scripts/run_all.py, settings ferplatform.settings.local DEBUG=0, PostgreSQL {BENCH_DB}, "
                      f"Redis {stack.redis_url}, gunicorn on {stack.base} (GUNICORN_WORKERS/THREADS defaults)"
                      + (f", extra environment {stack.extra_env}" if stack.extra_env else "")),
            "commands": [" ".join(cmd) for cmd in commands().values()],
            "photos": [p.name for p in photos],
        }
        warmup = len(photos) if args.warmup is None else args.warmup
        for i in range(warmup):  # loads dlib in each gunicorn worker and the model in the interactive worker
            timing = upload_one(stack.base, stack.token, photos[i % len(photos)], args.upload_timeout)
            if timing.error:
                print(f"  warm-up upload {timing.photo}: {timing.error}", flush=True)

        quiet = measure_least_disturbed(stack, "quiet", photos, args, wait=args.quiet_wait)
        results["conditions"]["quiet"] = quiet

        quiet_wait(stack, args.quiet_wait)  # the bulk jobs take minutes to get going: start them on a quiet machine
        job_id = bulk_load_start(stack, args)

        def load_state() -> dict:
            return {"training": training_state(stack), "split": split_state(stack, job_id)}

        # A shorter wait here: the split job must not finish meanwhile.
        loaded = measure_least_disturbed(stack, "loaded", photos, args, wait=min(args.quiet_wait, 120),
                                         load_state=load_state)
        results["conditions"]["loaded"] = loaded
        at_end = loaded["load_at_end"]
        both = at_end["training"]["status"] == "running" and at_end["split"]["status"] == "running"
        results["load"] = {"at_start": loaded["load_at_start"], "at_end": at_end, "both_running_at_end": both,
                           "training_command": f"nice -n {args.training_nice} manage.py train_model --recipe "
                                               f"{args.training_recipe} --epochs {args.training_epochs}",
                           "split_command": "manage.py predict_split --dataset fer2013 --split PublicTest "
                                            "--method gradcam --queue"}
        if quiet["p95_ms"] and loaded["p95_ms"]:
            results["ratio"] = round(loaded["p95_ms"] / quiet["p95_ms"], 2)
            results["target_met"] = results["ratio"] <= 2.0
        report(results)
        for c in (quiet, loaded):
            if max(c["outside_cores_before"], c["cpu_cores"]["outside"]) >= QUIET_OUTSIDE_CORES:
                print(f"\nWARNING: other processes on this machine used {c['cpu_cores']['outside']:.2f} cores during "
                      f"the {c['condition']} condition ({c['outside_cores_before']:.2f} just before it): its figures "
                      "include their competition.")
        if not both:
            print("\nWARNING: a bulk job was no longer running at the end of the loaded condition; the load did not "
                  "last the whole condition.")
        code = 0 if both and quiet["failures"] == 0 and loaded["failures"] == 0 else 1
        return code
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}", flush=True)
        results["error"] = str(exc)
        return 1
    finally:
        if not args.keep:
            print("tearing down (training run, stack) …", flush=True)
            stack.stop()  # first, so that the logs are complete
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["exit_code"] = code
        results["log_problems"] = log_problems(stack.logs)
        if results["log_problems"]:
            print(f"\nerrors or warnings in the logs ({len(results['log_problems'])}, first 10):")
            for line in results["log_problems"][:10]:
                print("  ", line[:240])
        if args.out:
            args.out.write_text(json.dumps(results, indent=2, default=str))
            print(f"figures written to {args.out}; logs in {logs_keep(stack, args.out)}")
        if args.keep:
            groups = " ".join(f"-{p.pid}" for p in (stack.proc, stack.training) if p is not None)
            print(f"--keep: the stack runs on ({stack.base}, token {stack.token}); stop it with kill -TERM {groups}; "
                  f"database {BENCH_DB}, files and logs in {stack.tmp}")
        else:
            stack.cleanup()
            print(f"dropped database {BENCH_DB}, flushed {stack.redis_url}, removed {stack.tmp}")

if __name__ == "__main__":
    sys.exit(main())
