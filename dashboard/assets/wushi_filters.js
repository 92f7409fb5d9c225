/*
 * The filters follow the dropdowns in the browser: a town chosen is one state change, not a
 * round trip to the server before the panels may even ask (docs/performance.md, "Town switch").
 * Registered in callbacks/filters.py with
 * ClientsideFunction(namespace="wushi", function_name="filters").
 *
 * The arguments are the callback's inputs in order (town, village, grid, start, end, the up
 * button's clicks) and the filter-scope store the server wrote into the page: the codes a town
 * official or village secretary is pinned to and how many digits a town and a village code
 * have. Which dropdown fired is read from the callback context's own input ids, so no id is
 * written into this file. Pinning here only keeps the dropdowns honest: the server pins every
 * request again (datasources/identity.py::clamp_area).
 */
(function () {
  "use strict";

  function filters(town, village, grid, start, end, _up, scope) {
    const cc = window.dash_clientside;
    const context = cc.callback_context;
    const ids = (context.inputs_list || []).map((input) => input.id);
    const fired = new Set((context.triggered || []).map((t) => t.prop_id.split(".")[0]));
    const changed = (position) => ids[position] !== undefined && fired.has(ids[position]);
    const s = scope || {};
    const digits = s.digits || {};
    const parent = (code, level) => (code && digits[level] ? code.slice(0, digits[level]) : null);
    const f = {
      town: town || null,
      village: village || null,
      grid: grid || null,
      start: (start || "").slice(0, 10) || null,
      end: (end || "").slice(0, 10) || null,
    };
    // The deepest choice that changed wins: a map click may set several dropdowns at once.
    if (changed(2) && grid) {
      f.village = parent(grid, "village") || f.village;
      f.town = parent(grid, "town") || f.town;
    } else if (changed(1)) {
      f.grid = null;
      if (village) {
        f.town = parent(village, "town") || f.town;
      }
    } else if (changed(0)) {
      f.village = null;
      f.grid = null;
    } else if (changed(5)) {
      const level = f.grid ? "grid" : f.village ? "village" : "town";
      f[level] = null;
    }
    if (s.village) {
      f.village = s.village;
      f.town = s.town || parent(s.village, "town");
    } else if (s.town) {
      f.town = s.town;
    }
    if (f.village && !(f.town && f.village.startsWith(f.town))) {
      f.village = null;
    }
    if (f.grid && !(f.village && f.grid.startsWith(f.village))) {
      f.grid = null;
    }
    const keep = (now, was) => ((now || null) === (was || null) ? cc.no_update : now);
    return [f, keep(f.town, town), keep(f.village, village), keep(f.grid, grid)];
  }

  // The same object Dash's renderer fills in (no_update, callback_context): extend, not replace.
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.wushi = Object.assign({}, window.dash_clientside.wushi, { filters });
})();
