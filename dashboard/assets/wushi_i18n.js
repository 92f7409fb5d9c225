/* Clientside callbacks of the language switch (callbacks/i18n.py), in the `wushi` namespace. */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.wushi = Object.assign({}, window.dash_clientside.wushi, {
  /* A link with `?lang=en` (or `zh`) sets the page's stored language; otherwise no update. */
  langFromSearch: function (search, lang) {
    var m = /[?&]lang=(en|zh)(&|$)/.exec(search || '');
    if (!m || m[1] === lang) { return window.dash_clientside.no_update; }
    return m[1];
  }
});
