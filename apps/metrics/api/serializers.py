"""Read-side serializers: the series catalogue as the API shows it (public_id, never the int id)."""

from __future__ import annotations

from rest_framework import serializers

from apps.metrics.models import Series


class SeriesSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    host = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)  # series without a host

    class Meta:
        model = Series
        fields = ["id", "name", "labels", "host", "type", "help", "unit", "created_at"]
        read_only_fields = fields
