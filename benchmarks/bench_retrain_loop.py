"""The retraining loop end to end, measured against an oracle: how much closer a retrain gets to the truth.

Import, train, score labels, settle the top of the queue with the oracle's answers, retrain, measure.

    python benchmarks/bench_retrain_loop.py --oracle ORACLE.csv --eval-labels EVAL.csv [--top 1000 3000]
        [--retrain finetune|scratch ...] [--seeds 2] [PATH]
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
   that a short schedule learns something): version 0, "before";
3. ``score_labels`` (``--score-method``, ``--folds``, ``--score-epochs``): flagged Training faces become review items;
4. for each k of ``--top``, ascending: two simulated reviewers settle the queue's top k items through the review
   services (``review_item_next_for``, ``review_vote_cast``), both voting the oracle's label, so the quorum of two
   settles each item. Settling is cumulative (top 3000 includes the top 1000), and every retrain starts from the
   same place: version 0 is activated again after each one, so ``finetune`` always starts from version 0's weights
   and the gate always compares with it. k = 0 retrains on uncorrected labels: the control for the extra epochs;
5. per k and per ``--retrain``: ``train_model --recipe finetune`` (``--finetune-epochs``) or ``--recipe default``
   from scratch (``--epochs``), then the new version is measured (in the next child process, not timed).

Every version is measured on PublicTest (and PrivateTest when imported) and on the Training faces, against the
evaluation labels ("truth") and the imported ones ("original"): the Training figures say how well the model fits the
truth rather than the labels it was given. Faces the evaluation file calls "not a face" are left out of "truth".

Label files (``--oracle``, ``--eval-labels``) are Kaggle layout with the data file's rows (row N is the face of row
N; Usage and pixels are checked). ``emotion`` is 0-6 or a class name; ``7``, ``nf`` or ``not_a_face`` means not a face
(the oracle's reviewers vote "not a face", which excludes the face from training). Without ``--eval-labels`` the
evaluation labels are the data file's own; without ``--oracle`` the reviewers accept the scoring run's suggestion
(the old behaviour: it exercises and times the loop, and says nothing about label quality).

``--inject uniform|class_conditional --noise R``: per kind and seed, ``ml.noise`` flips R of the Training labels
(class-conditional along ``loop_labels.FER_CONFUSION``), the noisy copy is imported, and the clean file is the oracle
and the evaluation labels. Per seed the clean file is also imported and trained from scratch once (the clean end;
version 0 is the noisy end). Reported: the share of the gap the corrected top k closes,
(after - noisy) / (clean - noisy), mean and sample standard deviation over ``--seeds`` (each seed draws its own
noise and trains with that seed; ``--first-seed`` adds seeds to an earlier run). Without ``--inject``, seeds only
change the training and scoring seed.

Prints one JSON object (also written to ``--out``) and markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import bench_database_create, bench_database_drop  # noqa: E402
from loop_labels import (  # noqa: E402
    NOT_A_FACE,
    LabelFile,
    check_same_rows,
    inject_noise,
    read_label_file,
    truncated_copy,
    write_relabelled,
)
from loop_report import gap_closed, print_report  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
BENCH_DB = "ferplatform_bench_loop"
CHILD_FLAG = "--child"  # the script runs itself with Django set up for the review and measuring steps
RESULT_PREFIX = "BENCH-RESULT "
NOISE_KINDS = ("uniform", "class_conditional")
RETRAIN_RECIPES = {"finetune": "finetune", "scratch": "default"}


# --- parent: the loops ------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", nargs="?", type=Path, default=None, help="FER-2013 csv(.gz); default: the shared one")
    parser.add_argument("--oracle", type=Path, help="The reviewers' answers (Kaggle layout, the data file's rows).")
    parser.add_argument("--eval-labels", type=Path, help="Labels to measure against (default: the data file's).")
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
    parser.add_argument("--score-method", choices=("in_sample", "out_of_fold"), default=None,
                        help="score_labels --method (default: the command's).")
    parser.add_argument("--score-epochs", type=int, default=None, help="Epochs per out-of-fold fold (recipe's).")
    parser.add_argument("--folds", type=int, default=4, help="Out-of-fold scoring folds (default 4).")
    parser.add_argument("--recipe", default="default", help="Recipe of training from scratch (default: default).")
    parser.add_argument("--arch", default=None,
                        help="Architecture of training from scratch (a recipe override; finetune follows version 0).")
    parser.add_argument("--out", type=Path, help="Also write the JSON result here (rewritten after each loop).")
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
    if args.score_method == "in_sample" and args.score_epochs:
        parser.error("--score-epochs applies to out-of-fold scoring only")
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


def _import_and_train(steps: Step, import_file: Path, seed: int, args: argparse.Namespace) -> float:
    steps.manage("migrate", "migrate", "-v0")
    steps.manage("import", "import_fer2013", str(import_file))
    return _train_scratch(steps, "train v0 (scratch)", seed, args)


def run_loop(args: argparse.Namespace, *, work: Path, import_file: Path, seed: int, answers: Path | None,
             truth: Path) -> dict:
    """One loop: version 0 on the imported labels, a scoring run, then per k the top k settled and each retrain.

    A version is measured in the next child subprocess (with the next settling), which then activates version 0
    again; the measuring is not timed."""
    with loop_database(work, args) as steps:
        models = [{"model": "v0", "k": None, "retrain": "scratch",
                   "seconds": _import_and_train(steps, import_file, seed, args)}]
        measure = {"truth": str(truth), "activate": "v0"}
        pending = [(("measure", measure), models[0])]  # (child action, the model entry its result goes into)
        score = ["--seed", str(seed)]
        if args.score_method:
            score += ["--method", args.score_method]
        if args.score_method != "in_sample":
            score += ["--folds", str(args.folds)] + (["--epochs", str(args.score_epochs)] if args.score_epochs else [])
        score_seconds = steps.manage("score labels", "score_labels", *score)

        def run_child(label: str, actions: list[tuple[str, dict]]) -> list[dict]:
            results = steps.child(label, [action for action, _ in pending] + actions)
            for (_, entry), result in zip(pending, results, strict=False):
                entry.update(result)
            del pending[:]
            return results[-len(actions):] if actions else []

        for k in args.top:
            settle = {"top": k, "answers": str(answers) if answers else None, "truth": str(truth)}
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
        return {"seed": seed, "scoring_seconds": score_seconds, "models": models, "steps": steps.times}


def run_clean_end(args: argparse.Namespace, *, work: Path, import_file: Path, seed: int, truth: Path) -> dict:
    with loop_database(work, args) as steps:
        seconds = _import_and_train(steps, import_file, seed, args)
        clean = steps.child("measure clean (not timed)", [("measure", {"truth": str(truth)})])[0]
        return {"seed": seed, "model": "clean", "seconds": seconds, **clean, "steps": steps.times}


def _labels_json(path: Path, labels: np.ndarray) -> Path:
    path.write_text(json.dumps([int(v) for v in labels]))
    return path


def _wrong_labels(imported: np.ndarray, truth: np.ndarray, usages: np.ndarray) -> int:
    training = usages == "Training"
    return int((imported[training] != truth[training]).sum())


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
    _save(args, result)
    print_report(result)
    return 0


def _run(args: argparse.Namespace, path: Path, work: Path) -> dict:
    source = path
    if args.limit:
        source = work / "fer2013-head.csv"
        kept = truncated_copy(path, source, training=args.limit, test=args.test_limit or max(50, args.limit // 8))
    data = read_label_file(source)
    if data.labels.max(initial=0) >= NOT_A_FACE:
        raise SystemExit(f"{path}: the data file's own labels must be emotions 0-6")

    def label_file(name: str, file: Path) -> LabelFile:
        labels = read_label_file(file)
        if args.limit:  # the label file has the whole data file's rows; keep those of the imported copy
            if len(labels) <= kept.max():
                raise SystemExit(f"{name} {file}: {len(labels)} data rows, fewer than the data file's")
            labels = labels.subset(kept)
        check_same_rows(f"{name} {file}", labels, data)
        return labels

    truth = label_file("--eval-labels", args.eval_labels).labels if args.eval_labels else data.labels
    oracle = label_file("--oracle", args.oracle).labels if args.oracle else None
    training = data.usages == "Training"
    result = {
        "mode": "inject" if args.inject else "oracle" if args.oracle else "suggestion",
        "scale": {
            "data": str(path), "limit": args.limit, "training_faces": int(training.sum()),
            "public_test_faces": int((data.usages == "PublicTest").sum()),
            "private_test_faces": int((data.usages == "PrivateTest").sum()),
            "recipe": args.recipe, "arch": args.arch or "recipe's",
            "epochs": args.epochs or "recipe", "finetune_epochs": args.finetune_epochs or "recipe",
            "score_method": args.score_method or "command default",
            "folds": None if args.score_method == "in_sample" else args.folds,
            "score_epochs": None if args.score_method == "in_sample" else args.score_epochs or "recipe",
            "top": args.top, "retrain": args.retrain,
            "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
            "inject": args.inject, "noise": args.noise if args.inject else None,
            "cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "loops": [], "clean_ends": [],
    }
    if args.inject:
        truth_json = _labels_json(work / "truth.json", data.labels)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            result["clean_ends"].append(run_clean_end(args, work=work / f"clean-{seed}", import_file=source,
                                                      seed=seed, truth=truth_json))
            _save(args, result)
            for kind in args.inject:
                noisy, flipped = inject_noise(data, kind=kind, rate=args.noise, seed=seed)
                noisy_file = work / f"noisy-{kind}-{seed}.csv"
                write_relabelled(source, noisy_file, noisy)
                loop = run_loop(args, work=work / f"{kind}-{seed}", import_file=noisy_file, seed=seed,
                                answers=truth_json, truth=truth_json)
                result["loops"].append({"noise": kind, "flipped": int(flipped.sum()),
                                        "wrong_labels": _wrong_labels(noisy, data.labels, data.usages), **loop})
                _save(args, result)
        result["gap_closed"] = gap_closed(result)
    else:
        truth_json = _labels_json(work / "truth.json", truth)
        answers = _labels_json(work / "oracle.json", oracle) if oracle is not None else None
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            loop = run_loop(args, work=work / f"loop-{seed}", import_file=source, seed=seed, answers=answers,
                            truth=truth_json)
            result["loops"].append({"noise": None, "wrong_labels": _wrong_labels(data.labels, truth, data.usages),
                                    **loop})
            _save(args, result)
    return result


def _save(args: argparse.Namespace, result: dict) -> None:
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.out)


# --- child: steps that need Django in-process ---------------------------------------------------------------------

def child(argv: list[str]) -> int:
    import django

    django.setup()
    steps = {"settle": child_settle, "measure": child_measure}
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


def child_settle(spec: dict) -> dict:
    """Two reviewers settle the queue up to ``top`` settled items, each voting the oracle's answer for the face (or
    the scoring run's suggestion without an oracle): the quorum of two settles each item."""
    from django.conf import settings

    from apps.review.models import ReviewItem, ScoringRun
    from apps.review.services import review_item_next_for, review_vote_cast

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

    settled = settled_count()
    while settled < top:
        want = min(settings.REVIEW_PREFETCH, top - settled)
        cast = 0
        for reviewer in reviewers:  # the second reviewer is served the items the first one just voted on
            for item in review_item_next_for(user=reviewer, count=want):
                choice = item.suggested_label if answers is None else answers[item.face.source_row]
                review_vote_cast(user=reviewer, item_id=item.pk, choice=choice)
                cast += 1
        votes += cast
        now = settled_count()
        if cast == 0 or (now == settled and cast < 2 * want):
            break  # the queue ran dry
        settled = now
    counts = dict.fromkeys(("settled", "changed", "excluded", "wrong", "corrected"), 0)
    for item in regular.filter(status=ReviewItem.Status.SETTLED).select_related("face"):
        face, true = item.face, truth[item.face.source_row]
        counts["settled"] += 1
        counts["changed"] += item.settled_label not in (NOT_A_FACE, face.original_label)
        counts["excluded"] += item.settled_label == NOT_A_FACE
        counts["wrong"] += face.original_label != true  # the imported label was wrong
        counts["corrected"] += face.original_label != true and item.settled_label == true
    scoring = ScoringRun.objects.order_by("-pk").first()
    print(f"{counts['settled']} item(s) settled ({votes} votes now); {counts['wrong']} had a wrong label")
    return {"top": top, **counts, "votes_cast": votes, "seconds": round(time.monotonic() - started, 1),
            "queue": regular.count(), "scoring_method": getattr(scoring, "method", "out_of_fold")}


def _brief(labels: np.ndarray, probs: np.ndarray) -> dict:
    from ml.evaluate import classification_metrics

    if not len(labels):
        return {"n": 0, "accuracy": None, "macro_f1": None}
    metrics = classification_metrics(labels, probs)
    return {"n": metrics["n"], "accuracy": round(metrics["accuracy"], 5), "macro_f1": round(metrics["macro_f1"], 5)}


def child_measure(spec: dict) -> dict:
    """The newest model version on every imported split against the truth and the original labels; then version
    ``activate`` (version 0) is made active again, so the next retrain starts from it."""
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
        face = true != NOT_A_FACE
        metrics[str(split.value)] = {"truth": _brief(true[face], probs[face]), "original": _brief(original, probs),
                                     "not_a_face": int((~face).sum())}
    status = version.status
    if spec.get("activate") == "v0":  # the version the loop's first training run made
        first = TrainingRun.objects.order_by("pk").first().model_version
        if first.pk != version.pk:
            model_version_activate(version=first)
    return {"version": version.pk, "status": status, "gate": run.promotion_reason if run else "",
            "labels_changed": run.labels_changed if run else None, "epochs": run.epochs if run else None,
            "metrics": metrics}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        sys.exit(child(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
