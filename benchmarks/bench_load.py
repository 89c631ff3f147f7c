"""Load on the production set, through nginx over HTTPS on loopback, with locust (a test dependency).

    python benchmarks/bench_load.py [--seconds 60] [--reviewers 16] [--researchers 8] [--clients 4]
                                    [--modes paced,saturation] [--training-per-class 60] [--public-test-per-class 30]

Starts ``scripts/prod.py`` (``make prod``) on ports, a database (``ferplatform_bench_load``), a Redis and a state
directory of its own, with a synthetic FER-2013 file for bootstrap: the first start imports it, scores it in-sample
with the shipped model (the review queue) and predicts PublicTest with heatmaps (the gallery). Once both are there
and the first start's out-of-fold run is cancelled (it would train in the background), the scenarios run one after
another, each for ``--seconds`` after every user has logged in:

- reviewers: vote on the held item, then ask for the next (``POST .../votes`` + ``GET /api/review/items/next``);
- researchers: gallery pages, 100 faces each;
- API clients: upload a real photo (``../shared/data/photos/obama.jpg``) and wait for its prediction and heatmap.

Two modes: ``paced``, where each person pauses between actions as people do (``PACED_THINK``: about a second per
face for a reviewer, a few seconds per gallery page; none for API clients, which are scripts), and ``saturation``,
with no pauses at all, which measures what the set can take. locust runs on the same cores as the set.

Prints requests/s, p50, p99 and errors per request name, scenario and mode, and where the cores went. Items never
settle during the run (``REVIEW_QUORUM`` = ``REVIEW_MAX_VOTES`` = 16), so the queue cannot run dry, and the upload
throttle is lifted (``UPLOADS_THROTTLE_RATE``) so that it measures the work, not the limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the first start's certificate is self-signed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.deploy.stack import ADMIN_PASSWORD, USER_PASSWORD, ProductionStack, synthetic_fer_csv  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from cpuwatch import cpu_sample, cpu_usage  # noqa: E402

LOCUSTFILE = ROOT / "benchmarks" / "load" / "locustfile.py"
PHOTO = ROOT.parent / "shared" / "data" / "photos" / "obama.jpg"
SCENARIOS = {"reviewers": "Reviewer", "researchers": "Researcher", "clients": "ApiClient"}
LOGIN_ALLOWANCE = 15  # seconds added to each run for the logins, which the figures leave out
# Mean pause between one user's actions in the "paced" mode: a reviewer looks at a face for about a second before
# the key press (the fastest sustained pace of keyboard review), a researcher looks at a page of 100 faces for a
# few seconds, and API clients are scripts (none). "saturation" has no pauses at all: the set's capacity.
PACED_THINK = {"reviewers": 1.0, "researchers": 3.0, "clients": 0.0}
# Where the cores went during a scenario, by command line (the first match counts). locust is not among them: it
# has exited when the window closes, so its share shows in "machine" only.
CPU_ROLES = {
    "gunicorn": lambda cmd: "gunicorn" in cmd,
    "workers": lambda cmd: "celery" in cmd,
    "postgres": lambda cmd: cmd.startswith("postgres"),
    "nginx": lambda cmd: cmd.startswith("nginx"),
    "redis": lambda cmd: cmd.startswith("redis-server"),
}


LOAD_SETTINGS = {"REVIEW_QUORUM": "16", "REVIEW_MAX_VOTES": "16", "UPLOADS_THROTTLE_RATE": "100000/min"}


def load_users_create(stack: ProductionStack, per_role: int) -> None:
    """reviewerN, researcherN and clientN (a reviewer, for the upload API), N < per_role, in one manage.py call."""
    code = ("from apps.accounts.services import user_create\n"
            f"for n in range({per_role}):\n"
            "    for name, role in (('reviewer', 'reviewer'), ('researcher', 'researcher'), ('client', 'reviewer')):\n"
            f"        user_create(username=f'{{name}}{{n}}', role=role, password={USER_PASSWORD!r}, validate=False)\n")
    stack.manage("shell", "-c", code)


def first_start_settled(stack: ProductionStack, *, seconds: float = 1800) -> dict[str, int]:
    """Wait for the review queue and every PublicTest prediction, then cancel the out-of-fold runs still queued or
    running (as an admin would, through the API) so that nothing trains during the measurement."""
    stack.wait_for("the review queue", "SELECT 1 FROM review_reviewitem LIMIT 1", seconds=seconds)
    stack.wait_for("every PublicTest face predicted",
                   "SELECT 1 WHERE (SELECT count(*) FROM faces_faceimage WHERE split = 'PublicTest') = "
                   "(SELECT count(DISTINCT p.face_id) FROM inference_prediction p JOIN faces_faceimage f "
                   " ON f.id = p.face_id WHERE f.split = 'PublicTest')", seconds=seconds)
    admin = stack.session("admin", ADMIN_PASSWORD)
    for (run_id,) in stack.query("SELECT id FROM review_scoringrun WHERE status IN ('queued', 'running')"):
        admin.post(f"{stack.url}/api/review/scoring-runs/{run_id}/cancel", verify=False, timeout=30,
                   headers={"X-CSRFToken": admin.cookies["csrftoken"], "Referer": f"{stack.url}/review/scoring/"})
    stack.wait_for("the bulk worker idle", "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM review_scoringrun "
                   "WHERE status IN ('queued', 'running'))", seconds=600)
    # The scoring run's follow-up: the review page's overlays for the head of the queue (REVIEW_OVERLAY_PRECOMPUTE,
    # more items than this queue has), computed by the bulk worker before reviewers arrive, as in a deployment.
    stack.wait_for("the queue's overlays computed ahead",
                   "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM review_reviewitem r WHERE NOT EXISTS ("
                   " SELECT 1 FROM inference_explanation e JOIN inference_modelversion v ON v.id = e.model_version_id"
                   " WHERE v.status = 'active' AND e.face_id = r.face_id AND e.target_label = r.suggested_label))",
                   seconds=900)
    items = stack.query("SELECT count(*) FROM review_reviewitem")[0][0]
    faces = stack.query("SELECT count(*) FROM faces_faceimage WHERE split = 'PublicTest'")[0][0]
    return {"review_items": items, "public_test_faces": faces}


def scenario_run(stack: ProductionStack, name: str, users: int, seconds: int, out: Path,
                 per_role: int, gallery_pages: int, think: float, mode: str,
                 login_allowance: int = LOGIN_ALLOWANCE) -> list[dict[str, object]]:
    """One locust run, headless; its per-request-name rows (the aggregate last). Statistics restart once every user
    has logged in (the locustfile resets them), and the run lasts ``login_allowance`` longer to make up for it."""
    prefix = out / f"{mode}-{name}"
    env = {**os.environ, "LOAD_PASSWORD": USER_PASSWORD, "LOAD_PHOTO": str(PHOTO), "LOAD_USERS": str(users),
           "LOAD_USERS_PER_ROLE": str(per_role), "LOAD_GALLERY_PAGES": str(gallery_pages),
           "LOAD_THINK_SECONDS": str(think)}
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", stack.url,
               "-u", str(users), "-r", str(users), "-t", f"{seconds + login_allowance}s", "--csv", str(prefix),
               "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0", SCENARIOS[name]]
    before = cpu_sample(None)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=seconds + login_allowance + 180)
    cpu = cpu_usage(before, cpu_sample(None), CPU_ROLES)
    print(f"  {mode} {name}: cores busy " + ", ".join(f"{role} {cores:.2f}" for role, cores in cpu.items()
                                                      if role not in {"ours", "outside"})
          + " (locust's own share is in 'machine' only: it has exited when the window closes)", flush=True)
    stats = Path(f"{prefix}_stats.csv")
    if result.returncode != 0 or not stats.exists():
        raise RuntimeError(f"locust {name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    rows = []
    for row in csv.DictReader(stats.open()):
        if row["Name"] in {"login page", "login", "token"}:
            continue
        rows.append({"mode": mode, "think_s": think, "scenario": name, "name": row["Name"],
                     "requests": int(row["Request Count"]), "errors": int(row["Failure Count"]),
                     "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"] or 0),
                     "p99_ms": float(row["99%"] or 0)})
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        for row in csv.DictReader(failures.open()):
            print(f"  {name}: {row['Occurrences']}x {row['Method']} {row['Name']}: {row['Error'][:200]}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--reviewers", type=int, default=16)
    parser.add_argument("--researchers", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--training-per-class", type=int, default=60)
    parser.add_argument("--public-test-per-class", type=int, default=30)
    parser.add_argument("--modes", default="paced,saturation",
                        help="paced (users pause between actions, PACED_THINK) and/or saturation (no pauses)")
    parser.add_argument("--scenarios", default="reviewers,researchers,clients", help="which scenarios to run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not PHOTO.exists():
        print(f"bench_load: the shared photo {PHOTO} is not here; the upload scenario needs it", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        state = Path(tmp)
        state.chmod(0o755)  # nginx's workers (www-data) read static files and media under it
        csv_file = synthetic_fer_csv(state / "fer2013.csv.gz", training_per_class=args.training_per_class,
                                     public_test_per_class=args.public_test_per_class)
        stack = ProductionStack(state / "var", database="ferplatform_bench_load",
                                env={"FER2013_CSV": str(csv_file), **LOAD_SETTINGS})
        started = time.monotonic()
        stack.start()
        print(f"bench_load: first start served the login page through nginx after {time.monotonic() - started:.0f} s "
              "(migrate, collectstatic, bootstrap's import, then the processes)", flush=True)
        try:
            per_role = max(args.reviewers, args.researchers, args.clients)
            load_users_create(stack, per_role)
            data = first_start_settled(stack)
            print(f"bench_load: review queue and PublicTest heatmaps ready "
                  f"{time.monotonic() - started:.0f} s after the start: {data}", flush=True)
            pages = max(1, -(-data["public_test_faces"] // 100))
            rows = []
            for mode in args.modes.split(","):
                for name, users in (("reviewers", args.reviewers), ("researchers", args.researchers),
                                    ("clients", args.clients)):
                    if name not in args.scenarios.split(","):
                        continue
                    if mode == "saturation" and name == "clients":
                        continue  # API clients have no pauses: "paced" already measured them at saturation
                    think = PACED_THINK[name] if mode == "paced" else 0.0
                    rows += scenario_run(stack, name, users, args.seconds, state, per_role, pages, think, mode)
                    print(f"bench_load: {mode} {name} done", flush=True)
        finally:
            stack.stop()
            stack.drop_database()
    print(f"\n{args.seconds} s per scenario, through nginx (TLS) on loopback, {os.cpu_count()} CPU cores")
    print(f"{'mode':<11} {'think s':>7} {'scenario':<12} {'request':<14} {'requests':>8} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'errors':>6}")
    for row in rows:
        print(f"{row['mode']:<11} {row['think_s']:>7.1f} {row['scenario']:<12} {row['name']:<14} "
              f"{row['requests']:>8} {row['rps']:>7.1f} {row['p50_ms']:>7.0f} {row['p99_ms']:>7.0f} "
              f"{row['errors']:>6}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "rows": rows}, indent=2))
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
