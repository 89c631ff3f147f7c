from __future__ import annotations

from ml.plots import _series, plot_history


def test_curves_draw_only_the_validated_epochs(tmp_path):
    history = [{"epoch": e, "train_loss": 2.0 - e / 10, "train_accuracy": e / 10,
                **({"val_accuracy": e / 12, "val_macro_f1": e / 15, "val_loss": 1.5} if e % 4 == 0 or e > 8 else {})}
               for e in range(1, 11)]
    assert _series(history, "val_accuracy")[0] == [4, 8, 9, 10]
    plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
