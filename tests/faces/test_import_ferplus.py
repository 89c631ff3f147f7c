from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from apps.faces.models import FaceImage

from .fer_files import fer_row, write_fer, write_ferplus

pytestmark = pytest.mark.django_db

VOTES = [4, 0, 0, 1, 0, 0, 0, 0, 5, 0]


@pytest.fixture
def fer_imported(tmp_path):
    rows = [fer_row(i, usage="Training") for i in range(8)] + [fer_row(8, usage="PublicTest")]
    call_command("import_fer2013", str(write_fer(tmp_path / "fer.csv", rows)), stdout=io.StringIO())


def run(path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_ferplus", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_votes_attach_by_row_order(tmp_path, fer_imported):
    rows = [("Training", [i, 0, 0, 0, 0, 0, 0, 0, 0, 10 - i]) for i in range(8)] + [("PublicTest", VOTES)]
    rows.append(("PrivateTest", VOTES))  # withheld row: no image to attach to
    out, _ = run(write_ferplus(tmp_path / "fer2013new.csv", rows))

    assert "images updated:     9" in out and "no matching image:  1" in out
    assert FaceImage.objects.get(source_row=2).ferplus_votes == [2, 0, 0, 0, 0, 0, 0, 0, 0, 8]
    assert FaceImage.objects.get(source_row=8).ferplus_votes == VOTES


def test_second_ferplus_import_changes_nothing(tmp_path, fer_imported):
    path = write_ferplus(tmp_path / "fer2013new.csv", [("Training", VOTES)] * 8 + [("PublicTest", VOTES)])
    run(path)
    out, _ = run(path)
    assert "images updated:     0" in out and "unchanged:          9" in out


def test_bad_ferplus_rows_are_reported(tmp_path, fer_imported):
    rows = [("Training", VOTES), ("Training", ["x", *VOTES[1:]]), ("PublicTest", VOTES), ("Training", VOTES[:9])]
    out, err = run(write_ferplus(tmp_path / "fer2013new.csv", rows))
    assert "line 3: neutral vote 'x' is not a non-negative integer" in err
    assert "line 4: Usage 'PublicTest' but image row 2 is 'Training'" in err
    assert "line 5: expected 12 columns, found 11" in err
    assert "bad rows skipped:   3" in out
    assert FaceImage.objects.get(source_row=0).ferplus_votes == VOTES
    assert FaceImage.objects.get(source_row=1).ferplus_votes is None


def test_strict_ferplus_writes_nothing_on_a_bad_row(tmp_path, fer_imported):
    rows = [("Training", VOTES)] * 7 + [("Training", ["-1", *VOTES[1:]])]
    with pytest.raises(CommandError, match="line 9"):
        run(write_ferplus(tmp_path / "fer2013new.csv", rows), "--strict")
    assert not FaceImage.objects.filter(ferplus_votes__isnull=False).exists()
