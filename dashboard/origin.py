"""Where a request comes from: the client's address and scheme, trusting proxies only as told.

``WUSHI_TRUSTED_PROXIES`` lists the reverse proxies whose ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are believed; any other peer is the client itself.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers

from dashboard.dash_requests import ASGIScope

# --- Where a request comes from --------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """Parse ``WUSHI_TRUSTED_PROXIES`` (comma-separated addresses or networks)."""
    return tuple(
        ipaddress.ip_network(item, strict=False)
        for item in (part.strip() for part in value.split(","))
        if item
    )


def _trusted(address: str | None, proxies: tuple[Network, ...]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(scope: ASGIScope, proxies: tuple[Network, ...]) -> str | None:
    """Return the client's address, from ``X-Forwarded-For`` only when the peer is trusted."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not _trusted(peer, proxies):
        return peer
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()]
    # Walk from the nearest hop: the first one that is not a trusted proxy is the client; hops
    # further left were written by the client itself and may be forged.
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def is_https(scope: ASGIScope, proxies: tuple[Network, ...]) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    if _trusted(client[0] if client else None, proxies):
        proto = Headers(scope=scope).get("x-forwarded-proto", "")
        return proto.split(",")[0].strip().lower() == "https"
    return False
