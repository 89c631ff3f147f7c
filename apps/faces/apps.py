from __future__ import annotations

from django.apps import AppConfig


class FacesConfig(AppConfig):
    name = "apps.faces"
    label = "faces"
    verbose_name = "Faces and datasets"
