from __future__ import annotations

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

from apps.inference.services.predictions import CAM_METHODS, DEFAULT_METHODS


@method_decorator(ensure_csrf_cookie, name="dispatch")  # the page's fetch() calls read the token from the cookie
class UploadPageView(LoginRequiredMixin, TemplateView):
    """Drag and drop images, see crops, probabilities and heatmaps; everything else happens through the API."""

    template_name = "uploads/upload_page.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cam_methods"] = CAM_METHODS
        context["default_method"] = DEFAULT_METHODS[0] if DEFAULT_METHODS else "gradcam"
        context["max_faces"] = settings.UPLOADS_MAX_FACES
        return context
