from __future__ import annotations

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from apps.core.errors import ApplicationError
from apps.inference import runtime
from apps.inference.models import Explanation, Prediction, PredictionChunk
from apps.inference.selectors import explanations_for, prediction_for
from apps.inference.services import predictions as inference_services
from apps.inference.services.chunks import prediction_chunks_create
from apps.inference.services.predictions import (
    CAM_METHODS,
    NoActiveModelVersion,
    TargetInvalid,
    UnknownCamMethod,
    cam_methods_validate,
    explanations_compute,
    predict_and_explain,
)
from apps.inference.services.registry import model_version_activate, model_version_register
from apps.inference.tasks import predict_chunk_task
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spy(monkeypatch):
    """Counts model forward passes for predictions and CAM calls (with how many maps each)."""
    calls = {"predict": 0, "explain": []}
    real_predict, real_explain = inference_services.predict_proba, inference_services.ml_explain.explain

    def predict(model, images, **kwargs):
        calls["predict"] += 1
        return real_predict(model, images, **kwargs)

    def explain(model, faces, **kwargs):
        calls["explain"].append((kwargs["method"], len(faces)))
        return real_explain(model, faces, **kwargs)

    monkeypatch.setattr(inference_services, "predict_proba", predict)
    monkeypatch.setattr(inference_services.ml_explain, "explain", explain)
    return calls


def test_predict_and_explain_stores_probabilities_label_and_heatmaps(active_version, spy):
    faces = FaceImageFactory.create_batch(4, current_label=2)
    predict_and_explain(face_ids=[f.pk for f in faces], methods=["gradcam", "gradcam++"])

    assert spy["predict"] == 1  # one forward pass for the whole batch
    for face in faces:
        prediction = prediction_for(face=face)
        assert prediction.model_version == active_version
        assert len(prediction.probabilities) == 7 and sum(prediction.probabilities) == pytest.approx(1, abs=1e-4)
        assert prediction.predicted_label == int(np.argmax(prediction.probabilities))
        assert prediction.confidence == pytest.approx(max(prediction.probabilities), abs=1e-5)
        keys = {(e.method, e.target_label) for e in explanations_for(face=face)}
        targets = {prediction.predicted_label, 2}
        assert keys == {(m, t) for m in ("gradcam", "gradcam++") for t in targets}
    explanation = Explanation.objects.first()
    assert len(bytes(explanation.raw_map)) == 48 * 48
    with default_storage.open(explanation.overlay.name) as fh, Image.open(fh) as image:
        assert image.format == "PNG" and image.size == (192, 192) and image.mode == "RGB"


def test_unlabelled_faces_get_the_predicted_class_only(active_version):
    face = FaceImageFactory(original_label=None, current_label=None)
    predict_and_explain(face_ids=[face.pk], methods=["gradcam"])
    assert [e.target_label for e in explanations_for(face=face)] == [prediction_for(face=face).predicted_label]


def test_nothing_is_computed_twice(active_version, spy):
    faces = FaceImageFactory.create_batch(3, current_label=0)
    ids = [f.pk for f in faces]
    predict_and_explain(face_ids=ids, methods=["gradcam"])
    first = {e.pk: (e.created_at, e.overlay.name) for e in Explanation.objects.all()}
    calls_after_first = (spy["predict"], list(spy["explain"]))

    predict_and_explain(face_ids=ids, methods=["gradcam"])
    face = faces[0]
    target = Explanation.objects.filter(face=face).first().target_label
    assert explanations_compute(version=active_version, method="gradcam", pairs=[(face.pk, target)]) == 0

    assert (spy["predict"], spy["explain"]) == calls_after_first  # the model was not called again
    assert {e.pk: (e.created_at, e.overlay.name) for e in Explanation.objects.all()} == first
    assert Prediction.objects.count() == 3
    assert len(default_storage.listdir(f"explanations/v{active_version.pk}")[1]) == len(first)


def test_only_the_missing_parts_are_computed(active_version, spy):
    face = FaceImageFactory(current_label=5)
    predict_and_explain(face_ids=[face.pk], methods=["gradcam"])
    predict_and_explain(face_ids=[face.pk], methods=["gradcam", "layercam"])
    assert spy["predict"] == 1
    assert [m for m, _ in spy["explain"]] == ["gradcam", "layercam"]


# One heatmap on demand (any class and method, each required method): tests/inference/test_explanations.py.


def test_unknown_method_and_target_say_what_is_allowed(active_version):
    face = FaceImageFactory()
    with pytest.raises(UnknownCamMethod, match="choose one of: gradcam, gradcam\\+\\+, hirescam") as info:
        explanations_compute(version=active_version, method="magiccam", pairs=[(face.pk, 0)])
    assert isinstance(info.value, ApplicationError) and info.value.status == 400  # a client error, said as such
    with pytest.raises(TargetInvalid, match="expected 0-6 or one of angry"):
        explanations_compute(version=active_version, method="gradcam", pairs=[(face.pk, 9)])
    with pytest.raises(UnknownCamMethod):
        prediction_chunks_create(face_ids=[face.pk], methods=["nope"])
    assert Explanation.objects.count() == 0 and not PredictionChunk.objects.exists()
    assert cam_methods_validate(None) == ["gradcam"] and cam_methods_validate(["GradCAM", "gradcam"]) == ["gradcam"]
    assert set(CAM_METHODS) >= {"gradcam", "gradcam++", "hirescam", "scorecam", "eigencam", "layercam"}


def test_without_an_active_version_prediction_says_so(db):
    face = FaceImageFactory()
    with pytest.raises(NoActiveModelVersion):
        predict_and_explain(face_ids=[face.pk], methods=["gradcam"])


def test_the_model_stays_loaded_and_reloads_when_the_active_version_changes(active_version, tiny_checkpoint_v2):
    faces = FaceImageFactory.create_batch(2)
    before = runtime.load_count
    predict_and_explain(face_ids=[faces[0].pk], methods=["gradcam"])
    predict_and_explain(face_ids=[faces[1].pk], methods=["gradcam"])
    assert runtime.load_count == before + 1
    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="v2")
    model_version_activate(version=v2)
    predict_and_explain(face_ids=[faces[0].pk], methods=["gradcam"])
    assert runtime.load_count == before + 2
    assert prediction_for(face=faces[0]).model_version == v2
    assert prediction_for(face=faces[0], version=active_version) is not None  # older results stay


def test_chunks_are_rows_sent_after_the_commit_to_the_interactive_queue(active_version, monkeypatch, settings,
                                                                       django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(predict_chunk_task, "apply_async",
                        lambda args, **options: sent.append((tuple(args), options["queue"])))
    settings.INFERENCE_BATCH_SIZE = 2
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        chunks = prediction_chunks_create(face_ids=[1, 2, 3], methods=None)
        assert sent == []  # nothing leaves before the rows are committed
    assert [c.face_ids for c in chunks] == [[1, 2], [3]] and all(c.methods == ["gradcam"] for c in chunks)
    assert len(callbacks) == 2 and sent == [((chunks[0].pk,), "interactive"), ((chunks[1].pk,), "interactive")]
    assert all(c.last_sent_at for c in PredictionChunk.objects.all())


def test_a_chunk_that_fails_records_its_error_on_the_row_and_on_its_faces(active_version, monkeypatch):
    face = FaceImageFactory()
    (chunk,) = prediction_chunks_create(face_ids=[face.pk], methods=["gradcam"])

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("apps.inference.services.chunks.predict_and_explain", broken)
    # The runner records the failure on the row (the truth) and the task ends without raising.
    assert predict_chunk_task.apply(args=(chunk.pk,), throw=True).get() == {"prediction_chunk": chunk.pk,
                                                                            "status": "failed"}
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error, chunk.attempts) == ("failed", "RuntimeError: disk on fire", 1)
    assert face.prediction_failures.get().error == "RuntimeError: disk on fire"


def test_the_task_called_directly_predicts_once_and_a_second_delivery_does_nothing(active_version):
    face = FaceImageFactory()
    (chunk,) = prediction_chunks_create(face_ids=[face.pk], methods=["gradcam"])
    assert predict_chunk_task(chunk.pk) == {"prediction_chunk": chunk.pk, "status": "succeeded"}
    assert predict_chunk_task(chunk.pk) == {"prediction_chunk": chunk.pk, "status": "not claimed"}
    chunk.refresh_from_db()
    assert chunk.attempts == 1 and chunk.finished_at
    assert prediction_for(face=face) is not None and Prediction.objects.filter(face=face).count() == 1

