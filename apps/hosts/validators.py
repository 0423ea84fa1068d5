"""Field validators for the inventory. They run in `full_clean()` (services, admin) and in the API
serializers, so a bad country code or tag is refused with the same message everywhere."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from apps.hosts.countries import ISO_3166_ALPHA2

MAX_TAGS = 64
MAX_TAG_KEY_LENGTH = 100
MAX_TAG_VALUE_LENGTH = 255
# No ":" in keys so that the `tag=key:value` filter is unambiguous; no whitespace so keys stay label-like.
TAG_KEY_RE = re.compile(rf"^[^\s:]{{1,{MAX_TAG_KEY_LENGTH}}}$")

HEALTH_CHECK_SCHEMES = ["http", "https", "tcp", "udp", "grpc", "redis", "postgres", "postgresql", "mysql",
                        "amqp", "amqps", "mongodb"]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def validate_country(value: str) -> None:
    """Empty, or an officially assigned ISO 3166-1 alpha-2 code in upper case ("DE", not "de" or "DEU")."""
    if value and value not in ISO_3166_ALPHA2:
        raise ValidationError("%(value)s is not an ISO 3166-1 alpha-2 country code.", code="invalid_country",
                              params={"value": repr(value)})


def validate_tags(value: Any) -> None:
    """A flat JSON object of string keys to string values, small enough to index and display."""
    if not isinstance(value, dict):
        raise ValidationError("Tags must be a JSON object of string keys to string values.", code="invalid_tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags are allowed.", code="too_many_tags")
    for key, item in value.items():
        if not isinstance(key, str) or not TAG_KEY_RE.match(key):
            raise ValidationError(
                f"Tag key {key!r} must be 1-{MAX_TAG_KEY_LENGTH} characters without whitespace or ':'.",
                code="invalid_tag_key",
            )
        if not isinstance(item, str):
            raise ValidationError(f"Tag {key!r} must have a string value, not {type(item).__name__}.",
                                  code="invalid_tag_value")
        if len(item) > MAX_TAG_VALUE_LENGTH:
            raise ValidationError(f"Tag {key!r} is longer than {MAX_TAG_VALUE_LENGTH} characters.",
                                  code="invalid_tag_value")


def validate_health_check_target(value: str) -> None:
    """A URL (http(s)://…, tcp://…, postgres://…) or a bare `host:port` for TCP checks. Single-label
    host names ("db") are allowed, unlike Django's URLValidator: internal services often have them."""
    if not value:
        return
    message = "Enter a URL (http, https, tcp, …) or host:port with a port from 1 to 65535."
    if "://" in value:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValidationError(message, code="invalid_health_check") from exc
        host = parts.hostname or ""
        if parts.scheme.lower() not in HEALTH_CHECK_SCHEMES or not (_HOST_RE.match(host) or _is_ip(host)):
            raise ValidationError(message, code="invalid_health_check")
        if any(ch.isspace() for ch in value) or (port is not None and not 1 <= port <= 65535):
            raise ValidationError(message, code="invalid_health_check")
        return
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValidationError(message, code="invalid_health_check")
    if not (_HOST_RE.match(host) or _is_ip(host)):
        raise ValidationError(message, code="invalid_health_check")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
