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


@main.command()
@click.option("--demo", is_flag=True, required=True, help="Generate the demo data set.")
@click.option("--seed", "seed_value", default=2022, show_default=True, help="Random seed.")
@click.option("--replace", is_flag=True, help="Delete stored people, devices and history first.")
@click.pass_context
def seed(ctx: click.Context, demo: bool, seed_value: int, replace: bool) -> None:
    """Generate the demo geography, staff, households and one-key callers."""
    from geo.partition import build_demo_geography
    from tqdm import tqdm

    from datasources.db import upgrade
    from datasources.demo.seed import AlreadySeeded, seed_demo

    engine = _engine(ctx)
    upgrade(engine)
    started = time.perf_counter()
    geography = build_demo_geography(seed_value)
    with tqdm(desc="seeding", unit="rows", disable=None, file=sys.stderr) as bar:
        try:
            summary = seed_demo(
                engine,
                geography,
                now=dt.datetime.now(dt.UTC),
                seed=seed_value,
                replace=replace,
                progress=lambda _label, n: bar.update(n),
            )
        except AlreadySeeded as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"seeded {summary.towns} towns, {summary.villages} villages, {summary.grids} grids, "
        f"{summary.staff} staff, {summary.households} households ({summary.residents} residents), "
        f"{summary.devices} one-key callers in {time.perf_counter() - started:.1f} s"
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
    from geo.geojson import dumps, to_feature_collection

    from datasources.geography import load_geography

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
    from geo.validate import parse_import

    from datasources.audit import record
    from datasources.db import upgrade
    from datasources.geography import GeographyInUse, replace_geography

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
