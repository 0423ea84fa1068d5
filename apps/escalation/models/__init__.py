"""On-call and escalation models, one module per concern, re-exported here."""

from apps.escalation.models.contacts import ContactMethod
from apps.escalation.models.feeds import CalendarFeed
from apps.escalation.models.groups import GroupEscalationRun, GroupRoute
from apps.escalation.models.policies import EscalationPolicy, EscalationStep, RulePolicy
from apps.escalation.models.runs import EscalationRun, OnCallAssignment
from apps.escalation.models.schedules import OnCallSchedule, ScheduleLayer, ScheduleLayerMember, ScheduleOverride

__all__ = ["CalendarFeed", "ContactMethod", "EscalationPolicy", "EscalationRun", "EscalationStep",
           "GroupEscalationRun", "GroupRoute",
           "OnCallAssignment", "OnCallSchedule", "RulePolicy", "ScheduleLayer", "ScheduleLayerMember",
           "ScheduleOverride"]
