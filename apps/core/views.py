from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings

from apps.accounts.roles import Role, RoleRequiredMixin, user_has_role, user_roles
from apps.accounts.selectors import users_per_role
from apps.faces.selectors import face_counts_by_split_and_label, faces_visible_to

from .errors import error_body
from .media import MEDIA_CONTENT_TYPE, media_file_for
from .status import platform_status


class HomeView(LoginRequiredMixin, TemplateView):
    """What the platform holds: images per split and label (of the faces this user may see, ``faces_visible_to``),
    users per role (admins only), links to the parts that exist."""

    template_name = "core/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["faces"] = face_counts_by_split_and_label(faces=faces_visible_to(user))
        context["is_admin"] = user_has_role(user, Role.ADMIN)
        context["is_researcher"] = user_has_role(user, Role.RESEARCHER)
        context["has_role"] = bool(user_roles(user))
        context["users"] = users_per_role() if context["is_admin"] else None
        return context


class StatusView(RoleRequiredMixin, TemplateView):
    """Admins: queues and jobs by kind (what is stuck, what the sweeper will do, what waits its turn), workers,
    services, the active model. The page carries the status as JSON and ``static/core/status.js`` draws it, then
    polls the API."""

    required_roles = (Role.ADMIN,)
    template_name = "core/status.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["status"] = platform_status()
        return context


def _media_user(request: HttpRequest):
    """The session's user, or the API client's (the same authentication classes as the API, so an API client can
    fetch its own heatmaps with its token); anonymous when neither holds."""
    if request.user.is_authenticated:
        return request.user
    api_request = Request(request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
    try:
        return api_request.user
    except APIException:  # a bad or expired token: no one
        return None


def media_serve(request: HttpRequest, path: str) -> HttpResponse:
    """Every ``/media/`` file, after the access check of ``apps.core.media.media_file_for``: a 404 for anyone who
    may not see it (its existence is not revealed), and checkpoints never. Streamed by Django, or, behind nginx
    (``MEDIA_X_ACCEL_PREFIX``), handed to nginx's ``internal`` location with ``X-Accel-Redirect``."""
    name = media_file_for(user=_media_user(request), path=path)
    if name is None:
        raise Http404("no such file")
    if settings.MEDIA_X_ACCEL_PREFIX:
        response = HttpResponse(content_type=MEDIA_CONTENT_TYPE)
        response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_PREFIX.rstrip("/") + "/" + quote(name)
    else:
        try:
            response = FileResponse(default_storage.open(name, "rb"), content_type=MEDIA_CONTENT_TYPE)
        except FileNotFoundError:
            raise Http404("no such file") from None
    response["Cache-Control"] = "private, max-age=300"  # personal: never in a shared cache
    response["X-Content-Type-Options"] = "nosniff"
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: under ``/api/`` a URL that matches no route (``/api/review/items/abc``) answers in the API's
    one error shape, like every other API 404; elsewhere Django's plain page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code="not_found", detail="no such API endpoint or object"), status=404)
    return page_not_found(request, exception)
