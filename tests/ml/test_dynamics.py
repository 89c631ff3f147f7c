"""Training dynamics come free with training: every run records each row's margin per epoch and its probabilities
at a few epochs, next to its checkpoint, resumably; rows whose label is wrong stand out in them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.data import FaceArrays
from ml.dynamics import DynamicsError, TrainingDynamics, batch_margins, dynamics_path, snapshot_epochs
from ml.train import fit

from .conftest import TEST_DEVICE, synthetic_faces
from .test_train import RECIPE


@pytest.mark.parametrize(("epochs", "expected"), [(60, (15, 30, 45, 60)), (12, (4, 8, 12)), (8, (4, 8)),
                                                    (5, (5,)), (1, (1,))])
def test_snapshots_are_spread_over_the_run_and_cost_at_most_one_per_four_epochs(epochs, expected):
    assert snapshot_epochs(epochs) == expected


def test_margin_is_the_assigned_logit_minus_the_largest_other():
    logits = torch.tensor([[2.0, 5.0, 1.0], [4.0, 1.0, 3.5]])
    assert batch_margins(logits, torch.tensor([0, 0])).tolist() == pytest.approx([-3.0, 0.5])


def test_a_run_records_margins_every_epoch_and_snapshots_and_finds_flipped_labels(tmp_path):
    images, labels = synthetic_faces(280)
    noisy = labels.copy()
    flipped = np.arange(0, 280, 13)  # 22 rows (8 %, every class) given the next class's label
    noisy[flipped] = (labels[flipped] + 1) % 7
    train = FaceArrays.from_arrays(images, noisy)
    out = tmp_path / "m.pt"
    summary = fit(train, None, RECIPE, out, epochs=8, seed=0, device=TEST_DEVICE)
    assert summary["dynamics"]["snapshot_epochs"] == [4, 8]
    dynamics = TrainingDynamics.load(dynamics_path(out))
    assert dynamics.margins.shape == (8, 280) and dynamics.epochs_seen() == 8
    assert np.array_equal(dynamics.labels, noisy) and np.array_equal(dynamics.rows, train.rows)
    seen = ~np.isnan(dynamics.margins.astype(np.float32))
    assert (seen.sum(1) == (280 // RECIPE.batch_size) * RECIPE.batch_size).all()  # the dropped last batch is NaN
    probs = dynamics.snapshot_probabilities("last")
    assert probs.shape == (280, 7) and np.allclose(probs.sum(1), 1, atol=1e-2)
    # The flipped rows have the lowest margins along the run: at least 5 times as many among the lowest as by chance.
    lowest = np.argsort(dynamics.mean_margin())[:len(flipped)]
    assert len(set(lowest) & set(flipped)) >= 0.4 * len(flipped)
    negative, of = dynamics.negative_epochs()
    assert negative[flipped].mean() > negative[np.setdiff1d(np.arange(280), flipped)].mean()
    assert (of <= 8).all()


def test_row_signals_count_negative_epochs_and_agreeing_snapshots():
    dynamics = TrainingDynamics.empty(np.arange(2), np.array([3, 3]), epochs=3)
    dynamics.margins[:, 0] = [-1.0, 2.0, -0.5]
    dynamics.margins[:2, 1] = [1.0, 1.0]  # not seen in the last epoch
    one_hot = np.eye(7, dtype=np.float32)
    dynamics.record_snapshot(2, one_hot[[5, 3]])
    dynamics.record_snapshot(3, one_hot[[5, 5]])
    assert dynamics.row_signals(np.array([5, 5])) == [
        {"negative_epochs": 2, "epochs": 3, "snapshots_agree": 2, "snapshots": 2},
        {"negative_epochs": 0, "epochs": 2, "snapshots_agree": 1, "snapshots": 2}]


def test_a_resumed_run_goes_on_with_the_dynamics_it_wrote(tmp_path, tiny_data):
    train, _ = tiny_data
    out = tmp_path / "r.pt"

    def stop_after_two(event):
        if event["kind"] == "epoch" and event["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(train, None, RECIPE, out, epochs=4, seed=0, device=TEST_DEVICE, progress=stop_after_two)
    half = TrainingDynamics.load(dynamics_path(out))
    assert half.epochs_seen() == 2 and sorted(half.snapshots) == []
    fit(train, None, RECIPE, out, epochs=4, seed=0, device=TEST_DEVICE, resume=True)
    whole = TrainingDynamics.load(dynamics_path(out))
    assert whole.epochs_seen() == 4 and sorted(whole.snapshots) == [4]
    assert np.array_equal(whole.margins[:2], half.margins[:2], equal_nan=True)


def test_an_early_stop_still_ends_with_a_snapshot(tmp_path, tiny_data):
    train, val = tiny_data
    recipe = RECIPE.with_overrides(early_stopping_patience=1, lr=1e-7, eval_every=1)
    summary = fit(train, val, recipe, tmp_path / "e.pt", epochs=12, seed=0, device=TEST_DEVICE)
    dynamics = TrainingDynamics.load(dynamics_path(tmp_path / "e.pt"))
    assert summary["epochs_run"] < 12
    assert max(dynamics.snapshots) == summary["epochs_run"]


def test_a_run_can_leave_them_out(tmp_path, tiny_data):
    train, _ = tiny_data
    summary = fit(train, None, RECIPE, tmp_path / "n.pt", epochs=1, device=TEST_DEVICE, record_dynamics=False)
    assert "dynamics" not in summary and not dynamics_path(tmp_path / "n.pt").exists()


def test_a_foreign_file_is_refused(tmp_path):
    np.savez(tmp_path / "x.npz", something=np.zeros(3))
    with pytest.raises(DynamicsError, match="cannot read|not a"):
        TrainingDynamics.load(tmp_path / "x.npz")
    with pytest.raises(DynamicsError):
        TrainingDynamics.load(tmp_path / "missing.npz")
