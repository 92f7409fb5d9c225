"""Logins over real HTTP and WebSocket on loopback: middleware, login, logout, limits, hooks.

Each test serves a tiny FastAPI app (a page, a JSON route and a WebSocket that echo the
current user) wrapped in AuthMiddleware with uvicorn in a thread, and talks to it with httpx and
the `websockets` client. Session and rate-limit state is kept in memory or in Redis (embedded
and, where reachable, the system server).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from conftest import system_redis_url
from fastapi import FastAPI, WebSocket
from fastapi.responses import HTMLResponse
from itsdangerous import URLSafeTimedSerializer
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dashboard import middleware
from dashboard import sessions as session_store
from dashboard.login import register_login_routes, safe_next
from dashboard.middleware import AuthMiddleware, register_websocket_hooks
from dashboard.origin import client_address, parse_trusted_proxies
from dashboard.ratelimit import LoginLimiter
from dashboard.sessions import COOKIE_NAME
from dashboard.settings import Settings
from datasources.audit import entries
from datasources.db import make_engine, upgrade
from datasources.identity import CURRENT_USER
from datasources.models import Town
from datasources.users import add_user, disable_user, get_user, set_password

PASSWORD = "correct horse"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> str:
    """A migrated SQLite file with one town, copied by each test."""
    path = tmp_path_factory.mktemp("authdb") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add(
            Town(
                code="341504100",
                name="孙岗乡",
                name_en="Sungang",
                kind="town",
                geometry={},
                centroid_lon=115.9,
                centroid_lat=31.8,
            )
        )
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return str(path)


@pytest.fixture
def engine(template_db, tmp_path) -> Iterator[Engine]:
    """An engine on a private copy of the template, with a district and a town user."""
    path = tmp_path / "auth.db"
    shutil.copyfile(template_db, path)
    eng = make_engine(f"sqlite:///{path}")
    add_user(eng, "boss", PASSWORD, "district", None, "区长")
    add_user(eng, "sun.town", PASSWORD, "town", "341504100", "孙镇长")
    yield eng
    eng.dispose()


STORES = ["memory", "embedded-redis", "system-redis"]
all_stores = pytest.mark.parametrize("redis", STORES, indirect=True)


@pytest.fixture
def redis(request, test_district) -> Iterator[Redis | None]:
    """No Redis (state in memory, the default), or with ``@all_stores`` also the embedded
    Redis and the system Redis."""
    kind = getattr(request, "param", "memory")
    if kind == "memory":
        yield None
        return
    if kind == "embedded-redis":
        url = request.getfixturevalue("embedded_redis_url")
    else:
        url = system_redis_url()
        if url is None:
            pytest.skip("system Redis not reachable (WUSHI_TEST_REDIS_URL)")
    client = Redis.from_url(url, socket_timeout=5)

    def clean() -> None:
        for name in client.scan_iter(match=f"wushi:{{{test_district}}}:auth:*", count=1000):
            client.delete(name)

    clean()
    yield client
    clean()
    client.close()


def make_settings(tmp_path, test_district: str, **kw) -> Settings:
    base = {
        "var_dir": tmp_path / "var",
        "database_url": "sqlite://",
        "district_code": test_district,
        "secret_key": "s" * 43,
        "session_hours": 1,
    }
    return Settings(**(base | kw))


def build_app(
    settings: Settings,
    engine: Engine,
    redis: Redis | None,
    *,
    limiter: LoginLimiter | None = None,
    cache_ttl_s: float = session_store.CACHE_TTL_S,
) -> FastAPI:
    """A page, a JSON route, a WebSocket and /healthz, wrapped like the dashboard."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        user = CURRENT_USER.get()
        assert user is not None
        return f"<h1>你好 {user.display_name}</h1>"

    @app.get("/api/v1/secret")
    def secret() -> dict:  # sync on purpose: runs in the thread pool, like Dash callbacks
        user = CURRENT_USER.get()
        return {"user": dataclasses.asdict(user) if user else None}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "user": CURRENT_USER.get()}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        user = CURRENT_USER.get()
        await websocket.send_json({"user": dataclasses.asdict(user) if user else None})
        await websocket.close()

    register_login_routes(app, settings=settings, engine=engine, redis=redis, limiter=limiter)
    app.add_middleware(
        AuthMiddleware, settings=settings, engine=engine, redis=redis, cache_ttl_s=cache_ttl_s
    )
    return app


@contextmanager
def serve(app, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield ``host:port``."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="error",
        lifespan=lifespan,
        ws="websockets-sansio",
        # Our middleware decides about X-Forwarded-For, not uvicorn.
        proxy_headers=False,
    )
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclasses.dataclass
class Site:
    """A served test app and how to talk to it."""

    host: str
    settings: Settings
    engine: Engine

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def get(self, path: str, cookie: str | None = None, **headers: str) -> httpx.Response:
        if cookie:
            headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
        return httpx.get(self.url + path, headers=headers, timeout=10)

    def post(self, path: str, data: dict, cookie: str | None = None, **headers: str):
        if cookie:
            headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
        return httpx.post(self.url + path, data=data, headers=headers, timeout=10)

    def login(self, username: str = "boss", password: str = PASSWORD, next_path: str = "/", **h):
        return self.post(
            "/login", {"username": username, "password": password, "next": next_path}, **h
        )

    def cookie(self, username: str = "boss") -> str:
        response = self.login(username)
        assert response.status_code == 303, response.text
        return response.cookies[COOKIE_NAME]

    def socket(self, cookie: str | None = None, path: str = "/ws", **headers: str):
        if cookie:
            headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
        return connect(f"ws://{self.host}{path}", additional_headers=headers, open_timeout=5)


@pytest.fixture
def site_factory(tmp_path, test_district, engine, redis) -> Iterator[Callable[..., Site]]:
    """Start served test apps: ``site_factory(cache_ttl_s=..., limiter_kw=..., **settings)``."""
    with_stack: list = []

    def start(
        *, cache_ttl_s: float = session_store.CACHE_TTL_S, limiter_kw: dict | None = None, **kw
    ):
        settings = make_settings(tmp_path, test_district, **kw)
        limiter = LoginLimiter.for_settings(settings, redis, **(limiter_kw or {}))
        app = build_app(settings, engine, redis, limiter=limiter, cache_ttl_s=cache_ttl_s)
        cm = serve(app)
        host = cm.__enter__()
        with_stack.append(cm)
        return Site(host, settings, engine)

    yield start
    for cm in reversed(with_stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def site(site_factory) -> Site:
    """A served test app with the default settings."""
    return site_factory()


# --- Anonymous requests ----------------------------------------------------------------------


def test_anonymous_page_is_redirected_to_login_keeping_path_and_query(site):
    response = site.get("/?town=341504100&lang=en", **HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + quote(
        "/?town=341504100&lang=en", safe=""
    )
    response = site.get("/wall", **HTML)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2Fwall")
    form = site.get("/login?next=" + quote("/?town=341504100&lang=en", safe=""))
    assert 'name="next" value="/?town=341504100&amp;lang=en"' in form.text


def test_anonymous_requests_other_than_pages_get_401_json(site):
    for method, path, headers in [
        ("GET", "/api/v1/secret", {}),
        ("GET", "/", {"Accept": "application/json"}),
        ("GET", "/_dash-layout", HTML),
        ("POST", "/_dash-update-component", {}),
        ("GET", "/api/v1/grids.geojson", HTML),
    ]:
        response = httpx.request(method, site.url + path, headers=headers, timeout=10)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "login required"}


def test_public_paths_need_no_login(site):
    assert site.get("/healthz").json() == {"status": "ok", "user": None}
    assert site.get("/login").status_code == 200
    # Public prefixes pass through to the app (which has no static files here).
    assert site.get("/assets/style.css").status_code == 404
    assert site.get("/_dash-component-suites/dash/x.js").status_code == 404


def test_anonymous_websocket_is_refused_at_the_handshake(site):
    with pytest.raises(InvalidStatus) as refused:
        site.socket()
    assert refused.value.response.status_code == 403


# --- Login and logout ------------------------------------------------------------------------


def test_login_page_is_bilingual_self_contained_and_not_framable(site):
    response = site.get("/login")
    assert response.status_code == 200
    for text in ("用户名", "Username", "密码", "Password", "登录", "Log in", 'type="password"'):
        assert text in response.text
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_wrong_password_gets_401_and_the_right_one_a_session(site):
    response = site.login(password="wrong password", next_path="/wall?x=1")
    assert response.status_code == 401
    assert "用户名或密码错误 / Wrong username or password" in response.text
    assert 'name="next" value="/wall?x=1"' in response.text
    assert COOKIE_NAME not in response.cookies
    assert site.login(username="nobody").status_code == 401

    response = site.login(username="Sun.Town ", next_path="/wall?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/wall?x=1"
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert "max-age=3600" in set_cookie and "secure" not in set_cookie
    cookie = response.cookies[COOKIE_NAME]

    user = site.get("/api/v1/secret", cookie).json()["user"]
    assert user["username"] == "sun.town" and user["display_name"] == "孙镇长"
    assert (user["role"], user["area_code"], user["area_level"]) == ("town", "341504100", "town")
    assert "孙镇长" in site.get("/", cookie, **HTML).text
    with site.socket(cookie) as ws:
        assert json.loads(ws.recv(timeout=5))["user"]["username"] == "sun.town"

    actions = [(e.action, e.username, e.address) for e in entries(site.engine, action="login")]
    assert actions == [
        ("login", "sun.town", "127.0.0.1"),
        ("login.failed", "nobody", "127.0.0.1"),
        ("login.failed", "boss", "127.0.0.1"),
    ]
    assert entries(site.engine, action="login.failed")[0].detail == {"reason": "unknown_user"}


@all_stores
def test_logout_ends_the_session_at_once(site):
    cookie = site.cookie()
    assert site.get("/api/v1/secret", cookie).status_code == 200
    response = site.post("/logout", {}, cookie)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert 'wushi_session=""' in response.headers["set-cookie"]
    assert "max-age=0" in response.headers["set-cookie"].lower()
    # The old cookie is refused right away (the cache TTL does not delay a logout).
    assert site.get("/api/v1/secret", cookie).status_code == 401
    assert site.get("/", cookie, **HTML).status_code == 303
    with pytest.raises(InvalidStatus):
        site.socket(cookie)
    # GET /logout works too, and without a session it just goes to the login page.
    other = site.cookie()
    assert site.get("/logout", other).status_code == 303
    assert site.get("/api/v1/secret", other).status_code == 401
    assert site.get("/logout").status_code == 303
    assert [e.action for e in entries(site.engine, username="boss")] == [
        "logout",
        "login",
        "logout",
        "login",
    ]


@all_stores
def test_a_disabled_users_session_stops_within_the_cache_ttl(site_factory):
    site = site_factory(cache_ttl_s=0.5)
    cookie = site.cookie()
    town_cookie = site.cookie("sun.town")
    assert site.get("/api/v1/secret", cookie).status_code == 200
    disable_user(site.engine, "boss")
    set_password(site.engine, "sun.town", "another password")
    time.sleep(0.6)
    assert site.get("/api/v1/secret", cookie).status_code == 401
    assert site.get("/api/v1/secret", town_cookie).status_code == 401
    assert site.login().status_code == 401
    assert site.login("sun.town", "another password").status_code == 303


def test_tampered_forged_and_expired_cookies_are_refused(site):
    cookie = site.cookie()
    payload, _, signature = cookie.rpartition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert site.get("/api/v1/secret", payload + "." + flipped).status_code == 401
    data = URLSafeTimedSerializer("s" * 43, salt="wushi.session").loads(cookie)
    foreign = URLSafeTimedSerializer("another secret", salt="wushi.session").dumps(data)
    assert site.get("/api/v1/secret", foreign).status_code == 401
    as_other = dict(data, u="sun.town")  # a valid session id under another name
    forged = URLSafeTimedSerializer("x" * 43, salt="wushi.session").dumps(as_other)
    assert site.get("/api/v1/secret", forged).status_code == 401
    assert site.get("/api/v1/secret", "garbage").status_code == 401
    assert site.get("/api/v1/secret", cookie).status_code == 200


def test_an_expired_cookie_is_refused(site, monkeypatch):
    sessions = session_store.sessions_for(site.settings, site.engine, None)
    cookie = site.cookie()
    assert sessions.decode(cookie) is not None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3600 + 5)
    assert sessions.decode(cookie) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/wall?x=1#top", "/wall?x=1#top"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/login?next=/x", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next_keeps_only_local_paths(given, expected):
    assert safe_next(given) == expected


def test_next_with_an_external_url_is_ignored(site):
    for evil in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        response = site.login(next_path=evil)
        assert (response.status_code, response.headers["location"]) == (303, "/")


# --- Rate limits -----------------------------------------------------------------------------


@all_stores
def test_quick_failures_lock_the_username_even_for_the_right_password(site_factory):
    site = site_factory(limiter_kw={"lockout_s": 0.5})
    for attempt in range(1, 6):
        response = site.login(password=f"wrong {attempt}")
        assert response.status_code == 401, attempt
    assert "try again in 1 s" in response.text  # the fifth failure starts the lockout
    refused = site.login()
    assert refused.status_code == 429
    assert "尝试次数过多" in refused.text and "Too many attempts: try again in 1 s" in refused.text
    assert refused.headers["retry-after"] == "1"
    assert COOKIE_NAME not in refused.cookies
    # Other users are not affected by this name's lockout.
    assert site.login("sun.town").status_code == 303
    time.sleep(0.6)
    assert site.login().status_code == 303
    log = [e.action for e in entries(site.engine, username="boss")]
    assert log.count("login.failed") == 5 and log.count("login.lockout") == 1
    assert log[0] == "login"


@all_stores
def test_lockouts_grow_and_a_success_resets_them(redis, test_district):
    limiter = LoginLimiter(
        redis, prefix=f"wushi:{{{test_district}}}:auth:", max_failures=2, lockout_s=0.2
    )
    assert limiter.failure("boss", "10.0.0.1") == 0
    assert limiter.failure("boss", "10.0.0.1") == pytest.approx(0.2)
    assert 0 < limiter.locked_for("boss", None) <= 0.2
    time.sleep(0.25)
    assert limiter.locked_for("boss", None) == 0
    limiter.failure("boss", "10.0.0.1")
    assert limiter.failure("boss", "10.0.0.1") == pytest.approx(0.4)
    time.sleep(0.45)
    limiter.success("boss")
    limiter.failure("boss", "10.0.0.1")
    assert limiter.failure("boss", "10.0.0.1") == pytest.approx(0.2)
    # A name that cannot exist is still counted, under a hashed key.
    limiter.failure("x" * 500, None)
    assert limiter.failure("x" * 500, None) == pytest.approx(0.2)


def test_failures_from_one_address_lock_that_address(site_factory):
    site = site_factory(limiter_kw={"address_max_failures": 3, "lockout_s": 30})
    for name in ("a.one", "b.two", "c.three"):
        assert site.login(name).status_code == 401
    response = site.login()
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 29


def test_forwarded_addresses_are_used_only_from_trusted_proxies(site_factory):
    site = site_factory(
        trusted_proxies="127.0.0.1", limiter_kw={"address_max_failures": 2, "lockout_s": 30}
    )
    xff = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}
    assert site.login(password="wrong password", **xff).status_code == 401
    assert entries(site.engine, action="login.failed")[0].address == "203.0.113.9"
    assert site.login(password="wrong password 2", **xff).status_code == 401
    assert site.login(**xff).status_code == 429  # that address is locked ...
    other = {"X-Forwarded-For": "203.0.113.10", "X-Forwarded-Proto": "https"}
    response = site.login("sun.town", **other)  # ... another one is not
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("10.0.0.5", "1.2.3.4", "", "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", "10.0.0.9", "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", "10.0.0.0/24", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.2", "10.0.0.0/24", "1.2.3.4"),
        ("10.0.0.5", "not-an-ip", "10.0.0.5", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5", "10.0.0.5"),
        ("::1", "2001:db8::7", "::1", "2001:db8::7"),
    ],
)
def test_client_address(peer, xff, trusted, expected):
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    assert client_address(scope, parse_trusted_proxies(trusted)) == expected


def test_public_path_matching_is_exact():
    assert middleware._is_public("/login") and middleware._is_public("/assets/app.css")
    assert not middleware._is_public("/login-admin")
    assert not middleware._is_public("/assets/../_dash-layout")
    assert not middleware._is_public("/api/v1/events/../secret")
    assert not middleware._is_public("/assets")


# --- Failing closed --------------------------------------------------------------------------


def test_an_unreachable_session_store_fails_closed(tmp_path, test_district, engine):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    settings = make_settings(tmp_path, test_district)
    boss = get_user(engine, "boss")
    assert boss is not None
    cookie, _sid = session_store.sessions_for(settings, engine, dead).issue(boss)
    with serve(build_app(settings, engine, dead)) as host:
        site = Site(host, settings, engine)
        response = site.get("/api/v1/secret", cookie)
        assert response.status_code == 503
        assert site.login().status_code == 503
        assert "登录服务暂时不可用" in site.login().text
        with pytest.raises(InvalidStatus):
            site.socket(cookie)
    dead.close()


# --- Dash's WebSocket hooks ------------------------------------------------------------------


@pytest.fixture
def dash_hooks_restored() -> Iterator[None]:
    """Undo the process-global hook registration after the test."""
    from dash import hooks

    saved = {name: list(hooks._ns[name]) for name in ("websocket_connect", "websocket_message")}
    registry = dataclasses.replace(session_store.REGISTRY)
    yield
    hooks._ns.update(saved)
    session_store.REGISTRY.hook_sessions = registry.hook_sessions
    session_store.REGISTRY.hook_engine = registry.hook_engine
    session_store.REGISTRY.hook_ttl_s = registry.hook_ttl_s
    session_store.REGISTRY.hooks_registered = registry.hooks_registered


@all_stores
def test_dash_socket_hooks_check_the_session_on_connect_and_on_every_message(
    tmp_path, test_district, engine, redis, dash_hooks_restored
):
    """A Dash app *without* the middleware: the hooks alone guard its socket."""
    from dash import Dash, hooks, html

    settings = make_settings(tmp_path, test_district)
    stale = make_settings(tmp_path, test_district, secret_key="t" * 43)
    register_websocket_hooks(stale, engine, redis)
    register_websocket_hooks(settings, engine, redis)  # the latest settings win
    assert [h.func for h in hooks.get_hooks("websocket_connect")].count(
        middleware.check_socket_connect
    ) == 1
    assert [h.func for h in hooks.get_hooks("websocket_message")].count(
        middleware.check_socket_message
    ) == 1

    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    register_login_routes(server, settings=settings, engine=engine, redis=redis)
    app = Dash(__name__, server=server, backend="fastapi", websocket_inactivity_timeout=0)
    app.layout = html.Div("ok")
    with serve(app.server, lifespan="on") as host:
        site = Site(host, settings, engine)
        origin = {"Origin": site.url}
        with pytest.raises(InvalidStatus) as refused:
            site.socket(path="/_dash-ws-callback", **origin)
        assert refused.value.response.status_code == 403
        cookie = site.cookie()
        with site.socket(cookie, path="/_dash-ws-callback", **origin) as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            assert "heartbeat" in ws.recv(timeout=5)
            assert site.post("/logout", {}, cookie).status_code == 303
            ws.send(json.dumps({"type": "heartbeat"}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 4001


@all_stores
def test_a_page_s_simultaneous_requests_check_its_session_once(
    engine, redis, tmp_path, test_district
):
    """When a session's cached check expires, the requests arriving together share one check."""
    import asyncio

    from datasources.users import get_user

    sessions = session_store.Sessions(make_settings(tmp_path, test_district), engine, redis)
    token, _sid = sessions.issue(get_user(engine, "boss"))
    calls = []
    real = sessions._load

    def counted(*args):
        calls.append(args)
        time.sleep(0.05)  # a store that takes a moment to answer
        return real(*args)

    sessions._load = counted  # type: ignore[method-assign]

    async def main():
        first = await asyncio.gather(*(sessions.resolve(token, 10.0) for _ in range(20)))
        cached = await sessions.resolve(token, 10.0)
        expired = await asyncio.gather(*(sessions.resolve(token, 0.0) for _ in range(5)))
        return first, cached, expired

    first, cached, expired = asyncio.run(main())
    assert {u.username for u in first} == {"boss"} and cached.username == "boss"
    assert all(u.username == "boss" for u in expired)
    assert len(calls) == 2  # once for the first twenty, once for the five after expiry
