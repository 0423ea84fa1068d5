"""Serializers for escalation policies (steps inline), rule routing and contact methods. Every reference
(schedule, channel, rule, policy, user) is resolved inside the caller's organization: another
organization's id is "not found", a 400 naming the field."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerts.models import AlertRule, NotificationChannel
from apps.core.api.fields import CurrentOrganizationDefault
from apps.escalation.api.serializers import MemberField, MembersField
from apps.escalation.choices import ContactKind, StepAction
from apps.escalation.models import ContactMethod, EscalationPolicy, OnCallSchedule, RulePolicy
from apps.escalation.policy_services import StepData, step_snapshot


def _organization(field: serializers.Field | serializers.Serializer) -> Any:
    return field.context.get("organization") or field.context["request"].organization


class OrgRefField(serializers.UUIDField):
    """The public id of an object of ``model`` in the caller's organization (the object internally)."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        self.model = model
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        public_id = super().to_internal_value(data)
        found = self.model.objects.for_org(_organization(self)).filter(public_id=public_id).first()
        if found is None:
            raise serializers.ValidationError(f"No such {self.model._meta.verbose_name}: {public_id}.")
        return found

    def to_representation(self, value: Any) -> str:
        return str(value.public_id)


class StepSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=StepAction.choices)
    wait_seconds = serializers.IntegerField(min_value=0, max_value=30 * 86400, default=0)
    schedule = OrgRefField(OnCallSchedule, required=False, allow_null=True)
    users = MembersField(required=False, default=list)
    channels = serializers.ListField(child=OrgRefField(NotificationChannel), required=False, default=list)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        action = attrs["action"]
        if action == StepAction.NOTIFY_SCHEDULE and not attrs.get("schedule"):
            raise serializers.ValidationError({"schedule": "notify_schedule needs a schedule."})
        if action == StepAction.NOTIFY_USER and not attrs.get("users"):
            raise serializers.ValidationError({"users": "notify_user needs at least one user."})
        if action == StepAction.NOTIFY_CHANNEL and not attrs.get("channels"):
            raise serializers.ValidationError({"channels": "notify_channel needs at least one channel."})
        return attrs


def step_data(steps: list[dict[str, Any]]) -> list[StepData]:
    return [StepData(action=s["action"], wait_seconds=s.get("wait_seconds", 0), schedule=s.get("schedule"),
                     users=s.get("users", []), channels=s.get("channels", [])) for s in steps]


class PolicySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    repeat_count = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    ack_timeout_seconds = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    steps = StepSerializer(many=True, required=False, write_only=True)  # read back by to_representation

    class Meta:
        model = EscalationPolicy
        fields = ["id", "organization", "name", "description", "repeat_count", "ack_timeout_seconds", "steps",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators: list = []  # the name is checked in validate_name, with a message naming the field

    def validate_name(self, value: str) -> str:
        value = value.strip()
        taken = EscalationPolicy.objects.for_org(_organization(self)).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This organization already has a policy with this name.")
        return value

    def to_representation(self, instance: EscalationPolicy) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["steps"] = [{k: v for k, v in step_snapshot(s).items() if k != "position"}
                         for s in instance.steps.all()]
        return data


class RoutingSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    rule = OrgRefField(AlertRule)
    policy = OrgRefField(EscalationPolicy)

    class Meta:
        model = RulePolicy
        fields = ["id", "rule", "policy", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


# Its own schema component, as apps.alerts.api.config does for its kinds (else drf-spectacular names
# colliding "kind" enums by a hash and warns).
@extend_schema_field({"type": "string", "enum": list(ContactKind.values)}, component_name="ContactKind")
class ContactKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ContactKind.choices, **kwargs)


class ContactMethodSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    user = MemberField(required=False)
    kind = ContactKindField()
    delay_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, default=0)

    class Meta:
        model = ContactMethod
        fields = ["id", "user", "kind", "address", "url", "delay_seconds", "enabled", "verified", "verified_at",
                  "verification_sent_at", "created_at", "updated_at"]
        read_only_fields = ["verified_at", "verification_sent_at", "created_at", "updated_at"]
