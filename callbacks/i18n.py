"""The language switch: Chinese first, English on request, remembered in the browser."""

from __future__ import annotations

from urllib.parse import urlencode

from dash import ClientsideFunction, Dash, Input, Output, State
from dash.exceptions import PreventUpdate

from callbacks.router import parse_search
from dashboard.sources import Sources
from layouts import ids
from layouts.i18n import normal_lang


def switched_search(search: str | None, lang: str) -> str:
    """Return the query string with ``lang`` set (Chinese is the default, so it is dropped)."""
    params = parse_search(search)
    params.pop("lang", None)
    if lang == "en":
        params["lang"] = "en"
    return "?" + urlencode(params) if params else ""


def register(app: Dash, sources: Sources) -> None:
    """Register the language switch."""

    @app.callback(
        Output(ids.LANG, "data"),
        Output(ids.URL, "search", allow_duplicate=True),
        Input(ids.LANG_SWITCH, "n_clicks"),
        State(ids.LANG, "data"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def switch_language(clicks, lang, search):
        if not clicks:
            raise PreventUpdate
        current = normal_lang(parse_search(search).get("lang") or lang)
        new = "en" if current == "zh" else "zh"
        return new, switched_search(search, new)

    # A shared link with ``?lang=en`` (or ``zh``) makes that the language of the whole page,
    # and remembers it, as the switch does: otherwise the page frame would follow the link and
    # the panels (which read the stored language) the browser's earlier choice.
    # (dashboard/assets/wushi_i18n.js)
    app.clientside_callback(
        ClientsideFunction(namespace="wushi", function_name="langFromSearch"),
        Output(ids.LANG, "data", allow_duplicate=True),
        Input(ids.URL, "search"),
        State(ids.LANG, "data"),
        prevent_initial_call="initial_duplicate",
    )
