"""Dash's request paths on the server and the ASGI helpers that read a callback request's body.

Shared by the login middleware (``dashboard/middleware.py``), the kiosk filter
(``dashboard/kiosk_guard.py``) and the unknown-callback check (``dashboard/web.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ASGIScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]


DASH_CALLBACK_PATH = "/_dash-update-component"
DASH_SOCKET_PATH = "/_dash-ws-callback"
MAX_CALLBACK_BODY = 1 << 20


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Read a request body of at most ``limit`` bytes (None when larger or cut off)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return bytes(body)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands the app the body already read, then the real one."""
    pending = True

    async def replay() -> MutableMapping[str, Any]:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
