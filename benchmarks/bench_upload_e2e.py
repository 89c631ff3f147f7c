"""End-to-end upload latency: one 640x480 photo through ``POST /api/uploads/?wait=10`` to a finished result.

    python benchmarks/bench_upload_e2e.py [-n 50] [--photo PATH]
    python benchmarks/bench_upload_e2e.py --url http://127.0.0.1:8000 --token TOKEN   # against running services

Without ``--url`` it starts everything itself against PostgreSQL and Redis: a fresh database
``ferplatform_bench_upload`` on the server of $DATABASE_URL (migrated, bootstrapped with the shipped default model),
Redis $BENCH_REDIS_URL (default redis://127.0.0.1:6379/13), gunicorn (deploy/gunicorn.conf.py, 2 workers x 2 threads)
and one Celery worker (queues interactive,bulk, solo pool); all are stopped and the database dropped afterwards.
The photo is ../shared/data/photos/obama.jpg cut to 640x480 around the face (or, when the shared photos are absent,
a synthetic 640x480 picture uploaded with no_face=use_whole; the output says which). Each request asks for GradCAM;
latency is measured on the client from sending the request to reading the finished result. The upload throttle is
lifted for the run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT.parent / "shared" / "data" / "photos" / "obama.jpg"
BENCH_DB = "ferplatform_bench_upload"
ADMIN_PASSWORD = "bench-only-password-1"


def photo_bytes(path: Path) -> tuple[bytes, str]:
    from PIL import Image, ImageDraw, ImageOps

    if path.is_file():
        with Image.open(path) as image:
            # A portrait: keep the upper part, where the face is, when cutting it to landscape 4:3.
            image = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (640, 480), centering=(0.5, 0.1))
        source = f"{path.name} cut to 640x480"
    else:
        image = Image.new("RGB", (640, 480), (120, 140, 160))
        draw = ImageDraw.Draw(image)
        draw.ellipse((250, 120, 390, 320), fill=(200, 170, 150))
        source = f"synthetic 640x480 picture ({path} is absent)"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), source


def multipart(field: str, name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(url: str, *, token: str | None = None, data: bytes | None = None, content_type: str | None = None,
            timeout: float = 60) -> tuple[int, dict]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def upload(base: str, token: str, body: bytes, content_type: str, query: str) -> tuple[float, dict]:
    started = time.perf_counter()
    status, data = request(f"{base}/api/uploads/?{query}", token=token, data=body, content_type=content_type)
    elapsed = time.perf_counter() - started
    if status != 201:
        raise RuntimeError(f"upload answered {status}: {data}")
    return elapsed, data["uploads"][0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Services:
    """Fresh database, gunicorn and a Celery worker as subprocesses; ``stop()`` undoes all of it."""

    def __init__(self) -> None:
        server = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferplatform"))
        if server.scheme not in {"postgres", "postgresql"}:
            raise SystemExit("DATABASE_URL must point at PostgreSQL for this benchmark")
        self.admin_url = urlunsplit((server.scheme, server.netloc, "/postgres", "", ""))
        self.media = tempfile.mkdtemp(prefix="ferplatform-bench-upload-")
        self.port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local",
            "DATABASE_URL": urlunsplit((server.scheme, server.netloc, f"/{BENCH_DB}", "", "")),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
            "MEDIA_ROOT": self.media,
            "DEBUG": "0",
            "UPLOADS_THROTTLE_RATE": "100000/min",
            "FERPLATFORM_ADMIN_USERNAME": "bench",
            "FERPLATFORM_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "2",
        }
        self.env.pop("FER2013_CSV", None)
        self.children: list[subprocess.Popen] = []
        self.logs = Path(self.media) / "logs"

    def start(self) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env, check=True, cwd=ROOT)
        subprocess.run([*manage, "bootstrap"], env=self.env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        self.logs.mkdir()
        self._spawn("worker", [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "-Q", "interactive,bulk",
                               "--pool", "solo", "--purge", "--without-gossip", "--without-mingle",
                               "-n", f"bench-{os.getpid()}@%h", "-l", "warning"])
        self._spawn("web", [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                            "ferplatform.wsgi:application"])
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                request(f"{base}/accounts/login/", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not answer; see {self.logs}") from None
                time.sleep(0.3)
            except Exception:  # noqa: BLE001 - the login page is HTML: any answer means it is up
                break
        return base

    def print_breakdown(self, last: int) -> None:
        """Where the time went, from the rows' timestamps (server clock): median ms per stage."""
        import psycopg

        sql = """
            SELECT EXTRACT(EPOCH FROM p.created_at - u.created_at), EXTRACT(EPOCH FROM e.created_at - p.created_at),
                   EXTRACT(EPOCH FROM u.finished_at - e.created_at)
            FROM uploads_upload u JOIN inference_prediction p ON p.face_id = u.face_id
            JOIN inference_explanation e ON e.face_id = u.face_id AND e.method = 'gradcam'
            WHERE u.status = 'done' ORDER BY u.created_at DESC LIMIT %s"""
        with psycopg.connect(self.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as conn:
            rows = conn.execute(sql, (last,)).fetchall()
        if rows:
            stage = [statistics.median(float(r[i]) * 1000 for r in rows) for i in range(3)]
            print(f"median ms, server side: upload row -> prediction row {stage[0]:.0f} (queue, worker start, "
                  f"model); -> GradCAM row {stage[1]:.0f}; -> seen finished by the waiting request {stage[2]:.0f}")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.children.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(self.media, ignore_errors=True)
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def token_for(base: str) -> str:
    body = json.dumps({"username": "bench", "password": ADMIN_PASSWORD}).encode()
    status, data = request(f"{base}/api/auth/token/", data=body, content_type="application/json")
    if status != 200:
        raise SystemExit(f"could not get a token: {status} {data}")
    return data["token"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="timed uploads (default 50)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--url", help="use running services at this base URL instead of starting them")
    parser.add_argument("--token", help="API token for --url")
    args = parser.parse_args()
    data, source = photo_bytes(args.photo)
    query = "wait=10&methods=gradcam" + ("" if args.photo.is_file() else "&no_face=use_whole")
    body, content_type = multipart("images", "photo.jpg", data, "image/jpeg")
    services = None
    try:
        if args.url:
            if not args.token:
                raise SystemExit("--url needs --token")
            base, token = args.url.rstrip("/"), args.token
        else:
            services = Services()
            print("starting PostgreSQL database, gunicorn and a Celery worker…", flush=True)
            base = services.start()
            token = token_for(base)
        for _ in range(args.warmup):  # loads the detector in each web worker and the model in the Celery worker
            _, result = upload(base, token, body, content_type, query.replace("wait=10", "wait=30"))
        latencies, statuses = [], []
        for _ in range(args.n):
            elapsed, result = upload(base, token, body, content_type, query)
            latencies.append(elapsed * 1000)
            statuses.append(result["status"])
        done = statuses.count("done")
        print(f"\nphoto: {source} ({len(data):,} bytes JPEG); face found: {result['face_found']}; "
              f"predicted {result['predicted_label']} with {len(result['heatmaps'])} GradCAM heatmap(s)")
        print(f"{args.n} uploads through POST /api/uploads/?{query}: {done} finished within the wait")
        print(f"latency ms: p50 {percentile(latencies, 0.5):.0f}  p95 {percentile(latencies, 0.95):.0f}  "
              f"mean {statistics.mean(latencies):.0f}  min {min(latencies):.0f}  max {max(latencies):.0f}")
        if services is not None:
            services.print_breakdown(args.n)
        return 0 if done == args.n else 1
    finally:
        if services is not None:
            services.stop()


if __name__ == "__main__":
    sys.exit(main())
