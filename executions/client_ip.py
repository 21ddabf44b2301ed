"""The address of the client behind a request, the one rule every part of Redrive uses: the DRF
throttles, the sign-in lockout (django-axes, AXES_CLIENT_IP_CALLABLE) and the audit rows.

`X-Forwarded-For` is believed only when the peer (REMOTE_ADDR) is one of REDRIVE_TRUSTED_PROXIES,
and then only as far as the chain of trusted proxies goes: walking it from the right, the first
address that is not a trusted proxy is the client. Anyone else can write the header, so by default
(no trusted proxies) it is ignored and the client is REMOTE_ADDR.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(configured: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in configured)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "REDRIVE_TRUSTED_PROXIES", ())))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address; REMOTE_ADDR unless a trusted proxy forwarded the request."""
    remote = request.META.get("REMOTE_ADDR") or None
    networks = trusted_networks()
    peer = _address(remote) if remote else None
    if not networks or peer is None or not _trusted(peer, networks):
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Not an address: our proxy passed on something it did not write. The last
            # address we can vouch for is the proxy that did.
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client)
