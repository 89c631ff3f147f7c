"""Label files for the retraining-loop benchmark: the imported copy, the oracle's answers, the evaluation labels and
injected noise. No Django here: the parent process prepares files, the child steps read the JSON it writes.

Every label list is indexed by data row of the file that is imported (``source_row`` of its faces), so row N of the
oracle or the evaluation file is the face imported from row N. A label is 0-6 (``ml.labels.CLASSES``),
``NOT_A_FACE`` (7, the review choice of that name): the oracle's reviewers then vote "not a face", and the evaluation
leaves that face out; or ``NO_LABEL`` (-1): the oracle's reviewers skip the face, and the evaluation leaves it out.

A label file is Kaggle layout (``emotion``, ``pixels``, ``Usage``) or FER+ layout (``fer2013new.csv``: ``Usage`` and
the ten vote counts of ``FERPLUS_COLUMNS``, ``../shared/data/ferplus/README.md``). FER+ votes only play the reviewers
and the yardstick here; they never reach the ranking or the training except through the simulated reviewers' votes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_ferplus_ranking import FERPLUS_COLUMNS, FERPLUS_INDEX, NF_COLUMN, BenchError, read_ferplus

from ml.data import iter_fer_csv
from ml.labels import CLASSES, NUM_CLASSES, class_index

NOT_A_FACE = NUM_CLASSES  # apps.review.choices.NOT_A_FACE, without importing Django
NO_LABEL = -1  # no answer: the oracle's reviewers skip the face, the evaluation leaves it out
NOT_A_FACE_VALUES = frozenset({"7", "nf", "not_a_face", "not a face", "notaface"})
KEPT_USAGES = ("Training", "PublicTest", "PrivateTest")

# Class-conditional noise needs a confusion shape (rows: true class, columns: predicted, in CLASSES order). This one
# is the typical confusion of a ~70 % FER-2013 CNN (angry/fear/sad/neutral mixed up, disgust read as angry, surprise
# as fear), written down for the benchmark, not measured here: a quick model of this benchmark's scale predicts
# too few classes for its own confusion to be a useful shape.
FER_CONFUSION = np.array([
    # angry disgust fear happy  sad  surprise neutral
    [0.62, 0.01, 0.10, 0.04, 0.12, 0.02, 0.09],  # angry
    [0.20, 0.60, 0.05, 0.03, 0.07, 0.02, 0.03],  # disgust
    [0.11, 0.01, 0.47, 0.03, 0.18, 0.09, 0.11],  # fear
    [0.02, 0.00, 0.02, 0.88, 0.02, 0.02, 0.04],  # happy
    [0.08, 0.00, 0.10, 0.04, 0.56, 0.01, 0.21],  # sad
    [0.02, 0.00, 0.09, 0.04, 0.02, 0.80, 0.03],  # surprise
    [0.05, 0.00, 0.05, 0.06, 0.15, 0.02, 0.67],  # neutral
])
assert FER_CONFUSION.shape == (len(CLASSES), len(CLASSES))  # noqa: S101


@dataclass(frozen=True)
class LabelFile:
    """One Kaggle-layout file's labels and Usage per data row, and a digest of each row's pixels."""

    labels: np.ndarray  # int64, 0-6 or NOT_A_FACE
    usages: np.ndarray  # str
    pixel_digests: list[bytes]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> LabelFile:
        return LabelFile(self.labels[rows], self.usages[rows], [self.pixel_digests[i] for i in rows.tolist()])


def parse_label(value: str) -> int:
    """0-6 or an emotion name; ``7``, ``nf`` or ``not_a_face`` for "not a face"."""
    text = (value or "").strip().lower()
    if text in NOT_A_FACE_VALUES:
        return NOT_A_FACE
    return class_index(text)


def read_label_file(path: Path) -> LabelFile:
    labels, usages, digests = [], [], []
    for line, _, record in iter_fer_csv(path):
        try:
            labels.append(parse_label(record["emotion"]))
        except ValueError as exc:
            raise SystemExit(f"{path}: line {line}: {exc}") from None
        usages.append((record["Usage"] or "").strip())
        digests.append(hashlib.blake2b((record["pixels"] or "").strip().encode(), digest_size=8).digest())
    return LabelFile(np.array(labels, dtype=np.int64), np.array(usages, dtype=object), digests)


def check_same_rows(name: str, labels: LabelFile, imported: LabelFile) -> None:
    """Row N of a label file must be the face of row N of the data file: same count, Usage and pixels."""
    if len(labels) != len(imported):
        raise SystemExit(f"{name}: {len(labels)} data rows, the data file has {len(imported)}")
    for row in range(len(labels)):
        if labels.usages[row] != imported.usages[row] or labels.pixel_digests[row] != imported.pixel_digests[row]:
            raise SystemExit(f"{name}: data row {row} (line {row + 2}) is not the data file's face of that row "
                             "(Usage or pixels differ)")


@dataclass(frozen=True)
class FerplusVotes:
    """One FER+-layout file's Usage and ten vote counts (``FERPLUS_COLUMNS``) per data row; all-zero: no votes."""

    usages: np.ndarray  # str
    counts: np.ndarray  # int64 (n, 10)

    def __len__(self) -> int:
        return len(self.usages)

    def subset(self, rows: np.ndarray) -> FerplusVotes:
        return FerplusVotes(self.usages[rows], self.counts[rows])

    @property
    def voted(self) -> np.ndarray:
        return self.counts.sum(1) > 0


def is_ferplus_layout(path: Path) -> bool:
    """Whether ``path``'s header is FER+'s (``Usage`` and the ten vote columns) rather than Kaggle's."""
    with _open_text(path) as fh:
        header = {name.strip() for name in next(csv.reader(fh), [])}
    return {"Usage", *FERPLUS_COLUMNS} <= header


def read_ferplus_votes(path: Path) -> FerplusVotes:
    try:
        usages, counts = read_ferplus(path)
    except BenchError as exc:
        raise SystemExit(str(exc)) from None
    return FerplusVotes(np.array([u.strip() for u in usages], dtype=object), counts)


def ferplus_top(counts: np.ndarray) -> np.ndarray:
    """Per row, the column with strictly the most of the ten votes, as a label: its class for the seven emotions,
    ``NOT_A_FACE`` for NF; ``NO_LABEL`` without votes, for a tie, or with contempt or unknown on top. For the
    emotions this is ``apps.review.ferplus.ferplus_majority``; NF is kept as "not a face" instead of None."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"expected vote counts (n, {len(FERPLUS_COLUMNS)}), got {counts.shape}")
    top = counts.max(1, initial=0)
    strict = (top > 0) & ((counts == top[:, None]).sum(1) == 1)
    column = counts.argmax(1)
    labels = np.full(len(counts), NO_LABEL, dtype=np.int64)
    for col, cls in FERPLUS_INDEX:
        labels[strict & (column == col)] = cls
    labels[strict & (column == NF_COLUMN)] = NOT_A_FACE
    return labels


def ferplus_answers(votes: FerplusVotes, given: np.ndarray) -> np.ndarray:
    """What the simulated reviewers answer per row: the FER+ top (an emotion, or "not a face"); the given label, a
    confirmation, where the row has votes but a tie or contempt or unknown tops them; ``NO_LABEL`` (skip) where it
    has none (the withheld odd Training rows, and rows FER+ could not match)."""
    given = np.asarray(given, dtype=np.int64)
    if len(given) != len(votes):
        raise ValueError(f"{len(given)} given labels for {len(votes)} rows of votes")
    top = ferplus_top(votes.counts)
    return np.where(top != NO_LABEL, top, np.where(votes.voted, given, NO_LABEL))


def check_same_usages(name: str, votes: FerplusVotes, imported: LabelFile) -> None:
    """A FER+ file has no pixels: row N must at least be a row of the same split as the data file's row N."""
    if len(votes) != len(imported):
        raise SystemExit(f"{name}: {len(votes)} data rows, the data file has {len(imported)}")
    differ = np.flatnonzero(votes.usages != imported.usages)
    if len(differ):
        row = int(differ[0])
        raise SystemExit(f"{name}: data row {row} (line {row + 2}) is {votes.usages[row]!r}, the data file's "
                         f"{imported.usages[row]!r}: not the same rows")


def _open_text(path: Path):
    with open(path, "rb") as handle:
        gz = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", newline="") if gz else open(path, newline="")


def truncated_copy(source: Path, dest: Path, *, training: int, test: int) -> np.ndarray:
    """Write the header, the first ``training`` Training rows and the first ``test`` PublicTest (and PrivateTest)
    rows. Returns the data rows of ``source`` that were kept, in order (row i of ``dest`` is row kept[i])."""
    wanted = {"Training": training, "PublicTest": test, "PrivateTest": test}
    counts = dict.fromkeys(wanted, 0)
    kept = []
    with _open_text(source) as src, open(dest, "w", newline="") as out:
        reader, writer = csv.reader(src), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        usage = header.index("Usage")
        for data_row, row in enumerate(reader):
            split = row[usage].strip() if len(row) > usage else ""
            if split in wanted and counts[split] < wanted[split]:
                writer.writerow(row)
                counts[split] += 1
                kept.append(data_row)
    return np.array(kept, dtype=np.int64)


def write_relabelled(source: Path, dest: Path, labels: np.ndarray) -> None:
    """A copy of ``source`` with data row i's emotion replaced by ``labels[i]`` (0-6)."""
    with _open_text(source) as src, open(dest, "w", newline="") as out:
        reader, writer = csv.reader(src), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        emotion = header.index("emotion")
        for data_row, row in enumerate(reader):
            row[emotion] = str(int(labels[data_row]))
            writer.writerow(row)


def inject_noise(clean: LabelFile, *, kind: str, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy labels for every row (only Training rows flipped, ``ml.noise``) and the flipped mask."""
    from ml.noise import class_conditional_noise, uniform_noise

    training = np.flatnonzero((clean.usages == "Training") & (clean.labels < NOT_A_FACE))
    if kind == "uniform":
        noise = uniform_noise(clean.labels[training], rate, seed)
    elif kind == "class_conditional":
        noise = class_conditional_noise(clean.labels[training], rate, FER_CONFUSION, seed)
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    labels = clean.labels.copy()
    labels[training] = noise.labels
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[training] = noise.flipped
    return labels, flipped
