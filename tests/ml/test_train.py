from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ml.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from ml.evaluate import evaluate, predict_proba
from ml.recipes import apply_overrides, get_recipe
from ml.train import TrainingError, fit, train_size, validate_epoch

from .conftest import TINY_ARCH

RECIPE = get_recipe("default").with_overrides(arch="fer_vgg", arch_kwargs=TINY_ARCH, batch_size=32, lr=0.05)


def test_short_run_lowers_loss_and_writes_loadable_checkpoint(tmp_path, tiny_data):
    train, val = tiny_data
    events = []
    summary = fit(train, val, RECIPE, tmp_path / "m.pt", epochs=6, seed=0, device="cpu", progress=events.append)
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
    fit(train, val, RECIPE, out, epochs=4, seed=1, device="cpu", progress=None)
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
        fit(train, val, RECIPE, out2, epochs=4, seed=1, device="cpu", progress=stop_after_two)
    resumed = []
    summary = fit(train, val, RECIPE, out2, epochs=4, seed=1, device="cpu", resume=True,
                  progress=lambda e: e["kind"] == "epoch" and resumed.append(e["epoch"]))
    assert resumed == [3, 4]
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]


def test_resume_with_other_epoch_count_is_refused(tmp_path, tiny_data):
    train, val = tiny_data
    fit(train, val, RECIPE, tmp_path / "e.pt", epochs=1, device="cpu")
    with pytest.raises(TrainingError, match="--epochs 1"):
        fit(train, val, RECIPE, tmp_path / "e.pt", epochs=3, device="cpu", resume=True)


def test_nan_loss_is_reported(tmp_path, tiny_data):
    train, val = tiny_data
    with pytest.raises(TrainingError, match="loss became"):
        fit(train, val, RECIPE.with_overrides(lr=1e30, scheduler="none"), tmp_path / "n.pt", epochs=3, device="cpu")


def test_class_weights_and_oversampling_and_soft_labels_train(tmp_path, tiny_data):
    train, val = tiny_data
    import numpy as np

    soft = np.eye(7, dtype=np.float32)[train.labels] * 0.8 + 0.2 / 7
    train.soft_labels = soft
    for mode in ("probability", "crossentropy"):
        recipe = RECIPE.with_overrides(class_weights="balanced", oversample=True, soft_label_mode=mode)
        summary = fit(train, val, recipe, tmp_path / f"{mode}.pt", epochs=1, device="cpu")
        assert summary["epochs_run"] == 1


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
    summary = fit(train, val, recipe, tmp_path / "p.pt", epochs=4, seed=0, device="cpu")
    assert [h["size"] for h in summary["history"]] == [train_size(recipe, e, 4) for e in range(4)]
    assert summary["history"][0]["size"] < 48 and summary["history"][-1]["size"] == 48
    assert read_checkpoint(tmp_path / "p.pt")["preprocessing"]["input_size"] == 48


def test_validation_runs_every_nth_epoch_and_every_epoch_at_the_end(tmp_path, tiny_data):
    recipe = RECIPE.with_overrides(eval_every=4)
    assert [e for e in range(1, 11) if validate_epoch(recipe, e, 10)] == [4, 8, 9, 10]
    train, val = tiny_data
    summary = fit(train, val, replace(recipe, progressive_resize=None), tmp_path / "v.pt", epochs=5,
                  device="cpu")
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
        fit(train, val, recipe, out, epochs=3, seed=0, device="cpu", progress=stop_after_two)
    state = read_checkpoint(out.with_name("ema.pt.state"))
    steps = 2 * (len(train) // recipe.batch_size)
    assert int(state["ema"]["n_averaged"]) == steps
    fit(train, val, recipe, out, epochs=3, seed=0, device="cpu", resume=True)
    state = read_checkpoint(out.with_name("ema.pt.state"))
    assert int(state["ema"]["n_averaged"]) == steps * 3 // 2
    # One epoch: that epoch is the best, so the saved model must be the average, not the live weights.
    fit(train, val, recipe, tmp_path / "one.pt", epochs=1, seed=0, device="cpu")
    state, best = read_checkpoint(tmp_path / "one.pt.state"), read_checkpoint(tmp_path / "one.pt")
    weight = "features.0.0.weight"
    assert not torch.equal(state["ema"]["module." + weight], state["model"][weight])  # the average lags
    assert torch.equal(best["model"][weight], state["ema"]["module." + weight])
