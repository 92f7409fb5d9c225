/* Map styling for dash-leaflet. hideout = {values: {code: number}, breaks: [...], colors: [...],
 * nodata, pulse: {code: 1}, selected, focus, stroke, lang, label, format}. Every grid polygon gets
 * the class `grid-cell` (docs/contract.md, section 4) and its grid code as `data-code`.
 *
 * The hideout arrives in the store `grid-style` (callbacks/map_.py, the live socket) and
 * `restyle` applies it to the polygons already drawn, in place: only the grids whose style
 * changed get Leaflet's setStyle (and their pulse/selected classes). Handing it to the GeoJSON
 * component's `hideout` instead would make dash-leaflet 1.1 clear and rebuild all 607 polygons
 * on each change. Geometry that arrives later is drawn with the newest hideout (`gridStyle`). */
(function () {
  'use strict';
  // The grid layer's polygons drawn now, by grid code (added in onEachFeature, dropped on remove).
  var cells = {};

  // Grids with an unanswered call blink (wushi.css): two style changes a second, only while
  // some grid pulses, and none for a user who asked for reduced motion.
  var still = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  if (!still) {
    setInterval(function () {
      var root = document.documentElement;
      if (root.classList.contains('wushi-blink') || document.querySelector('path.grid-cell.pulse')) {
        root.classList.toggle('wushi-blink');
      }
    }, 500);
  }

  function styleKey(s) {
    return s.fillColor + '|' + s.fillOpacity + '|' + s.color + '|' + s.weight + '|' + s.className;
  }

  function register(feature, layer) {
    var code = feature.properties.code;
    cells[code] = layer;
    layer.on('add', function () {
      var el = layer.getElement && layer.getElement();
      if (el) { el.setAttribute('data-code', code); }
    });
    layer.on('remove', function () {
      if (cells[code] === layer) { delete cells[code]; }
    });
  }

  function restyle(h) {
    if (!h || !h.colors) {
      // The page's placeholder before its first colours: it must not grey out a map that a
      // newer hideout has already coloured (the live socket's may come first).
      if (!window.wushiHideout) { window.wushiHideout = h || {}; }
      return 0;
    }
    window.wushiHideout = h;
    var changed = 0;
    for (var code in cells) {
      var layer = cells[code];
      var s = window.wushi.map.gridStyle(layer.feature, {hideout: h});
      var key = styleKey(s);
      if (layer.__wushiStyle === key) { continue; }
      layer.__wushiStyle = key;
      changed += 1;
      layer.setStyle(s);  // options.className too, for a later re-add
      var el = layer.getElement && layer.getElement();
      if (el) {
        el.classList.toggle('pulse', s.className.indexOf(' pulse') >= 0);
        el.classList.toggle('selected', s.className.indexOf(' selected') >= 0);
      }
    }
    return changed;
  }

window.wushi = Object.assign({}, window.wushi, {
  map: {
    restyle: restyle,
    gridStyle: function (feature, context) {
      // The newest hideout the page has seen: the layer's own is the page's first, and
      // geometry that loads after the colours (cold server, slow network) must not stay grey.
      var h = window.wushiHideout || (context && context.hideout) || {};
      var code = feature.properties.code;
      var v = (h.values || {})[code];
      var fill = h.nodata || '#d9d9d9';
      if (v !== undefined && v !== null) {
        var breaks = h.breaks || [];
        var colors = h.colors || ['#3182bd'];
        var k = 0;  // a break is the lowest value of the next class
        while (k < breaks.length && v >= breaks[k]) { k += 1; }
        fill = colors[Math.min(k, colors.length - 1)];
      }
      var cls = 'grid-cell';
      if ((h.pulse || {})[code]) { cls += ' pulse'; }
      if (h.selected === code) { cls += ' selected'; }
      var dim = h.focus && code.indexOf(h.focus) !== 0;
      return {
        className: cls, fillColor: fill, fillOpacity: dim ? 0.25 : 0.85,
        color: h.stroke || '#ffffff', weight: h.selected === code ? 3 : 0.6
      };
    },
    outlineStyle: function (feature, context) {
      var h = (context && context.hideout) || {};
      return {
        className: 'outline-' + (h.level || 'village'), fill: false,
        color: h.color || '#333333', weight: h.weight || 1.5, interactive: false
      };
    },
    gridTag: function (feature, layer) {
      // Each grid's path carries its code (data-code), for tests and for tools reading the map;
      // the layer is kept for restyle.
      register(feature, layer);
    },
    gridTooltip: function (feature, layer) {
      window.wushi.map.gridTag(feature, layer);
      layer.bindTooltip(function () {
        var p = feature.properties;
        var h = window.wushiHideout || {};
        var v = (h.values || {})[p.code];
        var en = h.lang === 'en';
        var value = (v === undefined || v === null) ? '—' : (h.format ? h.format.replace('{}', v) : v);
        return '<b>' + (en ? p.name_en : p.name) + '</b><br>' +
          (en ? p.village_name_en + ', ' + p.town_name_en : p.town_name + ' · ' + p.village_name) +
          '<br>' + (en ? 'Grid leader: ' : '网格长：') + (p.leader || '—') + ' ' + (p.leader_phone || '') +
          '<br>' + (en ? 'Grid worker: ' : '网格员：') + (p.worker || '—') + ' ' + (p.worker_phone || '') +
          '<br>' + (h.label || '') + '：<b>' + value + '</b>';
      }, {sticky: true});
    }
  }
});
})();

/* The clientside callback of callbacks/map_.py, in the `wushi` namespace: hand the `grid-style`
 * store's hideout to `wushi.map.restyle` (the polygons drawn are restyled in place). */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.wushi = Object.assign({}, window.dash_clientside.wushi, {
  restyleMap: function (hideout) {
    window.wushi.map.restyle(hideout);
  }
});
