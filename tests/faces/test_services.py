"""``FaceWriter``, the one writer of face PNGs (importers and uploads): files first, outside the transaction that
records them, and gone again when that transaction does not commit."""

from __future__ import annotations

import pytest
from django.db import transaction

import apps.faces.services as face_services
from apps.faces.models import FaceImage, FacePixels, face_png_path
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create, face_sha256

from .factories import random_pixels
from .fer_files import stored_files

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: the writer's own transaction is the subject


def records(*seeds: int) -> list[FaceRecord]:
    return [FaceRecord(raw=random_pixels(seed), split="Training", label=seed % 7, source_row=i)
            for i, seed in enumerate(seeds, start=seeds[0] * 100)]


def test_pngs_are_written_before_the_transaction_that_records_them(media_root, monkeypatch):
    in_transaction = []
    real_save = face_services.storage_save_atomic

    def save_and_note(*args, **kwargs):
        in_transaction.append(transaction.get_connection().in_atomic_block)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(face_services, "storage_save_atomic", save_and_note)
    result = FaceWriter(dataset_get_or_create(name="fer2013")).write(records(1, 2, 1))
    assert in_transaction == [False, False]  # two distinct faces, each written once, outside any transaction
    assert (result.created, result.pixels_stored, result.duplicates_linked) == (3, 2, 1)
    names = sorted(FacePixels.objects.values_list("png", flat=True))
    assert names == sorted(face_png_path(face_sha256(random_pixels(s))) for s in (1, 2))
    assert [p.relative_to(media_root).as_posix() for p in stored_files(media_root)] == names


def test_rows_that_do_not_commit_leave_no_png(media_root):
    writer = FaceWriter()
    with pytest.raises(RuntimeError, match="the rows failed"), writer.recording([random_pixels(3), None]) as pngs:
        assert pngs.shas[1] is None and pngs.written == 1 and len(stored_files(media_root)) == 1
        raise RuntimeError("the rows failed")
    assert FacePixels.objects.count() == 0 and stored_files(media_root) == []


def test_an_error_after_the_commit_leaves_the_committed_rows_their_png(media_root):
    """An ``on_commit`` callback that raises (a task run inline) comes after the rows committed: their file stays."""

    def send():
        raise RuntimeError("the task failed after the commit")

    dataset = dataset_get_or_create(name="uploads")
    with pytest.raises(RuntimeError, match="after the commit"), FaceWriter().recording([random_pixels(4)]) as pngs:
        FaceImage.objects.create(dataset=dataset, pixels_id=pngs.shas[0], split="Upload")
        transaction.on_commit(send)
    (pixels,) = FacePixels.objects.all()
    assert [p.relative_to(media_root).as_posix() for p in stored_files(media_root)] == [pixels.png.name]


def test_a_strict_scope_is_all_or_nothing_across_batches(media_root):
    writer = FaceWriter()
    with pytest.raises(RuntimeError), writer.scope():
        writer.dataset = dataset_get_or_create(name="fer2013")
        writer.write(records(5, 6))
        writer.write(records(7))
        assert len(stored_files(media_root)) == 3
        raise RuntimeError("a bad row under --strict")
    assert FacePixels.objects.count() == FaceImage.objects.count() == 0 and stored_files(media_root) == []
