"""Contact-method verification: an address someone typed is paged only after its owner proves they read it.

Creating a method (or changing where it points) queues a message through the alerts outbox -- the same
channel, retries and ledger its pages will use -- carrying a signed, time-limited link. The token names the
method and a digest of its destination, so a link sent to an old address stops working once the address
changes. The page behind the link confirms on GET (mail scanners fetch links) and verifies on POST."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.alerts.services.outbox import create_notices
from apps.audit.services import record_event
from apps.escalation.models import ContactMethod

SALT = "fiberstack.escalation.contact-verification"
SUBJECT = "Verify your FiberStack contact method"


@dataclass(frozen=True, slots=True)
class VerificationClaim:
    """What a valid token says: the method ``method_public_id`` pointing at the destination with ``digest``."""

    method_public_id: str
    digest: str


def destination_digest(method: ContactMethod) -> str:
    """Short digest of where the method points (kind + address/url): a changed address voids old links."""
    return hashlib.sha256(f"{method.kind}:{method.destination}".encode()).hexdigest()[:16]


def make_token(method: ContactMethod) -> str:
    return signing.dumps({"m": str(method.public_id), "d": destination_digest(method)}, salt=SALT, compress=True)


def make_url(method: ContactMethod) -> str:
    """The absolute verification link of ``method``."""
    return settings.FIBERSTACK_BASE_URL.rstrip("/") + reverse("escalation-contact-verification",
                                                              kwargs={"token": make_token(method)})


def read_token(token: str) -> VerificationClaim | None:
    """The claim of a genuine, unexpired token; None for anything else (forged, altered, expired)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
    if not isinstance(data, dict) or not isinstance(data.get("m"), str) or not isinstance(data.get("d"), str):
        return None
    return VerificationClaim(method_public_id=data["m"], digest=data["d"])


def method_for_claim(claim: VerificationClaim) -> ContactMethod | None:
    """The method the claim names, if it still points where the link was sent."""
    method = ContactMethod.objects.select_related("user", "organization").filter(
        public_id=claim.method_public_id).first()
    if method is None or destination_digest(method) != claim.digest:
        return None
    return method


def verification_body(method: ContactMethod, url: str) -> dict[str, Any]:
    """An Alertmanager-v4-shaped body (what every transport renders) whose one entry asks to verify."""
    text = (f"Someone added this {method.kind} address as a way to page {method.user.get_username()} in "
            f"{method.organization.name}. Open the link to confirm it reaches you; until then it is never paged. "
            f"{url}")
    labels = {"alertname": SUBJECT}
    annotations = {"summary": text, "verify_url": url}
    return {"version": "4", "status": "notice", "groupKey": f"contact-verification:{method.public_id}",
            "groupLabels": labels, "commonLabels": labels, "commonAnnotations": annotations, "externalURL": url,
            "truncatedAlerts": 0,
            "alerts": [{"status": "notice", "labels": labels, "annotations": annotations, "generatorURL": url,
                        "startsAt": timezone.now().isoformat(), "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": str(method.public_id)}]}


def queue_verification(method: ContactMethod) -> int:
    """Queue the verification message in the caller's transaction (delivered after commit); returns the
    outbox row id. The caller audits."""
    assert method.channel is not None
    now = timezone.now()
    rows = create_notices(organization_id=method.organization_id, body=verification_body(method, make_url(method)),
                          channels=[method.channel], at=now)
    ContactMethod.objects.filter(pk=method.pk).update(verification_sent_at=now)
    method.verification_sent_at = now
    return rows[0].pk


@transaction.atomic
def send_verification(*, method: ContactMethod, actor: Any) -> ContactMethod:
    """(Re-)send the verification message of an unverified, enabled method."""
    method = ContactMethod.objects.select_for_update(of=("self",)).select_related(
        "user", "organization", "channel").get(pk=method.pk)
    if method.verified:
        raise ValidationError({"verified": "This contact method is already verified."})
    if not method.enabled or method.channel is None:
        raise ValidationError({"enabled": "Enable the contact method before verifying it."})
    notification_id = queue_verification(method)
    record_event(action="escalation.contact_verification_sent", actor=actor, organization=method.organization_id,
                 target=method, changes={"notification": [None, notification_id]})
    return method


@transaction.atomic
def verify_contact_method(*, method: ContactMethod, actor: Any, via: str) -> bool:
    """Mark ``method`` verified (compare-and-set on unverified: two clicks verify, and audit, once).
    ``via`` says how: ``link`` (its owner opened the signed link) or ``admin``."""
    now = timezone.now()
    if ContactMethod.objects.filter(pk=method.pk, verified=False).update(verified=True, verified_at=now) != 1:
        return False
    method.verified, method.verified_at = True, now
    record_event(action="escalation.contact_verified", actor=actor, organization=method.organization_id,
                 target=method, changes={"verified": [False, True], "via": [None, via]})
    return True
