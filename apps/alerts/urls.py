"""Alerting pages under /<org_slug>/: alerts/, rules/, channels/, silences/ (maintenance windows with them)."""

from __future__ import annotations

from django.urls import path

from apps.alerts.views import alerts, channels, rules, silences

app_name = "alerts"

urlpatterns = [
    path("alerts/", alerts.alert_list, name="list"),
    path("alerts/<uuid:public_id>/", alerts.alert_detail, name="detail"),
    path("alerts/<uuid:public_id>/acknowledge", alerts.alert_acknowledge, name="acknowledge"),
    path("alerts/<uuid:public_id>/resolve", alerts.alert_resolve, name="resolve"),
    path("alerts/<uuid:public_id>/silence", alerts.alert_silence, name="silence"),
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new", rules.rule_create, name="rule-create"),
    path("rules/<uuid:public_id>/", rules.rule_detail, name="rule-detail"),
    path("rules/<uuid:public_id>/edit", rules.rule_edit, name="rule-edit"),
    path("rules/<uuid:public_id>/delete", rules.rule_delete, name="rule-delete"),
    path("channels/", channels.channel_list, name="channels"),
    path("channels/new", channels.channel_create, name="channel-create"),
    path("channels/<uuid:public_id>/", channels.channel_detail, name="channel-detail"),
    path("channels/<uuid:public_id>/edit", channels.channel_edit, name="channel-edit"),
    path("channels/<uuid:public_id>/rotate-secret", channels.channel_rotate_secret, name="channel-rotate-secret"),
    path("channels/<uuid:public_id>/delete", channels.channel_delete, name="channel-delete"),
    path("silences/", silences.silence_list, name="silences"),
    path("silences/new", silences.silence_create, name="silence-create"),
    path("silences/<uuid:public_id>/expire", silences.silence_expire, name="silence-expire"),
    path("silences/maintenance/new", silences.window_create, name="window-create"),
    path("silences/maintenance/<uuid:public_id>/edit", silences.window_edit, name="window-edit"),
    path("silences/maintenance/<uuid:public_id>/delete", silences.window_delete, name="window-delete"),
]
