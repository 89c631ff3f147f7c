"""``benchmarks/bench_accuracy_budget.py --evaluate`` on tiny synthetic runs: every run with and without TTA, the
minutes from the run's ``.state`` file, and candidates grouped over seeds with their spread."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ml.data import load_fer_csv
from ml.recipes import get_recipe
from ml.train import fit
from tests.ml.conftest import write_kaggle_csv

ROOT = Path(__file__).resolve().parents[2]


def test_evaluate_groups_runs_into_candidates_with_mean_and_spread(tmp_path):
    csv_path = write_kaggle_csv(tmp_path / "fer.csv", n_train=140, n_test=42)
    data = load_fer_csv(csv_path)
    train, val = data.usage("Training"), data.usage("PublicTest")
    recipe = get_recipe("scoring").with_overrides(epochs=2, batch_size=32)
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"s{seed}" / "model.pt"
        out.parent.mkdir()
        fit(train, val, recipe, out, seed=seed)
        runs.append(out)
    other = tmp_path / "other" / "model.pt"
    other.parent.mkdir()
    fit(train, val, recipe.with_overrides(epochs=1), other, seed=0)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_accuracy_budget.py"), "--evaluate",
                           *map(str, runs), str(other)], capture_output=True, text=True,
                          env={"FER2013_CSV": str(csv_path), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "# PublicTest, 42 faces; accuracy (macro-F1) per TTA"
    per_run = [line for line in lines if line.startswith(str(tmp_path))]
    assert len(per_run) == 3
    for line in per_run:
        assert re.search(r"none 0\.\d{4} \(0\.\d{4}\)  flip 0\.\d{4} \(0\.\d{4}\)  tencrop 0\.\d{4} \(0\.\d{4}\)", line)
    # Minutes cover every epoch of the run (the .state file), not only those up to the best one.
    assert "over 2 epochs" in per_run[0] and "over 1 epochs" in per_run[2]
    summary = lines[lines.index("# candidates: mean ± sd over seeds") + 1:]
    assert len(summary) == 2
    two = next(line for line in summary if "(2 seeds)" in line)
    assert two.startswith("scoring v1 fer_vgg 2 ep")
    accuracies = [float(re.search(r"none (0\.\d{4})", line).group(1)) for line in per_run[:2]]
    mean = re.search(r"none (0\.\d{4}) ± (\d\.\d{4})", two)
    assert abs(float(mean.group(1)) - np.mean(accuracies)) < 1e-3
    assert abs(float(mean.group(2)) - np.std(accuracies, ddof=1)) < 1e-3
    one = next(line for line in summary if "(1 seeds)" in line)
    assert one.startswith("scoring v1 fer_vgg 1 ep") and "± nan" in one
