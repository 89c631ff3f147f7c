"""Votes per minute: the one-by-one review page against grid review, a scripted reviewer in a real Chromium.

    python benchmarks/bench_review_grid.py [--items 48] [--page-size 24] [--wrong 0.3] [--error-rate 0.05]
                                          [--think-ms 0] [--seed 0]

Creates a fresh database ``ferplatform_bench_grid`` on the server of $DATABASE_URL with ``--items`` synthetic faces
(random pixels: the pages do not look at what a face shows) split evenly over two labels, each with a review item and
a suggestion, and starts gunicorn on it. A fraction ``--wrong`` of the faces are mislabelled (their true class is the
suggestion). A simulated reviewer who knows the truth but errs with probability ``--error-rate`` on each face works the
same items twice, as two reviewer accounts (the quorum is set above two, so nothing settles in between):

- one by one (/review/): per face, Enter (accept the suggestion) when it judges the label wrong, else the label's
  digit; the next face is on screen before the next decision;
- in the grid (/review/grid/, ``--page-size`` faces a page): per face, Space on the faces it judges wrong (arrow keys
  to reach them; a marked face takes its suggestion), then Enter sends the page.

``--think-ms`` is the reviewer's time per face decision, the same in both modes (0: the pages' own throughput, "pure
UI"). The clock runs from the first face on screen to the last vote stored in the database. Prints votes per minute
for each mode and the share of votes that match the truth. The database, media and static folders are removed
afterwards. Needs Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop, server_wait

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "ferplatform_bench_grid"
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "bench-password-123"
LABELS = (3, 4)  # happy, sad: two grid pages' worth of labels

SETUP = """
import json, numpy as np
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.faces.models import FaceImage
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.review.models import ReviewItem
rng = np.random.default_rng({seed})
labels = {labels}
writer = FaceWriter(dataset_get_or_create(name="fer2013"))
with writer.scope():
    writer.write([FaceRecord(raw=rng.integers(0, 256, 2304, dtype=np.uint8).tobytes(), split="Training",
                             label=labels[i % len(labels)], source_row=i) for i in range({items})])
faces = list(FaceImage.objects.order_by("source_row"))
items = ReviewItem.objects.bulk_create([
    ReviewItem(face=f, priority=i / len(faces), suggested_probability=0.6,
               suggested_label=int(rng.choice([k for k in range(7) if k != f.current_label])))
    for i, f in enumerate(faces)])
for name in ("one", "grid"):
    user_create(username=f"bench-{{name}}", password="{password}", role=Role.REVIEWER)
print("ITEMS" + json.dumps([[i.pk, i.face.current_label, i.suggested_label] for i in items]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_votes(db_url: str, username: str) -> dict[int, int]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT v.item_id, v.choice FROM review_vote v JOIN auth_user u ON u.id = v.reviewer_id "
                            "WHERE u.username = %s", [username]).fetchall()
    return dict(rows)


def wait_votes(page, db_url: str, username: str, count: int, timeout: float = 300) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while len(votes := stored_votes(db_url, username)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{username}: {len(votes)} of {count} votes stored after {timeout} s")
        page.wait_for_timeout(20)
    return votes


def log_in(page, base: str, username: str, next_path: str) -> None:
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def run_one_by_one(page, base, db_url, truth, judge, think_ms) -> tuple[float, dict[int, int]]:
    log_in(page, base, "bench-one", "/review/")
    page.wait_for_selector('#review-app:not([data-item-id=""])[data-item-id]')
    started = time.perf_counter()
    for _ in range(len(truth)):
        page.wait_for_selector('#review-app:not([data-item-id=""])[data-item-id]')  # the next face may still load
        item_id = int(page.get_attribute("#review-app", "data-item-id"))
        if think_ms:
            page.wait_for_timeout(think_ms)
        label, suggestion = truth[item_id]["label"], truth[item_id]["suggestion"]
        page.keyboard.press("Enter" if judge(item_id) == suggestion else str(label + 1))
        page.wait_for_function("(id) => document.getElementById('review-app').dataset.itemId !== String(id)",
                               arg=item_id)
    votes = wait_votes(page, db_url, "bench-one", len(truth))
    return time.perf_counter() - started, votes


def run_grid(page, base, db_url, truth, judge, think_ms, page_size) -> tuple[float, dict[int, int]]:
    log_in(page, base, "bench-grid", f"/review/grid/?size={page_size}")
    started = None
    done = 0
    while done < len(truth):
        page.wait_for_selector('#grid-app[data-pending="0"]:not([data-items="0"])[data-items]')
        started = started or time.perf_counter()
        ids = [int(x) for x in page.eval_on_selector_all("#grid li.face-cell", "cells => cells.map(c => "
                                                                                "c.dataset.itemId)")]
        focus = 0
        for k, item_id in enumerate(ids):
            if think_ms:
                page.wait_for_timeout(think_ms)
            if judge(item_id) != truth[item_id]["label"]:
                for _ in range(k - focus):
                    page.keyboard.press("ArrowRight")
                focus = k
                page.keyboard.press(" ")  # a marked face takes its suggestion
        page.keyboard.press("Enter")
        done += len(ids)
        if done < len(truth):
            page.wait_for_function("(first) => { const c = document.querySelector('#grid li.face-cell'); "
                                   "return !c || c.dataset.itemId !== String(first); }", arg=ids[0])
    votes = wait_votes(page, db_url, "bench-grid", len(truth))
    return time.perf_counter() - started, votes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=48, help="faces, split evenly over two labels")
    parser.add_argument("--page-size", type=int, default=24, help="grid page size (24-48)")
    parser.add_argument("--wrong", type=float, default=0.3, help="share of mislabelled faces")
    parser.add_argument("--error-rate", type=float, default=0.05, help="the reviewer's chance to judge a face wrong")
    parser.add_argument("--think-ms", type=int, default=0, help="reviewer time per face decision, both modes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: this benchmark drives a real Chromium (apt-get install chromium).")
        return 2
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    media, static = tempfile.mkdtemp(prefix="ferplatform-bench-grid-"), tempfile.mkdtemp(prefix="ferplatform-static-")
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local", "DEBUG": "0", "DATABASE_URL": db_url,
           "MEDIA_ROOT": media, "STATIC_ROOT": static, "REVIEW_QUORUM": "3", "REVIEW_MAX_VOTES": "3",
           "REVIEW_PREFETCH": "3", "REVIEW_OVERLAY_PRECOMPUTE": "0", "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    env.pop("REDIS_URL", None)  # no task is queued here
    gunicorn = None
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
        setup = SETUP.format(items=args.items, seed=args.seed, labels=LABELS, password=PASSWORD)
        out = subprocess.run([*manage, "shell", "-c", setup], env=env, check=True, cwd=ROOT, capture_output=True,
                             text=True).stdout
        rng = random.Random(args.seed)
        truth = {}
        for pk, label, suggestion in json.loads(out.split("ITEMS", 1)[1]):
            true = suggestion if rng.random() < args.wrong else label
            truth[pk] = {"label": label, "suggestion": suggestion, "true": true}
        # The reviewer's judgement of each face, drawn once so both modes face the same decisions and slips.
        judged = {pk: (t["true"] if rng.random() >= args.error_rate
                       else (t["label"] if t["true"] != t["label"] else t["suggestion"])) for pk, t in truth.items()}
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ferplatform.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", "2", "--threads", "4", "--log-level", "warning"], env=env, cwd=ROOT)
        if not server_wait(gunicorn, port):
            print("gunicorn did not start")
            return 1
        from playwright.sync_api import sync_playwright

        base = f"http://127.0.0.1:{port}"
        results = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            for mode in ("one_by_one", "grid"):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(60_000)
                if mode == "one_by_one":
                    seconds, votes = run_one_by_one(page, base, db_url, truth, judged.get, args.think_ms)
                else:
                    seconds, votes = run_grid(page, base, db_url, truth, judged.get, args.think_ms, args.page_size)
                context.close()
                results[mode] = {
                    "votes": len(votes), "seconds": round(seconds, 2),
                    "votes_per_minute": round(len(votes) / seconds * 60, 1),
                    "votes_matching_truth": round(sum(votes[pk] == truth[pk]["true"] for pk in votes) / len(votes), 3),
                }
            browser.close()
        print(json.dumps({"items": args.items, "page_size": args.page_size, "wrong": args.wrong,
                          "error_rate": args.error_rate, "think_ms": args.think_ms, "seed": args.seed,
                          "server": "gunicorn 2 workers x 4 threads, PostgreSQL", **results,
                          "grid_speedup": round(results["grid"]["votes_per_minute"]
                                                / results["one_by_one"]["votes_per_minute"], 2)}))
        return 0
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        shutil.rmtree(media, ignore_errors=True)
        shutil.rmtree(static, ignore_errors=True)
        bench_database_drop(BENCH_DB)


if __name__ == "__main__":
    raise SystemExit(main())
