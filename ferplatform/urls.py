from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.views import media_serve

urlpatterns = [
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("apps.core.api_urls")),
    path("api/", include("apps.accounts.api_urls")),
    path("api/", include("apps.inference.api_urls")),
    path("uploads/", include("apps.uploads.urls")),
    path("api/", include("apps.uploads.api_urls")),
    path("review/", include("apps.review.urls")),
    path("api/review/", include("apps.review.api_urls")),
    path("training/", include("apps.training.urls")),
    path("api/", include("apps.training.api_urls")),
    path("gallery/", include("apps.gallery.urls")),
    path("api/gallery/", include("apps.gallery.api_urls")),
    path("datamap/", include("apps.datamap.urls")),
    path("api/datamap/", include("apps.datamap.api_urls")),
    path("faces/", include("apps.faces.urls")),
    path("api/faces/", include("apps.faces.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's setup script from a URL: no inline script (CONTENT_SECURITY_POLICY).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# Media only through the access check (streamed here, or handed to nginx's internal location in production).
urlpatterns.append(re_path(rf"^{settings.MEDIA_URL.lstrip('/')}(?P<path>.*)$", media_serve, name="media"))

handler404 = "apps.core.views.not_found"
