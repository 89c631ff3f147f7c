"""Gallery latency: 8 concurrent researchers on the 100-face gallery page, against gunicorn on PostgreSQL, and the
time to compute class-average Grad-CAM maps over PublicTest.

    python benchmarks/bench_gallery.py [--faces 500] [--synthetic] [--researchers 8] [--requests 25] [--workers 2]

Creates a fresh database ``ferplatform_bench_gallery`` on the server of $DATABASE_URL, imports ``--faces`` synthetic
PublicTest faces, registers the shipped checkpoint and runs the real ``predict_and_explain`` (GradCAM for the
predicted class and the label) on them (``--synthetic``: stores rows of the same shape instead, for full PublicTest
size on a small CPU), times ``class_maps`` + PNG for both groupings, then starts gunicorn and has each researcher
(own keep-alive connection, logged-in session) fetch gallery pages (100 faces each, cycling pages, filters and sorts)
``--requests`` times, and the same through the API. Prints the median and p99 of each. The database and media are
removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop, server_wait

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "ferplatform_bench_gallery"

SETUP = """
import json, time, numpy as np
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from apps.accounts.services import api_token_create
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.faces.models import FaceImage
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.gallery import exports
from apps.gallery.selectors import class_maps
from apps.inference.services.predictions import predict_and_explain
from apps.inference.services.registry import model_version_register
rng = np.random.default_rng(0)
writer = FaceWriter(dataset_get_or_create(name="fer2013"))
with writer.scope():
    writer.write([FaceRecord(raw=rng.integers(0, 256, 2304, dtype=np.uint8).tobytes(), split="PublicTest",
                             label=int(i % 7), source_row=i) for i in range({faces})])
version = model_version_register(checkpoint_path=settings.INFERENCE_DEFAULT_CHECKPOINT, name="default", activate=True)
ids = list(FaceImage.objects.values_list("pk", flat=True))
started = time.perf_counter()
if {synthetic}:
    # Rows shaped like the real ones (7 probabilities, 2,304-byte maps, one stored overlay PNG shared by all), without
    # running the model: for timing the gallery and the class maps at full PublicTest size on a small CPU.
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from apps.inference.models import Explanation, Prediction
    from apps.inference.services.predictions import _overlay_png
    overlay = default_storage.save("explanations/bench.png",
                                   ContentFile(_overlay_png(rng.integers(0, 256, (192, 192, 3), dtype=np.uint8))))
    faces = list(FaceImage.objects.order_by("pk"))
    probs = rng.dirichlet(np.ones(7), size=len(faces))
    Prediction.objects.bulk_create([Prediction(face=f, model_version=version, probabilities=p.round(6).tolist(),
                                               predicted_label=int(p.argmax()), confidence=float(p.max()))
                                    for f, p in zip(faces, probs)], batch_size=2000)
    rows = []
    for f, p in zip(faces, probs):
        for target in dict.fromkeys([int(p.argmax()), f.current_label]):
            rows.append(Explanation(face=f, model_version=version, method="gradcam", target_label=target,
                                    overlay=overlay, raw_map=rng.integers(0, 256, 2304, dtype=np.uint8).tobytes()))
    Explanation.objects.bulk_create(rows, batch_size=2000)
else:
    for start in range(0, len(ids), 256):
        predict_and_explain(face_ids=ids[start:start + 256], methods=["gradcam"], version=version)
predict_s = time.perf_counter() - started
timings = {{}}
for by in ("predicted", "true"):
    started = time.perf_counter()
    maps = class_maps(version=version, method="gradcam", by=by)
    exports.class_maps_png(maps, by=by, title="bench")
    timings[by] = time.perf_counter() - started
sessions, tokens = [], []
for i in range({researchers}):
    user = user_create(username=f"bench{{i}}", password="bench-password-123", role=Role.RESEARCHER)
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    sessions.append(store.session_key)
    tokens.append(api_token_create(user=user)[1])
print("SETUP" + json.dumps({{"sessions": sessions, "tokens": tokens, "predict_s": predict_s,
                            "class_maps_s": timings, "faces": len(ids)}}))
"""

QUERIES = ["", "sort=-confidence", "correct=false", "sort=quality", "split=PublicTest&correct=true",
           "true_label=3", "confidence_min=0.5"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Researcher(threading.Thread):
    def __init__(self, port: int, session: str, token: str, requests: int, pages: int, seed: int,
                 barrier: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.port, self.session, self.token, self.requests, self.pages, self.seed = (port, session, token, requests,
                                                                                      pages, seed)
        self.barrier = barrier
        self.page_times: list[float] = []
        self.api_times: list[float] = []
        self.by_query: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def get(self, conn: http.client.HTTPConnection, path: str, headers: dict) -> float:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            self.errors.append(f"{path}: {response.status}")
        return elapsed

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        cookie = {"Cookie": f"sessionid={self.session}"}
        token = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        self.get(conn, "/gallery/", cookie)  # warm-up: a fresh worker imports the views (and torch) on first use
        self.page_times.clear()
        self.errors.clear()
        self.barrier.wait()
        for i in range(self.requests):
            query = QUERIES[(i + self.seed) % len(QUERIES)]
            page = 1 + (i + self.seed) % self.pages if not query else 1
            self.page_times.append(self.get(conn, f"/gallery/?{query}&page={page}", cookie))
            self.by_query.setdefault(query or "page N", []).append(self.page_times[-1])
            self.api_times.append(self.get(conn, f"/api/gallery/faces/?{query}&page={page}", token))
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=500)
    parser.add_argument("--researchers", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="page + API fetches per researcher")
    parser.add_argument("--synthetic", action="store_true",
                        help="store model-shaped predictions and maps instead of running the model (fast setup)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args()
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    media = tempfile.mkdtemp(prefix="ferplatform-bench-gallery-")
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local", "DEBUG": "0",
           "DATABASE_URL": db_url,
           "MEDIA_ROOT": media, "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    env.pop("REDIS_URL", None)  # no task is queued here
    gunicorn = None
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        out = subprocess.run([*manage, "shell", "-c", SETUP.format(faces=args.faces, researchers=args.researchers,
                                                                  synthetic=args.synthetic)],
                             env=env, check=True, cwd=ROOT, capture_output=True, text=True).stdout
        setup = json.loads(out.split("SETUP", 1)[1])
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ferplatform.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"],
            env=env, cwd=ROOT)
        if not server_wait(gunicorn, port):
            print("gunicorn did not start")
            return 1
        pages = max(1, -(-setup["faces"] // 100))
        barrier = threading.Barrier(args.researchers)
        researchers = [Researcher(port, s, t, args.requests, pages, i, barrier)
                       for i, (s, t) in enumerate(zip(setup["sessions"], setup["tokens"], strict=True))]
        started = time.perf_counter()
        for r in researchers:
            r.start()
        for r in researchers:
            r.join()
        wall = time.perf_counter() - started
        page_times = [t for r in researchers for t in r.page_times]
        api_times = [t for r in researchers for t in r.api_times]
        errors = [e for r in researchers for e in r.errors]
        ms = lambda v: round(v * 1000, 1)  # noqa: E731
        print(json.dumps({
            "faces": setup["faces"], "researchers": args.researchers, "errors": len(errors),
            "errors_sample": errors[:3], "gunicorn": f"{args.workers} workers x {args.threads} threads",
            "predictions": "synthetic" if args.synthetic else "predict_and_explain",
            "setup_predictions_s": round(setup["predict_s"], 1),
            "class_maps_s": {k: round(v, 3) for k, v in setup["class_maps_s"].items()},
            "page_median_ms": ms(statistics.median(page_times)), "page_p99_ms": ms(percentile(page_times, 0.99)),
            "api_median_ms": ms(statistics.median(api_times)), "api_p99_ms": ms(percentile(api_times, 0.99)),
            "page_median_ms_by_query": {
                q: ms(statistics.median([t for r in researchers for t in r.by_query.get(q, [])]))
                for q in [*(q for q in QUERIES if q), "page N"]},
            "requests_per_second": round((len(page_times) + len(api_times)) / wall, 1),
        }))
        return 0 if not errors else 1
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        shutil.rmtree(media, ignore_errors=True)
        bench_database_drop(BENCH_DB)


if __name__ == "__main__":
    raise SystemExit(main())
