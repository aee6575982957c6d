"""The heatmap as one HTML page: the verdict and its diagnosis, the run's time and settings, a
sticky bar (the legend, the layer toggles, the cells drawn), the matrix, and for a big mesh a
drill-down panel (clicking a block draws its hosts' pairs). Inline CSS and script, no network.

The page's state is in its address too: `#layers=tunnel,underlay` turns those layers on,
`#block=3,5` opens a block's pairs (a link to a block's view). The script writes what it drew
into #drawn and #drill (counts by state, fills, the legend's box in the viewport): what fleet's
own browser tests read.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator

from fleet.formats.heatmap_cells import (
    DRILL_BASE,
    DRILL_M,
    DRILL_T,
    DRILL_U,
    JUDGED,
    KINDS,
    OK_PLAIN,
    PATTERNS,
    STATE_COLOURS,
    band_labels,
    blocks,
    drill_rows,
)
from fleet.formats.heatmap_svg import VERDICT_COLOURS, Run, legend_entries, settings, svg, swatch
from fleet.mesh.model import Mesh
from fleet.mesh.verdict import MeshVerdict, judge

_CSS = """body{font-family:sans-serif;margin:0 16px 16px;color:#222}
h1{font-size:18px;margin:10px 0 2px}#run-verdict{font-size:20px;font-weight:bold;margin:4px 0}
#diagnosis{margin:2px 0 4px;max-height:6.5em;overflow:auto;font-size:14px}#diagnosis li{margin:1px 0}
.run{margin:2px 0;font-size:13px;color:#444}
#bar{position:sticky;top:0;z-index:3;background:#fff;border-bottom:1px solid #ccc;padding:6px 0}
#legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
#legend span{display:inline-flex;align-items:center;gap:4px}#legend svg{flex:none}
#layers{margin-top:6px;font-size:13px}#layers label{margin-right:12px}
#drawn{color:#666;font-size:12px;margin:4px 0 0}
#wrap{overflow:auto;max-width:100%;max-height:78vh;border:1px solid #ddd;margin-top:8px}
#cells rect{cursor:pointer}
#drill{position:fixed;right:12px;top:12px;z-index:4;background:#fff;border:1px solid #888;
padding:8px;max-height:90vh;max-width:60vw;overflow:auto;box-shadow:0 2px 8px #0004}
#drill h2{font-size:14px;margin:0 0 6px}#drill button{float:right}"""

_SCRIPT = """
(function () {
  var D = JSON.parse(document.getElementById('heatmap-data').textContent);
  var SVGNS = 'http://www.w3.org/2000/svg', boxes = document.querySelectorAll('#layers input');
  var opened = null;
  function layersOn() {
    var on = [];
    for (var i = 0; i < boxes.length; i++) if (boxes[i].checked) on.push(boxes[i].value);
    return on;
  }
  // The worst state among the layers turned on (heatmap_cells.shown).
  function kindOf(l, on) {
    if (l.tunnel === 'none' || l.tunnel === 'self') return l.tunnel;
    var best = 'off';
    for (var i = 0; i < on.length; i++) {
      var k = l[on[i]];
      if (k !== 'off' && D.kinds.indexOf(k) < D.kinds.indexOf(best)) best = k;
    }
    return best;
  }
  function fillOf(kind, band, on) {
    if (kind !== 'ok') return D.fills[kind];
    return band !== '' && on.indexOf('tunnel') >= 0 ? D.scale[+band] : D.plain;
  }
  function tally(counts, k) { counts[k] = (counts[k] || 0) + 1; }
  function report(el, n, counts) {
    el.setAttribute('data-cells', String(n));
    el.setAttribute('data-counts', JSON.stringify(counts));
  }
  function paint() {
    var on = layersOn(), cells = document.querySelectorAll('#cells rect'), counts = {}, fills = {};
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i], k = kindOf({tunnel: c.getAttribute('data-t'), mtu: c.getAttribute('data-m'),
                                    underlay: c.getAttribute('data-u')}, on);
      c.setAttribute('class', 'cell ' + k);
      c.setAttribute('fill', fillOf(k, c.getAttribute('data-b'), on));
      tally(counts, k);
      if (!(k in fills)) fills[k] = getComputedStyle(c).fill;
    }
    var out = document.getElementById('drawn'), parts = [];
    report(out, cells.length, counts);
    out.setAttribute('data-fills', JSON.stringify(fills));
    out.setAttribute('data-layers', on.join(','));
    for (var k in counts) parts.push(counts[k] + ' ' + k);
    out.textContent = cells.length + ' cells drawn (' + (D.rows ? 'blocks, click one for its pairs'
      : 'pairs') + '), layers ' + (on.join(' + ') || 'none') + ': ' + parts.join(', ');
    if (opened) drill(opened[0], opened[1]);
  }
  function decode(code) {
    code -= D.base;
    var first = Math.floor(code / 20), l = {mtu: D.drill_m[code % 4],
                                           underlay: D.drill_u[Math.floor(code / 4) % 5]};
    if (first < D.bands) { l.tunnel = 'ok'; return [l, first]; }
    l.tunnel = D.drill_t[first - D.bands];
    return [l, ''];
  }
  function short(name) { return name.length > 24 ? name.slice(0, 23) + '\\u2026' : name; }
  function text(x, y, s, rotate) {
    var t = document.createElementNS(SVGNS, 'text');
    t.setAttribute('font-size', '10');
    if (rotate) t.setAttribute('transform', 'translate(' + x + ',' + y + ') rotate(-90)');
    else { t.setAttribute('x', x); t.setAttribute('y', y); t.setAttribute('text-anchor', 'end'); }
    t.textContent = short(s);
    return t;
  }
  function drill(bs, bd) {
    if (!D.rows || !D.members[bs] || !D.members[bd]) return;
    opened = [bs, bd];
    var on = layersOn(), srcs = D.members[bs], dsts = D.members[bd], counts = {};
    var px = Math.max(5, Math.min(18, Math.floor(600 / Math.max(srcs.length, dsts.length))));
    var m = 150, map = document.createElementNS(SVGNS, 'svg');
    map.setAttribute('width', m + dsts.length * px + 8);
    map.setAttribute('height', m + srcs.length * px + 8);
    map.setAttribute('font-family', 'sans-serif');
    for (var i = 0; i < srcs.length; i++) {
      map.appendChild(text(m - 4, m + i * px + px - 2, D.names[srcs[i]], false));
      for (var j = 0; j < dsts.length; j++) {
        var got = decode(D.rows[srcs[i]].charCodeAt(dsts[j])), l = got[0], k = kindOf(l, on);
        var r = document.createElementNS(SVGNS, 'rect'), tip = document.createElementNS(SVGNS, 'title');
        r.setAttribute('x', m + j * px); r.setAttribute('y', m + i * px);
        r.setAttribute('width', px); r.setAttribute('height', px);
        r.setAttribute('class', 'cell ' + k); r.setAttribute('fill', fillOf(k, got[1], on));
        r.setAttribute('stroke', '#fff'); r.setAttribute('stroke-width', '0.5');
        tip.textContent = D.names[srcs[i]] + ' -> ' + D.names[dsts[j]] + ': ' + k + ' (tunnel ' +
          l.tunnel + (got[1] !== '' ? ', rtt ' + D.band_labels[got[1]] : '') + ', mtu ' + l.mtu +
          ', underlay ' + l.underlay + ')';
        r.appendChild(tip); map.appendChild(r); tally(counts, k);
      }
    }
    for (j = 0; j < dsts.length; j++) {
    for (j = 0; j < dsts.length; j++) {
      map.appendChild(text(m + j * px + px - 2, m - 4, D.names[dsts[j]], true));
    }
    }
    var panel = document.getElementById('drill'), holder = document.getElementById('drill-map');
    document.getElementById('drill-title').textContent = D.labels[bs] + ' -> ' + D.labels[bd] +
      ': ' + srcs.length + ' x ' + dsts.length + ' hosts';
    holder.textContent = '';
    holder.appendChild(map);
    report(panel, srcs.length * dsts.length, counts);
    panel.hidden = false;
    try { history.replaceState(null, '', '#block=' + bs + ',' + bd); } catch (e) { /* file: */ }
  }
  function measure() {
    var legend = document.getElementById('legend'), out = document.getElementById('drawn');
    var se = document.scrollingElement, start = se.scrollTop, box = legend.getBoundingClientRect();
    out.setAttribute('data-legend', JSON.stringify({top: box.top, bottom: box.bottom,
                                                     viewport: window.innerHeight}));
    window.scrollTo(0, se.scrollHeight);
    box = legend.getBoundingClientRect();
    out.setAttribute('data-legend-scrolled', JSON.stringify({top: box.top, bottom: box.bottom,
                                                              scrolled: se.scrollTop}));
    window.scrollTo(0, start);
  }
  document.getElementById('cells').addEventListener('click', function (e) {
    var rc = e.target.getAttribute && e.target.getAttribute('data-rc');
    if (rc && D.rows) drill(+rc.split(',')[0], +rc.split(',')[1]);
  });
  document.getElementById('drill-close').addEventListener('click', function () {
    document.getElementById('drill').hidden = true;
    opened = null;
  });
  for (var i = 0; i < boxes.length; i++) boxes[i].addEventListener('change', paint);
  var wanted = location.hash.slice(1).split('&');
  for (i = 0; i < wanted.length; i++) {
    var kv = wanted[i].split('=');
    if (kv[0] === 'layers') {
      var names = decodeURIComponent(kv[1] || '').split(',');
      for (var b = 0; b < boxes.length; b++) boxes[b].checked = names.indexOf(boxes[b].value) >= 0;
    } else if (kv[0] === 'block' && kv[1]) opened = kv[1].split(',').map(Number);
  }
  paint();
  measure();
})();
"""


def _json(value: object) -> str:
    """JSON safe inside a <script> element: no '<' (so no '</script>') left as such."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def page(mesh: Mesh, *, title: str, verdict: MeshVerdict | None = None,
         run: Run | None = None) -> Iterator[str]:
    """The whole page, in pieces."""
    verdict = judge(mesh) if verdict is None else verdict
    run = Run() if run is None else run
    c = mesh.counts()
    headline = (f"{mesh.pair_count} pairs: {c['ok']} ok, {c['lossy']} lossy, "
                f"{c['unreachable']} unreachable, {c['error']} error")
    status = verdict.status.value
    yield ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head><body>\n"
           f"<h1>{html.escape(title)}</h1>\n"
           f'<p id="run-verdict" data-status="{status}" style="color:{VERDICT_COLOURS[status]}">'
           f"{html.escape(verdict.text)}</p>\n")
    if verdict.findings:
        yield '<ul id="diagnosis">\n'
        for finding in verdict.findings:
            yield (f'<li data-kind="{html.escape(finding.kind)}"><b>{html.escape(finding.kind)}</b>: '
                   f"{html.escape(finding.text)}</li>\n")
        yield "</ul>\n"
    yield (f'<p class="run" id="run-time">{html.escape(run.when())}</p>\n'
           f'<p class="run" id="run-settings">{html.escape(settings(mesh))}</p>\n'
           '<div id="bar">\n<div id="legend">')
    for kind, band, label in legend_entries(mesh, run):
        yield (f'<span data-kind="{kind}"><svg width="17" height="17">{swatch(kind, band, run, 0.5, 0.5)}'
               f"</svg>{html.escape(label)}</span>")
    p = mesh.params
    toggles = [("tunnel", "tunnel (IPv6 ping)", True),
               ("mtu", f"MTU check ({p.mtu_size})" if p.mtu_size else "MTU check (not measured)",
                p.mtu_size is not None),
               ("underlay", "underlay (IPv4 ping; explains, judges nothing)" if p.underlay
                else "underlay (not measured)", p.underlay)]
    yield '</div>\n<div id="layers">Layers, each cell shows the worst of those on: '
    for name, label, measured in toggles:
        yield (f'<label data-measured="{int(measured)}"><input type="checkbox" value="{name}"'
               f'{" checked" if name in JUDGED else ""}> {html.escape(label)}</label>')
    yield (f'</div>\n<p id="drawn"></p>\n</div>\n<p class="run" id="headline">{html.escape(headline)}'
           f" &mdash; hover a cell for its numbers</p>\n<div id=\"wrap\">\n")
    yield from svg(mesh, title=title, verdict=verdict, run=run, legend=False)
    yield ('</div>\n<div id="drill" hidden><button id="drill-close" type="button">close</button>'
           '<h2 id="drill-title"></h2><div id="drill-map"></div></div>\n')
    names = [h.name for h in mesh.hosts]
    found = blocks(names, run.groups)
    data = {"kinds": list(KINDS), "scale": list(run.scale), "plain": OK_PLAIN,
            "fills": {k: PATTERNS.get(k, STATE_COLOURS.get(k, "")) for k in KINDS if k != "ok"},
            "bands": len(run.thresholds) + 1, "band_labels": band_labels(run.thresholds),
            "base": DRILL_BASE, "drill_u": list(DRILL_U), "drill_m": list(DRILL_M),
            "drill_t": list(DRILL_T)}
    yield f'<script type="application/json" id="heatmap-data">{_json(data)[:-1]}'
    if found is None:
        yield ',"rows":null}'
    else:
        yield f',"names":{_json(names)},"labels":{_json(found.labels)}'
        yield f',"members":{_json(found.members)},"rows":{_json(drill_rows(mesh, run.thresholds))}}}'
    yield f"</script>\n<script>{_SCRIPT}</script>\n</body></html>\n"
