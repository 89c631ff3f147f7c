"""``benchmarks/bench_retrain_loop.py`` and its helpers on tiny synthetic data: the FER+ oracle and evaluation labels
(held equal to the platform's majority rule), the reviewers' skip path through the real review services, the gain over
the k = 0 control, resuming from finished seeds, and the command line's checks. No shared data: every file is made
here."""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

import benchmarks

# The benchmark imports its helpers as top-level modules (it runs as a script from benchmarks/).
sys.path.insert(0, str(Path(next(iter(benchmarks.__path__)))))

import bench_retrain_loop as loop  # noqa: E402
import loop_report  # noqa: E402
from bench_ferplus_ranking import FERPLUS_COLUMNS  # noqa: E402
from loop_labels import (  # noqa: E402
    NO_LABEL,
    NOT_A_FACE,
    ferplus_answers,
    ferplus_top,
    is_ferplus_layout,
    read_ferplus_votes,
    read_label_file,
)
from loop_report import control_gains  # noqa: E402

ANGRY, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = 0, 2, 3, 4, 5, 6


def votes(**by_column: int) -> list[int]:
    return [by_column.get(column, 0) for column in FERPLUS_COLUMNS]


def write_ferplus(path: Path, rows: list[tuple[str, list[int]]]) -> Path:
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i, (usage, counts) in enumerate(rows):
            writer.writerow([usage, f"fer{i:07d}.png" if sum(counts) else "", *counts])
    return path


def write_kaggle(path: Path, rows: list[tuple[int, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, (label, usage) in enumerate(rows):
            writer.writerow([label, " ".join(str((i * 7 + j) % 256) for j in range(48 * 48)), usage])
    return path


# --- the FER+ oracle and evaluation labels ------------------------------------------------------------------------

ROWS = [
    votes(sadness=6, neutral=4),  # 0: an emotion on top
    votes(NF=4, happiness=3, neutral=3),  # 1: NF strictly on top: not a face
    votes(anger=4, fear=4, sadness=2),  # 2: a tie
    votes(contempt=5, anger=3, neutral=2),  # 3: contempt on top
    votes(unknown=6, happiness=4),  # 4: unknown on top
    votes(),  # 5: no votes (withheld)
    votes(happiness=2, surprise=1),  # 6: fewer than 10 votes, still a strict top
]


def test_ferplus_top_reads_the_strict_top_column():
    assert ferplus_top(np.array(ROWS)).tolist() == [SAD, NOT_A_FACE, NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL, HAPPY]


def test_ferplus_answers_confirm_undecided_rows_and_skip_rows_without_votes(tmp_path):
    path = write_ferplus(tmp_path / "ferplus.csv.gz", [("Training", row) for row in ROWS])
    given = np.array([NEUTRAL, HAPPY, ANGRY, ANGRY, HAPPY, FEAR, SAD])
    answers = ferplus_answers(read_ferplus_votes(path), given)
    assert answers.tolist() == [SAD, NOT_A_FACE, ANGRY, ANGRY, HAPPY, NO_LABEL, HAPPY]


def test_the_oracle_agrees_with_the_platforms_majority_on_emotions():
    from apps.review.ferplus import ferplus_majority

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(500, len(FERPLUS_COLUMNS)))
    counts[::7] = 0
    top = ferplus_top(counts)
    for row, label in zip(counts.tolist(), top.tolist(), strict=True):
        majority = ferplus_majority(row)
        assert (label if 0 <= label < NOT_A_FACE else None) == majority, row


def test_label_files_are_told_apart_by_their_header_and_checked_row_for_row(tmp_path):
    data_file = write_kaggle(tmp_path / "data.csv", [(3, "Training"), (4, "Training"), (0, "PublicTest")])
    data = read_label_file(data_file)
    good = write_ferplus(tmp_path / "good.csv.gz", [("Training", ROWS[0]), ("Training", ROWS[5]),
                                                    ("PublicTest", ROWS[6])])
    assert is_ferplus_layout(good) and not is_ferplus_layout(data_file)
    votes_file = loop._label_file("--oracle", good, data, None)
    assert loop._truth_of(votes_file).tolist() == [SAD, NO_LABEL, HAPPY]
    assert loop._truth_of(loop._label_file("--eval-labels", data_file, data, None)).tolist() == [3, 4, 0]
    shifted = write_ferplus(tmp_path / "shifted.csv.gz", [("Training", ROWS[0]), ("PublicTest", ROWS[5]),
                                                          ("PublicTest", ROWS[6])])
    with pytest.raises(SystemExit, match="data row 1"):
        loop._label_file("--oracle", shifted, data, None)
    with pytest.raises(SystemExit, match="3 data rows, the data file has 2"):
        loop._label_file("--oracle", good, read_label_file(write_kaggle(tmp_path / "two.csv", [(3, "Training")] * 2)),
                         None)
    # --limit: the label file keeps the rows of the imported copy
    head = read_label_file(write_kaggle(tmp_path / "head.csv", [(3, "Training"), (0, "PublicTest")]))
    assert loop._truth_of(loop._label_file("--oracle", good, head, np.array([0, 2]))).tolist() == [SAD, HAPPY]


def test_settle_counts_judge_only_rows_with_a_truth():
    truth = [SAD, NO_LABEL, NOT_A_FACE, HAPPY]
    counts = loop.settle_counts([(0, NEUTRAL, SAD), (1, HAPPY, ANGRY), (2, HAPPY, NOT_A_FACE), (3, HAPPY, HAPPY)],
                                truth)
    assert counts == {"settled": 4, "changed": 2, "excluded": 1, "wrong": 2, "corrected": 2}


# --- the reviewers' skip path, through the review services --------------------------------------------------------

@pytest.mark.django_db
def test_reviewers_skip_faces_without_an_answer_and_settle_k_others(tmp_path, settings):
    from apps.review.models import ReviewItem, Skip
    from tests.faces.factories import FaceImageFactory
    from tests.review.factories import ReviewItemFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REVIEW_QUORUM, settings.REVIEW_MAX_VOTES, settings.REVIEW_PREFETCH = 2, 3, 3
    given = [HAPPY] * 8
    answers = [ANGRY, NO_LABEL, NOT_A_FACE, NO_LABEL, NO_LABEL, HAPPY, NO_LABEL, SAD]
    truth = [ANGRY, NO_LABEL, NOT_A_FACE, NO_LABEL, NO_LABEL, HAPPY, NO_LABEL, SAD]
    items = [ReviewItemFactory(face=FaceImageFactory(source_row=row, original_label=given[row]),
                               priority=row / 10) for row in range(len(given))]
    spec = {"answers": str(loop._labels_json(tmp_path / "answers.json", np.array(answers))),
            "truth": str(loop._labels_json(tmp_path / "truth.json", np.array(truth)))}

    first = loop.child_settle({**spec, "top": 3})
    settled = {item.face.source_row: item.settled_label
               for item in ReviewItem.objects.filter(status=ReviewItem.Status.SETTLED).select_related("face")}
    assert settled == {0: ANGRY, 2: NOT_A_FACE, 5: HAPPY}
    assert first["skipped"] == 3 and first["votes_cast"] == 6
    assert [first[key] for key in ("settled", "changed", "excluded", "wrong", "corrected")] == [3, 1, 1, 2, 2]
    skipped = ReviewItem.objects.filter(face__source_row__in=[1, 3, 4])
    assert not skipped.filter(status=ReviewItem.Status.SETTLED).exists()
    assert Skip.objects.filter(item__in=skipped).count() == 6  # both reviewers skipped each
    assert ReviewItem.objects.get(pk=items[7].pk).status != ReviewItem.Status.SETTLED  # below the top 3

    more = loop.child_settle({**spec, "top": 10})  # the queue runs dry at 4 settled: no endless loop
    assert more["settled"] == 4 and more["skipped"] == 4
    assert ReviewItem.objects.get(pk=items[7].pk).settled_label == SAD


@pytest.mark.django_db
def test_the_first_settling_takes_the_queue_as_scored_and_its_precision_on_the_development_half(tmp_path, settings):
    """Before anything is settled the queue is written in its order and judged on FER+'s development half (even
    Training rows with votes), as the issue counts its "first 500"; settling never moves an item."""
    from tests.faces.factories import FaceImageFactory
    from tests.review.factories import ReviewItemFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REVIEW_QUORUM, settings.REVIEW_PREFETCH = 2, 4
    given = [HAPPY] * 8
    fer = write_kaggle(tmp_path / "fer.csv", [(label, "Training") for label in given] + [(HAPPY, "PublicTest")])
    # even rows have votes: rows 0 and 4 are wrong by FER+ (6 of 10 for sad), rows 2 and 6 right; odd rows withheld
    ferplus = write_ferplus(tmp_path / "ferplus.csv.gz", [
        ("Training", votes(sadness=6, happiness=4) if row in (0, 4) else
         votes(happiness=10) if row % 2 == 0 else votes()) for row in range(8)] + [("PublicTest", votes(happiness=10))])
    order = [4, 1, 2, 0, 6, 3]  # the queue's order by priority; rows 5 and 7 are not in it
    for position, row in enumerate(order):
        ReviewItemFactory(face=FaceImageFactory(source_row=row, original_label=given[row]), priority=position / 10)
    answers = [SAD, NO_LABEL, HAPPY, NO_LABEL, SAD, NO_LABEL, HAPPY, NO_LABEL]
    spec = {"answers": str(loop._labels_json(tmp_path / "answers.json", np.array(answers))),
            "truth": str(loop._labels_json(tmp_path / "truth.json", np.array(answers))),
            "queue": {"csv": str(tmp_path / "queue.csv"), "fer_csv": str(fer), "ferplus_csv": str(ferplus)}}

    result = loop.child_settle({**spec, "top": 2})
    queue = result["queue_as_scored"]
    assert queue["items"] == result["queue"] == 6
    with open(tmp_path / "queue.csv", newline="") as fh:
        assert [int(r["source_row"]) for r in csv.DictReader(fh)] == order
    judged = queue["ferplus_development_half"]
    assert (judged["rows"], judged["wrong"], judged["flagged"]) == (4, 2, 4)  # rows 4, 2, 0, 6 in that order
    assert judged["precision"] == 0.5 and judged["p@100"] is None  # fewer than 100 judged rows
    assert result["settled"] == 2  # and the settling went on as without it
    assert loop_report.queue_precision({"models": [{"settled": None}, {"settled": result}]}) == judged
    assert loop_report.queue_precision({"models": [{"settled": {"queue": 6}}]}) is None  # a run without the figure

    without = loop.child_settle({**spec, "top": 3, "queue": {**spec["queue"], "ferplus_csv": None}})
    assert "ferplus_development_half" not in without["queue_as_scored"] and without["settled"] == 3


@pytest.mark.django_db(transaction=True)  # settling commits, so the queue fits become due as in the platform
@pytest.mark.parametrize("fits", [True, False])
def test_queue_fits_run_between_batches_as_a_worker_would_and_the_reviewers_follow_the_new_order(
        tmp_path, settings, monkeypatch, fits):
    """Of the four items at the top, the two happy->surprise ones are wrong and the two sad->fear ones right; the fit
    after them brings the two happy->surprise items ranked below four more sad->fear ones ahead of those, so the next
    two settled are these. Without fits the scoring run's order holds."""
    from apps.core import work
    from apps.core.models import WorkStatus
    from apps.review.models import LabelScore, QueueFit, ReviewItem, ScoringRun
    from tests.faces.factories import FaceImageFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REVIEW_QUORUM, settings.REVIEW_PREFETCH = 2, 2
    settings.REVIEW_LEARN_MIN_SETTLED, settings.REVIEW_LEARN_EVERY, settings.REVIEW_LEARN_SHRINK = 4, 100, 1
    monkeypatch.setattr(work, "work_send_now", lambda kind, pk, **kw: True)  # no broker: the loop runs the fits
    run = ScoringRun.objects.create(status=WorkStatus.SUCCEEDED)
    plan = [(HAPPY, SURPRISE), (SAD, FEAR)] * 2 + [(SAD, FEAR)] * 4 + [(HAPPY, SURPRISE)] * 2  # the run's order
    answers = []
    for row, (label, suggested) in enumerate(plan):
        face = FaceImageFactory(source_row=row, original_label=label, current_label=label)
        score = LabelScore.objects.create(run=run, face=face, given_label=label, quality=0.01 * (row + 1),
                                          is_issue=True, suggested_label=suggested, suggested_probability=0.6,
                                          probabilities=[1 / 7] * 7)
        ReviewItem.objects.create(face=face, score=score, priority=score.quality, suggested_label=suggested,
                                  suggested_probability=0.6)
        answers.append(SURPRISE if label == HAPPY else SAD)
    labels = str(loop._labels_json(tmp_path / "answers.json", np.array(answers)))

    result = loop.child_settle({"top": 6, "answers": labels, "truth": labels, "queue_fits": fits})
    settled = sorted(ReviewItem.objects.filter(status=ReviewItem.Status.SETTLED).values_list("face__source_row",
                                                                                             flat=True))
    if fits:
        assert settled == [0, 1, 2, 3, 8, 9] and result["wrong"] == 4
        assert result["queue_fits"] == [{"settled": 4, "wrong": 2, "reranked": 6}]
        assert QueueFit.objects.get().status == WorkStatus.SUCCEEDED
    else:
        assert settled == [0, 1, 2, 3, 4, 5] and result["wrong"] == 2
        assert result["queue_fits"] == [] and QueueFit.objects.get().status == WorkStatus.QUEUED  # due, not run


# --- the report: the gain over the k = 0 control ------------------------------------------------------------------

def model(k: int | None, accuracy: float, retrain: str = "finetune") -> dict:
    return {"model": f"{retrain} top {k}", "k": k, "retrain": retrain, "seconds": 1.0,
            "metrics": {"PublicTest": {"truth": {"accuracy": accuracy}}}}


def test_control_gains_are_after_minus_control_per_seed_with_their_spread():
    result = {"mode": "oracle", "loops": [
        {"seed": 1, "noise": None, "models": [model(None, 0.70, "shipped"), model(0, 0.71), model(500, 0.72)]},
        {"seed": 0, "noise": None, "models": [model(None, 0.70, "shipped"), model(0, 0.70), model(500, 0.705)]},
        {"seed": 2, "noise": None, "models": [model(None, 0.70, "shipped"), model(500, 0.75)]},  # no control
    ]}
    (gain,) = control_gains(result)
    assert (gain["labels"], gain["retrain"], gain["k"], gain["seeds"]) == ("oracle", "finetune", 500, [0, 1])
    assert gain["gain"]["values"] == pytest.approx([0.5, 1.0])
    assert gain["gain"]["mean"] == pytest.approx(0.75)
    assert gain["gain"]["sd"] == pytest.approx(0.3535534, rel=1e-5)
    assert (gain["gain"]["min"], gain["gain"]["max"]) == pytest.approx((0.5, 1.0))
    assert gain["before"]["mean"] == pytest.approx(70.0)


# --- resuming, and the command line -------------------------------------------------------------------------------

def test_finished_seeds_are_kept_and_another_configuration_is_refused(tmp_path):
    store = loop.SeedStore(tmp_path / "out", {"top": [0, 500]})
    store.save(0, {"loops": [{"seed": 0}], "clean_ends": []})
    with pytest.raises(SystemExit, match="another bench_retrain_loop.py process"):
        loop.SeedStore(tmp_path / "out", {"top": [0, 500]})
    store._lock.close()
    again = loop.SeedStore(tmp_path / "out", {"top": [0, 500]})
    assert again.done(0) is not None and again.done(1) is None
    (kept,), clean_ends = again.loops()
    assert kept["seed"] == 0 and kept["finished"] and kept["machine"] and clean_ends == []
    again._lock.close()
    with pytest.raises(SystemExit, match="another configuration \\(top differ\\)"):
        loop.SeedStore(tmp_path / "out", {"top": [0, 1000]})


def test_command_line_checks():
    args = loop.parse_args(["--from-shipped", "--oracle", "ferplus", "--top", "1000"])
    assert args.top == [0, 1000] and args.oracle == loop.DEFAULT_FERPLUS_CSV
    assert loop._score_args(2, loop.parse_args(["--score-method", "short_run", "--blend-active",
                                                "--score-epochs", "3"])) == [
        "--seed", "2", "--method", "short_run", "--epochs", "3", "--blend-active"]
    assert loop._score_args(0, loop.parse_args([])) == ["--seed", "0", "--folds", "4"]
    for bad in (["--from-shipped", "--inject", "uniform"], ["--from-shipped", "--score-method", "dynamics"],
                ["--out", "result.json"], ["--score-method", "in_sample", "--blend-active"],
                ["--score-method", "in_sample", "--score-epochs", "2"]):
        with pytest.raises(SystemExit):
            loop.parse_args(bad)
