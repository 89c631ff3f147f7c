"""The retraining loop end to end on the shared data: import, train, score labels, settle the top of the queue, retrain.

    python benchmarks/bench_retrain_loop.py                      # the full thing (hours on a 2-core CPU)
    python benchmarks/bench_retrain_loop.py --limit 1500 --epochs 1 --score-epochs 1 --folds 2 --top 50   # quick check
    python benchmarks/bench_retrain_loop.py [--top 500] [--keep-db] [PATH]

Steps, each a ``manage.py`` subprocess against a fresh PostgreSQL database ``ferplatform_bench_loop`` on the server
of $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/), timed from the outside (start-up included):

1. ``migrate``, then ``import_fer2013`` of the shared file (PATH defaults to $FER2013_CSV, then
   ../shared/data/fer2013/fer2013.csv.gz; ``--limit N`` imports a temporary copy with the first N Training rows and
   the first ``--test-limit`` PublicTest rows, default N/8, FER-2013's ratio);
2. ``train_model`` (the default recipe; ``--epochs`` overrides its 50) - version 1, promoted as there is no active one;
3. ``score_labels --folds K [--epochs E]`` (cross-fitting + cleanlab): flagged Training faces become review items;
4. two simulated reviewers (users made with ``apps.accounts.services.user_create``) settle the first ``--top`` items of
   the queue through the review services the API uses (``review_item_next_for`` leases, ``review_vote_cast`` votes):
   both vote for the scoring run's suggestion, so the quorum of two settles each item and sets its current label;
5. ``train_model`` again on the corrected labels - version 2, through the promotion gate against version 1.

Then both versions' PublicTest accuracy and macro-F1 (against the current and the original labels) and the wall time
of each step are printed. Media, training and scoring work dirs go to a temporary FERPLATFORM_VAR_DIR (removed
afterwards); the database is dropped unless ``--keep-db``. Promotion does not queue the usual re-prediction and
re-scoring here (INFERENCE_REFRESH_ON_ACTIVATE=0): no worker runs, and the loop scores by itself.
Simulated reviewers who accept the model's suggestion measure the pipeline and its cost, not real label quality.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
BENCH_DB = "ferplatform_bench_loop"
CHILD_FLAG = "--child"  # the script runs itself with Django set up for the review and report steps
RESULT_PREFIX = "BENCH-RESULT "


# --- parent: the loop -------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", nargs="?", type=Path, default=None, help="FER-2013 csv(.gz); default: the shared one")
    parser.add_argument("--limit", type=int, default=None, help="Import only the first N Training rows.")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="PublicTest rows kept with --limit (default: N/8, at least 50).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs of both training runs (default: recipe's).")
    parser.add_argument("--score-epochs", type=int, default=None, help="Epochs per scoring fold (default: recipe's).")
    parser.add_argument("--folds", type=int, default=4, help="Scoring folds (default 4).")
    parser.add_argument("--top", type=int, default=500, help="Queue items the simulated reviewers settle.")
    parser.add_argument("--recipe", default="default", help="Training recipe of both runs (default: default).")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database and its media directory.")
    args = parser.parse_args(argv)
    for name in ("limit", "test_limit", "epochs", "score_epochs", "top"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def truncated_copy(source: Path, dest: Path, *, training: int, public_test: int) -> dict[str, int]:
    """Write the header, the first ``training`` Training rows and the first ``public_test`` PublicTest rows."""
    wanted = {"Training": training, "PublicTest": public_test}
    kept = dict.fromkeys(wanted, 0)
    with open(source, "rb") as handle:
        opener = gzip.open if handle.read(2) == b"\x1f\x8b" else open
    with opener(source, "rt", newline="") as src, open(dest, "w", newline="") as out:
        reader, writer = csv.reader(src), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        usage = header.index("Usage")
        for row in reader:
            split = row[usage] if len(row) > usage else ""
            if split in wanted and kept[split] < wanted[split]:
                writer.writerow(row)
                kept[split] += 1
                if kept == wanted:
                    break
    return kept


class Step:
    """Runs timed ``manage.py`` (or child) subprocesses with the benchmark's environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.times: list[tuple[str, float]] = []

    def manage(self, label: str, *args: str) -> None:
        self._run(label, [sys.executable, str(ROOT / "manage.py"), *args])

    def child(self, label: str, *args: str, timed: bool = True) -> dict:
        output = self._run(label, [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, *args], capture=True,
                           timed=timed)
        lines = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
        if not lines:
            raise SystemExit(f"step {label!r} printed no result")
        return json.loads(lines[-1][len(RESULT_PREFIX):])

    def _run(self, label: str, command: list[str], *, capture: bool = False, timed: bool = True) -> str:
        print(f"\n=== {label} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, env=self.env, cwd=ROOT, check=False, text=True,
                                stdout=subprocess.PIPE if capture else None)
        seconds = time.monotonic() - started
        if capture:
            for line in result.stdout.splitlines():
                if not line.startswith(RESULT_PREFIX):
                    print(line, flush=True)
        if result.returncode != 0:
            raise SystemExit(f"step {label!r} failed with exit status {result.returncode} after {seconds:.0f} s")
        if timed:
            self.times.append((label, seconds))
        print(f"--- {label}: {seconds:.1f} s", flush=True)
        return result.stdout or ""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    path = args.path or Path(os.environ.get("FER2013_CSV") or DEFAULT_FILE)
    if not path.is_file():
        print(f"FER-2013 file not found at {path}: nothing to benchmark (pass a path or set FER2013_CSV).")
        return 0
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="ferplatform-bench-loop-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local",
        "DATABASE_URL": db_url,
        "FERPLATFORM_VAR_DIR": str(work / "var"),  # media, training and scoring dirs, filesystem broker
        "MEDIA_ROOT": str(work / "var" / "media"),
        "DEBUG": "0",
        "INFERENCE_REFRESH_ON_ACTIVATE": "0",
    }
    for name in ("REDIS_URL", "TRAINING_DIR", "REVIEW_SCORING_DIR", "STATIC_ROOT"):
        env.pop(name, None)
    steps = Step(env)
    try:
        source = path
        if args.limit:
            test_rows = args.test_limit or max(50, args.limit // 8)
            source = work / "fer2013-head.csv"
            kept = truncated_copy(path, source, training=args.limit, public_test=test_rows)
            print(f"importing a temporary copy: the first {kept['Training']} Training and "
                  f"{kept['PublicTest']} PublicTest rows of {path}", flush=True)
        steps.manage("migrate", "migrate", "-v0")
        steps.manage("import", "import_fer2013", str(source))
        epochs = ["--epochs", str(args.epochs)] if args.epochs else []
        steps.manage("train v1", "train_model", "--recipe", args.recipe, *epochs)
        score_epochs = ["--epochs", str(args.score_epochs)] if args.score_epochs else []
        steps.manage("score labels", "score_labels", "--folds", str(args.folds), *score_epochs)
        settled = steps.child(f"settle top {args.top}", "settle", str(args.top))
        steps.manage("train v2", "train_model", "--recipe", args.recipe, *epochs)
        report = steps.child("report (not timed)", "report", timed=False)
    finally:
        if args.keep_db:
            print(f"\nkept database {BENCH_DB} and its media under {work / 'var'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            bench_database_drop(BENCH_DB)
    print_summary(args, path, steps.times, settled, report)
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def print_summary(args: argparse.Namespace, path: Path, times: list[tuple[str, float]], settled: dict,
                  report: dict) -> None:
    cpus = os.cpu_count() or 0
    print(f"\n{'=' * 100}\nRetraining loop on {path.name}"
          + (f" (first {args.limit} Training rows)" if args.limit else "")
          + f", {cpus} CPU core(s); recipe {args.recipe}, epochs {args.epochs or 'recipe default'}; scoring "
          f"{args.folds} folds, epochs {args.score_epochs or 'recipe default'}")
    print(f"faces: {report['faces']['Training']} Training, {report['faces']['PublicTest']} PublicTest; scoring: "
          f"{report['scoring']['scored']} scored, {report['scoring']['flagged']} flagged into the queue")
    print(f"simulated reviewers: {settled['settled']} item(s) settled (asked for {settled['top']}) with "
          f"{settled['votes']} votes in {settled['seconds']:.1f} s; {settled['changed']} Training label(s) changed, "
          f"{settled['excluded']} excluded as not a face")

    print("\nPublicTest figures (%). labels: Training faces trained on; changed: labels changed since the active")
    print("version's snapshot (the original labels for the first run); cur/orig: against the current/original")
    print("PublicTest labels; train s: the run's own time.")
    head = (f"{'version':<22} {'status':<9} {'labels':>7} {'changed':>7} {'acc cur':>8} {'F1 cur':>8} "
            f"{'acc orig':>8} {'F1 orig':>8}  train s")
    print(head)
    print("-" * len(head))
    for row in report["runs"]:
        cur, orig = row["current"] or {}, row["original"] or {}
        print(f"{row['version']:<22} {row['status']:<9} {row['labels']:>7} {row['changed']:>7} "
              f"{_pct(cur.get('accuracy')):>8} {_pct(cur.get('macro_f1')):>8} {_pct(orig.get('accuracy')):>8} "
              f"{_pct(orig.get('macro_f1')):>8}  {row['seconds']:.0f}")
    for row in report["runs"]:
        print(f"  {row['version']}: gate: {row['gate']}")
    if len(report["runs"]) == 2:
        first, second = report["runs"]
        for side in ("current", "original"):
            if first[side] and second[side]:
                acc = 100 * (second[side]["accuracy"] - first[side]["accuracy"])
                f1 = 100 * (second[side]["macro_f1"] - first[side]["macro_f1"])
                print(f"  v2 - v1 against {side} labels: accuracy {acc:+.2f} points, macro-F1 {f1:+.2f} points")
    print(f"  PublicTest labels changed by reviewers: {report['public_test_changed']} (scoring covers Training faces "
          "only, so 'current' and 'original' agree unless someone relabels test images)")

    print("\nWall time per step (whole subprocess, start-up included):")
    for label, seconds in times:
        print(f"  {label:<18} {seconds:>9.1f} s")
    print(f"  {'total':<18} {sum(s for _, s in times):>9.1f} s")
    print("\nNote: simulated reviewers are not a measure of real label quality. They accept the scoring model's own")
    print("suggestion for every item they settle, which exercises the loop and measures its cost; a change in the")
    print("PublicTest figures here says nothing about what human reviewers would achieve.")
    if args.limit or args.epochs or args.score_epochs:
        print("With --limit or fewer epochs than the recipes' the figures only show that the pipeline works.")


# --- child: steps that need Django in-process ---------------------------------------------------------------------

def child(argv: list[str]) -> int:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    if argv[0] == "settle":
        result = child_settle(int(argv[1]))
    elif argv[0] == "report":
        result = child_report()
    else:
        raise SystemExit(f"unknown child step {argv[0]!r}")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def child_settle(top: int) -> dict:
    """Two reviewers settle the first ``top`` items of the queue with the scoring run's suggestion (quorum 2)."""
    import random

    from django.conf import settings

    from apps.accounts.roles import Role
    from apps.accounts.services import password_generate, user_create
    from apps.review.choices import NOT_A_FACE
    from apps.review.models import ReviewItem
    from apps.review.services import review_item_next_for, review_vote_cast

    if settings.REVIEW_QUORUM != 2:
        raise SystemExit(f"REVIEW_QUORUM is {settings.REVIEW_QUORUM}; this simulation casts two votes per item")
    reviewers = [user_create(username=f"bench-reviewer-{i}", role=Role.REVIEWER, password=password_generate(),
                             validate=False) for i in (1, 2)]
    rng = random.Random(0)
    started = time.monotonic()
    votes = 0

    def settled_count() -> int:
        return ReviewItem.objects.filter(status=ReviewItem.Status.SETTLED, is_gold=False).count()

    settled = settled_count()
    while settled < top:
        want = min(settings.REVIEW_PREFETCH, top - settled)
        cast = 0
        for reviewer in reviewers:  # the second reviewer is served the items the first one just voted on
            for item in review_item_next_for(user=reviewer, count=want, rng=rng):
                review_vote_cast(user=reviewer, item_id=item.pk, choice=item.suggested_label)
                cast += 1
        votes += cast
        now = settled_count()
        if cast == 0 or (now == settled and cast < 2 * want):
            break  # the queue ran dry
        settled = now
    items = ReviewItem.objects.filter(status=ReviewItem.Status.SETTLED, is_gold=False).select_related("face")
    changed = sum(1 for item in items if item.settled_label not in (NOT_A_FACE, item.face.original_label))
    excluded = sum(1 for item in items if item.settled_label == NOT_A_FACE)
    print(f"{items.count()} item(s) settled by {', '.join(r.username for r in reviewers)} with {votes} votes")
    return {"top": top, "settled": items.count(), "votes": votes, "changed": changed, "excluded": excluded,
            "seconds": time.monotonic() - started}


def child_report() -> dict:
    from django.db.models import F

    from apps.faces.models import FaceImage, Split
    from apps.review.models import LabelScore, ScoringRun
    from apps.training.models import TrainingRun

    runs = []
    for run in TrainingRun.objects.select_related("model_version").order_by("pk"):
        candidate = (run.metrics or {}).get("candidate") or {}
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0.0
        version = run.model_version
        runs.append({
            "version": f"#{version.pk} (run {run.pk})" if version else f"run {run.pk}",
            "status": version.status if version else run.status, "labels": run.snapshot_count or 0,
            "changed": run.labels_changed or 0, "current": candidate.get("current"),
            "original": candidate.get("original"), "gate": run.promotion_reason or run.error, "seconds": seconds,
        })
    last = ScoringRun.objects.order_by("-pk").first()
    return {
        "runs": runs,
        "faces": {str(split.value): FaceImage.objects.filter(split=split).count()
                  for split in (Split.TRAINING, Split.PUBLIC_TEST)},
        "scoring": {"scored": LabelScore.objects.filter(run=last).count() if last else 0,
                    "flagged": last.issue_count if last else 0},
        "public_test_changed": FaceImage.objects.filter(split=Split.PUBLIC_TEST).exclude(
            current_label=F("original_label"), excluded=False).count(),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        sys.exit(child(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
