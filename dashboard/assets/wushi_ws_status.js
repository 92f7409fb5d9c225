/* Socket state indicator for Dash 4.4 WebSocket callbacks.
 * Dash keeps its socket inside a SharedWorker ("dash-ws-worker") and exposes no public
 * connected/disconnected signal to the page. The worker broadcasts {type:"connected"} /
 * {type:"disconnected"} to every port that registered with {type:"connect"}, so we register
 * an extra, passive "renderer" on the same SharedWorker (same URL + name => same instance)
 * and mirror its state into the Dash component #ws-status via dash_clientside.set_props.
 * This relies on the (internal) worker message protocol of dash 4.4.x.
 *
 * The badge shows "reconnecting" also while the socket is up but the server's live callback
 * has lost its Redis subscription: the callback sets data-feed="down" on #ws-status then, and
 * "up" once subscribed again (callbacks/live.py). See docs/reliability.md.
 *
 * The "data stale" badge (#db-stale) is the server's to show while the socket is up. While it
 * is down, this script asks /healthz every two seconds; when that says the database is failing
 * (the server also refuses sockets then: it cannot check sessions), it shows the badge itself,
 * and hides it again when the database answers. The server's state replaces it on reconnect.
 */
(function () {
  function cfg() {
    var el = document.getElementById('_dash-config');
    return el ? JSON.parse(el.textContent) : null;
  }
  var sock = 'connecting'; // the socket, as the worker reports it
  var since = Date.now();  // when it last changed (or we last nudged the worker)
  var failures = 0;        // failed attempts since the last open or our last nudge
  var ownStale = false;    // the stale badge is shown by this script, not by the server
  // Close reasons of dashboard/auth.py for a login or kiosk token that ended.
  var ENDED = {'session ended': 1, 'session changed': 1, 'kiosk revoked': 1};
  function effective(el) {
    if (sock !== 'connected') return sock;
    return el.getAttribute('data-feed') === 'down' ? 'reconnecting' : 'connected';
  }
  function render() {
    var el = document.getElementById('ws-status');
    if (!el || !(window.dash_clientside && window.dash_clientside.set_props)) return;
    var s = effective(el);
    if (window.__wsState !== s) {
      window.__wsState = s;
      (window.__wsStateLog = window.__wsStateLog || []).push([s, Date.now()]);
    }
    // Pages are re-rendered on navigation and language changes: keep the indicator in step.
    if (el.getAttribute('data-state') === s) return;
    // The page gives the labels in its language as data attributes.
    var label = el.getAttribute('data-label-' + s) || s;
    window.dash_clientside.set_props('ws-status', {children: label, 'data-state': s});
  }
  function setSock(s) { sock = s; since = Date.now(); render(); }
  function hhmm(d) {
    return d.toLocaleTimeString('zh-CN', {timeZone: 'Asia/Shanghai', hour12: false,
                                          hour: '2-digit', minute: '2-digit'});
  }
  function markStale(dbDown) {
    var el = document.getElementById('db-stale');
    if (!el || !(window.dash_clientside && window.dash_clientside.set_props)) return;
    if (dbDown && el.hidden) {
      var label = (el.getAttribute('data-label') || '{since}').replace('{since}', hhmm(new Date()));
      window.dash_clientside.set_props('db-stale', {hidden: false, children: label});
      ownStale = true;
    } else if (!dbDown && ownStale) {
      window.dash_clientside.set_props('db-stale', {hidden: true, children: ''});
      ownStale = false;
    }
  }
  // /healthz: {ok: can the server take a socket now, db: false if it reports its database down}
  function health() {
    return fetch('/healthz', {cache: 'no-store', credentials: 'same-origin'}).then(function (r) {
      return r.json().then(function (b) { return {ok: r.ok, db: b.database === 'ok'}; },
                           function () { return {ok: r.ok, db: null}; });
    }, function () { return {ok: false, db: null}; });
  }
  function start() {
    var c = cfg();
    if (!c || !c.websocket || !c.websocket.worker_url || typeof SharedWorker === 'undefined') return;
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var serverUrl = proto + '//' + location.host + c.websocket.url;
    var id = 'ws-watch-' + Math.random().toString(36).slice(2);
    var w = new SharedWorker(c.websocket.worker_url, {name: 'dash-ws-worker'});
    function hello() {
      if (sock === 'disconnected') return; // the login or kiosk token ended: stay off
      w.port.postMessage({type: 'connect', rendererId: id,
        payload: {serverUrl: serverUrl, inactivityTimeout: c.websocket.inactivity_timeout,
                  heartbeatInterval: c.websocket.heartbeat_interval}});
    }
    // The worker waits 1, 2, 4, 8, 16 then 30 s between attempts, so after a long outage the
    // page could stay disconnected half a minute after the server is back. "connect" makes it
    // try at once and start its waits from 1 s again. We send it only while /healthz says the
    // server cannot take a socket (down, or its database or Redis is): that attempt fails and
    // clears the worker's long wait, and an attempt that succeeds never races the worker's own
    // pending one (which would open a second socket). Attempts stay 1-3 s apart.
    function check() {
      health().then(function (h) {
        if (sock === 'connected') return;
        if (h.db !== null) markStale(!h.db);
        if (!h.ok && failures >= 2) { failures = 0; since = Date.now(); hello(); }
      });
    }
    w.port.onmessage = function (e) {
      var m = e.data || {};
      if (m.type === 'connected') { failures = 0; ownStale = false; setSock('connected'); }
      else if (m.type === 'disconnected') {
        // Closed by the server because the login or the wall's kiosk token ended (code 4001,
        // which the worker does not retry): show "disconnected" for good, never reconnect.
        if (ENDED[(m.payload || {}).reason]) { setSock('disconnected'); return; }
        failures += 1;
        setSock('reconnecting');
        if (failures >= 2) check();
      }
    };
    w.port.start();
    hello();
    // The worker gives up after 10 retries and then reports nothing more: re-send "connect"
    // while disconnected and silent, so a long outage still recovers without a reload.
    setInterval(function () {
      if (sock !== 'connected' && Date.now() - since > 15000) { since = Date.now(); failures = 0; hello(); }
    }, 5000);
    // The server's data-feed mark and re-rendered pages.
    setInterval(render, 250);
    setInterval(function () { if (sock === 'reconnecting') check(); }, 2000);
    window.addEventListener('pagehide', function () { w.port.postMessage({type: 'disconnect', rendererId: id}); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
