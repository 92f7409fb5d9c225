"""Logging: text or JSON lines (``WUSHI_LOG_FORMAT``), one line per HTTP request and per batch.

``configure_logging(settings)`` is called once per process by the entry points (``wushi web``,
``wushi worker``, ``dashboard.asgi:app_factory``), never at import. Every line passes
``scrub``: mobile numbers are masked and anything that looks like a password, token, bearer
credential or session cookie is replaced, whatever a message or a traceback carried.

``RequestLogMiddleware`` writes one ``wushi.http`` line per HTTP request and per WebSocket
(method, path without the query string, status, duration, user name, the Dash callback's name)
and feeds the request metrics of ``dashboard.metrics``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dashboard import metrics
from dashboard.request_info import REQUEST_INFO
from dashboard.settings import Settings
from datasources.identity import CURRENT_USER

ASGIScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]

http_log = logging.getLogger("wushi.http")

_SCRUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Mainland mobile numbers: keep the first three and last four digits, as the UI does.
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(wushi_session=)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(cookie\"?\s*[=:]\s*\"?)[^\"\n]+"), r"\1[redacted]"),
    (
        re.compile(
            r"(?i)\b(password|passwd|token|kiosk|secret(?:_key)?)(\"?\s*[=:]\s*\"?)[^\s&\"',;]+"
        ),
        r"\1\2[redacted]",
    ),
)
# A URL path segment that looks like a random token (secrets.token_urlsafe) is not logged.
_TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{24,}(?=/|$)")

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of msg
}


def scrub(text: str) -> str:
    """Return ``text`` with phone numbers masked and secrets replaced."""
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def log_path(path: str) -> str:
    """Return a request path fit for a log line: token-like segments replaced."""
    return _TOKEN_SEGMENT.sub("[redacted]", path)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, msg, the record's extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return scrub(json.dumps(out, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """The classic ``time logger level message`` line, scrubbed."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s [%(process)d] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Send every logger to one stderr handler in the configured format and level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn's own lines go through the same handler; its access log is replaced by ours (it
    # would print query strings, where kiosk tokens and filters live).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler logs two INFO lines per job run (every 5 s): the scheduler counts its own.
    # Alembic lists its plugins at INFO on every start.
    if root.level > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _handler_of(path: str) -> str:
    """Return a small, fixed label for the request metrics (never the raw path)."""
    if path.startswith("/_dash-component-suites/") or path.startswith("/assets/"):
        return "static"
    if path.startswith("/_dash-"):
        return path.split("/")[1][:40]
    if path.startswith("/api/v1/") and path.endswith(".geojson"):
        return "geojson"
    if path.startswith("/api/"):
        return "api"
    if path in ("/login", "/logout", "/healthz", "/metrics"):
        return path[1:]
    return "page"


class RequestLogMiddleware:
    """Log and measure every HTTP request and WebSocket (added outermost, around the auth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._user = CURRENT_USER
        self._metrics = metrics.web()

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict[str, Any] = {"status": None, "user": None}
        token = REQUEST_INFO.set(info)
        is_socket = scope["type"] == "websocket"
        accepted = False

        async def observe(message: MutableMapping[str, Any]) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "http.response.start":
                info["status"] = message["status"]
                self._note_user(info)
            elif kind == "websocket.accept":
                info["status"] = 101
                self._note_user(info)
                accepted = True
                self._metrics.live_clients.inc()
            elif kind == "websocket.close" and info["status"] is None:
                info["status"] = 403  # closed before accept: the server answers the handshake 403
            elif kind == "websocket.http.response.start":
                info["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except Exception:
            info["status"] = info["status"] or 500
            raise
        finally:
            if accepted:
                self._metrics.live_clients.dec()
            REQUEST_INFO.reset(token)
            self._finish(scope, info, time.perf_counter() - started, is_socket)

    def _note_user(self, info: dict[str, Any]) -> None:
        user = self._user.get()
        if user is not None:
            info["user"] = user.username

    def _finish(
        self, scope: ASGIScope, info: dict[str, Any], seconds: float, is_socket: bool
    ) -> None:
        method = "WS" if is_socket else scope.get("method", "?")
        status = info["status"] or (1000 if is_socket else 0)
        path = log_path(scope.get("path", ""))
        if not is_socket:
            self._metrics.http_seconds.labels(_handler_of(path), method, str(status)).observe(
                seconds
            )
        if not http_log.isEnabledFor(logging.INFO):
            return
        extra: dict[str, Any] = {
            "event": "request",
            "method": method,
            "path": path,
            "status": status,
            "ms": round(seconds * 1000, 1),
            "user": info["user"],
        }
        if info.get("callback"):
            extra["callback"] = info["callback"]
        http_log.info(
            "%s %s %s %.0fms%s%s",
            method,
            path,
            status,
            seconds * 1000,
            f" user={info['user']}" if info["user"] else "",
            f" callback={info['callback']}" if info.get("callback") else "",
            extra=extra,
        )
