"""Review API latency: 8 concurrent reviewers against gunicorn on PostgreSQL.

    python benchmarks/bench_review_api.py [--reviewers 8] [--items 1000] [--votes 50] [--workers 2] [--threads 4]

Creates a fresh database ``ferplatform_bench_review`` on the server of $DATABASE_URL, fills it with synthetic faces
and review items, starts gunicorn, and has each reviewer (its own keep-alive connection, token auth) repeat
"cast a vote on the current item, then get the next item" ``--votes`` times. Reports the median and p99 of that
pair, the single calls, and the votes per second. The database and media are removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
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
BENCH_DB = "ferplatform_bench_review"

SETUP = """
import json, numpy as np
from apps.accounts.services import api_token_create
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.review.models import ReviewItem
from apps.faces.models import FaceImage
rng = np.random.default_rng(0)
writer = FaceWriter(dataset_get_or_create(name="fer2013"))
with writer.scope():
    writer.write([FaceRecord(raw=rng.integers(0, 256, 2304, dtype=np.uint8).tobytes(), split="Training",
                             label=int(i % 7), source_row=i) for i in range({items})])
ReviewItem.objects.bulk_create([
    ReviewItem(face=f, priority=float(i) / {items}, suggested_label=(f.current_label + 1) % 7,
               suggested_probability=0.6) for i, f in enumerate(FaceImage.objects.all())])
tokens = []
for i in range({reviewers}):
    user = user_create(username=f"bench{{i}}", password="bench-password-123", role=Role.REVIEWER)
    tokens.append(api_token_create(user=user)[1])
print("TOKENS" + json.dumps(tokens))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reviewer(threading.Thread):
    def __init__(self, port: int, token: str, votes: int, seed: int, start_barrier: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.votes = port, token, votes
        self.rng = random.Random(seed)
        self.barrier = start_barrier
        self.pairs: list[float] = []
        self.vote_times: list[float] = []
        self.next_times: list[float] = []
        self.errors: list[str] = []

    def call(self, conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return time.perf_counter() - started, response.status, payload

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        _, _, payload = self.call(conn, "GET", "/api/review/items/next")
        items = json.loads(payload)["items"]
        self.barrier.wait()
        for _ in range(self.votes):
            if not items:
                break
            choice = self.rng.choice([items[0]["suggested_label"], items[0]["current_label"], 8])
            t_vote, status, payload = self.call(conn, "POST", f"/api/review/items/{items[0]['id']}/votes",
                                                {"choice": choice})
            if status != 201:
                self.errors.append(f"vote {status}: {payload[:120]!r}")
            t_next, status, payload = self.call(conn, "GET", "/api/review/items/next")
            if status != 200:
                self.errors.append(f"next {status}")
                break
            items = json.loads(payload)["items"]
            self.vote_times.append(t_vote)
            self.next_times.append(t_next)
            self.pairs.append(t_vote + t_next)
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=50, help="vote+next pairs per reviewer")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args()
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    media = tempfile.mkdtemp(prefix="ferplatform-bench-review-")
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local", "DEBUG": "0",
           "DATABASE_URL": db_url,
           "MEDIA_ROOT": media, "REVIEW_PREFETCH": "3", "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    env.pop("REDIS_URL", None)  # no task is queued here
    gunicorn = None
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        out = subprocess.run([*manage, "shell", "-c", SETUP.format(items=args.items, reviewers=args.reviewers)],
                             env=env, check=True, cwd=ROOT, capture_output=True, text=True).stdout
        tokens = json.loads(out.split("TOKENS", 1)[1])
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ferplatform.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"],
            env=env, cwd=ROOT)
        if not server_wait(gunicorn, port):
            print("gunicorn did not start")
            return 1
        barrier = threading.Barrier(len(tokens))
        reviewers = [Reviewer(port, token, args.votes, i, barrier) for i, token in enumerate(tokens)]
        started = time.perf_counter()
        for r in reviewers:
            r.start()
        for r in reviewers:
            r.join()
        wall = time.perf_counter() - started
        pairs = [t for r in reviewers for t in r.pairs]
        errors = [e for r in reviewers for e in r.errors]
        ms = lambda v: round(v * 1000, 1)  # noqa: E731
        result = {
            "reviewers": len(reviewers), "pairs": len(pairs), "errors": len(errors), "errors_sample": errors[:3],
            "gunicorn": f"{args.workers} workers x {args.threads} threads",
            "vote_and_next_median_ms": ms(statistics.median(pairs)), "vote_and_next_p99_ms": ms(percentile(pairs,
                                                                                                          0.99)),
            "vote_median_ms": ms(statistics.median([t for r in reviewers for t in r.vote_times])),
            "next_median_ms": ms(statistics.median([t for r in reviewers for t in r.next_times])),
            "votes_per_second": round(len(pairs) / wall, 1),
        }
        print(json.dumps(result))
        return 0 if not errors else 1
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        shutil.rmtree(media, ignore_errors=True)
        bench_database_drop(BENCH_DB)


if __name__ == "__main__":
    raise SystemExit(main())
