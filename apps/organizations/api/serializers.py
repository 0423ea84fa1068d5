"""Serializers for the organization's own configuration: its details, members and agent tokens."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

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


class AgentTokenSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = AgentToken
        fields = ["id", "name", "prefix", "scope", "expires_at", "last_used_at", "revoked_at", "created_by",
                  "created_at"]
        read_only_fields = ["prefix", "last_used_at", "revoked_at", "created_at"]


class NewAgentTokenSerializer(AgentTokenSerializer):
    """The reply to token creation: the only time the plaintext token appears."""

    token = serializers.SerializerMethodField()

    class Meta(AgentTokenSerializer.Meta):
        fields = [*AgentTokenSerializer.Meta.fields, "token"]

    def get_token(self, obj: Any) -> str:
        return self.context["plaintext"]
