from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from apps.faces.models import FaceImage

from .fer_files import stored_files

pytestmark = pytest.mark.django_db


def make_image(path, size=(64, 80), mode="RGB", fmt="PNG", shade=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=(shade, 30, 30) if mode == "RGB" else shade).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "faces-folder"
    make_image(root / "Training" / "happy" / "a.png")
    make_image(root / "train" / "Sad" / "b.jpg", size=(48, 48), mode="L", fmt="JPEG", shade=20)
    make_image(root / "PublicTest" / "0" / "c.jpeg", size=(300, 200), fmt="JPEG", shade=90)
    make_image(root / "Training" / "happy" / "notes.txt")  # not an image suffix: ignored
    return root


def run(path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_folder", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_folder_layout_imports_as_48x48_grey(folder, media_root):
    out, _ = run(folder)

    assert "images created:     3" in out
    labels = dict(FaceImage.objects.values_list("source_name", "current_label"))
    assert labels == {"Training/happy/a.png": 3, "train/Sad/b.jpg": 4, "PublicTest/0/c.jpeg": 0}
    splits = dict(FaceImage.objects.values_list("source_name", "split"))
    assert splits["train/Sad/b.jpg"] == "Training" and splits["PublicTest/0/c.jpeg"] == "PublicTest"
    image = FaceImage.objects.get(source_name="Training/happy/a.png")
    with image.pixels.png.open("rb") as handle, Image.open(handle) as png:
        assert (png.mode, png.size) == ("L", (48, 48))
    assert image.dataset.name == "faces-folder"
    assert len(stored_files(media_root)) == 3


def test_folder_reimport_adds_nothing(folder):
    run(folder)
    out, _ = run(folder)
    assert "images created:     0" in out and "already present:    3" in out


def test_bad_files_are_reported_and_skipped(folder):
    (folder / "Training" / "happy" / "broken.png").write_bytes(b"not an image")
    make_image(folder / "Training" / "smug" / "d.png")
    make_image(folder / "Holdout" / "happy" / "e.png")

    out, err = run(folder)

    assert "Training/happy/broken.png: not a readable image" in err
    assert "Training/smug/d.png: unknown emotion 'smug'" in err
    assert "Holdout/happy/e.png: unknown split 'Holdout'" in err
    assert "bad rows skipped:   3" in out
    assert FaceImage.objects.count() == 3


def test_strict_folder_import_leaves_nothing(folder, media_root):
    (folder / "Training" / "happy" / "zz-broken.png").write_bytes(b"not an image")
    with pytest.raises(CommandError, match="zz-broken.png"):
        run(folder, "--strict", "--batch-size", "2")
    assert FaceImage.objects.count() == 0
    assert stored_files(media_root) == []
