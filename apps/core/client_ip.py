"""The client's IP address, for rate-limit keys, the audit log and the security page: the one place
that reads REMOTE_ADDR or X-Forwarded-For.

X-Forwarded-For is written by whoever sent the request, so it is believed only when the socket peer is
one of our own proxies (``FIBERSTACK_TRUSTED_PROXIES``, CIDR networks, empty by default). Each proxy
*appends* the address it received the request from, so the client is the right-most entry that is not
itself a trusted proxy; anything to the left of it was supplied by the client and may be forged. Every
candidate is parsed with :mod:`ipaddress`: a value that is not an address never reaches a cache key or
the audit table's inet column, and the peer is used instead."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"FIBERSTACK_TRUSTED_PROXIES: {entry!r} is not a CIDR network") from exc
    return tuple(networks)


def trusted_networks() -> tuple[Network, ...]:
    """The trusted proxy networks from settings, parsed once per distinct value."""
    return _networks(tuple(getattr(settings, "FIBERSTACK_TRUSTED_PROXIES", ()) or ()))


def parse_ip(value: str | None) -> Address | None:
    """An address from a header or REMOTE_ADDR, or None when it is not one. IPv4-mapped IPv6
    (``::ffff:10.0.0.1``) becomes the IPv4 address, so one client has one rate-limit key."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as text, or None when even the peer is unknown or not an address."""
    peer = parse_ip(request.META.get("REMOTE_ADDR"))
    if peer is None:
        return None
    networks = trusted_networks()
    if not networks or not _is_trusted(peer, networks):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",")):
        hop = parse_ip(entry)
        if hop is None:
            return str(peer)  # garbage where a proxy's entry should be: believe nothing further left
        if not _is_trusted(hop, networks):
            return str(hop)
    return str(peer)  # no header, or every hop is one of our proxies
