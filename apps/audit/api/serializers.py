"""Audit events as the API shows them: public ids only, the actor and object as recorded."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    actor = serializers.CharField(source="actor_repr", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor_type", "actor", "action", "object_type", "object_id", "object_repr",
                  "changes", "request_id", "ip", "user_agent"]
        read_only_fields = fields
