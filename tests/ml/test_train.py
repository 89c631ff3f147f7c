from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.augment import AugmentConfig
from ml.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from ml.data import FaceArrays, balanced_class_weights
from ml.evaluate import evaluate, predict_proba
from ml.recipes import Recipe, apply_overrides, get_recipe
from ml.train import TrainingError, build_state, fit, train_one_epoch, train_size, validate_epoch
from tests.helpers import TINY_ARCH

from .conftest import TEST_DEVICE, synthetic_faces

RECIPE = get_recipe("default").with_overrides(arch="fer_vgg", arch_kwargs=TINY_ARCH, batch_size=32, lr=0.05)
# Nothing random between the data and the loss (no augmentation, dropout, mixup or smoothing; fp32), so that the loss
# of a run's first step can be recomputed from the same seed's initial model.
EXACT = RECIPE.with_overrides(arch_kwargs={**TINY_ARCH, "dropout": 0.0}, augment=AugmentConfig(hflip=False),
                              label_smoothing=0.0, ema_decay=0.0, amp_bf16=False)


def test_short_run_lowers_loss_and_writes_loadable_checkpoint(tmp_path, tiny_data):
    train, val = tiny_data
    events = []
    summary = fit(train, val, RECIPE, tmp_path / "m.pt", epochs=6, seed=0, device=TEST_DEVICE, progress=events.append)
    losses = [h["train_loss"] for h in summary["history"]]
    assert losses[-1] < losses[0]
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2, 3, 4, 5, 6]
    assert any(e["kind"] == "batch" for e in events)
    loaded = load_checkpoint(tmp_path / "m.pt")
    data = read_checkpoint(tmp_path / "m.pt")
    assert data["recipe"]["recipe"]["name"] == "default"
    assert data["preprocessing"] == {"input_size": 48, "channels": 1, "mean": [0.5], "std": [0.25]}
    assert data["classes"][3] == "happy"
    probs = predict_proba(loaded.model, val.images)
    assert probs.shape == (len(val), 7)
    assert abs(float(probs.sum(1).mean()) - 1) < 1e-4
    result = evaluate(loaded.model, val.images, val.labels, tta="tencrop")
    assert result["accuracy"] > 1 / 7 + 0.1  # well above chance on learnable synthetic classes
    assert len(result["confusion"]) == 7 and set(result["per_class"]) >= {"angry", "neutral"}


def test_resume_continues_from_saved_epoch(tmp_path, tiny_data):
    train, val = tiny_data
    out = tmp_path / "r.pt"
    fit(train, val, RECIPE, out, epochs=4, seed=1, device=TEST_DEVICE, progress=None)
    state = read_checkpoint(out.with_name("r.pt.state"))
    assert state["epoch"] == 4
    # Pretend the run stopped after epoch 2: rewind the state file by training 2 of 4 epochs in a fresh dir.
    out2 = tmp_path / "again.pt"
    seen = []

    def stop_after_two(event):
        if event["kind"] == "epoch":
            seen.append(event["epoch"])
            if event["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(train, val, RECIPE, out2, epochs=4, seed=1, device=TEST_DEVICE, progress=stop_after_two)
    resumed = []
    summary = fit(train, val, RECIPE, out2, epochs=4, seed=1, device=TEST_DEVICE, resume=True,
                  progress=lambda e: e["kind"] == "epoch" and resumed.append(e["epoch"]))
    assert resumed == [3, 4]
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]


def test_resume_with_other_epoch_count_is_refused(tmp_path, tiny_data):
    train, val = tiny_data
    fit(train, val, RECIPE, tmp_path / "e.pt", epochs=1, device=TEST_DEVICE)
    with pytest.raises(TrainingError, match="--epochs 1"):
        fit(train, val, RECIPE, tmp_path / "e.pt", epochs=3, device=TEST_DEVICE, resume=True)


def test_nan_loss_is_reported(tmp_path, tiny_data):
    train, val = tiny_data
    with pytest.raises(TrainingError, match="loss became"):
        fit(train, val, RECIPE.with_overrides(lr=1e30, scheduler="none"), tmp_path / "n.pt", epochs=3,
            device=TEST_DEVICE)


def imbalanced_faces() -> FaceArrays:
    """Class 0 ten times as common as each other class (50 and 5 faces)."""
    images, labels = synthetic_faces(350)
    keep = np.flatnonzero((labels == 0) | (np.arange(350) < 35))
    return FaceArrays.from_arrays(images[keep], labels[keep])


def first_step(train: FaceArrays, recipe: Recipe, out) -> tuple[float, torch.Tensor]:
    """One epoch of ``fit`` on a single batch of all faces: the loss it reports (that of its only step, before the
    update), and the logits of the same seed's initial model on those faces, in training mode as ``fit`` has it."""
    recipe = recipe.with_overrides(batch_size=len(train))
    summary = fit(train, None, recipe, out, epochs=1, seed=0, device=TEST_DEVICE)
    model = build_state(recipe, train.labels, steps_per_epoch=1, epochs=1, seed=0, device=torch.device("cpu")).model
    x = model.preprocessing.apply(torch.from_numpy(train.images).unsqueeze(1).float() / 255)
    with torch.no_grad():
        logits = model.train()(x.contiguous(memory_format=torch.channels_last))
    return summary["history"][0]["train_loss"], logits


def test_class_weights_weigh_the_loss_by_class(tmp_path):
    train = imbalanced_faces()
    labels = torch.from_numpy(train.labels)
    weights = torch.tensor(balanced_class_weights(train.labels), dtype=torch.float32)
    assert weights[0] < 1 < weights[1]  # the common class counts less, the rare ones more
    balanced = EXACT.with_overrides(class_weights="balanced")
    loss, logits = first_step(train, EXACT, tmp_path / "plain.pt")
    weighted, same_logits = first_step(train, balanced, tmp_path / "weighted.pt")
    assert torch.equal(logits, same_logits)  # same seed, same initial model: only the loss can differ
    plain_ce = F.cross_entropy(logits, labels).item()
    weighted_ce = F.cross_entropy(logits, labels, weight=weights).item()
    assert abs(plain_ce - weighted_ce) > 1e-2  # far enough apart for the checks below to tell them apart
    assert loss == pytest.approx(plain_ce, abs=1e-4)
    assert weighted == pytest.approx(weighted_ce, abs=1e-4)
    # The weights apply to vote distributions too.
    votes = np.full((len(train), 7), 0.1, dtype=np.float32)
    votes[np.arange(len(train)), train.labels] = 0.4
    with_votes = FaceArrays.from_arrays(train.images, train.labels, soft_labels=votes)
    weighted_votes, _ = first_step(with_votes, balanced.with_overrides(soft_label_mode="crossentropy"),
                                   tmp_path / "votes.pt")
    plain_votes_ce = F.cross_entropy(logits, torch.from_numpy(votes)).item()
    weighted_votes_ce = F.cross_entropy(logits, torch.from_numpy(votes), weight=weights).item()
    assert abs(plain_votes_ce - weighted_votes_ce) > 1e-2
    assert weighted_votes == pytest.approx(weighted_votes_ce, abs=1e-4)


def test_oversampling_draws_every_class_about_equally_often():
    train = imbalanced_faces()
    labels = torch.from_numpy(train.labels)
    images = torch.from_numpy(train.images)

    def classes_seen(recipe: Recipe) -> np.ndarray:
        """The class of every face the model is fed in one epoch, counted by a forward pre-hook on the model."""
        state = build_state(recipe, train.labels, steps_per_epoch=5, epochs=1, seed=0, device=torch.device("cpu"))
        row_to_class = {}  # each face's pre-processed image, as bytes, to its label (the synthetic faces all differ)
        x = state.model.preprocessing.apply(images.unsqueeze(1).float() / 255)
        for face, y in zip(x, train.labels, strict=True):
            row_to_class[face.numpy().tobytes()] = int(y)
        seen = []
        state.model.register_forward_pre_hook(
            lambda _, args: seen.extend(row_to_class[face.numpy().tobytes()] for face in args[0].detach()))
        train_one_epoch(state, images, labels)
        return np.bincount(seen, minlength=7)

    recipe = EXACT.with_overrides(batch_size=16, scheduler="none")  # 80 faces: 5 full batches
    assert classes_seen(recipe).tolist() == [50, 5, 5, 5, 5, 5, 5]  # a permutation: each face once
    oversampled = classes_seen(recipe.with_overrides(oversample=True))
    # With replacement, about 80 / 7 = 11 draws of each class instead of 50 against 5.
    assert oversampled.sum() == 80 and oversampled.min() >= 2
    assert oversampled[0] <= 25 and oversampled[1:].sum() >= 55


def test_soft_labels_replace_the_hard_targets(tmp_path):
    train = imbalanced_faces()
    labels = torch.from_numpy(train.labels)
    other = (labels + 1) % 7
    votes_for_other = np.eye(7, dtype=np.float32)[other.numpy()]
    mixed = 0.75 * votes_for_other + 0.25 * np.eye(7, dtype=np.float32)[train.labels]

    def run(mode: str, soft: np.ndarray) -> tuple[float, torch.Tensor]:
        data = FaceArrays.from_arrays(train.images, train.labels, soft_labels=soft)
        return first_step(data, EXACT.with_overrides(soft_label_mode=mode), tmp_path / f"{mode}.pt")

    majority, logits = run("majority", mixed)
    sampled, _ = run("probability", votes_for_other)  # sampling from one-hot votes always draws ``other``
    crossentropy, _ = run("crossentropy", mixed)
    hard_ce, other_ce = F.cross_entropy(logits, labels).item(), F.cross_entropy(logits, other).item()
    mixed_ce = F.cross_entropy(logits, torch.from_numpy(mixed)).item()
    assert min(abs(hard_ce - other_ce), abs(hard_ce - mixed_ce), abs(other_ce - mixed_ce)) > 1e-2
    assert majority == pytest.approx(hard_ce, abs=1e-4)  # "majority" trains on the given labels
    assert sampled == pytest.approx(other_ce, abs=1e-4)
    assert crossentropy == pytest.approx(mixed_ce, abs=1e-4)


def test_extra_goes_into_the_record_and_not_into_the_resume_state(tmp_path, tiny_data):
    train, val = tiny_data
    out = tmp_path / "x.pt"
    fit(train, val, RECIPE, out, epochs=1, device=TEST_DEVICE, extra={"run_id": 7})
    best, state = read_checkpoint(out), read_checkpoint(out.with_name("x.pt.state"))
    assert best["recipe"]["run_id"] == 7 and state["recipe"]["run_id"] == 7
    assert state["best_epoch"] == 1 and "rng" in state and "run_id" not in state


def test_foreign_and_corrupt_checkpoints_are_refused(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a ferplatform checkpoint"):
        load_checkpoint(foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(corrupt)


def test_overrides_set_null_only_where_a_field_allows_it():
    assert RECIPE.with_overrides(progressive_resize=[32, 48]).progressive_resize == (32, 48)  # JSON lists
    assert RECIPE.with_overrides(progressive_resize=(32, 48)).with_overrides(progressive_resize=None) \
        .progressive_resize is None
    assert RECIPE.with_overrides(class_weights="balanced").with_overrides(class_weights=None).class_weights is None
    with pytest.raises(ValueError, match="cannot be null: lr"):
        RECIPE.with_overrides(lr=None)
    with pytest.raises(ValueError, match="unknown recipe field"):
        RECIPE.with_overrides(learning_rate=0.1)


def test_apply_overrides_takes_a_json_object_of_free_fields():
    recipe = apply_overrides(RECIPE, {"arch_kwargs": {"widths": [8, 16, 16, 32]}, "progressive_resize": [40, 48]})
    assert recipe.arch_kwargs["widths"] == (8, 16, 16, 32) and recipe.progressive_resize == (40, 48)
    with pytest.raises(ValueError, match="JSON object"):
        apply_overrides(RECIPE, [["lr", 0.1]])
    with pytest.raises(ValueError, match="fixed recipe field"):
        apply_overrides(RECIPE, {"name": "mine"})


def test_progressive_resize_grows_to_the_full_size_and_serves_at_full_size(tmp_path, tiny_data):
    recipe = RECIPE.with_overrides(progressive_resize=(32, 48), progressive_until=0.5)
    sizes = [train_size(recipe, e, 8) for e in range(8)]
    assert sizes[0] == 32 and sizes[4:] == [48] * 4
    assert sizes == sorted(sizes) and all(s % 4 == 0 for s in sizes)
    assert train_size(replace(RECIPE, progressive_resize=None), 0, 8) is None
    train, val = tiny_data
    summary = fit(train, val, recipe, tmp_path / "p.pt", epochs=4, seed=0, device=TEST_DEVICE)
    assert [h["size"] for h in summary["history"]] == [train_size(recipe, e, 4) for e in range(4)]
    assert summary["history"][0]["size"] < 48 and summary["history"][-1]["size"] == 48
    assert read_checkpoint(tmp_path / "p.pt")["preprocessing"]["input_size"] == 48


def test_validation_runs_every_nth_epoch_and_every_epoch_at_the_end(tmp_path, tiny_data):
    recipe = RECIPE.with_overrides(eval_every=4)
    assert [e for e in range(1, 11) if validate_epoch(recipe, e, 10)] == [4, 8, 9, 10]
    train, val = tiny_data
    summary = fit(train, val, replace(recipe, progressive_resize=None), tmp_path / "v.pt", epochs=5,
                  device=TEST_DEVICE)
    assert ["val_accuracy" in h for h in summary["history"]] == [False, False, False, True, True]
    assert read_checkpoint(tmp_path / "v.pt")["epoch"] in (4, 5)


def test_ema_weights_are_saved_and_resumed(tmp_path, tiny_data):
    train, val = tiny_data
    recipe = replace(RECIPE, ema_decay=0.9, progressive_resize=None, eval_every=1)
    out = tmp_path / "ema.pt"

    def stop_after_two(event):
        if event["kind"] == "epoch" and event["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(train, val, recipe, out, epochs=3, seed=0, device=TEST_DEVICE, progress=stop_after_two)
    state = read_checkpoint(out.with_name("ema.pt.state"))
    steps = 2 * (len(train) // recipe.batch_size)
    assert int(state["ema"]["n_averaged"]) == steps
    fit(train, val, recipe, out, epochs=3, seed=0, device=TEST_DEVICE, resume=True)
    state = read_checkpoint(out.with_name("ema.pt.state"))
    assert int(state["ema"]["n_averaged"]) == steps * 3 // 2
    # One epoch: that epoch is the best, so the saved model must be the average, not the live weights.
    fit(train, val, recipe, tmp_path / "one.pt", epochs=1, seed=0, device=TEST_DEVICE)
    state, best = read_checkpoint(tmp_path / "one.pt.state"), read_checkpoint(tmp_path / "one.pt")
    weight = "features.0.0.weight"
    assert not torch.equal(state["ema"]["module." + weight], state["model"][weight])  # the average lags
    assert torch.equal(best["model"][weight], state["ema"]["module." + weight])


@pytest.mark.parametrize(("epochs", "steps"), [(1, 5), (5, 1), (1, 4), (2, 3)])
def test_onecycle_schedules_any_number_of_steps(epochs, steps):
    """OneCycleLR divides by pct_start * total - 1: 5 steps at pct_start 0.2 used to be a ZeroDivisionError."""
    from ml.train import make_scheduler

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler, per_step = make_scheduler(get_recipe("default"), optimizer, steps_per_epoch=steps, epochs=epochs)
    rates = []
    for _ in range(epochs * steps):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert per_step and all(np.isfinite(rates)) and max(rates) <= 0.1 + 1e-9
