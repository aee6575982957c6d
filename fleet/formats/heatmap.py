"""The mesh as a picture: a matrix of sources (rows) by destinations (columns), one SVG document,
standalone (FILE.svg) or in a page (FILE.html). Self-contained: inline CSS and script, no network.

Above the matrix stands the run's one verdict (fleet.mesh.verdict: ALL OK, NOT OK, COULD NOT
TELL) with its diagnosis, as the exit code and every other output say it.

Each cell is coloured by its state; ok pairs by their average RTT on a sequential scale (light:
fast, dark: slow; log scale between the fastest and the slowest ok pair). The legend gives the
mesh's RTT as the table, the JSON report and Prometheus do: P50, P90 and P99 over every reply.
The other states have colours of their own, three of them with a pattern too, so they stay
apart in grey print: lossy (orange, striped), unreachable (red), mtu: small pings pass but the
MTU check failed (purple, dotted), error: could not tell (grey, cross-hatched; also a pair whose
MTU check could not tell), not probed (white), self (black). A pair whose underlay (IPv4) ping
failed under --underlay has a black corner. Hovering a cell shows its numbers (an SVG <title>:
the browser's tooltip, in the page and in the SVG alike). Host names label both axes.

Up to CELL_HOSTS hosts a cell is one directed pair. Above, hosts are grouped in blocks of
consecutive hosts (inventory order) so that the matrix stays at most CELL_HOSTS cells a side
(1,000 hosts: blocks of 7, 143 x 143): a block takes the worst state among its pairs
(unreachable, then lossy, then mtu, then error, then ok), its colour by the median RTT of its ok pairs,
and its tooltip counts its pairs by state. A page of 40,000 SVG elements stays responsive; one of
a million does not.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

from fleet.formats.sources import mesh_sources
from fleet.formats.text import xml_text
from fleet.mesh.model import MTU_FAILED, MTU_UNKNOWN, NOT_MEASURED
from fleet.mesh.verdict import MeshVerdict, judge

if TYPE_CHECKING:
    from fleet.formats import TaskOutcomeLike
    from fleet.mesh.model import Mesh

CELL_HOSTS = 150
EXTENSIONS = (".html", ".svg")
# Cell kinds, from the worst: a block shows the first of these among its pairs.
KINDS = ("unreachable", "lossy", "mtu", "error", "ok", "none", "self")
STATE_COLOURS = {"lossy": "#f28e2b", "unreachable": "#d62728", "mtu": "#9467bd", "error": "#8c8c8c",
                 "none": "#ffffff", "self": "#222222"}
STATE_LABELS = {"lossy": "lossy (some loss)", "unreachable": "unreachable (all lost)",
                "mtu": "mtu check failed", "error": "error (could not tell)", "none": "not probed",
                "self": "self"}
PATTERNS = {"lossy": "url(#p-lossy)", "mtu": "url(#p-mtu)", "error": "url(#p-error)"}
VERDICT_COLOURS = {"ok": "#2ca02c", "not-ok": "#d62728", "could-not-tell": "#8c6d00"}
# ok: light (fast) to dark (slow), ColorBrewer's sequential Blues.
RTT_SCALE = ("#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
NONE, SELF = 254, 255  # state codes of cells with no pair


def problem(path: Path, tasks: Sequence[str]) -> str | None:
    if path.suffix.lower() not in EXTENSIONS:
        return f"the heatmap is .html or .svg (by the file's extension), not {path.suffix or 'none'}"
    if "mesh" not in tasks:
        return "a heatmap draws a mesh: add the mesh task to the run"
    return None


def render(outcomes: Sequence[TaskOutcomeLike], path: Path) -> Iterator[str] | None:
    sources = mesh_sources(outcomes)
    if not sources:
        return None
    mesh, task, verdict = sources[-1].mesh, sources[-1].task, sources[-1].verdict
    if path.suffix.lower() == ".svg":
        return iter(['<?xml version="1.0" encoding="UTF-8"?>\n',
                     *svg(mesh, title=f"fleet {task}", verdict=verdict)])
    return page(mesh, title=f"fleet {task}", verdict=verdict)


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    kind: str
    fill: str
    tip: str
    underlay_failed: bool = False


def rtt_colour(value: float, low: float, high: float) -> str:
    """The scale's colour for an RTT between the fastest (`low`) and slowest (`high`)."""
    if not high > low or value <= low:
        return RTT_SCALE[0]
    position = math.log(value / low) / math.log(high / low) if low > 0 else (value - low) / (high - low)
    return RTT_SCALE[min(len(RTT_SCALE) - 1, int(position * len(RTT_SCALE)))]


def _fill(kind: str, rtt: float | None, low: float, high: float) -> str:
    if kind == "ok":
        return rtt_colour(rtt, low, high) if rtt is not None else RTT_SCALE[0]
    return PATTERNS.get(kind, STATE_COLOURS[kind])


_UNDERLAY_FAILED = (1, 2)  # lossy, unreachable: state codes of the underlay


def _kind_code(state: int, mtu: int, mtu_measured: bool) -> str:
    """A pair's cell kind from its columns: the tunnel's state, then its MTU check."""
    kind = ("ok", "lossy", "unreachable", "error")[state]
    if kind == "ok" and mtu_measured:
        if mtu == MTU_FAILED:
            return "mtu"
        if mtu == MTU_UNKNOWN:
            return "error"
    return kind


def _rtt_range(mesh: Mesh) -> tuple[float, float]:
    cols = mesh.columns
    avgs = [cols.rtt[4 * r + 1] for r in range(len(cols)) if cols.state[r] == 0]
    avgs = [v for v in avgs if v == v]
    return (min(avgs), max(avgs)) if avgs else (0.0, 0.0)


def block_size(hosts: int) -> int:
    return max(1, math.ceil(hosts / CELL_HOSTS))


def cells(mesh: Mesh) -> tuple[list[str], list[Cell]]:
    """The axis labels and the cells to draw (pairs, or blocks of pairs for big meshes)."""
    names = [h.name for h in mesh.hosts]
    size = block_size(len(names))
    low, high = _rtt_range(mesh)
    if size == 1:
        return names, _pair_cells(mesh, names, low, high)
    return _block_cells(mesh, names, size, low, high)


def _pair_cells(mesh: Mesh, names: list[str], low: float, high: float) -> list[Cell]:
    n = len(names)
    found: dict[tuple[int, int], Cell] = {}
    cols = mesh.columns
    mtu_measured = mesh.params.mtu_size is not None
    for r, values in enumerate(mesh.row_values()):
        src, dst, state, sent, received = values.src, values.dst, values.state, values.sent, values.received
        loss, rmin, ravg, rmax, error = (values.loss_pct, values.rtt_min_ms, values.rtt_avg_ms,
                                         values.rtt_max_ms, values.error)
        s, d = cols.src[r], cols.dst[r]
        kind = _kind_code(cols.state[r], cols.mtu[r], mtu_measured)
        lines = [f"{src} -> {dst}: {kind}", f"tunnel: {state}, sent {sent}, received {received}"
                 + ("" if loss is None else f", loss {loss:g}%")]
        if ravg is not None:
            lines.append(f"rtt ms: min {rmin} avg {ravg} max {rmax}")
        if error:
            lines.append(f"error: {error}")
        if values.mtu is not None:
            lines.append(f"mtu {values.mtu.size}: " + {True: "ok", False: "failed",
                                                       None: "could not tell"}[values.mtu.ok]
                         + (f" ({values.mtu.error})" if values.mtu.error else ""))
        if values.underlay is not None:
            u = values.underlay
            lines.append(f"underlay (IPv4): {u.state}" + ("" if u.loss_pct is None
                                                          else f", loss {u.loss_pct:g}%"))
        found[(s, d)] = Cell(s, d, kind, _fill(kind, ravg, low, high), "\n".join(lines),
                             cols.u_state[r] in _UNDERLAY_FAILED)
    out = []
    for s in range(n):
        for d in range(n):
            if (s, d) in found:
                out.append(found[(s, d)])
            elif s == d:
                out.append(Cell(s, d, "self", STATE_COLOURS["self"], f"{names[s]} (self)"))
            else:
                out.append(Cell(s, d, "none", STATE_COLOURS["none"],
                                f"{names[s]} -> {names[d]}: not probed"))
    return out


def _block_cells(mesh: Mesh, names: list[str], size: int, low: float,
                 high: float) -> tuple[list[str], list[Cell]]:
    n = len(names)
    side = math.ceil(n / size)
    counts = [[0] * (len(KINDS) - 2) for _ in range(side * side)]
    underlay_failed = [0] * (side * side)
    rtts: list[list[float]] = [[] for _ in range(side * side)]
    cols = mesh.columns
    mtu_measured = mesh.params.mtu_size is not None
    position = {kind: i for i, kind in enumerate(KINDS)}
    for r in range(len(cols)):
        b = (cols.src[r] // size) * side + cols.dst[r] // size
        kind = _kind_code(cols.state[r], cols.mtu[r], mtu_measured)
        counts[b][position[kind]] += 1
        if cols.u_state[r] != NOT_MEASURED and cols.u_state[r] in _UNDERLAY_FAILED:
            underlay_failed[b] += 1
        if kind == "ok" and cols.rtt[4 * r + 1] == cols.rtt[4 * r + 1]:
            rtts[b].append(cols.rtt[4 * r + 1])
    labels = [_span(names, i * size, min(n, (i + 1) * size)) for i in range(side)]
    out = []
    for bs in range(side):
        for bd in range(side):
            b = bs * side + bd
            tally = counts[b]
            rows = min(n, (bs + 1) * size) - bs * size
            columns_ = min(n, (bd + 1) * size) - bd * size
            possible = rows * columns_ - (rows if bs == bd else 0)
            probed = sum(tally)
            kind = next((k for k, c in zip(KINDS, tally) if c), "self" if possible == 0 else "none")
            rtt = median(rtts[b]) if rtts[b] else None
            parts = [f"{c} {k}" for k, c in zip(KINDS, tally) if c]
            if possible > probed:
                parts.append(f"{possible - probed} not probed")
            tip = f"{labels[bs]} -> {labels[bd]}: {possible} pairs: {', '.join(parts)}"
            if rtt is not None:
                tip += f"\nmedian rtt of ok pairs: {rtt:.3f} ms"
            if underlay_failed[b]:
                tip += f"\nunderlay (IPv4) failed on {underlay_failed[b]} pairs"
            out.append(Cell(bs, bd, kind, _fill(kind, rtt, low, high), tip, bool(underlay_failed[b])))
    return labels, out


def _span(names: list[str], start: int, stop: int) -> str:
    return names[start] if stop - start == 1 else f"{names[start]} .. {names[stop - 1]}"


def _cell_px(side: int) -> int:
    return max(4, min(24, 1200 // max(side, 1)))


def svg(mesh: Mesh, *, title: str, verdict: MeshVerdict | None = None) -> Iterator[str]:
    """The matrix as an SVG element (with the verdict above it and its legend), in pieces."""
    verdict = judge(mesh) if verdict is None else verdict
    labels, drawn = cells(mesh)
    side = len(labels)
    px = _cell_px(side)
    font = max(6, min(11, px - 2))
    every = max(1, math.ceil((font + 1) / px))  # a label per `every` rows when cells are small
    shown = [label if len(label) <= 28 else label[:27] + "\u2026" for label in labels]
    margin = int(min(28, max((len(s) for s in shown), default=1)) * font * 0.62) + 12
    top = margin + 44  # room for the verdict and the caption above the column labels
    width = margin + side * px + 20
    legend_y = top + side * px + 24
    height = legend_y + 24 * (6 if block_size(len(mesh.hosts)) > 1 else 5) + 4
    yield (f'<svg xmlns="http://www.w3.org/2000/svg" id="fleet-heatmap" width="{max(width, 640)}" '
           f'height="{height}" viewBox="0 0 {max(width, 640)} {height}" font-family="sans-serif" '
           f'data-hosts="{len(mesh.hosts)}" data-side="{side}" '
           f'data-verdict="{verdict.status.value}">\n')
    yield f"<title>{xml_text(title)}</title>\n"
    stroke = "0.5" if px >= 6 else "0"
    yield (f"<style>.lab{{font-size:{font}px;fill:#222}}.cell{{stroke:#fff;stroke-width:{stroke}}}"
           ".cell:hover{stroke:#000;stroke-width:1.5}.none{stroke:#ddd}"
           ".leg{font-size:12px;fill:#222}</style>\n")
    yield ('<defs><pattern id="p-lossy" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f28e2b"/>'
           '<rect width="2" height="6" fill="#ffd9a8"/></pattern>'
           '<pattern id="p-error" width="6" height="6" patternUnits="userSpaceOnUse">'
           '<rect width="6" height="6" fill="#8c8c8c"/>'
           '<path d="M0 0L6 6M6 0L0 6" stroke="#e0e0e0" stroke-width="1"/></pattern>'
           '<pattern id="p-mtu" width="6" height="6" patternUnits="userSpaceOnUse">'
           '<rect width="6" height="6" fill="#9467bd"/><circle cx="3" cy="3" r="1.2" fill="#e5d8f0"/>'
           '</pattern></defs>\n')
    yield (f'<text id="verdict" x="{margin}" y="16" font-size="15" font-weight="bold" '
           f'fill="{VERDICT_COLOURS[verdict.status.value]}" data-status="{verdict.status.value}">'
           f'{xml_text(verdict.text)}</text>\n')
    yield (f'<text class="leg" x="{margin}" y="34">rows: source, columns: destination</text>\n')
    for i, label in enumerate(shown):
        if i % every:
            continue
        full = xml_text(labels[i])
        y = top + i * px + px / 2 + font / 3
        x = margin + i * px + px / 2 + font / 3
        yield (f'<text class="lab" x="{margin - 4}" y="{y:.1f}" text-anchor="end">'
               f'<title>{full}</title>{xml_text(label)}</text>\n')
        yield (f'<text class="lab" transform="translate({x:.1f},{top - 4}) rotate(-90)">'
               f'<title>{full}</title>{xml_text(label)}</text>\n')
    yield '<g id="cells">\n'
    for c in drawn:
        x, y = margin + c.col * px, top + c.row * px
        yield (f'<rect class="cell {c.kind}" x="{x}" y="{y}" '
               f'width="{px}" height="{px}" fill="{c.fill}"><title>{xml_text(c.tip)}</title></rect>\n')
        if c.underlay_failed:
            corner = max(3, px // 3)
            yield (f'<path class="underlay-failed" d="M{x + px - corner} {y}h{corner}v{corner}z" '
                   f'fill="#000"><title>{xml_text(c.tip)}</title></path>\n')
    yield "</g>\n"
    yield from _legend(mesh, margin, legend_y)
    yield "</svg>\n"


def rtt_figures(mesh: Mesh) -> str:
    """The mesh's RTT as every output gives it: percentiles over every reply."""
    found = [f"{name} {ms:.3f}" for name, ms in mesh.rtt_percentiles().items() if ms is not None]
    return "rtt over every reply: " + (", ".join(found) + " ms" if found else "too few replies")


def _legend(mesh: Mesh, x0: int, y0: int) -> Iterator[str]:
    yield '<g id="legend">\n'
    low, high = _rtt_range(mesh)
    yield f'<text class="leg" x="{x0}" y="{y0 + 12}">ok, by average rtt:</text>\n'
    for i, colour in enumerate(RTT_SCALE):
        yield (f'<rect x="{x0 + 130 + 22 * i}" y="{y0}" width="22" height="16" fill="{colour}"/>\n')
    span = f"{low:.3f} ms .. {high:.3f} ms (log scale)" if high > 0 else "no replies"
    yield (f'<text class="leg" x="{x0 + 140 + 22 * len(RTT_SCALE)}" y="{y0 + 12}">'
           f"{xml_text(span)}</text>\n")
    yield (f'<text class="leg" id="rtt-percentiles" x="{x0}" y="{y0 + 24 * 4 + 12}">'
           f"{xml_text(rtt_figures(mesh))}</text>\n")
    entries = [*STATE_LABELS.items(), ("underlay-failed", "underlay (IPv4) ping failed")]
    for i, (kind, label) in enumerate(entries):
        x, y = x0 + 200 * (i % 3), y0 + 24 * (1 + i // 3)
        if kind == "underlay-failed":
            yield (f'<rect x="{x}" y="{y}" width="16" height="16" stroke="#999" fill="{RTT_SCALE[0]}"/>'
                   f'<path d="M{x + 10} {y}h6v6z" fill="#000"/>'
                   f'<text class="leg" x="{x + 22}" y="{y + 12}">{label}</text>\n')
            continue
        yield (f'<rect x="{x}" y="{y}" width="16" height="16" stroke="#999" '
               f'fill="{PATTERNS.get(kind, STATE_COLOURS[kind])}"/>'
               f'<text class="leg" x="{x + 22}" y="{y + 12}">{label}</text>\n')
    size = block_size(len(mesh.hosts))
    if size > 1:
        yield (f'<text class="leg" x="{x0}" y="{y0 + 24 * 5 + 12}">each cell: a block of {size} x '
               f"{size} hosts, its worst state</text>\n")
    yield "</g>\n"


_PAGE_SCRIPT = """
// Counts what was drawn, by state, into #drawn (also read by fleet's own browser test).
(function () {
  var cells = document.querySelectorAll('#cells rect'), counts = {}, fills = {};
  for (var i = 0; i < cells.length; i++) {
    var kind = cells[i].classList[1];
    counts[kind] = (counts[kind] || 0) + 1;
    if (!(kind in fills)) fills[kind] = getComputedStyle(cells[i]).fill;
  }
  var out = document.getElementById('drawn');
  out.setAttribute('data-cells', String(cells.length));
  out.setAttribute('data-counts', JSON.stringify(counts));
  out.setAttribute('data-fills', JSON.stringify(fills));
  var parts = [];
  for (var k in counts) parts.push(counts[k] + ' ' + k);
  out.textContent = cells.length + ' cells drawn: ' + parts.join(', ');
})();
"""


def page(mesh: Mesh, *, title: str, verdict: MeshVerdict | None = None) -> Iterator[str]:
    """A whole HTML page: the verdict and its diagnosis, a headline, the matrix and its legend,
    and a script counting the cells."""
    verdict = judge(mesh) if verdict is None else verdict
    c = mesh.counts()
    headline = (f"{len(mesh.hosts)} hosts, {mesh.pair_count} pairs: {c['ok']} ok, {c['lossy']} "
                f"lossy, {c['unreachable']} unreachable, {c['error']} error")
    yield ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           f"<title>{html.escape(title)}</title>\n"
           "<style>body{font-family:sans-serif;margin:16px;color:#222}"
           "#wrap{overflow:auto;max-width:100%;max-height:90vh;border:1px solid #ddd}"
           "#drawn{color:#666;font-size:12px}#diagnosis{margin:4px 0 12px}"
           "#diagnosis li{margin:2px 0}</style>\n</head><body>\n"
           f"<h1>{html.escape(title)}</h1>\n"
           f'<p id="run-verdict" data-status="{verdict.status.value}" style="font-size:20px;'
           f'font-weight:bold;color:{VERDICT_COLOURS[verdict.status.value]}">'
           f"{html.escape(verdict.text)}</p>\n")
    if verdict.findings:
        yield '<ul id="diagnosis">\n'
        for finding in verdict.findings:
            yield (f'<li data-kind="{html.escape(finding.kind)}"><b>{html.escape(finding.kind)}</b>: '
                   f"{html.escape(finding.text)}</li>\n")
        yield "</ul>\n"
    yield (f"<p id=\"headline\">{html.escape(headline)}</p>\n"
           "<p>Hover a cell for its numbers.</p>\n<div id=\"wrap\">\n")
    yield from svg(mesh, title=title, verdict=verdict)
    yield f'</div>\n<p id="drawn"></p>\n<script>{_PAGE_SCRIPT}</script>\n</body></html>\n'
