from __future__ import annotations

from rest_framework import serializers

from .roles import user_roles


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)
    roles = serializers.SerializerMethodField()

    def get_roles(self, user) -> list[str]:
        return sorted(role.value for role in user_roles(user))
