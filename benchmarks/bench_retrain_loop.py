"""The retraining loop end to end, measured against an oracle: how much closer a retrain gets to the truth.

Import, train, score labels, settle the top of the queue with the oracle's answers, retrain, measure.

    python benchmarks/bench_retrain_loop.py --oracle ORACLE.csv --eval-labels EVAL.csv [--top 1000 3000]
        [--retrain finetune|scratch ...] [--seeds 2] [PATH]
    python benchmarks/bench_retrain_loop.py --from-shipped --oracle ferplus --score-method short_run --blend-active \
        --top 1000 --seeds 3 --out benchmarks/results/retrain-loop-ferplus   # FER+ reviewers, gain over the control
    python benchmarks/bench_retrain_loop.py --inject uniform class_conditional --noise 0.1 --seeds 2 [--top 0 300 600]
    python benchmarks/bench_retrain_loop.py                  # no oracle: the reviewers accept the suggestion
    python benchmarks/bench_retrain_loop.py --limit 800 --epochs 1 --finetune-epochs 1 --score-epochs 1 --folds 2 \
        --top 50   # the quick check

Each loop runs ``manage.py`` subprocesses against a fresh PostgreSQL database (``--db``, default
``ferplatform_bench_loop``) on the server of $DATABASE_URL (media and work dirs in a temporary FERPLATFORM_VAR_DIR),
timed from the outside:

1. ``migrate``, ``import_fer2013`` of PATH (default $FER2013_CSV, then ../shared/data/fer2013/fer2013.csv.gz; with
   ``--limit N`` a temporary copy of its first N Training rows and N/8 PublicTest and PrivateTest rows);
2. ``train_model --recipe default`` (``--epochs``; ``--arch`` overrides the recipe's, e.g. the smaller fer_vgg so
   that a short schedule learns something): version 0, "before". With ``--from-shipped`` version 0 is the shipped
   checkpoint instead (``settings.INFERENCE_DEFAULT_CHECKPOINT``, ``ml/weights/default.pt``), registered and
   activated in-process by the platform's first-start step (``apps.core.bootstrap.register_default_model``): no
   93-minute training, and k = 0 (the control) is always among ``--top``;
3. ``score_labels`` (``--score-method``, ``--folds``, ``--score-epochs``, ``--blend-active``): flagged Training
   faces become review items;
4. for each k of ``--top``, ascending: two simulated reviewers settle the queue's top k items through the review
   services (``review_item_next_for``, ``review_vote_cast``), both voting the oracle's label, so the quorum of two
   settles each item; faces the oracle has no answer for are skipped by both (``review_item_skip``), and the
   reviewers go on down the queue until k items are settled or it runs dry. The queue fits that settling makes due
   (``apps.review.learning``) run between batches, as the platform's worker runs them, so the queue learns from the
   reviewers on the way (``--no-queue-fits``: the scoring run's order throughout). Settling is cumulative (top 3000
   includes the top 1000), and every retrain starts from the same place: version 0 is activated again after each
   one, so ``finetune`` always starts from version 0's weights and the gate always compares with it. k = 0 retrains
   on uncorrected labels: the control (same recipe, seed and epochs) that each k is reported against;
5. per k and per ``--retrain``: ``train_model --recipe finetune`` (``--finetune-epochs``) or ``--recipe default``
   from scratch (``--epochs``), then the new version is measured (in the next child process, not timed).

Every version is measured on PublicTest (and PrivateTest when imported) and on the Training faces, against the
evaluation labels ("truth") and the imported ones ("original"): the Training figures say how well the model fits the
truth rather than the labels it was given. Faces the evaluation labels call "not a face", or leave without a label
(FER+ votes with no emotion on top, or none), are left out of "truth".

Label files (``--oracle``, ``--eval-labels``) have the data file's rows (row N is the face of row N), in one of two
layouts, told apart by the header:
- Kaggle layout (Usage and pixels are checked): ``emotion`` is 0-6 or a class name; ``7``, ``nf`` or ``not_a_face``
  means not a face (the oracle's reviewers vote "not a face", which excludes the face from training);
- FER+ layout (``fer2013new.csv``; Usage is checked, it has no pixels), or ``ferplus`` for
  ../shared/data/ferplus/fer2013new-dev.csv.gz: as the oracle, the reviewers vote the column with strictly the most
  votes (an emotion, or "not a face" for NF); they confirm the given label where a tie, contempt or unknown tops the
  votes, and skip rows without votes (the withheld odd Training rows). As evaluation labels, a face counts where an
  emotion strictly tops its votes (the FER+ majority, as ``apps.review.ferplus.ferplus_majority_accuracy``). FER+
  only plays the reviewers and the yardstick: nothing else of it reaches the ranking or the training.
Without ``--eval-labels`` the evaluation labels are those of a FER+ oracle, else the data file's own; without
``--oracle`` the reviewers accept the scoring run's suggestion (the old behaviour: it exercises and times the loop,
and says nothing about label quality).

``--inject uniform|class_conditional --noise R``: per kind and seed, ``ml.noise`` flips R of the Training labels
(class-conditional along ``loop_labels.FER_CONFUSION``), the noisy copy is imported, and the clean file is the oracle
and the evaluation labels. Per seed the clean file is also imported and trained from scratch once (the clean end;
version 0 is the noisy end). Reported: the share of the gap the corrected top k closes,
(after - noisy) / (clean - noisy), mean and sample standard deviation over ``--seeds`` (each seed draws its own
noise and trains with that seed; ``--first-seed`` adds seeds to an earlier run). Without ``--inject``, seeds only
change the training and scoring seed.

Reported for every loop: each retrain's PublicTest accuracy against the evaluation labels minus the k = 0 control's
(the gain over the control), per seed and as mean, sample standard deviation, min and max over the seeds. Before the
first settling the queue as scored is written (``queue.csv``, as ``manage.py export_labels`` writes it) and, with a
FER+ oracle over the whole data file, judged on FER+'s development half: its precision@k as the issue counts it.

``--out DIR`` keeps the run resumable: each seed's loops go to ``DIR/seed-N.json`` when the seed is done, and
``DIR/result.json`` gathers every finished seed of the same configuration (rewritten after each loop). A rerun with
the same ``--out`` skips the seeds found there, so seeds can run one after another in the background, in one
process (``--seeds 3``) or several (``--first-seed 1 --seeds 1``); a directory holding another configuration's seeds
is refused. One process at a time per ``--out`` (a lock) and per ``--db``.

Prints one JSON object (also written to ``--out``), markdown tables and a last ``BENCH-SUMMARY`` JSON line (date,
machine, command, gain over the control, minutes per step).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_ferplus_ranking import DEFAULT_FERPLUS_CSV, PRECISION_AT, machine  # noqa: E402
from benchdb import bench_database_create, bench_database_drop  # noqa: E402
from loop_labels import (  # noqa: E402
    NO_LABEL,
    NOT_A_FACE,
    FerplusVotes,
    LabelFile,
    check_same_rows,
    check_same_usages,
    ferplus_answers,
    ferplus_top,
    inject_noise,
    is_ferplus_layout,
    read_ferplus_votes,
    read_label_file,
    truncated_copy,
    write_relabelled,
)
from loop_report import control_gains, gap_closed, print_report  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
FERPLUS = "ferplus"  # --oracle / --eval-labels: the shared FER+ development file
BENCH_DB = "ferplatform_bench_loop"
CHILD_FLAG = "--child"  # the script runs itself with Django set up for the review and measuring steps
RESULT_PREFIX = "BENCH-RESULT "
NOISE_KINDS = ("uniform", "class_conditional")
RETRAIN_RECIPES = {"finetune": "finetune", "scratch": "default"}
SCORE_METHODS = ("in_sample", "out_of_fold", "short_run", "dynamics")  # apps.review.models.ScoringRun.Method
TRAINING_SCORE_METHODS = ("out_of_fold", "short_run")  # the methods that train, so take --score-epochs and a blend


# --- parent: the loops ------------------------------------------------------------------------------------------

def label_source(text: str) -> Path:
    """A label file's path; ``ferplus`` for the shared FER+ development file."""
    return DEFAULT_FERPLUS_CSV if text.strip().lower() == FERPLUS else Path(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", nargs="?", type=Path, default=None, help="FER-2013 csv(.gz); default: the shared one")
    parser.add_argument("--oracle", type=label_source,
                        help="The reviewers' answers: a label file with the data file's rows (Kaggle or FER+ "
                             f"layout), or '{FERPLUS}' for {DEFAULT_FERPLUS_CSV.name}.")
    parser.add_argument("--eval-labels", type=label_source,
                        help="Labels to measure against, as --oracle (default: a FER+ oracle's majority, else the "
                             "data file's labels).")
    parser.add_argument("--from-shipped", action="store_true",
                        help="Version 0 is the shipped checkpoint, registered and activated, instead of a training "
                             "run from scratch; k = 0 (the control) is added to --top.")
    parser.add_argument("--inject", nargs="+", choices=NOISE_KINDS, help="Flip --noise of the Training labels.")
    parser.add_argument("--noise", type=float, default=0.1, help="Share of Training labels flipped (default 0.1).")
    parser.add_argument("--seeds", type=int, default=1, help="Repetitions (noise draw and training seed).")
    parser.add_argument("--first-seed", type=int, default=0, help="Seeds run from here (default 0), to add seeds.")
    parser.add_argument("--top", type=int, nargs="+", default=[500], help="Queue items settled (cumulative).")
    parser.add_argument("--retrain", nargs="+", choices=tuple(RETRAIN_RECIPES), default=["finetune"],
                        help="finetune (from version 0's weights) and/or scratch (the default recipe).")
    parser.add_argument("--limit", type=int, default=None, help="Import only the first N Training rows.")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="PublicTest (and PrivateTest) rows kept with --limit (default: N/8, at least 50).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs of training from scratch (recipe's).")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="Epochs of finetune runs (recipe's).")
    parser.add_argument("--score-method", choices=SCORE_METHODS, default=None,
                        help="score_labels --method (default: the command's, out_of_fold); the platform refines "
                             "its queue with short_run and --blend-active.")
    parser.add_argument("--blend-active", action="store_true",
                        help="score_labels --blend-active: average with version 0's in-sample probabilities.")
    parser.add_argument("--score-epochs", type=int, default=None,
                        help="Epochs of the scoring recipe per fold or short run (recipe's).")
    parser.add_argument("--folds", type=int, default=4, help="Out-of-fold scoring folds (default 4).")
    parser.add_argument("--recipe", default="default", help="Recipe of training from scratch (default: default).")
    parser.add_argument("--arch", default=None,
                        help="Architecture of training from scratch (a recipe override; finetune follows version 0).")
    parser.add_argument("--no-queue-fits", dest="queue_fits", action="store_false",
                        help="Settle without the queue fits a worker runs as items settle (the queue keeps the "
                             "scoring run's order).")
    parser.add_argument("--out", type=Path,
                        help="Directory for the results: seed-N.json per finished seed (a rerun skips those seeds) "
                             "and result.json over all of them.")
    parser.add_argument("--db", default=BENCH_DB, help=f"Database to (re)create and drop (default {BENCH_DB}).")
    parser.add_argument("--keep-db", action="store_true", help="Keep the last loop's database and media.")
    args = parser.parse_args(argv)
    for name in ("limit", "test_limit", "epochs", "finetune_epochs", "score_epochs", "seeds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.top) < 0:
        parser.error("--top must be 0 or more")
    if args.first_seed < 0:
        parser.error("--first-seed must be 0 or more")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if not 0 < args.noise < 1:
        parser.error("--noise must lie between 0 and 1")
    if args.inject and (args.oracle or args.eval_labels):
        parser.error("--inject makes the clean file the oracle and the evaluation labels; drop --oracle/--eval-labels")
    if args.inject and args.from_shipped:
        parser.error("--inject compares with models trained on the noisy and the clean file; the shipped model was "
                     "trained on neither")
    method = args.score_method or "out_of_fold"
    if args.score_epochs and method not in TRAINING_SCORE_METHODS:
        parser.error(f"--score-epochs applies to {' and '.join(TRAINING_SCORE_METHODS)} scoring only")
    if args.blend_active and method == "in_sample":
        parser.error("--blend-active applies to runs that train (an in-sample run is version 0's probabilities)")
    if method == "dynamics" and args.from_shipped:
        parser.error("dynamics scoring needs version 0's training dynamics, and a checkpoint registered from a file "
                     "has none: score with short_run")
    if args.out is not None and (args.out.suffix == ".json" or args.out.is_file()):
        parser.error("--out is a directory (seed-N.json and result.json go into it)")
    if args.from_shipped:
        args.top.append(0)
    args.top = sorted(set(args.top))
    return args


class Step:
    """Runs timed ``manage.py`` (or child) subprocesses with one loop's environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.times: list[tuple[str, float]] = []

    def manage(self, label: str, *args: str) -> float:
        return self._run(label, [sys.executable, str(ROOT / "manage.py"), *args])[1]

    def child(self, label: str, actions: list[tuple[str, dict]]) -> list[dict]:
        """Child steps (``settle``, ``measure``) in one subprocess, which costs one Django and torch start-up; the
        wall time of each is the child's own, recorded by the caller where it is a step of the loop."""
        output, _ = self._run(label, [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(actions)],
                              capture=True, timed=False)
        lines = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
        if not lines:
            raise SystemExit(f"step {label!r} printed no result")
        return json.loads(lines[-1][len(RESULT_PREFIX):])

    def _run(self, label: str, command: list[str], *, capture: bool = False, timed: bool = True) -> tuple[str, float]:
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
        return result.stdout or "", seconds


@contextmanager
def loop_database(work: Path, args: argparse.Namespace) -> Iterator[Step]:
    """A fresh database and var dir for one loop; both go afterwards unless ``--keep-db``."""
    db_url = bench_database_create(args.db)
    if db_url is None:
        raise SystemExit(2)
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.local",
        "DATABASE_URL": db_url,
        "FERPLATFORM_VAR_DIR": str(work / "var"),  # media, training and scoring dirs, filesystem broker
        "MEDIA_ROOT": str(work / "var" / "media"),
        "DEBUG": "0",
        "INFERENCE_REFRESH_ON_ACTIVATE": "0",  # no worker runs: the loop scores and measures by itself
    }
    for name in ("REDIS_URL", "TRAINING_DIR", "REVIEW_SCORING_DIR", "STATIC_ROOT"):
        env.pop(name, None)
    try:
        yield Step(env)
    finally:
        if args.keep_db:
            print(f"\nkept database {args.db} and its media under {work / 'var'}")
        else:
            shutil.rmtree(work / "var", ignore_errors=True)
            bench_database_drop(args.db)


def _train_scratch(steps: Step, label: str, seed: int, args: argparse.Namespace) -> float:
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    arch = ["--recipe-overrides", json.dumps({"arch": args.arch})] if args.arch else []
    return steps.manage(label, "train_model", "--recipe", args.recipe, *epochs, *arch, "--seed", str(seed))


def _import(steps: Step, import_file: Path) -> None:
    steps.manage("migrate", "migrate", "-v0")
    steps.manage("import", "import_fer2013", str(import_file))


def _import_and_train(steps: Step, import_file: Path, seed: int, args: argparse.Namespace) -> float:
    _import(steps, import_file)
    return _train_scratch(steps, "train v0 (scratch)", seed, args)


def _score_args(seed: int, args: argparse.Namespace) -> list[str]:
    score = ["--seed", str(seed)]
    if args.score_method:
        score += ["--method", args.score_method]
    method = args.score_method or "out_of_fold"
    if method == "out_of_fold":
        score += ["--folds", str(args.folds)]
    if method in TRAINING_SCORE_METHODS and args.score_epochs:
        score += ["--epochs", str(args.score_epochs)]
    if args.blend_active:
        score += ["--blend-active"]
    return score


def run_loop(args: argparse.Namespace, *, work: Path, import_file: Path, seed: int, answers: Path | None,
             truth: Path) -> dict:
    """One loop: version 0 (trained on the imported labels, or the shipped checkpoint), a scoring run, then per k
    the top k settled and each retrain.

    A version is measured in the next child subprocess (with the next settling), which then activates version 0
    again; the measuring is not timed."""
    started = time.monotonic()
    measure = {"truth": str(truth), "activate": "v0"}
    with loop_database(work, args) as steps:
        pending = []  # (child action, the model entry its result goes into)
        if args.from_shipped:
            _import(steps, import_file)
            registered, measured = steps.child("register the shipped checkpoint as v0, measure (not timed)",
                                               [("register", {}), ("measure", measure)])
            steps.times.append(("register shipped v0 (in-process)", registered["child_seconds"]))
            models = [{"model": "v0", "k": None, "retrain": "shipped", "seconds": registered["child_seconds"],
                       "checkpoint": registered["checkpoint"], **measured}]
        else:
            models = [{"model": "v0", "k": None, "retrain": "scratch",
                       "seconds": _import_and_train(steps, import_file, seed, args)}]
            pending.append((("measure", measure), models[0]))
        score_seconds = steps.manage("score labels", "score_labels", *_score_args(seed, args))

        def run_child(label: str, actions: list[tuple[str, dict]]) -> list[dict]:
            results = steps.child(label, [action for action, _ in pending] + actions)
            for (_, entry), result in zip(pending, results, strict=False):
                entry.update(result)
            del pending[:]
            return results[-len(actions):] if actions else []

        for k in args.top:
            settle = {"top": k, "answers": str(answers) if answers else None, "truth": str(truth),
                      "queue_fits": args.queue_fits}
            if k == args.top[0]:  # the queue as the scoring run left it, before anything is settled
                settle["queue"] = {"csv": str(work / "queue.csv"), "fer_csv": str(import_file),
                                   "ferplus_csv": str(args.oracle) if _judges_queue(args) else None}
            settled = run_child(f"measure, settle top {k}", [("settle", settle)])[0]
            steps.times.append((f"settle top {k} (in-process)", settled["seconds"]))
            for retrain in args.retrain:
                if pending:  # the version just trained is measured, and version 0 active again, before the next
                    run_child("measure (not timed)", [])
                label = f"retrain {retrain} (top {k})"
                if retrain == "finetune":
                    epochs = ["--epochs", str(args.finetune_epochs)] if args.finetune_epochs else []
                    seconds = steps.manage(label, "train_model", "--recipe", "finetune", *epochs, "--seed", str(seed))
                else:
                    seconds = _train_scratch(steps, label, seed, args)
                models.append({"model": f"{retrain} top {k}", "k": k, "retrain": retrain, "settled": settled,
                               "seconds": seconds})
                pending.append((("measure", measure), models[-1]))
        run_child("measure (not timed)", [])
        return {"seed": seed, "scoring_seconds": score_seconds, "models": models, "steps": steps.times,
                "wall_seconds": round(time.monotonic() - started, 1)}


def _judges_queue(args: argparse.Namespace) -> bool:
    """The queue's precision is taken on FER+'s development half where the oracle is a FER+ file over the whole
    data file (its rows are the data file's)."""
    return bool(args.oracle) and not args.limit and not args.inject and is_ferplus_layout(args.oracle)


def run_clean_end(args: argparse.Namespace, *, work: Path, import_file: Path, seed: int, truth: Path) -> dict:
    with loop_database(work, args) as steps:
        seconds = _import_and_train(steps, import_file, seed, args)
        clean = steps.child("measure clean (not timed)", [("measure", {"truth": str(truth)})])[0]
        return {"seed": seed, "model": "clean", "seconds": seconds, **clean, "steps": steps.times}


def _labels_json(path: Path, labels: np.ndarray) -> Path:
    path.write_text(json.dumps([int(v) for v in labels]))
    return path


def _wrong_labels(imported: np.ndarray, truth: np.ndarray, usages: np.ndarray) -> int:
    """Training faces whose imported label is not the truth (faces without a truth are not counted)."""
    judged = (usages == "Training") & (truth != NO_LABEL)
    return int((imported[judged] != truth[judged]).sum())


class SeedStore:
    """The finished seeds: under ``--out``, ``seed-N.json`` per seed, written when all of the seed's loops are done,
    so that a rerun skips it; each file carries the configuration it ran with, and seeds of another one are refused.
    Without ``--out`` only this process's seeds, in memory. A lock keeps a second process off the same directory."""

    def __init__(self, out: Path | None, config: dict) -> None:
        self.out, self.config, self.units = out, config, {}
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        self._lock = open(out / ".lock", "w")  # held for the process's life; the OS releases it at exit
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{out}: another bench_retrain_loop.py process writes there") from None
        for path in sorted(out.glob("seed-*.json")):
            unit = json.loads(path.read_text())
            if unit.get("config") != config:
                changed = sorted(k for k in {**config, **(unit.get("config") or {})}
                                 if config.get(k) != (unit.get("config") or {}).get(k))
                raise SystemExit(f"{path} ran with another configuration ({', '.join(changed)} differ): use another "
                                 "--out, or move it away")
            self.units[unit["seed"]] = unit

    def done(self, seed: int) -> dict | None:
        return self.units.get(seed)

    def save(self, seed: int, unit: dict) -> None:
        stamp = {"finished": datetime.now().isoformat(timespec="seconds"), "machine": machine()}  # seeds may span days
        self.units[seed] = {"seed": seed, "config": self.config, "clean_ends": unit["clean_ends"],
                            "loops": [{**loop, **stamp} for loop in unit["loops"]]}
        if self.out is not None:
            _write_json(self.out / f"seed-{seed}.json", self.units[seed])

    def loops(self) -> tuple[list[dict], list[dict]]:
        """Every kept seed's loops and clean ends, by seed."""
        units = [self.units[seed] for seed in sorted(self.units)]
        return [x for u in units for x in u["loops"]], [x for u in units for x in u["clean_ends"]]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    path = args.path or Path(os.environ.get("FER2013_CSV") or DEFAULT_FILE)
    if not path.is_file():
        print(f"FER-2013 file not found at {path}: nothing to benchmark (pass a path or set FER2013_CSV).")
        return 0
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ferplatform-bench-loop-"))
    try:
        result = _run(args, path, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["scale"]["total_seconds"] = round(time.monotonic() - started, 1)
    result["command"] = shlex.join(["python", "benchmarks/bench_retrain_loop.py", *argv])
    _save(args, result)
    print_report(result)
    return 0


def _label_file(name: str, file: Path, data: LabelFile, kept: np.ndarray | None) -> LabelFile | FerplusVotes:
    """A label file's labels (Kaggle layout) or votes (FER+ layout), cut to the imported copy's rows with --limit."""
    if not file.is_file():
        raise SystemExit(f"{name} {file}: no such file")
    ferplus = is_ferplus_layout(file)
    labels = read_ferplus_votes(file) if ferplus else read_label_file(file)
    if kept is not None:  # the label file has the whole data file's rows; keep those of the imported copy
        if len(labels) <= kept.max():
            raise SystemExit(f"{name} {file}: {len(labels)} data rows, fewer than the data file's")
        labels = labels.subset(kept)
    (check_same_usages if ferplus else check_same_rows)(f"{name} {file}", labels, data)
    return labels


def _truth_of(labels: LabelFile | FerplusVotes) -> np.ndarray:
    return labels.labels if isinstance(labels, LabelFile) else ferplus_top(labels.counts)


def _configuration(args: argparse.Namespace, path: Path) -> dict:
    """What a seed's results depend on besides the seed: seeds of another configuration are not mixed with these."""
    method = args.score_method or "out_of_fold"
    return {
        "data": str(path), "limit": args.limit, "test_limit": args.test_limit if args.limit else None,
        "from_shipped": args.from_shipped, "oracle": str(args.oracle) if args.oracle else None,
        "eval_labels": str(args.eval_labels) if args.eval_labels else None,
        "recipe": args.recipe, "arch": args.arch or "recipe's",
        "epochs": args.epochs or "recipe", "finetune_epochs": args.finetune_epochs or "recipe",
        "score_method": args.score_method or "command default",
        "folds": args.folds if method == "out_of_fold" else None,
        "score_epochs": (args.score_epochs or "recipe") if method in TRAINING_SCORE_METHODS else None,
        "blend_active": args.blend_active, "top": args.top, "retrain": args.retrain,
        "inject": args.inject, "noise": args.noise if args.inject else None,
        **({} if args.queue_fits else {"queue_fits": False}),  # absent when on (the default): the key is new
    }


def _run(args: argparse.Namespace, path: Path, work: Path) -> dict:
    source, kept = path, None
    if args.limit:
        source = work / "fer2013-head.csv"
        kept = truncated_copy(path, source, training=args.limit, test=args.test_limit or max(50, args.limit // 8))
    data = read_label_file(source)
    if data.labels.max(initial=0) >= NOT_A_FACE:
        raise SystemExit(f"{path}: the data file's own labels must be emotions 0-6")

    oracle = _label_file("--oracle", args.oracle, data, kept) if args.oracle else None
    evaluation = _label_file("--eval-labels", args.eval_labels, data, kept) if args.eval_labels else None
    if evaluation is None and isinstance(oracle, FerplusVotes):
        evaluation = oracle  # a FER+ oracle: measured against the FER+ majority
    truth = _truth_of(evaluation) if evaluation is not None else data.labels
    if oracle is None:
        answers = None
    elif isinstance(oracle, FerplusVotes):
        answers = ferplus_answers(oracle, data.labels)
    else:
        answers = oracle.labels
    training, public = data.usages == "Training", data.usages == "PublicTest"
    judged = (truth != NO_LABEL) & (truth != NOT_A_FACE)
    config = _configuration(args, path)
    store = SeedStore(args.out, config)
    result = {
        "mode": "inject" if args.inject else "oracle" if args.oracle else "suggestion",
        "date": datetime.now().isoformat(timespec="seconds"), "machine": machine(),
        "scale": {
            **config, "training_faces": int(training.sum()), "public_test_faces": int(public.sum()),
            "private_test_faces": int((data.usages == "PrivateTest").sum()),
            "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
            "cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "evaluation": {
            "labels": "the clean data file's" if args.inject else
                      ("FER+ majority of " if isinstance(evaluation, FerplusVotes) else "")
                      + str(args.eval_labels or (args.oracle if evaluation is not None else "the data file's")),
            "public_test_judged": int((public & judged).sum()), "training_judged": int((training & judged).sum()),
        },
        "oracle_answers": None if answers is None else {
            "training_rows": int(training.sum()), "skip": int((training & (answers == NO_LABEL)).sum()),
            "not_a_face": int((training & (answers == NOT_A_FACE)).sum()),
            "other_label": int((training & (answers != NO_LABEL) & (answers != NOT_A_FACE)
                                & (answers != data.labels)).sum()),
            "same_label": int((training & (answers == data.labels)).sum()),
        },
        "loops": [], "clean_ends": [],
    }

    def finished(seed: int, unit: dict) -> None:
        store.save(seed, unit)
        result["loops"], result["clean_ends"] = store.loops()
        _save(args, result)

    wanted = range(args.first_seed, args.first_seed + args.seeds)
    seeds = [seed for seed in wanted if store.done(seed) is None]
    if done := [seed for seed in wanted if seed not in seeds]:
        print(f"seeds {done}: done already under {args.out}, skipped", flush=True)
    result["loops"], result["clean_ends"] = store.loops()  # earlier seeds under --out are reported with these
    if args.inject:
        truth_json = _labels_json(work / "truth.json", data.labels)
        for seed in seeds:
            unit = {"clean_ends": [run_clean_end(args, work=work / f"clean-{seed}", import_file=source, seed=seed,
                                                 truth=truth_json)], "loops": []}
            for kind in args.inject:
                noisy, flipped = inject_noise(data, kind=kind, rate=args.noise, seed=seed)
                noisy_file = work / f"noisy-{kind}-{seed}.csv"
                write_relabelled(source, noisy_file, noisy)
                loop = run_loop(args, work=work / f"{kind}-{seed}", import_file=noisy_file, seed=seed,
                                answers=truth_json, truth=truth_json)
                unit["loops"].append({"noise": kind, "flipped": int(flipped.sum()),
                                      "wrong_labels": _wrong_labels(noisy, data.labels, data.usages), **loop})
                _save(args, {**result, "loops": result["loops"] + unit["loops"],  # the seed so far
                             "clean_ends": result["clean_ends"] + unit["clean_ends"]})
            finished(seed, unit)
    else:
        truth_json = _labels_json(work / "truth.json", truth)
        answers_json = _labels_json(work / "oracle.json", answers) if answers is not None else None
        for seed in seeds:
            loop = run_loop(args, work=work / f"loop-{seed}", import_file=source, seed=seed, answers=answers_json,
                            truth=truth_json)
            finished(seed, {"clean_ends": [], "loops": [
                {"noise": None, "wrong_labels": _wrong_labels(data.labels, truth, data.usages), **loop}]})
    result["scale"]["seeds"] = sorted({loop["seed"] for loop in result["loops"]})
    if args.inject:
        result["gap_closed"] = gap_closed(result)
    result["control_gains"] = control_gains(result)
    return result


def _save(args: argparse.Namespace, result: dict) -> None:
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        _write_json(args.out / "result.json", result)


# --- child: steps that need Django in-process ---------------------------------------------------------------------

def child(argv: list[str]) -> int:
    import django

    django.setup()
    steps = {"register": child_register, "settle": child_settle, "measure": child_measure}
    results = []
    for step, spec in json.loads(argv[0]):
        started = time.monotonic()
        results.append({**steps[step](spec), "child_seconds": round(time.monotonic() - started, 1)})
    print(RESULT_PREFIX + json.dumps(results), flush=True)
    return 0


def _reviewers() -> list:
    from django.contrib.auth import get_user_model

    from apps.accounts.roles import Role
    from apps.accounts.services import password_generate, user_create

    users = get_user_model().objects
    return [users.filter(username=name).first()
            or user_create(username=name, role=Role.REVIEWER, password=password_generate(), validate=False)
            for name in ("bench-reviewer-1", "bench-reviewer-2")]


def child_register(spec: dict) -> dict:
    """Version 0 from the shipped checkpoint, registered and activated by the platform's own first-start step."""
    from django.conf import settings

    from apps.core.bootstrap import register_default_model
    from apps.inference.models import ModelVersion

    register_default_model(lambda line: print(line, flush=True))
    version = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if version is None:
        raise SystemExit("no shipped checkpoint was registered (see the line above)")
    return {"version": version.pk, "arch": version.arch, "checkpoint": str(settings.INFERENCE_DEFAULT_CHECKPOINT)}


def child_settle(spec: dict) -> dict:
    """Two reviewers settle the queue up to ``top`` settled items, each voting the oracle's answer for the face (or
    the scoring run's suggestion without an oracle): the quorum of two settles each item. Both skip the faces the
    oracle has no answer for (``NO_LABEL``), which stay open, and go on down the queue. Queue fits that settling makes
    due run here between batches, as the platform's worker would run them (unless ``queue_fits`` is false), so the
    queue learns from the reviewers as it does in the platform."""
    from django.conf import settings

    from apps.review.models import ReviewItem, ScoringRun, Skip
    from apps.review.services import review_item_next_for, review_item_skip, review_vote_cast

    if settings.REVIEW_QUORUM != 2:
        raise SystemExit(f"REVIEW_QUORUM is {settings.REVIEW_QUORUM}; this simulation casts two votes per item")
    top = spec["top"]
    answers = json.loads(Path(spec["answers"]).read_text()) if spec.get("answers") else None
    truth = json.loads(Path(spec["truth"]).read_text())
    reviewers = _reviewers()
    started = time.monotonic()
    votes = 0
    regular = ReviewItem.objects.filter(is_gold=False)

    def settled_count() -> int:
        return regular.filter(status=ReviewItem.Status.SETTLED).count()

    queue = child_queue(spec["queue"]) if spec.get("queue") else None
    fits = []
    settled = settled_count()
    while settled < top:
        if spec.get("queue_fits", True):
            fits += _run_due_queue_fits()
        want = min(settings.REVIEW_PREFETCH, top - settled)
        handled = 0
        for reviewer in reviewers:  # the second reviewer is served the items the first one just voted on or skipped
            for item in review_item_next_for(user=reviewer, count=want):
                choice = item.suggested_label if answers is None else answers[item.face.source_row]
                if choice == NO_LABEL:
                    review_item_skip(user=reviewer, item_id=item.pk)
                else:
                    review_vote_cast(user=reviewer, item_id=item.pk, choice=choice)
                    votes += 1
                handled += 1
        now = settled_count()
        if handled == 0 or (now == settled and handled < 2 * want):
            break  # the queue ran dry
        settled = now
    counts = settle_counts([(item.face.source_row, item.face.original_label, item.settled_label)
                            for item in regular.filter(status=ReviewItem.Status.SETTLED).select_related("face")],
                           truth)
    skipped = Skip.objects.filter(reviewer=reviewers[0], item__is_gold=False).count()
    scoring = ScoringRun.objects.order_by("-pk").first()
    print(f"{counts['settled']} item(s) settled ({votes} votes now), {skipped} skipped; {counts['wrong']} had a "
          f"wrong label; {len(fits)} queue fit(s) re-ranked the queue")
    return {"top": top, **counts, "skipped": skipped, "votes_cast": votes, "queue_fits": fits,
            "seconds": round(time.monotonic() - started, 1), "queue": regular.count(),
            "scoring_method": getattr(scoring, "method", "out_of_fold"),
            **({"queue_as_scored": queue} if queue else {})}


def child_queue(spec: dict) -> dict:
    """The queue in its order (``queue.csv`` of ``manage.py export_labels``) written to ``spec["csv"]``, and, with
    ``ferplus_csv``, its precision on FER+'s development half (``bench_ferplus_ranking``: the first k of its items on
    even Training rows with votes), as the issue's "first 500" is counted."""
    from apps.review.exports import queue_export_write

    path = Path(spec["csv"])
    items = queue_export_write(path=path)
    out: dict = {"csv": str(path), "items": items}
    if spec.get("ferplus_csv"):
        from bench_ferplus_ranking import evaluate, load_truth, read_queue_csv

        truth = load_truth(Path(spec["fer_csv"]), Path(spec["ferplus_csv"]))
        metrics = evaluate(read_queue_csv("queue", path, truth), truth)
        out["ferplus_development_half"] = {key: metrics[key] for key in (
            "rows", "wrong", "base_rate", *(f"p@{k}" for k in PRECISION_AT), "flagged", "precision", "recall")}
        shown = ", ".join(f"p@{k} {metrics[f'p@{k}']:.3f}" for k in PRECISION_AT if metrics[f"p@{k}"] is not None)
        print(f"the queue: {items} items; on FER+'s development half {metrics['flagged']} of them, {shown}")
    return out


def _run_due_queue_fits() -> list[dict]:
    """The queue fits that settling made due (``apps.review.learning``), run here as the platform's worker would:
    the queue the reviewers go on with is re-ranked by what they settled so far."""
    from apps.core.models import WorkStatus
    from apps.core.work import work_run
    from apps.review.learning import QUEUE_FIT
    from apps.review.models import QueueFit

    done = []
    for pk in QueueFit.objects.filter(status=WorkStatus.QUEUED).order_by("pk").values_list("pk", flat=True):
        fit = work_run(QUEUE_FIT, pk, raise_errors=True)
        done.append({"settled": fit.settled, "wrong": fit.wrong, "reranked": fit.reranked})
    return done


def settle_counts(settled: list[tuple[int, int, int]], truth: list[int]) -> dict:
    """Over the settled items, as (data row, imported label, settled label): how many there are, how many changed
    the label or excluded the face, how many had a wrong imported label (by the truth, where it has one) and how many
    of those were set to the truth."""
    counts = dict.fromkeys(("settled", "changed", "excluded", "wrong", "corrected"), 0)
    for row, original, label in settled:
        true = truth[row]
        wrong = true != NO_LABEL and original != true
        counts["settled"] += 1
        counts["changed"] += label not in (NOT_A_FACE, original)
        counts["excluded"] += label == NOT_A_FACE
        counts["wrong"] += wrong
        counts["corrected"] += wrong and label == true
    return counts


def _brief(labels: np.ndarray, probs: np.ndarray) -> dict:
    from ml.evaluate import classification_metrics

    if not len(labels):
        return {"n": 0, "accuracy": None, "macro_f1": None}
    metrics = classification_metrics(labels, probs)
    return {"n": metrics["n"], "accuracy": round(metrics["accuracy"], 5), "macro_f1": round(metrics["macro_f1"], 5)}


def child_measure(spec: dict) -> dict:
    """The newest model version on every imported split against the truth (where it is an emotion) and the original
    labels; then version ``activate`` (version 0) is made active again, so the next retrain starts from it."""
    from apps.faces.models import FaceImage, Split
    from apps.faces.selectors import face_pixels
    from apps.inference import runtime
    from apps.inference.models import ModelVersion
    from apps.inference.services.registry import model_version_activate
    from apps.training.models import TrainingRun
    from ml.evaluate import predict_proba

    truth = np.array(json.loads(Path(spec["truth"]).read_text()), dtype=np.int64)
    version = ModelVersion.objects.order_by("-pk").first()
    run = TrainingRun.objects.filter(model_version=version).first()
    model = runtime.loaded(version).model
    metrics = {}
    for split in (Split.TRAINING, Split.PUBLIC_TEST, Split.PRIVATE_TEST):
        rows = list(FaceImage.objects.filter(split=split).order_by("pk")
                    .values_list("pk", "source_row", "original_label"))
        if not rows:
            continue
        ids, source_rows, original = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        probs = predict_proba(model, face_pixels(ids.tolist()))
        true = truth[source_rows]
        judged = (true != NO_LABEL) & (true != NOT_A_FACE)
        metrics[str(split.value)] = {"truth": _brief(true[judged], probs[judged]), "original": _brief(original, probs),
                                     "not_a_face": int((true == NOT_A_FACE).sum()),
                                     "no_truth": int((true == NO_LABEL).sum())}
    status = version.status
    if spec.get("activate") == "v0":  # the loop's first version: trained by its first run, or the shipped one
        first = ModelVersion.objects.order_by("pk").first()
        if first.pk != version.pk:
            model_version_activate(version=first)
    return {"version": version.pk, "status": status, "gate": run.promotion_reason if run else "",
            "labels_changed": run.labels_changed if run else None, "epochs": run.epochs if run else None,
            "metrics": metrics}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        sys.exit(child(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
