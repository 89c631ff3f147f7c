from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from .api import MeApi, UserListApi

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("me/", MeApi.as_view(), name="api-me"),
    path("users/", UserListApi.as_view(), name="api-users"),
]
