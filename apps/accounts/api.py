"""Account endpoints: who am I, the user list (admins), and API tokens: obtain, list, revoke."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ERROR

from .roles import IsAdminRole
from .selectors import api_tokens_of, user_get, user_list_with_roles
from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenObtainSerializer,
    ApiTokenSerializer,
    TokensRevokedSerializer,
    UserSerializer,
)
from .services import api_token_obtain, api_token_revoke, api_tokens_revoke_all


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class UserListApi(ListAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = UserSerializer

    def get_queryset(self):
        return user_list_with_roles()


class ApiTokenObtainApi(APIView):
    # No authentication: a stale token in the header must not stop a client from getting a new one.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="auth_token_obtain", request=ApiTokenObtainSerializer,
                   responses={200: ApiTokenCreatedSerializer, 400: ERROR, 429: ERROR},
                   description="A new API token for a username and password, expiring after API_TOKEN_TTL_HOURS. "
                               "Failed attempts count towards the login lockout (429 `login_locked`), as on the login "
                               "form and the admin login.")
    def post(self, request: Request) -> Response:
        body = ApiTokenObtainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, secret = api_token_obtain(request=request, **body.validated_data)
        created = {"token": secret, "id": token.token_key, "expiry": token.expiry}
        return Response(ApiTokenCreatedSerializer(created).data)


class ApiTokenListApi(ListAPIView):
    """Your live API tokens, newest first."""

    permission_classes = [IsAuthenticated]
    serializer_class = ApiTokenSerializer
    queryset = AuthToken.objects.none()  # the model, for the schema; get_queryset gives the rows

    def get_queryset(self):
        return api_tokens_of(self.request.user)


class ApiTokenRevokeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_token_revoke", request=None, responses={200: TokensRevokedSerializer},
                   description="Revoke one token by its id: your own, or anyone's for an admin (404 otherwise).")
    def post(self, request: Request, key: str) -> Response:
        return Response({"revoked": api_token_revoke(by=request.user, key=key)})


class ApiTokensRevokeAllApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_tokens_revoke_all", request=None, responses={200: TokensRevokedSerializer},
                   description="Revoke all your tokens, the one this request uses included.")
    def post(self, request: Request) -> Response:
        return Response({"revoked": api_tokens_revoke_all(user=request.user)})


class UserTokenListApi(ListAPIView):
    """A user's live API tokens (admins)."""

    permission_classes = [IsAdminRole]
    serializer_class = ApiTokenSerializer
    queryset = AuthToken.objects.none()  # the model, for the schema; get_queryset gives the rows

    def get_queryset(self):
        return api_tokens_of(user_get(pk=self.kwargs["user_id"]))


class UserTokensRevokeAllApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="user_tokens_revoke_all", request=None, responses={200: TokensRevokedSerializer},
                   description="Revoke all of a user's tokens (admins).")
    def post(self, request: Request, user_id: int) -> Response:
        return Response({"revoked": api_tokens_revoke_all(user=user_get(pk=user_id))})
