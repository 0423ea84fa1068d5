"""Serializers for the organization's own configuration: its details, members and agent tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.roles import Role
from apps.core.scopes import SCOPE_NAMES, normalize_scope
from apps.organizations.models import AgentToken, Membership, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "plan", "auto_register_hosts", "retention_raw_days", "retention_1m_days",
                  "retention_5m_days", "retention_1h_days", "retention_1d_days", "created_at"]
        read_only_fields = ["slug", "plan", "created_at"]


class MembershipSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "role", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"role": {"required": True}}


class NewMembershipSerializer(serializers.Serializer):
    """Adding a member: an existing, active user by username. Accounts are platform-level: an
    organization admin who could create one (and hold its set-password link) could sign in as it, so
    platform admins create them (`manage.py add_member`, the Django admin)."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)

    def validate_username(self, value: str) -> Any:
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: value}, is_active=True).first()
        if user is None:
            raise serializers.ValidationError("No active user with this username; a platform admin creates "
                                              "accounts (manage.py add_member).")
        return user


class AgentTokenSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    # `write` (the ingest scope's former name) is still accepted from clients; the reply names the scope.
    scope = serializers.ChoiceField(choices=SCOPE_NAMES, default=AgentToken.Scope.INGEST)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = AgentToken
        fields = ["id", "name", "prefix", "scope", "expires_at", "last_used_at", "revoked_at", "created_by",
                  "created_at"]
        read_only_fields = ["prefix", "last_used_at", "revoked_at", "created_at"]

    def validate_scope(self, value: str) -> str:
        return normalize_scope(value)


class NewAgentTokenSerializer(AgentTokenSerializer):
    """The reply to token creation: the only time the plaintext token appears."""

    token = serializers.SerializerMethodField()

    class Meta(AgentTokenSerializer.Meta):
        fields = [*AgentTokenSerializer.Meta.fields, "token"]

    def get_token(self, obj: Any) -> str:
        return self.context["plaintext"]
