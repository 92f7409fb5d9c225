"""The login page and its routes: ``GET/POST /login``, ``GET/POST /logout``; plain message pages.

A successful login sets the session cookie (``dashboard/sessions.py``); failures count towards
a lockout (``dashboard/ratelimit.py``); logins, failures, lockouts and logouts are audited.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from dashboard.origin import client_address, is_https, parse_trusted_proxies
from dashboard.ratelimit import LoginLimiter
from dashboard.sessions import COOKIE_NAME, sessions_for
from dashboard.settings import Settings
from datasources import users
from datasources.audit import record
from layouts.i18n import both, t

log = logging.getLogger("wushi.auth")

MAX_FORM_BYTES = 4096


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a local path to go to after login, else ``/``."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return "/"
    # "//host" and "/\\host" are read by browsers as another host.
    if value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


# --- The login page --------------------------------------------------------------------------

WRONG_LOGIN = both("login.wrong")
EMPTY_LOGIN = both("login.empty")
UNAVAILABLE = both("login.unavailable")

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}

_LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
*{{box-sizing:border-box}}
body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
background:#0f2741;color:#1b2733;font:18px/1.5 "Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",system-ui,sans-serif}}
main{{width:min(460px,92vw);background:#fff;border-radius:12px;padding:32px 36px;
box-shadow:0 8px 32px rgba(0,0,0,.35)}}
h1{{margin:0 0 4px;font-size:28px;color:#b71c1c}}
p.sub{{margin:0 0 24px;color:#55606b;font-size:16px}}
label{{display:block;margin:16px 0 6px;font-weight:600}}
label span{{font-weight:400;color:#55606b}}
input,button{{font-family:inherit}}
input{{width:100%;height:56px;padding:0 14px;font-size:20px;border:2px solid #9aa5b1;
border-radius:8px}}
input:focus{{outline:none;border-color:#1565c0;box-shadow:0 0 0 3px rgba(21,101,192,.25)}}
button{{width:100%;height:60px;margin-top:28px;font-size:22px;font-weight:700;color:#fff;
background:#c62828;border:0;border-radius:8px;cursor:pointer}}
button:active{{background:#8e0000}}
.msg{{margin:0 0 8px;padding:12px 14px;border-radius:8px;background:#fdecea;color:#8e0000;
font-weight:600}}
</style></head>
<body><main>
<h1>{heading}</h1>
<p class="sub">{sub}</p>
{message}
<form method="post" action="/login" autocomplete="on">
<input type="hidden" name="next" value="{next}">
<label for="username">{username_zh} <span>/ {username_en}</span></label>
<input id="username" name="username" value="{username}" autocomplete="username"
 autocapitalize="none" autocorrect="off" spellcheck="false" required {focus_user}>
<label for="password">{password_zh} <span>/ {password_en}</span></label>
<input id="password" name="password" type="password" autocomplete="current-password" required
 {focus_password}>
<button type="submit" id="login-button">{submit}</button>
</form>
</main></body></html>
"""


# The login page's fixed texts, both languages side by side (no language is chosen yet).
_LOGIN_TEXT = {
    "title": html.escape(f"{both('login.title')} — {t('login.heading', 'zh')}"),
    "heading": html.escape(t("login.heading", "zh")),
    "sub": html.escape(both("login.sub")),
    "username_zh": html.escape(t("login.username", "zh")),
    "username_en": html.escape(t("login.username", "en")),
    "password_zh": html.escape(t("login.password", "zh")),
    "password_en": html.escape(t("login.password", "en")),
    "submit": html.escape(both("login.submit")),
}


def _login_page(
    *,
    next_path: str = "/",
    message: str = "",
    username: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    body = _LOGIN_PAGE.format(
        **_LOGIN_TEXT,
        next=html.escape(next_path),
        username=html.escape(username),
        # After a failed attempt the name is kept, so the password is what to type next.
        focus_user="" if username else "autofocus",
        focus_password="autofocus" if username else "",
        message=f'<p class="msg" role="alert">{html.escape(message)}</p>' if message else "",
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS | (headers or {}))


def _locked_message(seconds: float) -> str:
    n = max(1, int(seconds + 0.999))
    return both("login.locked", n=n)


async def _read_form(request: Request) -> dict[str, str] | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def register_login_routes(
    server: FastAPI,
    *,
    settings: Settings,
    engine: Engine,
    redis: Redis | None = None,
    limiter: LoginLimiter | None = None,
) -> None:
    """Add ``GET/POST /login`` and ``GET/POST /logout`` to ``server`` (before it starts)."""
    sessions = sessions_for(settings, engine, redis)
    limiter = limiter or LoginLimiter.for_settings(settings, redis)
    proxies = parse_trusted_proxies(settings.trusted_proxies)

    def audit(action: str, username: str, address: str | None, **detail: Any) -> Awaitable[None]:
        return run_in_threadpool(
            record,
            engine,
            action=action,
            username=username[:64],
            address=address,
            detail=detail,
        )

    async def login_form(request: Request) -> Response:
        return _login_page(next_path=safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return _login_page(message=both("login.too_large"), status=413)
        username = form.get("username", "").strip().lower()
        password = form.get("password", "")
        next_path = safe_next(form.get("next"))
        address = client_address(request.scope, proxies)

        def page(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
            return _login_page(
                next_path=next_path,
                username=username[:64],
                message=message,
                status=status,
                headers=headers,
            )

        if not username or not password:
            return page(EMPTY_LOGIN, 401)
        try:
            wait = await run_in_threadpool(limiter.locked_for, username, address)
            if wait > 0:
                log.info("refused login for %r from %s: locked %.0f s", username, address, wait)
                return page(
                    _locked_message(wait), 429, {"Retry-After": str(max(1, int(wait + 0.999)))}
                )
            check = await run_in_threadpool(users.verify_login, engine, username, password)
            if check.user is None:
                lockout = await run_in_threadpool(limiter.failure, username, address)
                log.warning("failed login for %r from %s (%s)", username, address, check.reason)
                await audit("login.failed", username, address, reason=check.reason)
                if lockout:
                    log.warning("locked out %r / %s for %.0f s", username, address, lockout)
                    await audit("login.lockout", username, address, seconds=lockout)
                    return page(f"{WRONG_LOGIN}。{_locked_message(lockout)}", 401)
                return page(WRONG_LOGIN, 401)
            await run_in_threadpool(limiter.success, username)
            user = check.user
            cookie, session_id = sessions.issue(user)
            await run_in_threadpool(
                record,
                engine,
                action="login",
                username=user.username,
                address=address,
                area_code=user.area_code,
                detail={"session": session_id[:8]},
            )
        except (RedisError, SQLAlchemyError, OSError) as exc:
            log.error("login for %r failed: %r", username, exc)
            return page(UNAVAILABLE, 503)
        log.info("login %s from %s", user.username, address)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=sessions.max_age_s,
            path="/",
            secure=is_https(request.scope, proxies),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def logout(request: Request) -> Response:
        decoded = sessions.decode(request.cookies.get(COOKIE_NAME))
        if decoded is not None:
            username, session_id, _mark = decoded
            address = client_address(request.scope, proxies)
            try:
                await run_in_threadpool(sessions.revoke, session_id)
                await audit("logout", username, address, session=session_id[:8])
            except (RedisError, SQLAlchemyError, OSError) as exc:
                # The cookie is still deleted below; the session may live until it expires.
                log.error("logout of %s could not be recorded: %r", username, exc)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            COOKIE_NAME,
            path="/",
            secure=is_https(request.scope, proxies),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    server.add_api_route("/login", login_form, methods=["GET"], include_in_schema=False)
    server.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    server.add_api_route("/logout", logout, methods=["GET", "POST"], include_in_schema=False)


_MESSAGE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
background:#0f2741;color:#fff;font:24px/1.6 "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
system-ui,sans-serif;text-align:center}}main{{max-width:900px;padding:32px}}
a{{color:#90caf9}}</style></head>
<body><main><p role="alert">{message}</p><p><a href="/">{home}</a></p></main></body></html>
"""


def message_page(message: str, status: int) -> HTMLResponse:
    body = _MESSAGE_PAGE.format(
        title=html.escape(t("login.heading", "zh")),
        home=html.escape(both("home")),
        message=html.escape(message),
    )
    return HTMLResponse(body, status_code=status, headers=dict(PAGE_HEADERS))
