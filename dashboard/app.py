"""The app factory: ``create_app(settings)`` builds the Dash app; nothing happens at import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dash import Dash, dcc, html
from fastapi import FastAPI

from callbacks.panels import warm_figures
from callbacks.registry import register_all
from dashboard.kiosk_guard import WALL_PATH, page_path
from dashboard.settings import Settings
from dashboard.sources import Sources, build_sources
from datasources.identity import CURRENT_USER
from layouts import ids
from layouts.i18n import t
from layouts.pages import PageContext, page, wall

ASSETS = Path(__file__).resolve().parent / "assets"


def root_layout() -> html.Div:
    """Return the shell every page lives in: location, stores, and the page slot."""
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            dcc.Store(id=ids.LANG, storage_type="local", data="zh"),
            dcc.Store(id=ids.FILTERS, data={}),
            dcc.Store(id=ids.LIVE_VERSION),
            dcc.Store(id=ids.FRESHNESS),
            dcc.Store(id=ids.WALL_FOCUS),
            html.Div(id=ids.PAGE),
        ]
    )


def _empty_context(path: str, metric: str) -> PageContext:
    """Return a page context without data, for layouts that only list the components."""
    return PageContext(
        lang="zh",
        path=path,
        username="",
        filters={},
        options={"towns": [], "villages": [], "grids": []},
        metrics=[],
        metric=metric,
        map_version="0",
        map_bounds=None,
        hideout={},
    )


def _validation_layout() -> html.Div:
    """Return every page at once, so Dash can check each callback's ids."""
    ctx = _empty_context("/", "closure_rate")
    return html.Div([root_layout(), page(ctx), wall(ctx)])


def wall_layouts() -> tuple[html.Div, Any]:
    """Return what a wall screen shows: the page's shell and the wall.

    ``create_web`` hands their component ids to the login middleware, which lets a kiosk token
    run only the callbacks that write to them (``dashboard/kiosk_guard.py``).
    """
    return root_layout(), wall(_empty_context("/wall", "calls"))


# Component libraries the wall never renders (no table on it): their entry bundles stay out of
# its page. AG Grid's alone is 1.3 MB (356 KB gzipped), a third of a wall screen's first load.
NOT_ON_WALL = ("dash_ag_grid/", "dash/dash_table/")


def shows_wall(path: str, kiosk: bool) -> bool:
    """True when a page load of ``path`` gets the wall (as ``callbacks/router.py`` decides):
    ``/wall``, or any path for a wall screen's kiosk token."""
    return page_path(path) == WALL_PATH or kiosk


def without_scripts(index: str, prefix: str, packages: tuple[str, ...]) -> str:
    """Return the page ``index`` without the ``<script>`` tags of ``packages``' bundles."""
    suites = re.escape(prefix + "_dash-component-suites/")
    names = "|".join(re.escape(p) for p in packages)
    return re.sub(rf'<script src="{suites}(?:{names})[^"]*"></script>\n?', "", index)


class WushiDash(Dash):
    """Dash whose wall page loads only the component libraries the wall renders.

    Dash writes a ``<script>`` for every registered library into every page. The wall is
    reached only by a full page load (the pages link to it with a plain ``<a>``, a kiosk gets
    nothing else) and has no link to another page, so a library it never renders is never
    needed in that document; the other pages keep every script, since they switch among each
    other in the browser.
    """

    def index(self, *args: Any, **kwargs: Any) -> str:
        page = super().index(*args, **kwargs)
        request = self.backend.request_adapter()
        user = CURRENT_USER.get()
        if shows_wall(urlsplit(request.url).path, bool(user and user.kiosk)):
            prefix = self.config.requests_pathname_prefix
            page = without_scripts(page, prefix, NOT_ON_WALL)
        return page


def create_app(
    settings: Settings, sources: Sources | None = None, server: FastAPI | None = None
) -> Dash:
    """Build the Dash app on the FastAPI backend, with every callback registered."""
    if sources is None:
        sources = build_sources(settings)
    # Dash 4.4's annotations are narrower than what it documents and accepts: ``server`` may be
    # a server instance, ``update_title`` None (no "Updating..." title), and ``validation_layout``
    # takes its type from its initial None.
    app = WushiDash(
        __name__,
        server=server  # type: ignore[arg-type]
        if server is not None
        else FastAPI(docs_url=None, redoc_url=None, openapi_url=None),
        backend="fastapi",
        assets_folder=str(ASSETS),
        title=t("app_title", "zh"),
        update_title=None,  # type: ignore[arg-type]
        suppress_callback_exceptions=True,
        compress=False,
        # A wall screen idles for hours: never close its socket for inactivity (Dash's 4001
        # close is not retried by the client).
        websocket_inactivity_timeout=0,
        websocket_heartbeat_interval=10_000,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = root_layout
    app.validation_layout = _validation_layout()  # type: ignore[assignment]
    register_all(app, sources)
    app.wushi_sources = sources  # type: ignore[attr-defined]
    # Now, not on the first request: Dash lists the assets (CSS, the map's style functions)
    # in a hook that its index page does not always run first; a wall whose first request
    # was the kiosk redirect then came up unstyled and without its map.
    app._setup_server()
    return app


# The web process's background warmer runs this (``dashboard/web.py::start_warmer``); handed
# on from here so the web layer builds on the app factory, not on the callbacks.
__all__ = ["create_app", "wall_layouts", "warm_figures"]
