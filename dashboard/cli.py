"""The ``wushi`` command line (docs/contract.md, section 3).

Each command imports its heavy dependencies (SQLAlchemy, Dash, uvicorn, the worker) inside
itself, so ``wushi --help`` starts in a fraction of a second (docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import click
from pydantic import ValidationError

from dashboard.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]


def _engine(ctx: click.Context):
    from datasources.db import make_engine

    obj = ctx.ensure_object(dict)
    if "engine" not in obj:
        obj["engine"] = make_engine(_settings(ctx).resolved_database_url)
        # Close pooled connections when the command ends, not when the interpreter collects them.
        ctx.find_root().call_on_close(obj["engine"].dispose)
    return obj["engine"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Wushi (无事): the command-center dashboard of the 无事找书记 platform."""
    try:
        ctx.ensure_object(dict)["settings"] = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WUSHI_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from None


@main.group()
def db() -> None:
    """Database schema: migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations (creates the schema on an empty database)."""
    from datasources.db import current_revision, upgrade

    engine = _engine(ctx)
    upgrade(engine, revision)
    click.echo(f"database at revision {current_revision(engine)} ({engine.url.render_as_string()})")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the revision the database is at."""
    from datasources.db import current_revision

    click.echo(current_revision(_engine(ctx)) or "empty (run `wushi db upgrade`)")


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION ("base" empties the schema)."""
    from datasources.db import current_revision, downgrade

    engine = _engine(ctx)
    downgrade(engine, revision)
    click.echo(f"database at revision {current_revision(engine) or 'base'}")


def _progress_bar(desc: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" rows", unit_scale=True, disable=None, file=sys.stderr)


@main.command()
@click.option("--demo", is_flag=True, required=True, help="Generate the demo data set.")
@click.option("--seed", "seed_value", default=2022, show_default=True, help="Random seed.")
@click.option("--replace", is_flag=True, help="Delete stored people, devices and history first.")
@click.option("--no-history", is_flag=True, help="Only the geography, people and callers.")
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="History from this day (default 2021-01-01).",
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="History up to this day (default today)."
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.01, max=100),
    default=1.0,
    show_default=True,
    help="Multiply the history's volume (1 reproduces the published 2022 figures).",
)
@click.pass_context
def seed(
    ctx: click.Context,
    demo: bool,
    seed_value: int,
    replace: bool,
    no_history: bool,
    start: dt.datetime | None,
    end: dt.datetime | None,
    scale: float,
) -> None:
    """Generate the demo geography, people, callers and history (calibrated to 2022)."""
    from datasources.db import upgrade
    from datasources.demo.history import generate_history
    from datasources.demo.seed import has_people, seed_demo
    from datasources.rollups import rebuild_rollups
    from geo.partition import build_demo_geography

    engine = _engine(ctx)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    ranged = start is not None or end is not None
    seeded = has_people(engine)
    if seeded and not replace and not (ranged and not no_history):
        raise click.ClickException(
            "the database already holds demo data; use --replace to delete it and seed again, "
            "or --from/--to to regenerate the history of those days only"
        )
    started = time.perf_counter()
    if replace or not seeded:
        with _progress_bar("people") as bar:
            summary = seed_demo(
                engine,
                build_demo_geography(seed_value),
                now=now,
                seed=seed_value,
                replace=True,
                progress=lambda _label, n: bar.update(n),
            )
        click.echo(
            f"seeded {summary.towns} towns, {summary.villages} villages, {summary.grids} grids, "
            f"{summary.staff} staff, {summary.households} households "
            f"({summary.residents} residents), {summary.devices} one-key callers "
            f"in {time.perf_counter() - started:.1f} s"
        )
    if no_history:
        return
    first, last = (start.date() if start else None), (end.date() if end else None)
    with _progress_bar("history") as bar:

        def step(label: str, n: int) -> None:
            bar.set_postfix_str(label)
            bar.update(n)

        try:
            history = generate_history(
                engine, now=now, start=first, end=last, scale=scale, seed=seed_value, progress=step
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        bar.set_postfix_str("rollups")
        from datasources.demo.history import HISTORY_START
        from datasources.periods import local_day

        rebuild_rollups(engine, first or HISTORY_START, last or local_day(now))
    click.echo(
        f"history: {sum(history.rows.values())} rows "
        f"({', '.join(f'{n} {t}' for t, n in history.rows.items())}) "
        f"in {time.perf_counter() - started:.1f} s in all"
    )


@main.command()
@click.option("--year", type=click.IntRange(2000, 2100), help="A calendar year.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (with --to).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day, inclusive.")
@click.option("--town", help="Town code.")
@click.option("--village", help="Village code.")
@click.option("--grid", help="Grid code.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.pass_context
def kpi(
    ctx: click.Context,
    year: int | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    town: str | None,
    village: str | None,
    grid: str | None,
    as_json: bool,
) -> None:
    """Print the headline figures for a period and an area."""
    from datasources.kpi import UnknownArea, resolve_area
    from datasources.kpi import kpi as compute
    from datasources.periods import Period

    if year is not None and (start or end):
        raise click.UsageError("give either --year or --from/--to, not both")
    if year is not None:
        period = Period.year(year)
    elif start and end:
        try:
            period = Period(start.date(), end.date())
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    else:
        raise click.UsageError("give --year Y or both --from and --to")
    engine = _engine(ctx)
    try:
        area = resolve_area(
            engine,
            town=town,
            village=village,
            grid=grid,
            district_code=_settings(ctx).district_code,
        )
    except UnknownArea as exc:
        raise click.BadParameter(str(exc)) from None
    figures = compute(engine, area, period, dt.datetime.now(dt.UTC))
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False))
        return
    click.echo(f"{area.name} ({area.code}) {period.start} – {period.end}")
    for key, value in figures.items():
        if key not in ("area", "period"):
            click.echo(f"  {key}: {json.dumps(value, ensure_ascii=False)}")


@main.group()
def rollups() -> None:
    """Daily rollups behind the figures."""


@rollups.command("rebuild")
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day (default: the first stored).",
)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: today).")
@click.pass_context
def rollups_rebuild(ctx: click.Context, start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Recompute the daily rollups from the raw rows."""
    from datasources.demo.history import HISTORY_START
    from datasources.periods import local_day
    from datasources.rollups import rebuild_rollups

    first = start.date() if start else HISTORY_START
    last = end.date() if end else local_day(dt.datetime.now(dt.UTC))
    began = time.perf_counter()
    n = rebuild_rollups(_engine(ctx), first, last)
    click.echo(
        f"rebuilt {n} rollup rows for {first} – {last} in {time.perf_counter() - began:.1f} s"
    )


@main.group()
def geo() -> None:
    """Boundaries: import real grids, export the current ones."""


@geo.command("export")
@click.option(
    "--level",
    type=click.Choice(["district", "town", "village", "grid"]),
    default="grid",
    show_default=True,
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def geo_export(ctx: click.Context, level: str, output: Path | None) -> None:
    """Print the stored boundaries at LEVEL as a GeoJSON FeatureCollection."""
    from datasources.geography import load_geography
    from geo.geojson import dumps, to_feature_collection

    try:
        geography = load_geography(_engine(ctx), _settings(ctx).district_code)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    text = dumps(to_feature_collection(geography, level))
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@geo.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--replace-all",
    is_flag=True,
    help="Also delete people, devices and history that refer to areas the file removes.",
)
@click.pass_context
def geo_import(ctx: click.Context, file: Path, replace_all: bool) -> None:
    """Validate FILE (GeoJSON grids) and, only if all of it is valid, replace the geography."""
    from datasources.audit import record
    from datasources.db import upgrade
    from datasources.geography import GeographyInUse, replace_geography
    from geo.validate import parse_import

    settings = _settings(ctx)
    result = parse_import(file.read_bytes(), district_code=settings.district_code)
    if result.geography is None:
        for problem in result.problems:
            click.echo(f"error: {problem}", err=True)
        raise click.ClickException(
            f"{len(result.problems)} problem(s) in {file}; nothing was imported"
        )
    engine = _engine(ctx)
    upgrade(engine)
    try:
        replace_geography(engine, result.geography, replace_all=replace_all)
    except GeographyInUse as exc:
        raise click.ClickException(f"{exc}; nothing was imported") from None
    g = result.geography
    record(
        engine,
        action="geo.import",
        username=None,
        detail={"file": file.name, "towns": len(g.towns), "grids": len(g.grids)},
    )
    click.echo(
        f"imported {len(g.towns)} towns, {len(g.villages)} villages, {len(g.grids)} grids "
        f"from {file}"
    )


@main.command()
@click.option("--consumer", default=None, help="Consumer name in the group (default: host name).")
@click.option("--no-scheduler", is_flag=True, help="Do not run the periodic jobs here.")
@click.pass_context
def worker(ctx: click.Context, consumer: str | None, no_scheduler: bool) -> None:
    """Store the event stream in the database and keep the live state (until SIGTERM)."""
    # The worker's metrics are its own (WUSHI_WORKER_METRICS_PORT), never in the web's shared
    # multiprocess directory: drop it before prometheus_client is imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from dashboard.logs import configure_logging
    from dashboard.worker import run_worker

    settings = _settings(ctx)
    configure_logging(settings)
    run_worker(settings, consumer=consumer, with_scheduler=not no_scheduler)


@main.command()
@click.option("--rate", type=float, required=True, help="Events per second, all kinds together.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Story time speed-up.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--seed", "seed_value", type=int, default=None, help="Random seed.")
@click.pass_context
def simulate(
    ctx: click.Context, rate: float, speed: float, duration: float | None, seed_value: int | None
) -> None:
    """Publish realistic live events into the stream (calls, tickets, points, ...)."""
    from dashboard.embedded_redis import redis_from_settings, redis_server_for
    from datasources.simulator import run_simulation

    settings = _settings(ctx)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with redis_server_for(settings) as url:
        redis = redis_from_settings(settings, url)
        try:
            sent = run_simulation(
                _engine(ctx),
                redis,
                settings.stream_key(),
                rate=rate,
                speed=speed,
                duration=duration,
                maxlen=settings.stream_maxlen,
                seed=seed_value,
                should_stop=stop.is_set,
            )
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"published {sent} events to {settings.stream_key()}")


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Web server processes.",
)
@click.pass_context
def web(ctx: click.Context, workers: int) -> None:
    """Serve the dashboard, the API and the logins (uvicorn) until Ctrl-C or SIGTERM.

    With --workers N, N processes share the port; each is stateless apart from caches (sessions,
    login limits, the live state and the stream live in Redis and SQL). Their metrics are summed
    through prometheus_client's multiprocess directory (docs/deploy.md).
    """
    import uvicorn

    from dashboard.logs import configure_logging

    settings = _settings(ctx)
    if not settings.redis_url:
        raise click.ClickException(
            "WUSHI_REDIS_URL is not set: `wushi web` serves a shared Redis; "
            "run `wushi demo` for everything on one machine with an embedded Redis"
        )
    configure_logging(settings)
    metrics_dir = _prepare_metrics_dir(settings, workers)
    click.echo(
        f"serving http://{settings.host}:{settings.port}/ with {workers} process(es)"
        + (f" (metrics in {metrics_dir})" if metrics_dir else "")
    )
    uvicorn.run(
        "dashboard.asgi:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        # Our logging (dashboard.logs), set up again in every process by the app factory; our
        # request log replaces uvicorn's access log, which would print query strings.
        log_config=None,
        access_log=False,
        # X-Forwarded-For is believed only from WUSHI_TRUSTED_PROXIES (dashboard.origin).
        proxy_headers=False,
        # Live pages keep their socket open: do not wait for them longer than this on stop.
        timeout_graceful_shutdown=10,
    )


def _prepare_metrics_dir(settings: Settings, workers: int) -> str | None:
    """Empty (and create) the web processes' shared Prometheus directory; return it.

    Several processes need prometheus_client's multiprocess mode: each writes its counters to
    files there and a scrape of any process sums them. ``PROMETHEUS_MULTIPROC_DIR`` wins when
    set (e.g. a tmpfs under /run); otherwise ``<var dir>/metrics/web-<port>``. One process needs
    nothing.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path and workers == 1:
        return None
    target = Path(path) if path else settings.var_dir / "metrics" / f"web-{settings.port}"
    # Files of an earlier run would be summed with this run's: start empty.
    if target.exists():
        for old in target.glob("*.db"):
            old.unlink()
    target.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(target.resolve())
    return str(target)


DEMO_USERS = (
    ("admin", "district", None, "区指挥中心"),
    ("town", "town", "洪集镇", "洪集镇干部"),
    ("village", "village", "会馆回民村", "会馆回民村书记"),
)


def _demo_logins(engine, settings) -> list[tuple[str, str, str]]:
    """Create (or reset) one login per role and return (username, password, area)."""
    from sqlalchemy import select

    from datasources.models import Town, Village
    from datasources.users import add_user, get_user, set_password

    out = []
    with engine.connect() as conn:
        towns = dict(conn.execute(select(Town.name, Town.code)).all())
        villages = dict(conn.execute(select(Village.name, Village.code)).all())
    for username, role, area_name, display in DEMO_USERS:
        area = {"town": towns, "village": villages}.get(role, {}).get(area_name or "")
        password = secrets.token_urlsafe(9)
        if get_user(engine, username) is None:
            add_user(engine, username, password, role, area, display_name=display)
        else:
            set_password(engine, username, password)
        out.append((username, password, area_name or "叶集区"))
    return out


@main.command()
@click.option("--rate", type=float, default=3.0, show_default=True, help="Simulated events/s.")
@click.option("--no-simulator", is_flag=True, help="Do not start the simulator.")
@click.pass_context
def demo(ctx: click.Context, rate: float, no_simulator: bool) -> None:
    """Run everything on one machine: database, Redis, history, simulator, worker and web."""
    import uvicorn

    from dashboard.embedded_redis import redis_server_for
    from dashboard.web import create_web
    from datasources.db import upgrade
    from datasources.demo.seed import has_people

    settings = _settings(ctx)
    engine = _engine(ctx)
    upgrade(engine)
    if not has_people(engine):
        click.echo("first run: generating the demo geography and history (about a minute)")
        ctx.invoke(seed, demo=True)
    logins = _demo_logins(engine, settings)
    with redis_server_for(settings) as redis_url:
        env = os.environ | {
            "WUSHI_REDIS_URL": redis_url,
            "WUSHI_DATABASE_URL": settings.resolved_database_url,
            "WUSHI_VAR_DIR": str(settings.var_dir),
            # Keep the terminal for the banner: the children log warnings only.
            "WUSHI_LOG_LEVEL": os.environ.get("WUSHI_LOG_LEVEL", "WARNING"),
        }
        command = [sys.executable, "-m", "dashboard.cli"]
        children = [subprocess.Popen([*command, "worker"], env=env)]
        if not no_simulator:
            children.append(subprocess.Popen([*command, "simulate", "--rate", str(rate)], env=env))
        url = f"http://{settings.host}:{settings.port}/"
        click.echo("")
        click.echo(f"  Wushi demo: {url}   (wall screen: {url}wall)")
        for username, password, area in logins:
            click.echo(f"  login {username:<8} password {password:<14} ({area})")
        click.echo(f"  ingest token: {settings.resolved_ingest_token}")
        click.echo("  Ctrl-C stops everything.")
        click.echo("")
        try:
            app = create_web(settings.model_copy(update={"redis_url": redis_url}))
            uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
            click.echo("demo stopped")


def _password_from_stdin() -> str:
    """Read the password: one line from stdin, or a hidden prompt when stdin is a terminal."""
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("--password-stdin: no password on stdin")
    return password


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Format rows as aligned columns, counting CJK characters as two cells wide."""

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    cols = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * n for n in cols], *rows]
    return "\n".join(
        "  ".join(cell + " " * (cols[i] - width(cell)) for i, cell in enumerate(line)).rstrip()
        for line in lines
    )


@main.group()
def users() -> None:
    """Logins: add, list, disable, enable, set passwords."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["district", "town", "village"]), required=True)
@click.option("--area", "area_code", default=None, help="Town or village code (not for district).")
@click.option("--display-name", default="", help="Name shown in the dashboard.")
@click.option(
    "--password-stdin", is_flag=True, required=True, help="Read the password from stdin (a line)."
)
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    role: str,
    area_code: str | None,
    display_name: str,
    password_stdin: bool,
) -> None:
    """Create the login NAME."""
    from datasources.db import upgrade
    from datasources.users import UserError, add_user

    password = _password_from_stdin()
    engine = _engine(ctx)
    upgrade(engine)
    try:
        user = add_user(engine, name, password, role, area_code, display_name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    where = f" of {user.area_name} ({user.area_code})" if user.area_code else ""
    click.echo(f"added {user.role} user {user.username}{where}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Print every login."""
    from datasources.users import list_users

    rows = [
        [
            u.username,
            u.role,
            f"{u.area_code} {u.area_name or '?'}" if u.area_code else "-",
            "yes" if u.disabled else "no",
            u.last_login_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime(
                "%Y-%m-%d %H:%M"
            )
            if u.last_login_at
            else "never",
        ]
        for u in list_users(_engine(ctx))
    ]
    click.echo(_table(["username", "role", "area", "disabled", "last login (UTC+8)"], rows))


def _user_change(ctx: click.Context, change: str, name: str, *args: str) -> None:
    from datasources import users as store

    try:
        getattr(store, change)(_engine(ctx), name, *args)
    except store.UserError as exc:
        raise click.ClickException(str(exc)) from None


@users.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Stop NAME from logging in (open sessions end within seconds)."""
    _user_change(ctx, "disable_user", name)
    click.echo(f"disabled {name}")


@users.command("enable")
@click.argument("name")
@click.pass_context
def users_enable(ctx: click.Context, name: str) -> None:
    """Let NAME log in again."""
    _user_change(ctx, "enable_user", name)
    click.echo(f"enabled {name}")


@users.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, required=True, help="Read the password from stdin (a line)."
)
@click.pass_context
def users_set_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Replace the password of NAME (its open sessions end)."""
    _user_change(ctx, "set_password", name, _password_from_stdin())
    click.echo(f"password of {name} changed")


@main.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--user", "username", default=None, help="Only entries of this username.")
@click.option("--action", default=None, help='Only this action ("login" includes login.failed).')
@click.pass_context
def audit(ctx: click.Context, limit: int, username: str | None, action: str | None) -> None:
    """Print the audit log, newest first."""
    from datasources.audit import entries

    rows = [
        [
            e.ts.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S"),
            e.username or "-",
            e.action,
            e.address or "-",
            e.area_code or "-",
            json.dumps(e.detail, ensure_ascii=False) if e.detail else "",
        ]
        for e in entries(_engine(ctx), limit=limit, username=username, action=action)
    ]
    click.echo(_table(["time (UTC+8)", "user", "action", "address", "area", "detail"], rows))


@main.group()
def kiosk() -> None:
    """Wall-screen kiosk tokens: issue, list, revoke."""


def _local(when: dt.datetime | None, never: str = "never") -> str:
    if when is None:
        return never
    return when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")


@kiosk.command("issue")
@click.argument("name")
@click.option("--town", default=None, help="Town code: the screen shows this town only.")
@click.option("--village", default=None, help="Village code: the screen shows this village only.")
@click.option("--by", "by", required=True, help="The district admin issuing it (a username).")
@click.option(
    "--base-url",
    default=None,
    help="The dashboard's address as the screen reaches it (default http://WUSHI_HOST:WUSHI_PORT).",
)
@click.pass_context
def kiosk_issue(
    ctx: click.Context,
    name: str,
    town: str | None,
    village: str | None,
    by: str,
    base_url: str | None,
) -> None:
    """Issue the kiosk token NAME for one wall screen (district, or --town / --village)."""
    from datasources.db import upgrade
    from datasources.kiosk import KioskError, issue

    if town and village:
        raise click.UsageError("give --town or --village, not both")
    settings = _settings(ctx)
    engine = _engine(ctx)
    upgrade(engine)
    try:
        made, token = issue(engine, name, by=by, town=town, village=village)
    except KioskError as exc:
        raise click.ClickException(str(exc)) from None
    base = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    where = f"{made.level} {made.area_code} {made.area_name}" if made.area_code else "district"
    click.echo(f"issued kiosk token {made.name} ({where}), read-only, /wall only")
    click.echo("open this address on the wall screen (shown once; keep it like a password):")
    click.echo(f"  {base}/wall?kiosk={token}")
    click.echo(f"revoke it with: wushi kiosk revoke {made.name}")


@kiosk.command("list")
@click.pass_context
def kiosk_list(ctx: click.Context) -> None:
    """Print every kiosk token (never the tokens themselves)."""
    from datasources.kiosk import list_kiosks

    rows = [
        [
            k.name,
            f"{k.level} {k.area_code} {k.area_name or '?'}" if k.area_code else "district",
            k.created_by,
            _local(k.created_at),
            "active" if k.active else f"revoked {_local(k.revoked_at)} by {k.revoked_by or '?'}",
            _local(k.last_seen_at),
        ]
        for k in list_kiosks(_engine(ctx))
    ]
    headers = ["name", "area", "issued by", "issued (UTC+8)", "state", "last seen (UTC+8)"]
    click.echo(_table(headers, rows))


@kiosk.command("revoke")
@click.argument("name")
@click.option("--by", "by", default=None, help="The district admin revoking it (optional).")
@click.pass_context
def kiosk_revoke(ctx: click.Context, name: str, by: str | None) -> None:
    """Revoke NAME: its screen is refused within seconds and disconnected within a minute."""
    from datasources.kiosk import KioskError, revoke

    try:
        revoke(_engine(ctx), name, by=by)
    except KioskError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked kiosk token {name}")


if __name__ == "__main__":
    main()
