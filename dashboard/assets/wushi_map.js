/* Map styling for dash-leaflet: the grid layer is restyled through `hideout` only, so live
 * updates never resend geometry. hideout = {values: {code: number}, breaks: [...], colors: [...],
 * nodata, pulse: {code: 1}, selected, focus}. Every grid polygon gets the class `grid-cell`
 * (CONTRACT.md section 4) and its grid code as `data-code`. */
window.wushi = Object.assign({}, window.wushi, {
  map: {
    gridStyle: function (feature, context) {
      var h = (context && context.hideout) || {};
      // dash-leaflet 1.1 ignores a hideout that arrives while the geometry is still loading
      // (cold server, slow network) and then draws with the first one, which has no values:
      // the map stayed grey until the next restyle. Use the newest hideout the page has seen.
      var latest = window.wushiHideout;
      if (latest && latest !== h && !Object.keys(h.values || {}).length) { h = latest; }
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
      // Each grid's path carries its code (data-code), for tests and for tools reading the map.
      layer.on('add', function () {
        var el = layer.getElement && layer.getElement();
        if (el) { el.setAttribute('data-code', feature.properties.code); }
      });
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
