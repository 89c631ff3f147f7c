from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ml.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_ml(*args: str) -> subprocess.CompletedProcess:
    """``python -m ml *args`` in this process (``ml.cli.main``): its exit code, stdout and stderr. A new process would
    import torch again for every command; one test below runs the real ``python -m ml``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, a usage error
            code = exc.code
    return subprocess.CompletedProcess(["python", "-m", "ml", *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory, kaggle_csv) -> Path:
    out = tmp_path_factory.mktemp("cli") / "model.pt"
    proc = run_ml("train", "--csv", str(kaggle_csv), "--arch", "fer_vgg", "--epochs", "2", "--batch-size", "32",
                  "--half", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["epochs_run"] == 2
    return out


def test_every_command_has_help():
    for cmd in ("train", "evaluate", "predict", "explain", "score-labels", "half"):
        proc = run_ml(cmd, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout


def test_evaluate_json(trained, kaggle_csv):
    proc = run_ml("evaluate", "--checkpoint", str(trained), "--csv", str(kaggle_csv), "--json", "--tta", "flip")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(result)
    assert result["n"] == 70 and result["tta"] == "flip"


def test_evaluate_bare_tta_flag_means_flip(trained, kaggle_csv):
    proc = run_ml("evaluate", "--checkpoint", str(trained), "--csv", str(kaggle_csv), "--tta", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tta"] == "flip"


def test_evaluate_plots(trained, kaggle_csv, tmp_path):
    proc = run_ml("evaluate", "--checkpoint", str(trained), "--csv", str(kaggle_csv), "--plots", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in ("confusion.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_and_explain(trained, tmp_path):
    from PIL import Image

    img = tmp_path / "face.png"
    Image.new("L", (100, 80), 128).save(img)
    proc = run_ml("predict", "--checkpoint", str(trained), str(img))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert abs(sum(row["probabilities"].values()) - 1) < 0.01
    proc = run_ml("explain", "--checkpoint", str(trained), str(img), "--method", "gradcam++", "--target", "happy",
                  "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["target"] == "happy" and Path(info["overlay"]).is_file()


def test_missing_file(tmp_path):
    assert_one_line_error(run_ml("train", "--csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.pt")),
                          "no such file")


def test_python_m_ml_runs_as_a_process_with_its_exit_code_and_one_line_errors(tmp_path):
    """The one real process: ``python -m ml`` starts, runs ``main`` and exits with its code, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "ml", "train", "--csv", str(tmp_path / "nope.csv"), "--out",
                           str(tmp_path / "m.pt")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "no such file")


def test_malformed_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    assert_one_line_error(run_ml("train", "--csv", str(bad), "--out", str(tmp_path / "m.pt")), "line 2")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert_one_line_error(run_ml("evaluate", "--checkpoint", str(bad), "--csv", str(other)), "not a readable")


def test_wrong_checkpoint(tmp_path, kaggle_csv):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert_one_line_error(run_ml("evaluate", "--checkpoint", str(foreign), "--csv", str(kaggle_csv)),
                          "not a ferplatform checkpoint")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert_one_line_error(run_ml("predict", "--checkpoint", str(text), str(text)), "not a readable")


def test_unreadable_image(trained, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert_one_line_error(run_ml("predict", "--checkpoint", str(trained), str(text)), "not a readable image")


def test_score_labels_writes_sorted_rows(kaggle_csv, tmp_path):
    out = tmp_path / "scores.csv"
    proc = run_ml("score-labels", "--csv", str(kaggle_csv), "--usage", "Training", "--folds", "2", "--epochs", "1",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 280
    assert list(rows[0]) == ["row", "given_label", "suggested_label", "quality", "is_issue"]
    qualities = [float(r["quality"]) for r in rows]
    assert qualities == sorted(qualities)
    assert {int(r["row"]) for r in rows} == set(range(280))  # Training rows come first in the synthetic file


def test_score_labels_bad_folds(kaggle_csv, tmp_path):
    assert_one_line_error(run_ml("score-labels", "--csv", str(kaggle_csv), "--folds", "1", "--out",
                                 str(tmp_path / "s.csv")), "at least 2 folds")


def test_train_set_overrides_recipe_fields_and_the_checkpoint_records_them(kaggle_csv, tmp_path):
    from ml.checkpoint import read_checkpoint

    out = tmp_path / "m.pt"
    proc = run_ml("train", "--csv", str(kaggle_csv), "--arch", "fer_vgg", "--batch-size", "32", "--out", str(out),
                  "--set", "epochs=2", "--set", "progressive_resize=[32,48]", "--set", "scheduler=cosine",
                  "--set", "mixup_alpha=0.2")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["epochs_run"] == 2
    data = read_checkpoint(out)
    recipe = data["recipe"]["recipe"]
    assert recipe["progressive_resize"] == [32, 48] or recipe["progressive_resize"] == (32, 48)
    assert recipe["scheduler"] == "cosine" and recipe["mixup_alpha"] == 0.2 and recipe["epochs"] == 2
    assert data["recipe"]["set"] == ["epochs=2", "progressive_resize=[32,48]", "scheduler=cosine", "mixup_alpha=0.2"]
    assert [h["size"] for h in data["history"]][0] == 32


@pytest.mark.parametrize("item, needle", [
    ("epochs", "not FIELD=VALUE"),
    ("=3", "not FIELD=VALUE"),
    ("nonsense=1", "unknown recipe field(s): nonsense"),
    ("epochs=0", "'epochs' must be an integer >= 1"),
    ("scheduler=sometimes", "'scheduler' must be one of"),
    ("name=x", "fixed recipe field(s) cannot be overridden: name"),
])
def test_train_set_refuses_bad_overrides_in_one_line_before_training(kaggle_csv, tmp_path, item, needle):
    out = tmp_path / "m.pt"
    proc = run_ml("train", "--csv", str(kaggle_csv), "--out", str(out), "--set", item)
    assert_one_line_error(proc, needle)
    assert not out.exists()


def test_train_no_dynamics_leaves_the_dynamics_file_out(kaggle_csv, tmp_path):
    out = tmp_path / "m.pt"
    proc = run_ml("train", "--csv", str(kaggle_csv), "--arch", "fer_vgg", "--epochs", "1", "--batch-size", "32",
                  "--no-dynamics", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and not (tmp_path / "m.pt.dynamics.npz").exists()
    assert "dynamics" not in json.loads(proc.stdout.strip().splitlines()[-1])


def test_half_stores_a_full_precision_checkpoint_as_float16_like_train_half(tmp_path):
    from ml.checkpoint import build_checkpoint, load_checkpoint, read_checkpoint, save_atomic
    from ml.models import create_model

    torch.manual_seed(0)
    model = create_model("fer_vgg")
    full, half, trained_half = tmp_path / "full.pt", tmp_path / "half.pt", tmp_path / "train-half.pt"
    save_atomic(build_checkpoint(model, recipe={"name": "x"}, epoch=3, history=[{"epoch": 3}]), full)
    save_atomic(build_checkpoint(model, recipe={"name": "x"}, epoch=3, history=[{"epoch": 3}], half=True),
                trained_half)
    proc = run_ml("half", "--checkpoint", str(full), "--out", str(half))
    assert proc.returncode == 0, proc.stderr
    sizes = json.loads(proc.stdout)
    assert sizes["bytes_after"] == half.stat().st_size < 0.6 * sizes["bytes_before"]
    halved, as_trained = read_checkpoint(half), read_checkpoint(trained_half)
    # The same tensors as `train --half` stores, and everything else as it was.
    assert halved["model"].keys() == as_trained["model"].keys()
    assert all(torch.equal(halved["model"][k], as_trained["model"][k]) for k in halved["model"])
    assert {v.dtype for v in halved["model"].values() if v.is_floating_point()} == {torch.float16}
    assert (halved["epoch"], halved["history"], halved["recipe"]) == (3, [{"epoch": 3}], {"name": "x"})
    faces = torch.rand(4, 1, 48, 48)
    with torch.no_grad():
        before = load_checkpoint(full).model(faces).softmax(1)
        after = load_checkpoint(half).model(faces).softmax(1)
    assert torch.allclose(before, after, atol=1e-2)


def test_half_refuses_to_overwrite_its_input_and_missing_files_in_one_line(tmp_path):
    from ml.checkpoint import build_checkpoint, save_atomic
    from ml.models import create_model

    full = tmp_path / "full.pt"
    save_atomic(build_checkpoint(create_model("fer_vgg"), recipe={}, epoch=1, history=[]), full)
    assert_one_line_error(run_ml("half", "--checkpoint", str(full), "--out", str(full)), "must differ")
    assert_one_line_error(run_ml("half", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "h.pt")),
                          "no such file")
    assert not (tmp_path / "h.pt").exists()
