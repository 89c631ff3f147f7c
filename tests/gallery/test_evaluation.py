"""The evaluation page: figures from stored predictions, confusion-matrix cell links, published figures, PNGs."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest
from sklearn.metrics import f1_score

from apps.faces.labels import FERPLUS_COLUMNS
from apps.faces.models import FaceImage, Split
from apps.inference.models import Prediction

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


def _public(data) -> tuple[np.ndarray, np.ndarray]:
    faces = [f for f in data.faces if f.split == Split.PUBLIC_TEST]
    return (np.array([f.current_label for f in faces]),
            np.array([data.predictions[f.pk].predicted_label for f in faces]))


def test_accuracy_and_macro_f1_from_stored_predictions(researcher_client, gallery_data):
    y, pred = _public(gallery_data)
    body = researcher_client.get(f"/api/gallery/models/{gallery_data.version.pk}/evaluation").json()
    [public] = body["evaluations"]
    assert public["split"] == "PublicTest" and public["faces"] == 10 and public["predicted"] == 10
    assert public["metrics"]["accuracy"] == pytest.approx((y == pred).mean())
    assert public["metrics"]["accuracy"] == pytest.approx(0.5)  # the fixture labels half of them right
    assert public["metrics"]["macro_f1"] == pytest.approx(f1_score(y, pred, labels=range(7), average="macro",
                                                                   zero_division=0))
    assert [p["measured_here"] for p in body["published"]] == [False, False]
    assert {p["accuracy"] for p in body["published"]} == {0.7013, 0.5911}

    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert "0.5000" in html and "published, not measured here" in html
    assert "10 of 10 labelled faces have a prediction" in html


def test_confusion_cells_link_to_the_gallery_of_that_pair(researcher_client, gallery_data):
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    table = html[html.index('id="confusion-PublicTest"'):]
    links = re.findall(r'<a href="([^"]+)" data-true="(\d)" data-predicted="(\d)"', table)
    assert len(links) == 49
    y, pred = _public(gallery_data)
    for href, true, predicted in links:
        href = unescape(href)
        assert f"version={gallery_data.version.pk}" in href and "split=PublicTest" in href
        page = researcher_client.get(href).content.decode()
        shown = {int(pk) for pk in re.findall(r'class="tile[^"]*" data-face-id="(\d+)"', page)}
        expected = gallery_data.ids(lambda f, p, t=int(true), q=int(predicted): f.split == Split.PUBLIC_TEST
                                    and f.current_label == t and p.predicted_label == q)
        assert shown == expected, href
    nonempty = {(t, p) for t, p in zip(y.tolist(), pred.tolist(), strict=True)}
    assert nonempty, "some cells hold faces"


def test_no_predictions_is_said_plainly(researcher_client, gallery_data, second_version):
    html = researcher_client.get(f"/gallery/models/{second_version.pk}/").content.decode()
    assert "No PublicTest face has a stored prediction of this version" in html
    assert "manage.py predict_split --dataset fer2013 --split PublicTest" in html
    assert 'id="confusion-PublicTest"' not in html
    body = researcher_client.get(f"/api/gallery/models/{second_version.pk}/evaluation").json()
    assert body["evaluations"][0]["metrics"] is None and body["evaluations"][0]["predicted"] == 0


def test_partial_predictions_are_flagged(researcher_client, gallery_data):
    Prediction.objects.filter(face=gallery_data.faces[0]).delete()
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert "Only 9 of 10 faces are predicted" in html


def test_private_test_only_for_admins_when_enabled(client, researcher, admin_user, gallery_data, settings):
    url = f"/api/gallery/models/{gallery_data.version.pk}/evaluation"
    client.force_login(admin_user)
    assert [e["split"] for e in client.get(url).json()["evaluations"]] == ["PublicTest"]
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    assert [e["split"] for e in client.get(url).json()["evaluations"]] == ["PublicTest", "PrivateTest"]
    assert 'id="evaluation-PrivateTest"' in client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    client.force_login(researcher)
    assert [e["split"] for e in client.get(url).json()["evaluations"]] == ["PublicTest"]


def test_class_distribution_with_balanced_weights(researcher_client, gallery_data):
    body = researcher_client.get(f"/api/gallery/models/{gallery_data.version.pk}/evaluation").json()
    dist = body["class_distribution"]
    counts = np.bincount([f.current_label for f in FaceImage.objects.filter(split=Split.TRAINING)], minlength=7)
    assert [r["count"] for r in dist["rows"]] == counts.tolist() and dist["total"] == 4
    present = (counts > 0).sum()
    for row, n in zip(dist["rows"], counts, strict=True):
        assert row["weight"] == pytest.approx(4 / (present * n) if n else 0.0)


def _forget_history(version) -> None:
    version.metrics = {k: v for k, v in version.metrics.items() if k != "history"}
    version.save(update_fields=["metrics"])


def test_training_curves_when_recorded(researcher_client, gallery_data):
    version = gallery_data.version
    _forget_history(version)
    assert researcher_client.get(f"/gallery/models/{version.pk}/curves.png").status_code == 404
    version.metrics = {**version.metrics, "history": [
        {"epoch": 1, "train_loss": 1.9, "train_accuracy": 0.2, "val_accuracy": 0.25, "val_macro_f1": 0.1},
        {"epoch": 2, "train_loss": 1.7, "train_accuracy": 0.3, "val_accuracy": 0.31}]}
    version.save(update_fields=["metrics"])
    response = researcher_client.get(f"/gallery/models/{version.pk}/curves.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert 'id="curves"' in researcher_client.get(f"/gallery/models/{version.pk}/").content.decode()


def test_epochs_without_validation_say_so(researcher_client, gallery_data):
    """Recipes may validate only every few epochs (``eval_every``): the table says which were not validated."""
    version = gallery_data.version
    version.metrics = {**version.metrics, "history": [
        {"epoch": 1, "train_loss": 1.9, "train_accuracy": 0.2, "size": 32},
        {"epoch": 2, "train_loss": 1.7, "train_accuracy": 0.3, "val_accuracy": 0.31, "val_macro_f1": 0.2}]}
    version.save(update_fields=["metrics"])
    html = researcher_client.get(f"/gallery/models/{version.pk}/").content.decode()
    assert html.count("not validated") == 1 and "0.3100" in html
    assert researcher_client.get(f"/gallery/models/{version.pk}/curves.png").content.startswith(b"\x89PNG")


def test_confusion_png(researcher_client, gallery_data, second_version):
    response = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/confusion.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert researcher_client.get(f"/gallery/models/{second_version.pk}/confusion.png").status_code == 404
    assert researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/confusion.png",
                                 {"split": "PrivateTest"}).status_code == 400  # hidden split, as the API says


def test_training_curves_from_the_training_run(researcher_client, gallery_data):
    """apps.training keeps per-epoch figures on the run that produced the version; the page draws them."""
    from django.apps import apps

    run_model = apps.get_model("training", "TrainingRun")
    run_model.objects.create(trigger="admin", recipe_name="tiny", arch="fer_vgg", epochs=2,
                             model_version=gallery_data.version, progress=[
                                 {"epoch": 1, "train_loss": 1.8, "train_accuracy": 0.2, "val_accuracy": 0.3,
                                  "val_macro_f1": 0.1, "val_loss": 1.9},
                                 {"epoch": 2, "train_loss": 1.6, "train_accuracy": 0.3, "val_accuracy": 0.35,
                                  "val_macro_f1": 0.2, "val_loss": 1.7}])
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert 'id="curves"' in html and 'id="history-table"' in html and "0.3500" in html
    response = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/curves.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    body = researcher_client.get(f"/api/gallery/models/{gallery_data.version.pk}/evaluation").json()
    assert [h["epoch"] for h in body["history"]] == [1, 2]


def test_registered_checkpoint_history_draws_curves(researcher_client, gallery_data):
    response = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/curves.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_without_history_the_final_figures_are_shown(researcher_client, gallery_data):
    _forget_history(gallery_data.version)
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert 'id="no-history"' in html and "val_accuracy 0.2600" in html  # the tiny checkpoint's recorded figure


# --- against the FER+ majority --------------------------------------------------------------------------------------

FERPLUS_NAME = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}


def _ferplus(**counts: int) -> list[int]:
    return [counts.get(name, 0) for name in FERPLUS_COLUMNS]


def test_accuracy_against_the_ferplus_majority(researcher_client, gallery_data, second_version):
    public = [f for f in gallery_data.faces if f.split == Split.PUBLIC_TEST]
    predicted = {f.pk: gallery_data.predictions[f.pk].predicted_label for f in public}
    rows = {}
    for face in public[:4]:  # the crowd's majority is the prediction: right
        rows[face.pk] = _ferplus(**{FERPLUS_NAME[predicted[face.pk]]: 7, "contempt": 3})
    for face in public[4:6]:  # another emotion: wrong
        rows[face.pk] = _ferplus(**{FERPLUS_NAME[(predicted[face.pk] + 1) % 7]: 8, "NF": 2})
    rows[public[6].pk] = _ferplus(neutral=4, happiness=4, fear=2)  # tied
    rows[public[7].pk] = _ferplus(contempt=6, neutral=4)  # no FER-2013 class on top
    rows[public[8].pk] = _ferplus(NF=9, neutral=1)  # not a face on top; public[9] has no votes
    training = next(f for f in gallery_data.faces if f.split == Split.TRAINING)
    rows[training.pk] = _ferplus(**{FERPLUS_NAME[(gallery_data.predictions[training.pk].predicted_label + 1) % 7]: 9})
    for pk, votes in rows.items():
        FaceImage.objects.filter(pk=pk).update(ferplus_votes=votes)

    body = researcher_client.get(f"/api/gallery/models/{gallery_data.version.pk}/evaluation").json()
    assert body["ferplus"] == {"split": "PublicTest", "accuracy": pytest.approx(4 / 6), "n": 6, "left_out": 3,
                               "faces": 9}
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert ("accuracy against the FER+ majority: <strong>0.6667</strong> on 6 PublicTest faces "
            "(3 left out: no majority emotion)") in html
    assert 'id="no-ferplus"' not in html

    # A version with no stored predictions: votes exist, nothing is measured.
    html = researcher_client.get(f"/gallery/models/{second_version.pk}/").content.decode()
    assert 'id="ferplus-unmeasured"' in html and "9 PublicTest faces have FER+ votes" in html
    body = researcher_client.get(f"/api/gallery/models/{second_version.pk}/evaluation").json()
    assert body["ferplus"]["n"] == 0 and body["ferplus"]["accuracy"] is None


def test_without_ferplus_votes_the_page_says_how_to_import_them(researcher_client, gallery_data):
    html = researcher_client.get(f"/gallery/models/{gallery_data.version.pk}/").content.decode()
    assert 'id="no-ferplus"' in html and "No FER+ votes are imported" in html
    assert "manage.py import_ferplus" in html and "accuracy against the FER+ majority" not in html
    body = researcher_client.get(f"/api/gallery/models/{gallery_data.version.pk}/evaluation").json()
    assert "ferplus" in body and body["ferplus"] is None
