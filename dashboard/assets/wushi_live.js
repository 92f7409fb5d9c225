/* Clientside callbacks of the live page (callbacks/live.py), in the `wushi` namespace. */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.wushi = Object.assign({}, window.dash_clientside.wushi, {
  /* Mirror what the live socket needs of the page (filters, language, path, metric, the wall's
   * highlighted town) into the `live-selection` store, so the server reads it in one round trip. */
  liveSelection: function (filters, lang, path, metric, focus) {
    return {filters: filters || {}, lang: lang, path: path, metric: metric, focus: focus};
  }
});
