"""Heatmaps per CAM layer: both layers' maps of one face coexist, the fine layer is refused (400) for methods it does
not suit, and an on-demand request for the fine layer reaches the worker with its layer."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from apps.inference.models import Explanation
from apps.inference.services.explanations import explanation_request
from apps.inference.services.predictions import CamLayerInvalid, explanations_compute
from apps.inference.tasks import explain_on_demand_task
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_maps_of_both_layers_coexist_per_face_method_and_target(active_version):
    face = FaceImageFactory()
    assert explanations_compute(version=active_version, method="layercam", pairs=[(face.pk, 2)]) == 1
    assert explanations_compute(version=active_version, method="layercam", pairs=[(face.pk, 2)], layer="fine") == 1
    assert explanations_compute(version=active_version, method="layercam", pairs=[(face.pk, 2)], layer="fine") == 0
    rows = {e.layer: e for e in Explanation.objects.filter(face=face, method="layercam", target_label=2)}
    assert set(rows) == {"last", "fine"}
    assert rows["last"].overlay.name != rows["fine"].overlay.name
    last, fine = (np.frombuffer(bytes(rows[k].raw_map), dtype=np.uint8) for k in ("last", "fine"))
    assert last.size == fine.size == 48 * 48 and np.abs(last.astype(int) - fine.astype(int)).max() > 10
    with pytest.raises(CamLayerInvalid, match="does not suit the 'fine' layer"):
        explanations_compute(version=active_version, method="gradcam", pairs=[(face.pk, 2)], layer="fine")


def test_api_refuses_unsuited_or_unknown_layers_with_a_400(client, researcher, active_version):
    face = FaceImageFactory()
    client.force_login(researcher)
    url = reverse("api-face-explanations", args=[face.pk])
    response = client.post(url, {"method": "gradcam", "layer": "fine"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "bad_layer"
    assert "hirescam, layercam" in response.json()["detail"]
    response = client.post(url, {"method": "layercam", "layer": "middle"}, content_type="application/json")
    assert response.status_code == 400 and "unknown CAM layer" in str(response.json())
    assert not Explanation.objects.exists()


def test_on_demand_fine_layer_goes_to_the_worker_with_its_layer(client, researcher, active_version, monkeypatch):
    sent: list[tuple] = []
    monkeypatch.setattr(explain_on_demand_task, "apply_async", lambda args, **options: sent.append(tuple(args)))
    face = FaceImageFactory()
    client.force_login(researcher)
    url = reverse("api-face-explanations", args=[face.pk])
    response = client.post(url, {"method": "hirescam", "target": 1, "layer": "fine"}, content_type="application/json")
    assert response.status_code == 202 and response.json()["layer"] == "fine"
    assert client.post(url, {"method": "hirescam", "target": 1}, content_type="application/json").status_code == 202
    assert sent == [(face.pk, active_version.pk, "hirescam", 1, "fine"), (face.pk, active_version.pk, "hirescam", 1)]
    explain_on_demand_task.run(*sent[0])  # play the worker
    response = client.post(url, {"method": "hirescam", "target": 1, "layer": "fine"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["layer"] == "fine"
    assert explanation_request(face=face, version=None, method="hirescam", target_label=1).pending  # last: not yet
