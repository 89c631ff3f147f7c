"""Workers SIGKILLed in the middle of their work, several times in a row, on more data than the tests use.

    python benchmarks/bench_faults_workers.py                       # 2,016 PublicTest faces, 2 kills; 4 folds, 2 kills
    python benchmarks/bench_faults_workers.py --faces 280 --batch-size 16 --kills 2 --training-per-class 20 --folds 3
    python benchmarks/bench_faults_workers.py [--methods gradcam,scorecam] [--epochs 30] [--keep-db]

The full version of tests/faults/test_kill_and_disk.py's kill tests, with the same cycles (tests/faults/kill.py):

1. a split job (``inference.predict_split``) over ``--faces`` synthetic PublicTest faces, batches of
   ``--batch-size``, heatmaps of ``--methods``: its worker is SIGKILLed ``--kills`` times, at ``--cut-at`` (30 % of
   a measured batch, then while overlay files are on disk but not yet recorded); after each kill the sweeper
   (``work_sweep`` with "now" past the heartbeat timeout) queues the job again and a new worker resumes it;
2. a scoring run (``review.score_labels``, ``--folds`` folds of ``--epochs`` epochs, the tiny network) over
   7 x ``--training-per-class`` Training faces: its worker is SIGKILLed after each of the first ``--scoring-kills``
   folds, in the middle of the next one.

Each step prints its timings and the exactly-once checks: the job done once per face (one Prediction per face, one
Explanation per (face, method, target), every overlay PNG whole and owned by one row); the scoring run with one score
per face, no duplicate review items, and the folds finished before a kill never trained again. Exit status 1 if a
check fails. Runs against a fresh PostgreSQL database ``ferplatform_bench_faults_workers`` on the server of
$DATABASE_URL (dropped afterwards unless ``--keep-db``) and the Redis of $REDIS_URL (default db 14); media and work
dirs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchdb import bench_database_create, bench_database_drop

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "ferplatform_bench_faults_workers"


def _cut(value: str) -> float | str:
    return value if value == "writing" else float(value)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--faces", type=int, default=2016, help="PublicTest faces of the split job (default 2016).")
    parser.add_argument("--batch-size", type=int, default=64, help="INFERENCE_BATCH_SIZE of the workers (default 64).")
    parser.add_argument("--methods", default="gradcam,scorecam", help="CAM methods of the job (default gradcam,"
                                                                      "scorecam).")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs during the split job (default 2; the job "
                                                             "gives up after 3 attempts).")
    parser.add_argument("--cut-at", type=_cut, nargs="+", default=[0.3, "writing"],
                        help="Where in a batch each kill lands, in turn: a fraction of a measured batch, or 'writing' "
                             "(overlay files on disk, not yet recorded). Default: 0.3 writing.")
    parser.add_argument("--training-per-class", type=int, default=60, help="Training faces per class (default 60).")
    parser.add_argument("--mislabelled", type=int, default=30, help="Training faces labelled wrong (default 30).")
    parser.add_argument("--folds", type=int, default=4, help="Scoring folds (default 4).")
    parser.add_argument("--epochs", type=int, default=30, help="Epochs per scoring fold (default 30).")
    parser.add_argument("--scoring-kills", type=int, default=2, help="SIGKILLs during the scoring run, one after "
                                                                     "each of the first N folds (default 2).")
    parser.add_argument("--keep-db", action="store_true", help="Keep the benchmark database afterwards.")
    args = parser.parse_args(argv)
    if not 0 <= args.scoring_kills < args.folds:
        parser.error("--scoring-kills must be below --folds")
    if not 0 <= args.kills < 3 or args.scoring_kills >= 3:
        parser.error("a job or run gives up after 3 attempts (WorkKind.max_attempts): at most 2 kills each")
    return args


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ["DJANGO_SETTINGS_MODULE"] = "ferplatform.settings.test"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _check(results: list[tuple[str, bool, object]], name: str, ok: bool, detail: object = "") -> None:
    results.append((name, bool(ok), detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail != "" else ""))


def _split_job(args, base: Path, dataset, version, results) -> None:
    from django.conf import settings

    from apps.inference.models import InferenceJob
    from tests.faults.kill import split_job_kill_cycles

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"\n1. split job: {args.faces} PublicTest faces, batches of {args.batch_size}, {','.join(methods)}, "
          f"{args.kills} SIGKILL(s)")
    started = time.monotonic()
    cycle = split_job_kill_cycles(settings=settings, base=base, dataset=dataset, version=version, methods=methods,
                                  batch_size=args.batch_size, kills=args.kills, cut_at=tuple(args.cut_at), timeout=1800)
    wall = time.monotonic() - started
    for i, cut in enumerate(cycle.kills, 1):
        print(f"  kill {i}: done {cut['done']}/{cycle.total} (attempt {cut['attempts']}, "
              f"batch {cut['batch_seconds']} s); the cut batch had {cut['cut_batch_predictions']} prediction(s), "
              f"{cut['cut_batch_explanations']} explanation(s) and {cut['unrecorded_overlay_files']} unrecorded "
              f"overlay file(s); rows beyond it: {cut['rows_after_cut_batch']}; swept back: "
              f"{cut['status_after_sweep']}")
    checks = cycle.checks
    print(f"  first worker until its kill {cycle.seconds_first_run:.1f} s; last worker to done "
          f"{cycle.seconds_to_finish:.1f} s; whole cycle (worker starts included) {wall:.1f} s")
    job = InferenceJob.objects.get(pk=cycle.job_id)
    _check(results, "job done, every face", job.status == "succeeded" and job.done == job.total == args.faces,
           f"{job.status}, {job.done}/{job.total} {job.error[:200]}")
    _check(results, "attempts == kills + 1", cycle.attempts == args.kills + 1, cycle.attempts)
    _check(results, "each kill left the job running; the sweeper queued it again",
           all(c["status"] == "running" and c["sweep"]["requeued"] == [cycle.job_id] for c in cycle.kills))
    _check(results, "nothing beyond the cut batch was written before a kill",
           all(c["rows_after_cut_batch"] == 0 for c in cycle.kills))
    _check(results, "one Prediction per face", checks["predictions"] == checks["predicted_faces"] == checks["faces"],
           f"{checks['predictions']} for {checks['faces']} faces")
    _check(results, "one Explanation per (face, method, target)",
           checks["explanations_missing"] == checks["explanations_duplicated"] == 0
           and checks["explanations"] == checks["explanations_wanted"],
           f"{checks['explanations']} of {checks['explanations_wanted']} wanted")
    audit = checks["audit"]
    _check(results, "every overlay file whole and owned by exactly one row (no orphans, no temp files)",
           audit.clean and audit.overlays == checks["explanations"],
           f"{audit.overlays} files; orphans {len(audit.orphans)}, stray {len(audit.stray)}, broken "
           f"{len(audit.broken)}, missing {len(audit.missing)}")
    _check(results, "batches finished before the first kill not redone", checks["rows_before_first_cut_rewritten"] == 0)


def _scoring_run(args, base: Path, results) -> None:
    from django.conf import settings

    from tests.faults.kill import TINY_SCORING, scoring_run_kill_cycles

    n = 7 * args.training_per_class
    print(f"\n2. scoring run: {n} Training faces ({args.mislabelled} mislabelled), {args.folds} folds x {args.epochs} "
          f"epochs (tiny network), {args.scoring_kills} SIGKILL(s)")
    started = time.monotonic()
    cycle = scoring_run_kill_cycles(settings=settings, base=base, folds=args.folds, epochs=args.epochs,
                                    kills=args.scoring_kills, recipe_overrides=TINY_SCORING, timeout=3600)
    wall = time.monotonic() - started
    for i, cut in enumerate(cycle.kills, 1):
        print(f"  kill {i}: {len(cut['finished_folds'])} fold(s) finished, in progress: "
              f"{', '.join(cut['fold_state_files']) or '-'}; last event {json.dumps(cut['progress'])[:120]}; "
              f"swept back: {cut['status_after_sweep']}")
    print(f"  first worker until its kill {cycle.seconds_first_run:.1f} s; last worker to the end "
          f"{cycle.seconds_to_finish:.1f} s; whole cycle {wall:.1f} s")
    reused = [e for e in cycle.events_after_kill if e.get("kind") == "fold" and e.get("reused")]
    print(f"  events seen from the last worker: {len(cycle.events_after_kill)}, folds reused: "
          f"{[e['fold'] for e in reused]}")
    checks = cycle.checks
    _check(results, "run succeeded", cycle.status == "succeeded", cycle.error[:200])
    _check(results, "attempts == kills + 1", cycle.attempts == args.scoring_kills + 1, cycle.attempts)
    _check(results, "each kill came after one more finished fold",
           [len(c["finished_folds"]) for c in cycle.kills] == list(range(1, args.scoring_kills + 1)),
           [len(c["finished_folds"]) for c in cycle.kills])
    _check(results, "finished folds never trained again (files unchanged, no checkpoints back)",
           not cycle.retrained_folds, cycle.retrained_folds or "")
    _check(results, "no training event of a finished fold after a kill", not cycle.redone_events,
           cycle.redone_events[:3] or "")
    _check(results, "one score per face", checks["scores"] == checks["score_faces_distinct"] == checks["scored_faces"]
           == n, f"{checks['scores']} scores, {checks['scored_faces']} faces")
    _check(results, "review items not duplicated", checks["items"] == checks["items_created"]
           == checks["item_faces_distinct"], f"{checks['items']} items")
    _check(results, "work dir removed", not checks["work_dir_left"])


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db_url = bench_database_create(BENCH_DB)
    if db_url is None:
        return 2
    results: list[tuple[str, bool, object]] = []
    try:
        _setup_django(db_url)
        from django.test.utils import override_settings

        with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
            base = Path(tmp)
            overrides = {"MEDIA_ROOT": base / "media", "REVIEW_SCORING_DIR": base / "scoring",
                         "TRAINING_DIR": base / "training", "INFERENCE_REFRESH_ON_ACTIVATE": False}
            with override_settings(**overrides):
                from apps.inference.services.registry import model_version_register
                from tests.faults.kill import synthetic_faces, tiny_checkpoint

                started = time.monotonic()
                dataset = synthetic_faces(training_per_class=args.training_per_class, public_test=args.faces,
                                          mislabelled=args.mislabelled)
                version = model_version_register(checkpoint_path=tiny_checkpoint(base / "tiny.pt"), name="tiny",
                                                 activate=True)
                print(f"data: {args.faces} PublicTest + {7 * args.training_per_class} Training faces in "
                      f"{time.monotonic() - started:.1f} s")
                if args.kills >= 0 and args.faces:
                    _split_job(args, base / "split", dataset, version, results)
                if args.training_per_class:
                    _scoring_run(args, base / "scoring-cycle", results)
    finally:
        if "django.db" in sys.modules:
            sys.modules["django.db"].connections.close_all()  # FORCE-drop needs no session of ours, but be polite
        if not args.keep_db:
            bench_database_drop(BENCH_DB)
    failed = [name for name, ok, _ in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
