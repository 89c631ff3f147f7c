from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from apps.faces.importers.fer2013 import fer2013_import
from apps.faces.models import Dataset, FaceImage, FacePixels
from apps.faces.services import face_sha256

from .factories import random_pixels
from .fer_files import fer_row, pixel_text, stored_files, write_fer

pytestmark = pytest.mark.django_db


def run(path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_fer2013", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_import_stores_each_row_with_label_split_and_png(tmp_path, media_root, gz):
    rows = [fer_row(i, label=i % 7, usage=("Training", "PublicTest", "PrivateTest")[i % 3]) for i in range(20)]
    path = write_fer(tmp_path / ("fer.csv.gz" if gz else "fer.csv"), rows, gz=gz)

    out, _ = run(path)

    assert "images created:     20" in out
    images = list(FaceImage.objects.select_related("pixels").order_by("source_row"))
    assert [image.source_row for image in images] == list(range(20))
    third = images[3]
    assert (third.original_label, third.current_label, third.split) == (3, 3, "Training")
    assert third.sha256 == face_sha256(random_pixels(3))
    with third.pixels.png.open("rb") as handle, Image.open(handle) as png:
        assert png.mode == "L" and png.size == (48, 48)
        assert png.tobytes() == random_pixels(3)
    assert len(stored_files(media_root)) == 20
    assert Dataset.objects.get().name == "fer2013"


def test_second_import_adds_nothing(tmp_path, media_root):
    path = write_fer(tmp_path / "fer.csv", [fer_row(i) for i in range(10)])
    run(path)

    out, _ = run(path)

    assert "images created:     0" in out and "already present:    10" in out
    assert FaceImage.objects.count() == 10
    assert len(stored_files(media_root)) == 10


def test_exact_duplicates_share_one_png(tmp_path, media_root):
    rows = [fer_row(1, label=3), fer_row(2), fer_row(1, label=0, usage="PublicTest")]
    path = write_fer(tmp_path / "fer.csv", rows)

    report = fer2013_import(path=path)

    assert (report.created, report.duplicates_linked, report.pixels_stored) == (3, 1, 2)
    first, _, copy = FaceImage.objects.order_by("source_row")
    assert first.pixels_id == copy.pixels_id
    assert (first.current_label, copy.current_label) == (3, 0)  # labels stay per image
    assert copy.is_duplicate
    assert FacePixels.objects.count() == 2 and len(stored_files(media_root)) == 2


def test_dataset_option_keeps_imports_apart(tmp_path):
    path = write_fer(tmp_path / "fer.csv", [fer_row(1)])
    run(path, "--dataset", "copy-a")
    run(path, "--dataset", "copy-b")
    assert FaceImage.objects.filter(dataset__name="copy-a").count() == 1
    assert FaceImage.objects.filter(dataset__name="copy-b").count() == 1
    assert FacePixels.objects.count() == 1


GOOD = pixel_text(random_pixels(9))
BAD_ROWS = {
    "too few pixels": (["3", pixel_text(random_pixels(9)[:-1]), "Training"], "expected 2304 pixel values, found 2303"),
    "too many pixels": (["3", GOOD + " 7", "Training"], "expected 2304 pixel values, found 2305"),
    "label out of range": (["7", GOOD, "Training"], "emotion 7 out of range 0-6"),
    "negative label": (["-1", GOOD, "Training"], "emotion -1 out of range 0-6"),
    "label not a number": (["happy", GOOD, "Training"], "emotion 'happy' is not an integer"),
    "unknown usage": (["3", GOOD, "Validation"], "unknown Usage 'Validation'"),
    "non-numeric pixel": (["3", "1a " + pixel_text(random_pixels(9)[1:]), "Training"], "non-numeric pixel value"),
    "pixel out of range": (["3", "256 " + pixel_text(random_pixels(9)[1:]), "Training"], "pixel value out of range"),
    "missing column": (["3", GOOD], "expected 3 columns, found 2"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_bad_row_is_reported_with_its_line_and_skipped(tmp_path, kind):
    bad, reason = BAD_ROWS[kind]
    path = write_fer(tmp_path / "fer.csv", [fer_row(1), fer_row(2), bad, fer_row(3)])

    out, err = run(path)

    assert f"line 4: {reason}" in err  # header is line 1, so the third data row is line 4
    assert "bad rows skipped:   1" in out
    assert sorted(FaceImage.objects.values_list("source_row", flat=True)) == [0, 1, 3]


def test_strict_abort_leaves_no_rows_and_no_files(tmp_path, media_root):
    # 20 good rows cross several batches (test batch size is 7) before the bad one.
    rows = [fer_row(i) for i in range(20)] + [["9", pixel_text(random_pixels(99)), "Training"]]
    path = write_fer(tmp_path / "fer.csv", rows)

    with pytest.raises(CommandError, match="line 22: emotion 9 out of range"):
        run(path, "--strict")

    assert FaceImage.objects.count() == 0
    assert FacePixels.objects.count() == 0
    assert Dataset.objects.count() == 0
    assert stored_files(media_root) == []


def test_strict_import_of_a_clean_file_imports_everything(tmp_path):
    path = write_fer(tmp_path / "fer.csv", [fer_row(i) for i in range(9)])
    run(path, "--strict", "--batch-size", "4")
    assert FaceImage.objects.count() == 9


def test_missing_column_in_header_aborts(tmp_path):
    path = write_fer(tmp_path / "fer.csv", [fer_row(1)], header="emotion,pixels")
    with pytest.raises(CommandError, match="header lacks column"):
        run(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "nope.csv")


def test_leftover_file_from_a_crash_is_replaced(tmp_path, media_root):
    from apps.faces.models import face_png_path

    leftover = media_root / face_png_path(face_sha256(random_pixels(1)))
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a png")
    run(write_fer(tmp_path / "fer.csv", [fer_row(1)]))
    pixels = FacePixels.objects.get()
    assert pixels.png.name == face_png_path(pixels.sha256)
    assert leftover.read_bytes().startswith(b"\x89PNG")
