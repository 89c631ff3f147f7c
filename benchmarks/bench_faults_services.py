"""Faults, full versions: Redis and PostgreSQL of our own stopped and started under the running platform, repeatedly,
with timings; then an audit that every unit of work finished exactly once.

    python benchmarks/bench_faults_services.py [--down-uploads 4] [--redis-cycles 2] [--uploads 10] [--pg-cycles 3]

Everything runs on services of its own (``tests/faults/stack.py``): a PostgreSQL cluster in a temp dir (as the
``postgres`` user when run as root), migrated, with a reviewer, an active tiny model and 210 synthetic faces; Redis
servers (one with the append-only file, one without persistence); gunicorn (``deploy/gunicorn.conf.py``, 2 workers x
2 threads) and a Celery worker (``-Q interactive,bulk``, solo pool); beat's sweep is sent by hand (``core.sweep_work``)
where beat would send it. Workers beat every second and the sweeper takes a job back after 3 s of silence and resends
a row after 1 s without a message (production: 15, 120 and 60 s), so that the run takes minutes, not hours.

1. Broker down during upload requests: ``--down-uploads`` concurrent upload requests while Redis is stopped (their
   latency, and that of a GET sent meanwhile), then Redis back, beat's sweep, and the time until they are done.
2. Redis restarted with work queued and no worker, ``--redis-cycles`` times with the AOF and as many without
   persistence: ``--uploads`` uploads, a split job (a new CAM method each cycle) and a 1-epoch training run each time;
   what waits in the broker before and after the restart, what the sweeper sends again, and the time to drain.
3. PostgreSQL restarted ``--pg-cycles`` times (``pg_ctl stop -m fast``, ``--pg-down`` s, ``start``) under a trickle of
   API and page GETs, a client uploading without pause and a split job running: the time to the first 503 and back to
   200, the answers seen, uploads accepted and refused.

The audit at the end: every accepted upload done with exactly one prediction; every chunk, split job and training run
finished (attempts per row); one model version per succeeded run; one heatmap file per heatmap row and no other; every
stored face PNG referenced and every referenced one on disk.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.stack import (  # noqa: E402
    LoadThread,
    PostgresCluster,
    RedisServer,
    Stack,
    face_png,
    missing_binaries,
    wait_until,
)

DB = "ferplatform"
ENV = {"INFERENCE_BATCH_SIZE": "8", "WORK_HEARTBEAT_SECONDS": "1", "WORK_HEARTBEAT_TIMEOUT": "3",
       "WORK_RESEND_AFTER": "1", "UPLOADS_THROTTLE_RATE": "100000/min"}
CAM_METHODS = ["gradcam++", "xgradcam", "layercam", "hirescam", "eigengradcam", "eigencam"]  # one per split job
FINISHED = ("done", "failed", "succeeded", "cancelled")  # uploads say done, jobs succeeded


class Bench:
    def __init__(self, base: Path, pg: PostgresCluster) -> None:
        self.base, self.pg = base, pg
        self.media = base / "media"
        self.seed = 1000  # every uploaded face distinct across the run
        self.accepted: list[str] = []  # ids of uploads answered 201
        self.methods = iter(CAM_METHODS)
        self.setup: dict = {}

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        return self.pg.execute(query, params, database=DB)

    def one(self, query: str, params: tuple = ()):
        return self.sql(query, params)[0][0]

    def stack(self, redis: RedisServer, name: str) -> Stack:
        return Stack(base=self.base / name, database_url=self.pg.url(DB), redis_url=redis.url(), media_root=self.media,
                     extra_env=dict(ENV))

    def next_png(self) -> bytes:
        self.seed += 1
        return face_png(self.seed)

    def unfinished(self) -> int:
        return self.one(
            "SELECT (SELECT count(*) FROM inference_predictionchunk WHERE status IN ('queued', 'running')) + "
            "(SELECT count(*) FROM inference_inferencejob WHERE status IN ('queued', 'running')) + "
            "(SELECT count(*) FROM training_trainingrun WHERE status IN ('queued', 'running'))")

    def drain(self, stack: Stack, *, timeout: float = 300, sweep_every: float = 5) -> float:
        """Wait until no unit of work is queued or running, sending beat's sweep now and then (as beat does); the
        seconds it took."""
        started = last_sweep = time.monotonic()
        while self.unfinished():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"work still unfinished after {timeout} s: {self.unfinished()} row(s)")
            if time.monotonic() - last_sweep > sweep_every:
                stack.beat_sweep()
                last_sweep = time.monotonic()
            time.sleep(0.2)
        return time.monotonic() - started


def upload(web, http, png: bytes) -> tuple[int, float, str]:
    started = time.monotonic()
    response = web.upload(http, png, timeout=90)
    upload_id = response.json()["uploads"][0]["id"] if response.status_code == 201 else ""
    return response.status_code, time.monotonic() - started, upload_id


# --- 1. the broker down during upload requests ---------------------------------------------------------------------

def broker_down_uploads(bench: Bench, redis: RedisServer, stack: Stack, web, n: int) -> None:
    http = web.session(token=bench.setup["token"])
    redis.stop()
    pngs = [bench.next_png() for _ in range(n)]
    with ThreadPoolExecutor(max_workers=n + 1) as pool:
        sent = time.monotonic()
        futures = [pool.submit(upload, web, web.session(token=bench.setup["token"]), png) for png in pngs]
        time.sleep(0.5)
        probe_started = time.monotonic()
        probe = http.get(web.url + "/api/uploads/", timeout=90).status_code
        probe_seconds = time.monotonic() - probe_started
        results = [f.result() for f in futures]
    statuses = Counter(status for status, _, _ in results)
    latencies = [seconds for _, seconds, _ in results]
    bench.accepted += [upload_id for _, _, upload_id in results if upload_id]
    print(f"  {n} upload requests with Redis down: {dict(statuses)}; latency min {min(latencies):.2f} s, max "
          f"{max(latencies):.2f} s; a GET sent meanwhile answered {probe} after {probe_seconds:.2f} s")
    redis.start()
    swept = stack.beat_sweep()
    took = bench.drain(stack)
    print(f"  Redis back: the sweep re-sent {len(swept['prediction_chunk']['resent'])} chunk(s); all done "
          f"{time.monotonic() - sent:.1f} s after the requests were sent ({took:.1f} s after the sweep)")


# --- 2. Redis restarted with work queued ---------------------------------------------------------------------------

def redis_restart_cycle(bench: Bench, redis: RedisServer, stack: Stack, web, uploads: int) -> None:
    """No worker runs: queue uploads, a split job and a training run, restart Redis, then start a worker."""
    http = web.session(token=bench.setup["token"])
    for _ in range(uploads):
        status, _, upload_id = upload(web, http, bench.next_png())
        assert status == 201, status
        bench.accepted.append(upload_id)
    stack.action("work_enqueue", user=bench.setup["user"], uploads=0, methods=[next(bench.methods)])
    before = (redis.waiting("interactive"), redis.waiting("bulk"))
    started = time.monotonic()
    redis.stop()
    redis.start()
    restart = time.monotonic() - started
    after = (redis.waiting("interactive"), redis.waiting("bulk"))
    worker = stack.start_worker(name=f"cycle-{redis.starts}")
    worker.wait_ready()
    resent = 0
    if not redis.appendonly:
        swept = stack.beat_sweep()
        resent = sum(len(done["resent"]) for done in swept.values())
    took = bench.drain(stack)
    worker.process.stop()
    print(f"  {'AOF' if redis.appendonly else 'no persistence'}: waiting interactive/bulk {before} before, {after} "
          f"after a {restart:.2f} s restart; re-sent by the sweeper: {resent}; drained {took:.1f} s after the worker "
          "was ready")


# --- 3. PostgreSQL restarted under load ----------------------------------------------------------------------------

class Uploader(threading.Thread):
    """Uploads one new face after another until stopped; counts what it was answered."""

    def __init__(self, bench: Bench, web) -> None:
        super().__init__(name="bench-uploader", daemon=True)
        self.bench, self.web = bench, web
        self.http = web.session(token=bench.setup["token"])
        self.statuses: Counter = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        import requests

        while not self.stopping.is_set():
            try:
                status, _, upload_id = upload(self.web, self.http, self.bench.next_png())
            except requests.RequestException as exc:
                self.statuses[type(exc).__name__] += 1
                continue
            self.statuses[status] += 1
            if upload_id:
                self.bench.accepted.append(upload_id)
            self.stopping.wait(0.2)


def postgres_restarts(bench: Bench, stack: Stack, web, cycles: int, down: float) -> None:
    api, page = web.url + "/api/uploads/", web.url + "/"
    stack.action("split_job_enqueue", methods=[next(bench.methods)])
    load = LoadThread(web.session(token=bench.setup["token"], session_cookie=bench.setup["session"]), [api, page])
    uploader = Uploader(bench, web)
    load.start()
    uploader.start()
    figures = []
    try:
        for cycle in range(cycles):
            time.sleep(2)
            bench.pg.stop("fast")
            stopped = time.monotonic()
            wait_until(lambda s=stopped: load.first(api, 503, after=s) and load.first(page, 503, after=s),
                       timeout=30, what="503s")
            time.sleep(down)
            bench.pg.start()
            started = time.monotonic()
            wait_until(lambda s=started: load.first(api, 200, after=s) and load.first(page, 200, after=s),
                       timeout=60, what="200s")
            first = {k: load.first(url, status, after=t) for k, url, status, t in (
                ("api503", api, 503, stopped), ("page503", page, 503, stopped), ("api200", api, 200, started),
                ("page200", page, 200, started))}
            f = {k: a.at + a.seconds - (stopped if k.endswith("503") else started) for k, a in first.items()}
            figures.append(f)
            print(f"  cycle {cycle + 1}: first 503 API {f['api503']:.2f} s / page {f['page503']:.2f} s after stop; "
                  f"first 200 API {f['api200']:.2f} s / page {f['page200']:.2f} s after start")
        time.sleep(2)
    finally:
        uploader.stopping.set()
        uploader.join(timeout=120)
        answers = load.stop()
    statuses = Counter(a.status for a in answers)
    seconds = [a.seconds for a in answers]
    plain = all("Traceback" not in a.body for a in answers if a.status == 503)
    print(f"  {len(answers)} GETs: {dict(statuses)}; latency median {statistics.median(seconds) * 1000:.0f} ms, max "
          f"{max(seconds):.2f} s; every 503 without a traceback: {plain}")
    print(f"  uploads answered: {dict(uploader.statuses)}")
    took = bench.drain(stack)
    print(f"  after the last restart, the interrupted work drained in {took:.1f} s (beat's sweep every 5 s)")


# --- the audit -----------------------------------------------------------------------------------------------------

def audit(bench: Bench) -> bool:
    q, ok = bench.one, True

    def check(what: str, good: bool, detail: object = "") -> None:
        nonlocal ok
        ok &= good
        print(f"  {'ok ' if good else 'BAD'} {what}{f': {detail}' if detail != '' else ''}")

    ids = list(bench.accepted)
    done = q("SELECT count(*) FROM uploads_upload WHERE id = ANY(%s::uuid[]) AND status = 'done'", (ids,))
    check("every accepted upload is done", done == len(ids), f"{done}/{len(ids)}")
    once = q("SELECT count(*) FROM uploads_upload u WHERE id = ANY(%s::uuid[]) AND (SELECT count(*) FROM "
             "inference_prediction p WHERE p.face_id = u.face_id) = 1", (ids,))
    check("each has exactly one prediction", once == len(ids), f"{once}/{len(ids)}")
    check("no upload row without a 201", q("SELECT count(*) FROM uploads_upload") == len(ids))
    for table, label in (("inference_predictionchunk", "chunks"), ("inference_inferencejob", "split jobs"),
                         ("training_trainingrun", "training runs")):
        rows = bench.sql(f"SELECT status, attempts, count(*) FROM {table} GROUP BY 1, 2 ORDER BY 1, 2")  # noqa: S608
        finished = all(status in FINISHED and status != "failed" for status, _, _ in rows)
        check(f"{label} all finished (status/attempts: rows)", finished, {f"{s}/{a}": n for s, a, n in rows})
    runs = q("SELECT count(*) FROM training_trainingrun WHERE status = 'succeeded'")
    versions = q("SELECT count(*) FROM inference_modelversion")
    check("one model version per succeeded run, and the registered one", versions == runs + 1,
          f"{versions} versions, {runs} runs")
    checkpoints = {str(p.relative_to(bench.media)) for p in (bench.media / "models").rglob("*") if p.is_file()}
    stored = {name for (name,) in bench.sql("SELECT checkpoint FROM inference_modelversion")}
    check("one checkpoint file per version", checkpoints == stored, f"{len(checkpoints)} files")
    overlays = {str(p.relative_to(bench.media)) for p in (bench.media / "explanations").rglob("*") if p.is_file()}
    rows = {name for (name,) in bench.sql("SELECT overlay FROM inference_explanation")}
    check("one heatmap file per heatmap row, no other", overlays == rows,
          f"{len(rows)} rows, {len(overlays - rows)} orphan files, {len(rows - overlays)} missing")
    faces = {str(p.relative_to(bench.media)) for p in (bench.media / "faces").rglob("*") if p.is_file()}
    pixels = {name for (name,) in bench.sql("SELECT png FROM faces_facepixels")}
    check("every face PNG referenced and every referenced one stored", faces == pixels,
          f"{len(pixels)} rows, {len(faces - pixels)} orphan files, {len(pixels - faces)} missing")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--down-uploads", type=int, default=4)
    parser.add_argument("--redis-cycles", type=int, default=2)
    parser.add_argument("--uploads", type=int, default=10, help="uploads queued per Redis cycle")
    parser.add_argument("--pg-cycles", type=int, default=3)
    parser.add_argument("--pg-down", type=float, default=3.0, help="seconds PostgreSQL stays down per cycle")
    args = parser.parse_args()
    missing = missing_binaries(postgres=True)
    if missing:
        print(f"needs {', '.join(missing)}")
        return 2
    began = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="ferplatform-bench-faults-"))
    pg = PostgresCluster()
    aof, volatile = RedisServer(base / "aof", appendonly=True), RedisServer(base / "volatile", appendonly=False)
    stacks: list[Stack] = []
    try:
        pg.init()
        pg.start()
        pg.create_database(DB)
        aof.start()
        volatile.start()
        bench = Bench(base, pg)
        first, second = bench.stack(aof, "aof"), bench.stack(volatile, "volatile")
        stacks += [first, second]
        setup = first.action_start("platform_setup", migrate=True, checkpoint_dir=str(base), faces_per_class=30)
        webs = [s.start_web(workers=2, threads=2) for s in (first, second)]
        worker = first.start_worker(name="aof")
        bench.setup = setup.result()
        for web in webs:
            web.wait_ready()
        worker.wait_ready()
        print(f"set up in {time.monotonic() - began:.1f} s: PostgreSQL {pg.port}, Redis {aof.port} (AOF) and "
              f"{volatile.port}, {bench.setup['faces']} faces\n")

        print("1. Redis down during upload requests (gunicorn 2 workers x 2 threads)")
        broker_down_uploads(bench, aof, first, webs[0], args.down_uploads)
        worker.process.stop()

        print(f"\n2. Redis restarted with work queued and no worker ({args.redis_cycles} cycles each)")
        for redis, stack, web in ((aof, first, webs[0]), (volatile, second, webs[1])):
            for _ in range(args.redis_cycles):
                redis_restart_cycle(bench, redis, stack, web, args.uploads)

        print(f"\n3. PostgreSQL restarted {args.pg_cycles} times under load ({args.pg_down:g} s down each)")
        second.start_worker(name="pg").wait_ready()
        postgres_restarts(bench, second, webs[1], args.pg_cycles, args.pg_down)
        for web in webs:
            assert web.process.alive(), "the web died"

        print("\naudit")
        ok = audit(bench)
        print(f"\n{'all checks passed' if ok else 'SOME CHECKS FAILED'} in {time.monotonic() - began:.0f} s")
        return 0 if ok else 1
    finally:
        cleanup = time.monotonic()
        for stack in stacks:
            stack.close()
        aof.close()
        volatile.close()
        pg.close()
        shutil.rmtree(base, ignore_errors=True)
        print(f"(stopped and removed everything in {time.monotonic() - cleanup:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
