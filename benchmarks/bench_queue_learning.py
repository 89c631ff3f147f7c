"""A queue that learns from its reviewers, measured with simulated reviewers answering from FER+.

    python benchmarks/bench_queue_learning.py --source shipped=ml/weights/default.pt [--source short=DYN.npz]
        [--blend mix=shipped+short] [--reviewed 100,300,1000,2000] [--next 500] [--shrink 20]

For each source (or blend) the queue is its ranking (``ml.scoring.DEFAULT_RANKING``). Simulated reviewers settle
the first N items of the queue that have FER+ votes (the development half: even Training rows with votes), each
answering whether the given label is wrong by the platform's rule (``bench_ferplus_ranking.ferplus_wrong``). The
reviewer model (``ml.queue_model``, what the platform's queue fit does) is fitted on those N outcomes and re-ranks
the queue. The figure is the precision of the next 500 items on rows the simulated reviewers never saw (development
rows past the first N), in the queue's order before and after the refit. Sources are read as
``bench_ferplus_ranking.py`` reads them (a checkpoint's probabilities are computed once and kept in its work dir).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_ferplus_ranking as ferplus  # noqa: E402


def simulate(quality: np.ndarray, given: np.ndarray, suggested: np.ndarray, wrong: np.ndarray,
             development: np.ndarray, reviewed: int, nxt: int, shrink: float) -> dict:
    """Precision of the next ``nxt`` unseen development rows before and after a refit on the first ``reviewed``."""
    from ml.queue_model import fit_reviewer_model, rank_share, rerank

    order = np.argsort(quality, kind="stable")
    queue_dev = order[development[order]]
    if len(queue_dev) < reviewed + nxt:
        return {"reviewed": reviewed, "before": None, "after": None}
    seen = np.zeros(len(quality), dtype=bool)
    seen[queue_dev[:reviewed]] = True
    unseen = development & ~seen
    model = fit_reviewer_model(given[seen], suggested[seen], wrong[seen], shrink=shrink)
    after = rerank(rank_share(quality), given, suggested, model)
    metric = f"p@{nxt}"
    before_m = ferplus.ranking_metrics(quality, wrong, unseen, ks=(nxt,))
    after_m = ferplus.ranking_metrics(after, wrong, unseen, ks=(nxt,))
    return {"reviewed": reviewed, "wrong_share": float(wrong[seen].mean()), "before": before_m[metric],
            "after": after_m[metric], "ap_before": before_m["ap"], "ap_after": after_m["ap"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--blend", action="append", default=[], metavar="NAME=A+B[+C]")
    parser.add_argument("--reviewed", default="100,300,1000,2000", help="settled items before the refit")
    parser.add_argument("--next", dest="nxt", type=int, default=500, help="unseen items judged after it")
    parser.add_argument("--shrink", type=float, default=None, help="prior weight (default: ml.queue_model.SHRINK)")
    parser.add_argument("--fer-csv", type=Path, default=ferplus.DEFAULT_FER_CSV)
    parser.add_argument("--ferplus-csv", type=Path, default=ferplus.DEFAULT_FERPLUS_CSV)
    parser.add_argument("--work-dir", type=Path, default=ferplus.DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    try:
        return run(args, shlex.join(["python", "benchmarks/bench_queue_learning.py", *(sys.argv[1:] if argv is None
                                                                                          else argv)]))
    except (ferplus.BenchError, ValueError) as exc:
        print(f"bench_queue_learning: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, command: str) -> int:
    from ml.queue_model import SHRINK
    from ml.scoring import DEFAULT_RANKING

    shrink = SHRINK if args.shrink is None else args.shrink
    reviewed = [int(x) for x in args.reviewed.split(",") if x.strip()]
    checked = argparse.Namespace(**{**vars(args), "methods": DEFAULT_RANKING, "noise_json": None})
    sources, blends, methods = ferplus.check_args(checked)
    started = time.perf_counter()
    truth = ferplus.load_truth(args.fer_csv, args.ferplus_csv)
    probabilities: dict[str, ferplus.Probabilities] = {}
    for name, path in sources.items():
        _, probs, _ = ferplus.load_source(name, path, truth, methods, args.work_dir)
        if probs is None:
            raise ferplus.BenchError(f"source {name}: a score-labels CSV has no suggestions to learn pairs from")
        probabilities[name] = probs
    for name, parts in blends.items():
        probabilities[name] = ferplus.blend(name, {p: probabilities[p] for p in parts})
    minutes = (time.perf_counter() - started) / 60
    print(f"# queue learning benchmark, {datetime.now():%Y-%m-%d %H:%M}, {ferplus.machine()}")
    print(f"# command: {command}")
    print(f"# ranking {DEFAULT_RANKING}; reviewer model: pair rates shrunk by {shrink:g} items; {minutes:.1f} min to "
          "read the sources; figures: precision of the next "
          f"{args.nxt} development rows the simulated reviewers never saw")
    lines = []
    from ml.scoring import score_from_probabilities

    for name, p in probabilities.items():
        scores = score_from_probabilities(p.labels, p.probs, p.rows, ranking=DEFAULT_RANKING,
                                          filter_by=ferplus.ISSUE_FILTER)
        wrong, development = truth.wrong[p.rows], truth.development[p.rows]
        for n in reviewed:
            r = simulate(scores.quality, p.labels, scores.suggested, wrong, development, n, args.nxt, shrink)
            if r["before"] is None:
                lines.append([name, str(n), "-", "-", "-", "-", "-", "-"])
                continue
            lines.append([name, str(n), f"{r['wrong_share']:.3f}", f"{r['before']:.3f}", f"{r['after']:.3f}",
                          f"{r['after'] - r['before']:+.3f}", f"{r['ap_before']:.3f}", f"{r['ap_after']:.3f}"])
    print(ferplus.table(["source", "settled", "wrong among settled", f"next {args.nxt} before", "after", "gain",
                         "AP before", "AP after"], lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
