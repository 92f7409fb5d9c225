/* Scale the fixed 1920x1080 wall canvas to fill any 16:9 screen without scrollbars. */
(function () {
  function fit() {
    var s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
    document.documentElement.style.setProperty('--wall-scale', String(s));
    document.body.classList.toggle('wall-mode', !!document.querySelector('.wall'));
  }
  window.addEventListener('resize', fit);
  new MutationObserver(fit).observe(document.documentElement, {childList: true, subtree: true});
  fit();
})();

/* The wall's clock, its "data as of" mark and its rotation (callbacks/wall.py), in the `wushi`
 * namespace. `fresh` is the `freshness` store ({as_of, lang, stale_s}, pushed by the live
 * socket); `rotation` the `wall-rotation` store ({metrics, towns, every_s}). Returns the clock,
 * the mark's text and class, and, when a new slot of `every_s` seconds began, its metric and
 * highlighted town. */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.wushi = Object.assign({}, window.dash_clientside.wushi, {
  wallTick: function (_n, fresh, rotation) {
    var now = new Date();
    var clock = now.toLocaleString('zh-CN', {timeZone: 'Asia/Shanghai', hour12: false});
    var f = fresh || {};
    var en = f.lang === 'en';
    var asOf = f.as_of ? new Date(f.as_of * 1000) : null;
    var stale = !asOf || (now - asOf) > f.stale_s * 1000;
    var text = (en ? 'Data as of ' : '数据截至 ') + (asOf ? asOf.toLocaleTimeString(
        'zh-CN', {timeZone: 'Asia/Shanghai', hour12: false}) : '—');
    if (stale) { text += en ? ' (stale)' : '（已过期）'; }
    var r = rotation || {metrics: [], towns: [], every_s: 0};
    var nu = window.dash_clientside.no_update;
    if (!(r.every_s > 0)) { return [clock, text, stale ? 'asof stale' : 'asof', nu, nu]; }
    var slot = Math.floor(now.getTime() / (r.every_s * 1000));
    var changed = window.__wushiSlot !== slot;
    window.__wushiSlot = slot;
    var metric = r.metrics.length ? r.metrics[slot % r.metrics.length] : nu;
    var town = r.towns.length ? r.towns[slot % r.towns.length] : nu;
    return [clock, text, stale ? 'asof stale' : 'asof', changed ? metric : nu, changed ? town : nu];
  }
});
