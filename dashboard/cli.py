"""The ``wushi`` command line (CONTRACT.md section 3)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError

from dashboard.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]  # type: ignore[no-any-return]


def _engine(ctx: click.Context):
    from datasources.db import make_engine

    obj = ctx.ensure_object(dict)
    if "engine" not in obj:
        obj["engine"] = make_engine(_settings(ctx).resolved_database_url)
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
@click.option("--json", "as_json", is_flag=True, help="Print the JSON object of CONTRACT.md.")
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
    import json

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


if __name__ == "__main__":
    main()
