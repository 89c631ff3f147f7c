from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .roles import user_roles


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    # Django stores "no email" as ""; the schema's format is email, so the API says null rather than "".
    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_email(self, user) -> str | None:
        return user.email or None

    def get_roles(self, user) -> list[str]:
        return sorted(role.value for role in user_roles(user))


class ApiTokenObtainSerializer(serializers.Serializer):
    username = serializers.CharField(write_only=True)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})


class ApiTokenSerializer(serializers.Serializer):
    """An API token as its owner and admins see it: never the secret, which only exists when it is made."""

    id = serializers.CharField(source="token_key", read_only=True,
                               help_text="The token's first characters: tells tokens apart, never enough to use one.")
    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    created = serializers.DateTimeField(read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    current = serializers.SerializerMethodField(help_text="Whether this request authenticated with this token.")

    def get_current(self, token) -> bool:
        request = self.context.get("request")
        auth = getattr(request, "auth", None)
        return getattr(auth, "digest", None) == token.digest


class ApiTokenCreatedSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True,
                                  help_text="The secret, shown once: send it as Authorization: Token <token>.")
    id = serializers.CharField(read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)


class TokensRevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(read_only=True, help_text="How many tokens were revoked.")
