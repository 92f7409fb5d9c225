/* Socket state indicator for Dash 4.4 WebSocket callbacks.
 * Dash keeps its socket inside a SharedWorker ("dash-ws-worker") and exposes no public
 * connected/disconnected signal to the page. The worker broadcasts {type:"connected"} /
 * {type:"disconnected"} to every port that registered with {type:"connect"}, so we register
 * an extra, passive "renderer" on the same SharedWorker (same URL + name => same instance)
 * and mirror its state into the Dash component #ws-status via dash_clientside.set_props.
 * This relies on the (internal) worker message protocol of dash 4.4.x.
 */
(function () {
  function cfg() {
    var el = document.getElementById('_dash-config');
    return el ? JSON.parse(el.textContent) : null;
  }
  var state = 'connecting';
  var since = Date.now();
  function show(s) {
    state = s; since = Date.now();
    window.__wsState = s;
    (window.__wsStateLog = window.__wsStateLog || []).push([s, Date.now()]);
    function apply() {
      var el = document.getElementById('ws-status');
      if (window.dash_clientside && window.dash_clientside.set_props && el) {
        // The page gives the labels in its language as data attributes.
        var label = el.getAttribute('data-label-' + s) || s;
        window.dash_clientside.set_props('ws-status', {children: label, 'data-state': s});
      } else { setTimeout(apply, 100); }
    }
    apply();
  }
  function start() {
    var c = cfg();
    if (!c || !c.websocket || !c.websocket.worker_url || typeof SharedWorker === 'undefined') return;
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var serverUrl = proto + '//' + location.host + c.websocket.url;
    var id = 'ws-watch-' + Math.random().toString(36).slice(2);
    var w = new SharedWorker(c.websocket.worker_url, {name: 'dash-ws-worker'});
    function hello() {
      w.port.postMessage({type: 'connect', rendererId: id,
        payload: {serverUrl: serverUrl, inactivityTimeout: c.websocket.inactivity_timeout,
                  heartbeatInterval: c.websocket.heartbeat_interval}});
    }
    w.port.onmessage = function (e) {
      var m = e.data || {};
      if (m.type === 'connected') show('connected');
      else if (m.type === 'disconnected') show('reconnecting');
    };
    w.port.start();
    hello();
    // The worker gives up after 10 retries (~3 min of backoff). Re-sending "connect" while
    // disconnected restarts its connect loop, so a long outage still recovers without reload.
    setInterval(function () { if (state !== 'connected' && Date.now() - since > 15000) { since = Date.now(); hello(); } }, 5000);
    // Pages are re-rendered on navigation and language changes: keep the indicator in step.
    setInterval(function () {
      var el = document.getElementById('ws-status');
      if (el && el.getAttribute('data-state') !== state) { show(state); }
    }, 500);
    window.addEventListener('pagehide', function () { w.port.postMessage({type: 'disconnect', rendererId: id}); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
