from __future__ import annotations

from django.urls import path

from .api import (
    ApiTokenListApi,
    ApiTokenObtainApi,
    ApiTokenRevokeApi,
    ApiTokensRevokeAllApi,
    MeApi,
    UserListApi,
    UserTokenListApi,
    UserTokensRevokeAllApi,
)

urlpatterns = [
    path("auth/token/", ApiTokenObtainApi.as_view(), name="api-token"),
    path("auth/tokens/", ApiTokenListApi.as_view(), name="api-tokens"),
    path("auth/tokens/revoke", ApiTokensRevokeAllApi.as_view(), name="api-tokens-revoke"),
    path("auth/tokens/<str:key>/revoke", ApiTokenRevokeApi.as_view(), name="api-token-revoke"),
    path("me/", MeApi.as_view(), name="api-me"),
    path("users/", UserListApi.as_view(), name="api-users"),
    path("users/<int:user_id>/tokens/", UserTokenListApi.as_view(), name="api-user-tokens"),
    path("users/<int:user_id>/tokens/revoke", UserTokensRevokeAllApi.as_view(), name="api-user-tokens-revoke"),
]
