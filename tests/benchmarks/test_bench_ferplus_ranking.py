"""``benchmarks/bench_ferplus_ranking.py`` on tiny synthetic files: the FER+ "label is wrong" rule (held equal to the
platform's), the metrics on a hand-made ranking, and the command line end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_ferplus_ranking import (
    FERPLUS_COLUMNS,
    FERPLUS_INDEX,
    development_half,
    ferplus_wrong,
    flagged_metrics,
    main,
    ranking_metrics,
)
from tests.helpers import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_ferplus_ranking.py"
ANGRY, HAPPY, SAD, NEUTRAL = 0, 3, 4, 6


def votes(**by_column: int) -> list[int]:
    return [by_column.get(column, 0) for column in FERPLUS_COLUMNS]


@pytest.mark.parametrize(("counts", "label", "wrong"), [
    (votes(happiness=10), HAPPY, False),
    (votes(neutral=6, happiness=4), HAPPY, True),  # another emotion at 6 of 10
    (votes(neutral=5, happiness=5), HAPPY, False),
    (votes(neutral=6, happiness=4), NEUTRAL, False),  # the label's own column never contradicts it
    (votes(anger=8, sadness=2), ANGRY, False),  # column "anger" is class 0, "sadness" class 4
    (votes(anger=8, sadness=2), SAD, True),
    (votes(NF=5, happiness=5), HAPPY, True),  # not a face at 5 of 10
    (votes(NF=4, happiness=6), HAPPY, False),
    (votes(contempt=9, happiness=1), HAPPY, False),  # contempt and unknown have no class
    (votes(unknown=10), ANGRY, False),
    (votes(surprise=7, anger=5), ANGRY, False),  # 7 of 12 < 6/10
    (votes(surprise=8, anger=4), ANGRY, True),  # 8 of 12 >= 6/10
    (votes(NF=6, happiness=6), HAPPY, True),  # 6 of 12 >= 5/10
    (votes(NF=5, happiness=7), HAPPY, False),
    (votes(anger=3, happiness=2), HAPPY, True),  # 3 of 5 >= 6/10
    (votes(contempt=4, fear=6), HAPPY, True),
    (votes(contempt=5, fear=6), HAPPY, False),  # contempt dilutes fear's share to 6/11
    (votes(), HAPPY, False),  # no votes
])
def test_the_wrong_label_rule(counts, label, wrong):
    assert ferplus_wrong(np.array([counts]), np.array([label])).tolist() == [wrong]


def test_the_rule_and_the_column_mapping_are_the_platforms():
    from apps.faces.labels import FERPLUS_COLUMNS as PLATFORM_COLUMNS
    from apps.faces.labels import FERPLUS_INDEX as PLATFORM_INDEX
    from apps.review.ferplus import ferplus_disagrees

    assert FERPLUS_COLUMNS == PLATFORM_COLUMNS and FERPLUS_INDEX == PLATFORM_INDEX
    rng = np.random.default_rng(0)
    counts = rng.multinomial(10, rng.dirichlet(np.full(10, 0.3), size=3000)[0], size=3000)
    counts[::7] = rng.integers(0, 5, size=(len(counts[::7]), 10))  # totals other than 10, some all zero
    labels = rng.integers(0, 7, size=len(counts))
    expected = [ferplus_disagrees(list(map(int, c)), int(y)) for c, y in zip(counts, labels, strict=True)]
    assert ferplus_wrong(counts, labels).tolist() == expected
    assert 0 < sum(expected) < len(expected)


def test_the_development_half_is_even_training_rows_with_votes():
    usages = np.array(["Training"] * 6 + ["PublicTest"] * 2, dtype=object)
    counts = np.ones((8, 10), dtype=int)
    counts[4] = 0  # an even Training row without votes
    assert development_half(usages, counts).tolist() == [True, False, True, False, False, False, False, False]


def test_ranking_metrics_on_a_hand_made_ranking():
    quality = np.array([0.5, 0.1, 0.3, 0.2, 0.4, 0.6])  # order: rows 1, 3, 2, 4, 0, 5
    wrong = np.array([False, True, True, False, False, True])
    voted = np.array([True, True, False, True, True, True])  # row 2 is wrong but not judged
    m = ranking_metrics(quality, wrong, voted, ks=(1, 2, 3, 6))
    # judged in order: 1 (wrong), 3, 4, 0, 5 (wrong)
    assert m["rows"] == 5 and m["wrong"] == 2 and m["base_rate"] == pytest.approx(0.4)
    assert (m["p@1"], m["p@2"], m["p@3"], m["p@6"]) == (1.0, 0.5, pytest.approx(1 / 3), None)
    assert m["ap"] == pytest.approx((1 / 1 + 2 / 5) / 2)
    # A row without a quality (never seen) goes last, however it is spelled.
    m = ranking_metrics(np.array([np.nan, 0.1, 0.3, 0.2, 0.4, 0.6]), wrong, np.ones(6, bool), ks=(6,))
    assert m["ap"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert ranking_metrics(quality, np.zeros(6, bool), voted)["ap"] is None


def test_flagged_metrics_count_voted_rows_only():
    is_issue = np.array([True, True, True, False, False])
    wrong = np.array([True, False, True, True, False])
    voted = np.array([True, True, False, True, True])
    assert flagged_metrics(is_issue, wrong, voted) == {"flagged": 2, "precision": 0.5, "recall": 0.5}


def test_missing_shared_data_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "fer2013.csv.gz"
    proc = subprocess.run([sys.executable, str(BENCH), "--fer-csv", str(missing), "--source", "x=ml/weights/x.pt"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and str(missing) in proc.stderr, proc.stderr


# --- the command line on tiny files -----------------------------------------------------------------------------------

N_TRAIN, N_TEST = 42, 2
WRONG_ROWS = (0, 4, 8)  # even Training rows that FER+ contradicts
PIXELS = " ".join(["128"] * 48 * 48)


@pytest.fixture
def tiny(tmp_path) -> dict:
    """A FER-2013 file, its FER+ votes (odd Training rows withheld, as in the shared file) and given labels."""
    labels = np.arange(N_TRAIN + N_TEST) % 7
    usages = ["Training"] * N_TRAIN + ["PublicTest"] * N_TEST
    fer = tmp_path / "fer2013.csv"
    fer.write_text("emotion,pixels,Usage\n" + "".join(f"{y},{PIXELS},{u}\n" for y, u in zip(labels, usages,
                                                                                            strict=True)))
    column_of_class = {cls: column for column, cls in FERPLUS_INDEX}
    lines = ["Usage,Image name," + ",".join(FERPLUS_COLUMNS)]
    for row, (y, usage) in enumerate(zip(labels, usages, strict=True)):
        counts = [0] * 10
        if usage != "Training" or row % 2 == 0:
            counts[column_of_class[(y + 1) % 7 if row in WRONG_ROWS else y]] = 10
        lines.append(f"{usage},fer{row:07d}.png," + ",".join(map(str, counts)))
    ferplus = tmp_path / "ferplus.csv"
    ferplus.write_text("\n".join(lines) + "\n")
    return {"dir": tmp_path, "fer": fer, "ferplus": ferplus, "labels": labels[:N_TRAIN]}


def probabilities_npz(path: Path, labels: np.ndarray, low: tuple[int, ...]) -> Path:
    """Confident in the given label, except on the ``low`` rows."""
    probs = np.full((len(labels), 7), 0.02)
    probs[np.arange(len(labels)), labels] = 0.88
    for row in low:
        probs[row] = 0.02
        probs[row, (labels[row] + 1) % 7] = 0.88
    np.savez(path, rows=np.arange(len(labels)), labels=labels, probs=probs)
    return path


def table_rows(out: str) -> dict[tuple[str, str], list[str]]:
    table = next(block for block in out.split("\n\n") if "\nsource " in "\n" + block)  # the first table only
    lines = [line.split() for line in table.splitlines() if not line.startswith("#")]
    header = lines.index(["source", "method", "dev", "rows", "wrong", "base", "p@100", "p@250", "p@500", "p@1000",
                          "AP", "flagged", "flag", "prec", "flag", "recall"])
    return {(cells[0], cells[1]): cells[2:] for cells in lines[header + 1:] if len(cells) >= 8}


def run_main(tiny: dict, *args: str) -> int:
    return main(["--fer-csv", str(tiny["fer"]), "--ferplus-csv", str(tiny["ferplus"]),
                 "--work-dir", str(tiny["dir"] / "work"), *args])


def test_the_command_line_ranks_every_kind_of_source(tiny, capsys):
    labels, d = tiny["labels"], tiny["dir"]
    perfect = probabilities_npz(d / "perfect.npz", labels, low=(1, *WRONG_ROWS))  # row 1 is odd: not judged
    backwards = probabilities_npz(d / "backwards.npz", labels, low=(2, 6, 10, 12))
    scores = d / "scores.csv"
    scores.write_text("row,given_label,suggested_label,quality,is_issue\n" + "".join(
        f"{row},{labels[row]},0,{0.01 * i:.6f},{int(i < 3)}\n" for i, row in enumerate([8, 2, 0, *range(9, 42), 1, 3,
                                                                                        4, 5, 6, 7])))
    margins = np.tile(np.where(np.isin(np.arange(N_TRAIN), WRONG_ROWS), -1.0, 2.0), (3, 1)).astype(np.float16)
    margins[0, 5] = np.nan  # not seen in the first epoch
    snapshots = np.stack([np.load(perfect)["probs"], np.load(backwards)["probs"]]).astype(np.float16)
    dynamics = d / "dynamics.npz"
    np.savez(dynamics, rows=np.arange(N_TRAIN), labels=labels, margins=margins, snapshot_epochs=np.array([1, 3]),
             snapshots=snapshots)
    checkpoint = write_tiny_checkpoint(d / "tiny.pt")

    assert run_main(tiny, "--source", f"perfect={perfect}", "--source", f"backwards={backwards}",
                    "--source", f"cli={scores}", "--source", f"dyn={dynamics}", "--source", f"tiny={checkpoint}",
                    "--blend", "mix=perfect+backwards", "--methods", "self_confidence,normalized_margin",
                    "--json", str(d / "out.json")) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert set(rows) == {(s, m) for s in ("perfect", "backwards", "mix", "tiny", "dyn@e1", "dyn@e3", "dyn@mean")
                         for m in ("self_confidence", "normalized_margin")} | {("cli", "as_scored"), ("dyn", "aum")}
    # dev rows, wrong, base, p@100 .. p@1000 (too few rows: "-"), AP
    assert rows[("perfect", "self_confidence")][:8] == ["21", "3", "0.143", "-", "-", "-", "-", "1.000"]
    assert rows[("dyn", "aum")][7] == "1.000" and rows[("dyn@e1", "normalized_margin")][7] == "1.000"
    assert float(rows[("backwards", "self_confidence")][7]) < 0.5
    # judged: 8 (wrong), 2, 0 (wrong), 16 right ones, 4 (wrong), 6; flagged: 8, 2, 0
    assert rows[("cli", "as_scored")][7:11] == ["0.606", "3", "0.667", "0.667"]  # AP (1 + 2/3 + 3/20) / 3
    assert "injected-noise figures were not given" in out and "# command: python" in out
    assert len(list((d / "work").glob("tiny-in-sample-flip-*.npz"))) == 1  # the checkpoint's probabilities, kept

    noise = d / "noise.json"
    noise.write_text('{"kinds": {"uniform": {"rows": 42, "flipped": 4, "folds": 4, "epochs": 2, "variants": {'
                     '"oof_flip_tta / self_confidence": {"p@100": 0.25, "p@500": null, "p@1000": null, "ap": 0.5},'
                     '"oof_flip_tta / confidence_weighted_entropy": {"p@100": 0.5, "ap": 0.5}}}}}')
    assert run_main(tiny, "--source", f"tiny={checkpoint}", "--methods", "self_confidence",
                    "--noise-json", str(noise)) == 0
    out = capsys.readouterr().out
    assert "uniform / oof_flip_tta  self_confidence  0.250" in out and "confidence_weighted_entropy" not in out


def test_a_misaligned_source_is_refused_in_one_line(tiny, capsys):
    shifted = probabilities_npz(tiny["dir"] / "shifted.npz", np.roll(tiny["labels"], 1), low=())
    assert run_main(tiny, "--source", f"shifted={shifted}") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench_ferplus_ranking:")]
    assert len(errors) == 1 and "given labels differ" in errors[0]  # after the progress lines, one line says why


def test_the_platforms_queue_export_is_ranked_in_its_order(tiny, capsys):
    """``queue.csv`` of ``manage.py export_labels``: regular items on the dataset's Training faces, in position
    order; gold items, other splits and other datasets are left out; faces outside the queue rank after it."""
    labels, d = tiny["labels"], tiny["dir"]
    header = ("position,item_id,face_id,dataset,split,source_row,original_label,current_label,suggested_label,"
              "suggested_probability,priority,status,gold,settled_label\n")
    lines = [  # (dataset, split, row, gold)
        ("fer2013", "Training", 8, 0), ("fer2013", "Training", 4, 1), ("photos", "Training", "", 0),
        ("fer2013", "PublicTest", 42, 0), ("fer2013", "Training", 2, 0), ("fer2013", "Training", 0, 0),
        ("fer2013", "Training", 3, 0)]
    queue = d / "queue.csv"
    queue.write_text(header + "".join(
        f"{i},{i},{i},{ds},{split},{row},{labels[row] if isinstance(row, int) and row < N_TRAIN else ''},0,1,0.5,"
        f"{i / 10},open,{gold},\n" for i, (ds, split, row, gold) in enumerate(lines, start=1)))
    assert run_main(tiny, "--source", f"queue={queue}", "--methods", "self_confidence") == 0
    rows = table_rows(capsys.readouterr().out)
    # judged in order: 8 (wrong), 2, 0 (wrong), then the rest; row 4 (wrong) is a gold item, so it ranks after the
    # queue with the other faces, all tied; flagged: 8, 2, 0 (row 3 is odd: not judged)
    assert rows[("queue", "queue")][7:11] == ["0.603", "3", "0.667", "0.667"]  # AP (1 + 2/3 + 3/21) / 3


def test_a_queue_export_with_a_missing_column_is_refused_in_one_line(tiny, capsys):
    queue = tiny["dir"] / "queue.csv"
    queue.write_text("position,item_id,dataset,split,source_row,gold\n1,1,fer2013,Training,0,0\n")
    assert run_main(tiny, "--source", f"queue={queue}") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench_ferplus_ranking:")]
    assert len(errors) == 1 and "not a queue.csv row" in errors[0]


def test_a_weighted_blend_weighs_its_parts_and_bad_weights_are_refused(tiny, capsys):
    from benchmarks.bench_ferplus_ranking import Probabilities, blend

    rows, labels = np.arange(3), np.zeros(3, dtype=np.int64)
    a = Probabilities(rows, labels, np.tile(np.eye(7)[0], (3, 1)))
    b = Probabilities(rows[::-1], labels, np.tile(np.eye(7)[1], (3, 1)) * 2)  # other row order, not normalised
    mixed = blend("m", {"a": a, "b": b}, {"a": 3.0, "b": 7.0})
    assert np.allclose(mixed.probs[:, :2], [[0.3, 0.7]] * 3)
    assert np.allclose(blend("m", {"a": a, "b": b}).probs[:, :2], [[0.5, 0.5]] * 3)

    perfect = probabilities_npz(tiny["dir"] / "perfect.npz", tiny["labels"], low=WRONG_ROWS)
    backwards = probabilities_npz(tiny["dir"] / "backwards.npz", tiny["labels"], low=(2, 6, 10, 12))
    given = ["--source", f"perfect={perfect}", "--source", f"backwards={backwards}", "--methods", "self_confidence"]
    assert run_main(tiny, *given, "--blend", "mix=perfect*0.9+backwards*0.1") == 0
    assert table_rows(capsys.readouterr().out)[("mix", "self_confidence")][7] == "1.000"  # the perfect part leads
    for bad in ("perfect*0+backwards", "perfect*x+backwards", "perfect*0.5", "perfect+perfect*2"):
        assert run_main(tiny, *given, "--blend", f"mix={bad}") == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench_ferplus_ranking:")]
        assert len(errors) == 1 and "expected two or more distinct source names" in errors[0], bad
