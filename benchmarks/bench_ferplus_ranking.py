"""How well label-error rankings find FER-2013's real label errors, judged by FER+ crowd votes.

    python benchmarks/bench_ferplus_ranking.py --source shipped=ml/weights/default.pt [--source NAME=PATH ...]
        [--blend NAME=A+B[+C] | NAME=A*0.3+B*0.7 ...]
        [--methods self_confidence,normalized_margin,confidence_weighted_entropy]
        [--noise-json result.json] [--json OUT.json] [--work-dir DIR] [--threads N]

A source is, by its file:
- ``.csv``: the output of ``python -m ml score-labels`` (row, given_label, suggested_label, quality, is_issue),
  ranked as it was scored; or the platform's queue, ``queue.csv`` of ``manage.py export_labels`` (its regular items
  on Training faces of dataset ``fer2013``, in the order the queue serves them);
- ``.npz`` with ``rows``, ``labels``, ``probs`` (n, 7): probabilities, ranked by each cleanlab method and flagged by
  ``prune_by_noise_rate``, as ``ml.scoring.score_from_probabilities`` does for the platform;
- ``.npz`` with ``margins``, ``snapshot_epochs``, ``snapshots``: training dynamics (``ml/dynamics.py``), ranked by
  the mean margin over epochs ("aum"), by each snapshot's probabilities and by the snapshots' mean;
- ``.pt``: a checkpoint, whose in-sample flip-TTA probabilities over the Training rows are computed once and kept in
  ``--work-dir`` as a probabilities ``.npz`` (usable as a source itself).
A blend averages the probabilities of sources over the same rows (equally, or by the weights given as ``NAME*W``),
then ranks them by each method.

Figures are taken on the development half of FER+ (``../shared/data/ferplus/README.md``): even Training rows with
votes. A row's label is wrong when FER+ contradicts it (``ferplus_wrong``, the platform's rule). FER+ is the
yardstick only: no ranking reads it. precision@500 on the half compares with precision@1000 over all Training rows.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.labels import CLASSES  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_FER_CSV = SHARED_DATA / "fer2013" / "fer2013.csv.gz"
DEFAULT_FERPLUS_CSV = SHARED_DATA / "ferplus" / "fer2013new-dev.csv.gz"
DEFAULT_WORK_DIR = ROOT / "benchmarks" / "results" / "ferplus-ranking"  # benchmarks/results/ is gitignored
RANKING_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")  # ml.scoring's
ISSUE_FILTER = "prune_by_noise_rate"
PRECISION_AT = (100, 250, 500, 1000)
PREDICT_CHUNK = 2048  # faces per progress line


class BenchError(Exception):
    """Something the run cannot go on with; ``main`` prints it as one line and exits 2."""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# --- the FER+ rule ----------------------------------------------------------------------------------------------------
# apps/faces/labels.py (FERPLUS_COLUMNS, FERPLUS_INDEX) and apps/review/ferplus.py (ferplus_counts, ferplus_disagrees)
# restated, since benchmarks/ must not import Django; tests/benchmarks/test_bench_ferplus_ranking.py holds them equal.

FERPLUS_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                    "contempt", "unknown", "NF")
_FERPLUS_TO_CLASS = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                     "anger": "angry", "fear": "fear", "disgust": "disgust"}
FERPLUS_INDEX: tuple[tuple[int, int], ...] = tuple(
    (FERPLUS_COLUMNS.index(column), CLASSES.index(name)) for column, name in _FERPLUS_TO_CLASS.items())
NF_COLUMN = FERPLUS_COLUMNS.index("NF")
VOTERS = 10
OTHER_EMOTION_VOTES = 6
NOT_A_FACE_VOTES = 5


def ferplus_wrong(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, whether FER+ contradicts ``labels`` (``apps.review.ferplus.ferplus_disagrees``): NF holds at least 5
    of 10 votes, or another of the seven emotions at least 6 of 10, thresholds scaled to the row's total. Contempt and
    unknown never contradict; a row without votes never does."""
    counts = np.asarray(counts, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != len(FERPLUS_COLUMNS) or len(counts) != len(labels):
        raise ValueError(f"expected counts (n, {len(FERPLUS_COLUMNS)}) and labels (n,), got {counts.shape} and "
                         f"{labels.shape}")
    total = counts.sum(1)

    def at_least(column: int, of_ten: int) -> np.ndarray:
        return counts[:, column] * VOTERS >= of_ten * total

    wrong = at_least(NF_COLUMN, NOT_A_FACE_VOTES)
    for column, cls in FERPLUS_INDEX:
        wrong |= (labels != cls) & at_least(column, OTHER_EMOTION_VOTES)
    return wrong & (total > 0)


def development_half(usages: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Rows with FER+ votes at an even Training index (counted from the first Training row): the rows reported on."""
    training = np.asarray(usages) == "Training"
    training_index = np.cumsum(training) - 1
    return training & (training_index % 2 == 0) & (np.asarray(counts).sum(1) > 0)


# --- metrics ----------------------------------------------------------------------------------------------------------


def ranking_metrics(quality: np.ndarray, wrong: np.ndarray, voted: np.ndarray,
                    ks: tuple[int, ...] = PRECISION_AT) -> dict:
    """A ranking (ascending ``quality``, ties in input order, non-finite last) judged on the ``voted`` rows only:
    precision of the first k of them (None when fewer), average precision (score = -quality, None without a wrong
    row), their count, how many are wrong and that share (a random order's precision)."""
    from sklearn.metrics import average_precision_score

    quality = np.asarray(quality, dtype=np.float64)
    wrong, voted = np.asarray(wrong, dtype=bool), np.asarray(voted, dtype=bool)
    finite = np.isfinite(quality)
    if not finite.all():
        quality = np.where(finite, quality, quality[finite].max() + 1 if finite.any() else 0.0)
    order = np.argsort(quality, kind="stable")
    hits = wrong[order[voted[order]]]
    n, positives = len(hits), int(hits.sum())
    out: dict = {"rows": n, "wrong": positives, "base_rate": positives / n if n else None}
    for k in ks:
        out[f"p@{k}"] = float(hits[:k].mean()) if n >= k else None
    out["ap"] = float(average_precision_score(wrong[voted], -quality[voted])) if positives else None
    return out


def flagged_metrics(is_issue: np.ndarray, wrong: np.ndarray, voted: np.ndarray) -> dict:
    """The flagged set on the ``voted`` rows: its size, the share of it that is wrong, the share of wrong it holds."""
    is_issue, wrong, voted = (np.asarray(a, dtype=bool) for a in (is_issue, wrong, voted))
    flagged, hits, positives = int((is_issue & voted).sum()), int((is_issue & wrong & voted).sum()), int(
        (wrong & voted).sum())
    return {"flagged": flagged, "precision": hits / flagged if flagged else None,
            "recall": hits / positives if positives else None}


# --- data: FER-2013 labels, FER+ votes --------------------------------------------------------------------------------


@dataclass
class Truth:
    """Per data row of the FER+ file (= of the FER-2013 file): the Kaggle label (-1 outside Training), whether FER+
    contradicts it, and whether the row is in the development half."""

    labels: np.ndarray
    wrong: np.ndarray
    development: np.ndarray
    training_rows: np.ndarray  # data rows of the Training faces, ascending
    images: np.ndarray  # the Training faces, uint8 (n, 48, 48), in that order
    fer_csv: Path


def read_ferplus(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Usage (n,) and vote counts (n, 10) of every data row of a ``fer2013new.csv``-layout file (gzip or plain)."""
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    usages, counts = [], []
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"Usage", *FERPLUS_COLUMNS} - set(reader.fieldnames or [])
        if missing:
            raise BenchError(f"{path}: not a FER+ file (missing column(s) {', '.join(sorted(missing))})")
        for record in reader:
            try:
                row = [int(record[c]) for c in FERPLUS_COLUMNS]
            except (TypeError, ValueError):
                raise BenchError(f"{path}: line {reader.line_num}: a vote count is not an integer") from None
            if min(row) < 0:
                raise BenchError(f"{path}: line {reader.line_num}: a negative vote count")
            usages.append(record["Usage"])
            counts.append(row)
    return np.array(usages, dtype=object), np.array(counts, dtype=np.int64).reshape(-1, len(FERPLUS_COLUMNS))


def load_truth(fer_csv: Path, ferplus_csv: Path) -> Truth:
    from ml.data import DataError, load_fer_csv

    usages, counts = read_ferplus(ferplus_csv)
    try:
        train = load_fer_csv(fer_csv, usages=["Training"])
    except DataError as exc:
        raise BenchError(str(exc)) from None
    if len(usages) <= train.rows.max() or not (usages[train.rows] == "Training").all() \
            or (usages == "Training").sum() != len(train):
        raise BenchError(f"{ferplus_csv} does not follow {fer_csv} row for row (its Usage column differs)")
    labels = np.full(len(usages), -1, dtype=np.int64)
    labels[train.rows] = train.labels
    wrong = ferplus_wrong(counts, labels) & (labels >= 0)
    return Truth(labels, wrong, development_half(usages, counts) & (labels >= 0), train.rows, train.images, fer_csv)


# --- sources: rankings and probabilities ------------------------------------------------------------------------------


@dataclass
class Probabilities:
    rows: np.ndarray  # 0-based data rows of the whole file
    labels: np.ndarray
    probs: np.ndarray  # (n, 7)


@dataclass
class Ranking:
    source: str
    method: str
    rows: np.ndarray
    quality: np.ndarray  # low = likely wrong
    is_issue: np.ndarray | None = None


def _checked(name: str, rows: np.ndarray, labels: np.ndarray, truth: Truth) -> None:
    """A source must name each row once, Training rows only, with the file's labels (else its rows are misaligned)."""
    rows = np.asarray(rows)
    if len(rows) == 0:
        raise BenchError(f"source {name}: no rows")
    if len(np.unique(rows)) != len(rows):
        raise BenchError(f"source {name}: a row appears more than once")
    outside = (rows < 0) | (rows >= len(truth.labels))
    outside[~outside] = truth.labels[rows[~outside]] < 0
    if outside.any():
        raise BenchError(f"source {name}: data row {int(rows[outside][0])} is not a Training row of {truth.fer_csv}")
    differ = np.flatnonzero(truth.labels[rows] != np.asarray(labels))
    if len(differ):
        raise BenchError(f"source {name}: {len(differ)} given labels differ from {truth.fer_csv} (first at data row "
                         f"{int(rows[differ[0]])}): rows misaligned, or scored on other labels")


def read_probabilities(name: str, path: Path, truth: Truth) -> Probabilities:
    with np.load(path, allow_pickle=False) as z:
        p = Probabilities(np.asarray(z["rows"], dtype=np.int64), np.asarray(z["labels"], dtype=np.int64),
                          np.asarray(z["probs"], dtype=np.float32))
    if p.probs.shape != (len(p.rows), len(CLASSES)) or len(p.labels) != len(p.rows):
        raise BenchError(f"source {name}: probs {p.probs.shape}, rows {p.rows.shape}, labels {p.labels.shape} "
                         f"do not fit (expected (n, {len(CLASSES)}), (n,), (n,))")
    if not np.isfinite(p.probs).all() or (p.probs.sum(1) <= 0).any():
        raise BenchError(f"source {name}: probabilities with NaN, infinite or all-zero rows")
    _checked(name, p.rows, p.labels, truth)
    return p


QUEUE_DATASET = "fer2013"  # the dataset name import_fer2013 gives by default


def read_queue_csv(name: str, path: Path, truth: Truth) -> Ranking:
    """The platform's queue (``queue.csv`` of ``manage.py export_labels``) in its order: the regular items on
    Training faces of dataset ``fer2013``, settled ones included (settling never moves an item). Every one is
    flagged, so the flagged set's figures are the queue's; faces outside the queue rank after it."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            table = [(int(r["source_row"]), int(r["original_label"]), int(r["position"])) for r in reader
                     if r["dataset"] == QUEUE_DATASET and r["split"] == "Training" and r["gold"] == "0"]
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"source {name}: {path}: line {reader.line_num}: not a queue.csv row") from None
    if not table:
        raise BenchError(f"source {name}: {path} holds no regular item on a Training face of {QUEUE_DATASET}")
    queued = np.array(table, dtype=np.int64)
    _checked(name, queued[:, 0], queued[:, 1], truth)
    rest = np.setdiff1d(truth.training_rows, queued[:, 0])
    rows = np.concatenate([queued[:, 0], rest])
    quality = np.concatenate([queued[:, 2].astype(np.float64), np.full(len(rest), np.inf)])
    return Ranking(name, "queue", rows, quality, np.arange(len(rows)) < len(queued))


def read_scores_csv(name: str, path: Path, truth: Truth) -> Ranking:
    wanted = ("row", "given_label", "quality", "is_issue")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if "position" in (reader.fieldnames or []):
            return read_queue_csv(name, path, truth)
        if missing := set(wanted) - set(reader.fieldnames or []):
            raise BenchError(f"source {name}: {path} is not a score-labels CSV (no {', '.join(sorted(missing))})")
        try:
            table = np.array([(int(r["row"]), int(r["given_label"]), float(r["quality"]), int(r["is_issue"]))
                              for r in reader], dtype=np.float64).reshape(-1, 4)
        except (TypeError, ValueError):
            raise BenchError(f"source {name}: {path}: line {reader.line_num}: not a number") from None
    rows = table[:, 0].astype(np.int64)
    _checked(name, rows, table[:, 1].astype(np.int64), truth)
    return Ranking(name, "as_scored", rows, table[:, 2], table[:, 3] != 0)


def checkpoint_probabilities(name: str, path: Path, truth: Truth, work_dir: Path) -> tuple[Probabilities, bool]:
    """In-sample flip-TTA probabilities of the Training rows, as ``apps/review/scoring.py``'s
    ``_in_sample_probabilities`` computes them (bf16 where the CPU has it); kept in ``work_dir`` under a key of the
    checkpoint and the FER-2013 file. Returns them and whether they came from there."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(truth.fer_csv.read_bytes())
    cache = work_dir / f"{path.stem}-in-sample-flip-{digest.hexdigest()[:16]}.npz"
    if cache.is_file():
        return read_probabilities(name, cache, truth), True
    from ml.checkpoint import CheckpointError, load_checkpoint
    from ml.evaluate import predict_proba

    try:
        model = load_checkpoint(path).model
    except CheckpointError as exc:
        raise BenchError(f"source {name}: {exc}") from None
    images, out = truth.images, []
    for start in range(0, len(images), PREDICT_CHUNK):
        out.append(predict_proba(model, images[start:start + PREDICT_CHUNK], tta="flip", amp_bf16=True))
        log(f"  {name}: {min(start + PREDICT_CHUNK, len(images))}/{len(images)} faces")
    rows = truth.training_rows
    probs = Probabilities(rows, truth.labels[rows], np.concatenate(out))
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=work_dir, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, rows=probs.rows, labels=probs.labels, probs=probs.probs)
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return probs, False


def rank_probabilities(source: str, p: Probabilities, methods: list[str]) -> list[Ranking]:
    from ml.scoring import score_from_probabilities

    out = []
    for method in methods:
        scores = score_from_probabilities(p.labels, p.probs, p.rows, ranking=method, filter_by=ISSUE_FILTER)
        out.append(Ranking(source, method, p.rows, scores.quality, scores.is_issue))
    return out


def dynamics_rankings(name: str, path: Path, truth: Truth, methods: list[str]
                      ) -> tuple[list[Ranking], Probabilities | None]:
    """The mean margin ("aum"), each snapshot and the snapshots' mean ranked by each method; the mean is the source's
    probabilities for blends (None without snapshots)."""
    from ml.dynamics import TrainingDynamics

    with np.load(path, allow_pickle=False) as z:
        snapshots = {int(e): z["snapshots"][i] for i, e in enumerate(z["snapshot_epochs"])}
        dynamics = TrainingDynamics(np.asarray(z["rows"], dtype=np.int64), np.asarray(z["labels"], dtype=np.int64),
                                    z["margins"], snapshots)
    if dynamics.margins.shape != (dynamics.margins.shape[0], len(dynamics.rows)):
        raise BenchError(f"source {name}: margins {dynamics.margins.shape} do not fit {len(dynamics.rows)} rows")
    _checked(name, dynamics.rows, dynamics.labels, truth)
    rankings = [Ranking(name, "aum", dynamics.rows, dynamics.mean_margin())]
    for epoch, probs in sorted(snapshots.items()):
        snapshot = Probabilities(dynamics.rows, dynamics.labels, probs.astype(np.float32))
        rankings += rank_probabilities(f"{name}@e{epoch}", snapshot, methods)
    if not snapshots:
        return rankings, None
    mean = Probabilities(dynamics.rows, dynamics.labels, dynamics.snapshot_probabilities("mean"))
    return rankings + rank_probabilities(f"{name}@mean", mean, methods), mean


def blend(name: str, parts: dict[str, Probabilities], weights: dict[str, float] | None = None) -> Probabilities:
    """The weighted mean of each part's normalised probabilities, row by row (equal weights unless given; they are
    scaled to sum to 1); the parts must cover the same rows."""
    first_name, first = next(iter(parts.items()))
    order = np.argsort(first.rows)
    probs = []
    for part_name, p in parts.items():
        by_row = np.argsort(p.rows)
        if not np.array_equal(p.rows[by_row], first.rows[order]):
            raise BenchError(f"blend {name}: {part_name} and {first_name} do not cover the same rows")
        probs.append(p.probs[by_row] / p.probs[by_row].sum(1, keepdims=True))
    w = np.array([(weights or {}).get(part, 1.0) for part in parts], dtype=np.float64)
    return Probabilities(first.rows[order], first.labels[order], np.tensordot(w / w.sum(), np.stack(probs), axes=1))


def parse_blend(name: str, spec: str, sources: Iterable[str]) -> dict[str, float]:
    """``A+B[+C]`` or with weights ``A*0.3+B*0.7``: each part's weight (1 where none is given)."""
    parts: dict[str, float] = {}
    for text in spec.split("+"):
        part, _, weight = (t.strip() for t in text.partition("*"))
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if part in parts or part not in sources or not np.isfinite(value) or value <= 0:
            raise BenchError(f"--blend {name}={spec}: expected two or more distinct source names of "
                             f"{', '.join(sources)}, each with an optional positive weight (NAME*0.3)")
        parts[part] = value
    if len(parts) < 2:
        raise BenchError(f"--blend {name}={spec}: expected two or more distinct source names of {', '.join(sources)}")
    return parts


def source_kind(name: str, path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".pt"):
        return {".csv": "scores", ".pt": "checkpoint"}[suffix]
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
        if {"rows", "labels", "margins", "snapshot_epochs", "snapshots"} <= keys:
            return "dynamics"
        if {"rows", "labels", "probs"} <= keys:
            return "probabilities"
        raise BenchError(f"source {name}: {path} has neither rows/labels/probs nor "
                         f"rows/labels/margins/snapshot_epochs/snapshots (it has {', '.join(sorted(keys))})")
    raise BenchError(f"source {name}: {path}: expected a .csv (score-labels), .npz or .pt (checkpoint)")


def load_source(name: str, path: Path, truth: Truth, methods: list[str], work_dir: Path
                ) -> tuple[list[Ranking], Probabilities | None, str]:
    """The source's rankings, its probabilities (for blends; None for a scores CSV) and a note on where they came
    from."""
    kind = source_kind(name, path)
    if kind == "scores":
        return [read_scores_csv(name, path, truth)], None, "score-labels CSV"
    if kind == "dynamics":
        rankings, mean = dynamics_rankings(name, path, truth, methods)
        return rankings, mean, "training dynamics"
    if kind == "checkpoint":
        probs, cached = checkpoint_probabilities(name, path, truth, work_dir)
        note = "in-sample flip TTA, " + ("read from" if cached else "computed, kept in") + f" {_shown(work_dir)}"
    else:
        probs, note = read_probabilities(name, path, truth), "probabilities"
    return rank_probabilities(name, probs, methods), probs, note


# --- report -----------------------------------------------------------------------------------------------------------


def evaluate(ranking: Ranking, truth: Truth) -> dict:
    wrong, development = truth.wrong[ranking.rows], truth.development[ranking.rows]
    metrics = ranking_metrics(ranking.quality, wrong, development)
    metrics["coverage"] = int(development.sum()) / max(int(truth.development.sum()), 1)
    if ranking.is_issue is not None:
        metrics.update(flagged_metrics(ranking.is_issue, wrong, development))
    return {"source": ranking.source, "method": ranking.method, **metrics}


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    return "\n".join("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(line, widths, strict=True))).rstrip() for line in [header, *lines])


def results_table(results: list[dict]) -> str:
    ks = [f"p@{k}" for k in PRECISION_AT]
    header = ["source", "method", "dev rows", "wrong", "base", *ks, "AP", "flagged", "flag prec", "flag recall"]
    return table(header, [[r["source"], r["method"], str(r["rows"]), str(r["wrong"]), _fmt(r["base_rate"]),
                           *(_fmt(r[k]) for k in ks), _fmt(r["ap"]), _fmt(r.get("flagged")),
                           _fmt(r.get("precision")), _fmt(r.get("recall"))] for r in results])


def noise_report(path: Path, methods: list[str]) -> tuple[str, list[dict]]:
    """The injected-noise figures of ``benchmarks/bench_label_noise.py``'s JSON for ``methods``: a title and rows."""
    try:
        result = json.loads(path.read_text())
        kinds = result["kinds"]
        rows = [{"kind": kind, "source": variant.partition(" / ")[0], "method": variant.partition(" / ")[2],
                 **{k: m.get(k) for k in ("p@100", "p@500", "p@1000", "ap")}}
                for kind, r in kinds.items() for variant, m in r["variants"].items()
                if variant.partition(" / ")[2] in methods]
        sizes = "; ".join(f"{kind} {r['flipped']} of {r['rows']} rows flipped, {r['folds']} folds x {r['epochs']} "
                          f"epochs" for kind, r in kinds.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BenchError(f"--noise-json {path}: not a bench_label_noise.py result ({type(exc).__name__}: {exc})"
                         ) from None
    return (f"# injected noise from {_shown(path)} ({sizes}); precision over all its rows, not a half, so "
            f"its p@1000 compares with p@500 above"), rows


def noise_table(rows: list[dict]) -> str:
    header = ["kind / source", "method", "p@100", "p@500", "p@1000", "AP"]
    return table(header, [[f"{r['kind']} / {r['source']}", r["method"], _fmt(r["p@100"]), _fmt(r["p@500"]),
                           _fmt(r["p@1000"]), _fmt(r["ap"])] for r in rows])


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --- command line -----------------------------------------------------------------------------------------------------


def _named(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise BenchError(f"--{what} {text!r}: expected NAME={'PATH' if what == 'source' else 'A+B[+C]'}")
    return name.strip(), value.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                        help="a ranking to judge: .csv (score-labels), .npz (probabilities or dynamics), .pt")
    parser.add_argument("--blend", action="append", default=[], metavar="NAME=A+B[+C] or NAME=A*0.3+B*0.7",
                        help="average the probabilities of named sources (weights: NAME*W), then rank by each method")
    parser.add_argument("--methods", default=",".join(RANKING_METHODS),
                        help=f"cleanlab ranking methods, comma-separated (default: all: {', '.join(RANKING_METHODS)})")
    parser.add_argument("--fer-csv", type=Path, default=DEFAULT_FER_CSV)
    parser.add_argument("--ferplus-csv", type=Path, default=DEFAULT_FERPLUS_CSV)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="where checkpoints' probabilities are kept (default: %(default)s, gitignored)")
    parser.add_argument("--noise-json", type=Path, help="a result.json of benchmarks/bench_label_noise.py to show")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--threads", type=int, help="torch threads for a checkpoint's pass (default: torch's)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, list[str]], list[str]]:
    """Everything that can be refused before any data is read: sources, blends, methods, files."""
    for path, what in ((args.fer_csv, "FER-2013 file"), (args.ferplus_csv, "FER+ votes file")):
        if not path.is_file():
            raise BenchError(f"missing shared data: the {what} {path} does not exist (see ../shared/data/*/README.md)")
    if not args.source:
        raise BenchError("give at least one --source NAME=PATH (e.g. --source shipped=ml/weights/default.pt)")
    sources: dict[str, Path] = {}
    for text in args.source:
        name, path = _named(text, "source")
        if name in sources:
            raise BenchError(f"--source {name} is given twice")
        if not Path(path).is_file():
            raise BenchError(f"--source {name}: {path} does not exist")
        sources[name] = Path(path)
    blends: dict[str, dict[str, float]] = {}
    for text in args.blend:
        name, spec = _named(text, "blend")
        if name in sources or name in blends:
            raise BenchError(f"--blend {name}: the name is taken")
        blends[name] = parse_blend(name, spec, sources)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or set(methods) - set(RANKING_METHODS):
        raise BenchError(f"--methods {args.methods!r}: choose from {', '.join(RANKING_METHODS)}")
    if args.noise_json and not args.noise_json.is_file():
        raise BenchError(f"--noise-json {args.noise_json} does not exist")
    return sources, blends, methods


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", _shown(Path(sys.argv[0])) if argv is None else "bench_ferplus_ranking.py",
                          *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args, command)
    except BenchError as exc:
        print(f"bench_ferplus_ranking: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, command: str) -> int:
    sources, blends, methods = check_args(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    log(f"reading {_shown(args.fer_csv)} and {_shown(args.ferplus_csv)}")
    truth = load_truth(args.fer_csv, args.ferplus_csv)
    minutes = {"data": (time.perf_counter() - started) / 60}
    notes: dict[str, str] = {}
    rankings: list[Ranking] = []
    probabilities: dict[str, Probabilities] = {}
    for name, path in sources.items():
        log(f"source {name}: {_shown(path)}")
        started = time.perf_counter()
        found, probs, notes[name] = load_source(name, path, truth, methods, args.work_dir)
        rankings += found
        if probs is not None:
            probabilities[name] = probs
        minutes[name] = (time.perf_counter() - started) / 60
    for name, parts in blends.items():
        if lacking := [p for p in parts if p not in probabilities]:
            raise BenchError(f"--blend {name}: {', '.join(lacking)} has no probabilities (a score-labels CSV cannot "
                             "be blended)")
        started = time.perf_counter()
        rankings += rank_probabilities(name, blend(name, {p: probabilities[p] for p in parts}, parts), methods)
        total = sum(parts.values())
        minutes[name], notes[name] = (time.perf_counter() - started) / 60, "blend of " + " + ".join(
            f"{p} x {w / total:.2f}" for p, w in parts.items())
    results = [evaluate(r, truth) for r in rankings]
    noise_title, noise_rows = noise_report(args.noise_json, methods) if args.noise_json else (None, [])

    development, wrong = int(truth.development.sum()), int((truth.wrong & truth.development).sum())
    partial = sorted({r["source"] for r in results if r["coverage"] < 1})
    print(f"# FER+ ranking benchmark, {datetime.now():%Y-%m-%d %H:%M}, {machine()}")
    print(f"# command: {command}")
    print(f"# development half: {development} even Training rows with FER+ votes, {wrong} ({wrong / development:.1%}) "
          "labelled wrong by FER+; flagged = cleanlab prune_by_noise_rate (the CLI CSV's own is_issue)")
    print("# minutes: " + " | ".join(f"{k} {v:.2f}" + (f" ({notes[k]})" if k in notes else "")
                                     for k, v in minutes.items()))
    if partial:
        print(f"# covering only part of the development half: {', '.join(partial)} (see 'dev rows')")
    print(results_table(results))
    print()
    if noise_title:
        print(noise_title)
        print(noise_table(noise_rows))
    else:
        print("# injected-noise figures were not given (--noise-json: benchmarks/bench_label_noise.py's result.json)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "date": datetime.now().isoformat(timespec="seconds"), "machine": machine(), "command": command,
            "development_rows": development, "development_wrong": wrong, "minutes": minutes, "notes": notes,
            "rankings": results, "noise": {"file": str(args.noise_json), "rows": noise_rows} if noise_title else None,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
