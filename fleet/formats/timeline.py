"""A watch's history drawn against time: rows are the hosts and pairs that were not ok at some
point of the window, columns are the rounds, each cell coloured by that subject's state in that
round; above them a strip of each round's verdict, below them a time axis. FILE.svg (one SVG
document) or FILE.html (a page around it). Self-contained: inline CSS, no script, no network.

The colours are the heatmap's (fleet.formats.heatmap_cells, fleet.formats.heatmap_svg): ok
light green, lossy orange striped, unreachable red, mtu purple dotted, error grey cross-hatched,
the verdicts green, red and ochre. Two states are the watch's own: `not-measured` (the pair's
source could not probe: a gap, light grey) and a host `down` (not reachable over SSH: black).

Pure: a Timeline (built from the history by fleet.watch.report) in, text pieces out.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet.formats.heatmap_cells import OK_PLAIN, PATTERNS, STATE_COLOURS
from fleet.formats.heatmap_svg import PATTERN_DEFS, VERDICT_COLOURS
from fleet.formats.text import xml_text

EXTENSIONS = (".html", ".svg")
MAX_ROWS = 400  # more rows than this are left out (the page says how many)
# state -> (fill, legend label), in the legend's order
FILLS: dict[str, tuple[str, str]] = {
    "ok": (OK_PLAIN, "ok"),
    "lossy": (PATTERNS["lossy"], "lossy (some loss)"),
    "unreachable": (STATE_COLOURS["unreachable"], "unreachable (all lost)"),
    "mtu-failed": (PATTERNS["mtu"], "mtu check failed"),
    "error": (PATTERNS["error"], "error (could not tell)"),
    "not-measured": ("#c8c8c8", "not measured (its source could not probe)"),
    "down": (STATE_COLOURS["self"], "host down (not reachable over SSH)"),
    "unconfigured": (STATE_COLOURS["lossy"], "host's sit1 without its address"),
    "absent": (STATE_COLOURS["none"], "not in that round"),
}
ROW_PX, LABEL_FONT = 14, 11


@dataclass(frozen=True)
class TimelineRound:
    id: int
    started: float  # Unix time
    status: str     # the round's verdict: ok, not-ok, could-not-tell


@dataclass(frozen=True)
class TimelineRow:
    subject: str                      # host or pair
    name: str
    states: tuple[str | None, ...]    # one per round; None: not in that round


@dataclass(frozen=True)
class Timeline:
    title: str
    rounds: tuple[TimelineRound, ...]
    rows: tuple[TimelineRow, ...]
    left_out: int = 0  # rows not drawn (MAX_ROWS)


def problem(path: Path) -> str | None:
    if path.suffix.lower() not in EXTENSIONS:
        return f"the timeline is .html or .svg (by the file's extension), not {path.suffix or 'none'}"
    return None


def render(timeline: Timeline, path: Path) -> Iterator[str]:
    """The file's text: an SVG document, or an HTML page around it, by `path`'s extension."""
    if path.suffix.lower() == ".svg":
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        yield from svg(timeline)
        return
    yield from page(timeline)


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell_px(rounds: int) -> int:
    return max(2, min(16, 1200 // max(1, rounds)))


def svg(timeline: Timeline) -> Iterator[str]:
    rounds, rows = timeline.rounds, timeline.rows
    px = _cell_px(len(rounds))
    margin = int(min(40, max((len(r.name) for r in rows), default=8)) * LABEL_FONT * 0.62) + 16
    legend_rows = (len(FILLS) + 2) // 3
    top = 50 + 20 * legend_rows + 8
    strip = top + 4  # the verdicts' strip
    first = strip + ROW_PX + 10  # the first subject's row
    width = max(margin + len(rounds) * px + 40, 900)
    height = first + len(rows) * ROW_PX + 50
    yield (f'<svg xmlns="http://www.w3.org/2000/svg" id="fleet-timeline" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
           f'data-rounds="{len(rounds)}" data-rows="{len(rows)}">\n')
    yield f"<title>{xml_text(timeline.title)}</title>\n"
    yield (f"<style>.lab{{font-size:{LABEL_FONT}px;fill:#222}}.leg{{font-size:12px;fill:#222}}"
           ".cell{stroke:#fff;stroke-width:0.3}</style>\n")
    yield PATTERN_DEFS
    yield (f'<text x="8" y="18" font-size="15" font-weight="bold">{xml_text(timeline.title)}'
           "</text>\n")
    window = (f"{len(rounds)} rounds, {_day(rounds[0].started)} to {_day(rounds[-1].started)}"
              if rounds else "no round in the window")
    more = f"; {timeline.left_out} more rows not drawn" if timeline.left_out else ""
    yield (f'<text class="leg" id="window" x="8" y="38">{xml_text(window)}; rows: hosts and pairs '
           f"not ok at some round{xml_text(more)}</text>\n")
    yield '<g id="legend">\n'
    for i, (state, (fill, label)) in enumerate(FILLS.items()):
        x, y = 8 + 290 * (i % 3), 48 + 20 * (i // 3)
        yield (f'<rect x="{x}" y="{y}" width="14" height="14" fill="{fill}" stroke="#999" '
               f'stroke-width="0.5" data-state="{state}"/>'
               f'<text class="leg" x="{x + 20}" y="{y + 11}">{xml_text(label)}</text>\n')
    yield "</g>\n"
    yield (f'<text class="lab" x="{margin - 4}" y="{strip + ROW_PX - 3}" text-anchor="end" '
           'font-weight="bold">verdict</text>\n<g id="verdicts">\n')
    for i, r in enumerate(rounds):
        yield (f'<rect class="cell" x="{margin + i * px}" y="{strip}" width="{px}" height="{ROW_PX}" '
               f'fill="{VERDICT_COLOURS.get(r.status, "#999")}" data-round="{r.id}" '
               f'data-status="{r.status}"><title>round {r.id} {_day(r.started)}: {r.status}</title>'
               "</rect>\n")
    yield "</g>\n<g id=\"rows\">\n"
    for j, row in enumerate(rows):
        y = first + j * ROW_PX
        yield (f'<g class="row" data-subject="{row.subject}" data-name="{xml_text(row.name)}">'
               f'<text class="lab" x="{margin - 4}" y="{y + ROW_PX - 3}" text-anchor="end">'
               f"{xml_text(row.name)}</text>\n")
        yield from _cells(row, rounds, margin, y, px)
        yield "</g>\n"
    yield "</g>\n"
    yield from _axis(rounds, margin, first + len(rows) * ROW_PX + 4, px)
    yield "</svg>\n"


def _cells(row: TimelineRow, rounds: Sequence[TimelineRound], margin: int, y: int,
           px: int) -> Iterator[str]:
    """Runs of one state drawn as one rectangle (a 1,000-round ok stretch is one element)."""
    start = 0
    for i in range(1, len(rounds) + 1):
        if i < len(rounds) and row.states[i] == row.states[start]:
            continue
        state = row.states[start] or "absent"
        fill = FILLS.get(state, ("#999", state))[0]
        first, last = rounds[start], rounds[i - 1]
        span = f"round {first.id}" if i - 1 == start else f"rounds {first.id}-{last.id}"
        yield (f'<rect class="cell" x="{margin + start * px}" y="{y}" width="{(i - start) * px}" '
               f'height="{ROW_PX}" fill="{fill}" data-state="{state}" data-from="{first.id}" '
               f'data-to="{last.id}"><title>{xml_text(row.name)}: {state}, {span} '
               f"({_clock(first.started)}-{_clock(last.started)} UTC)</title></rect>\n")
        start = i


def _axis(rounds: Sequence[TimelineRound], margin: int, y: int, px: int) -> Iterator[str]:
    if not rounds:
        return
    parts = max(1, min(6, len(rounds) * px // 70))  # labels at least 70 px apart
    ticks = sorted({round(k * (len(rounds) - 1) / parts) for k in range(parts + 1)})
    yield '<g id="axis">\n'
    yield (f'<line x1="{margin}" y1="{y}" x2="{margin + len(rounds) * px}" y2="{y}" '
           'stroke="#888"/>\n')
    for i in ticks:
        x = margin + i * px + px / 2
        yield (f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#888"/>'
               f'<text class="lab" x="{x:.1f}" y="{y + 16}" text-anchor="middle">'
               f"{_clock(rounds[i].started)}</text>"
               f'<text class="lab" x="{x:.1f}" y="{y + 29}" text-anchor="middle" fill="#666">'
               f"#{rounds[i].id}</text>\n")
    yield "</g>\n"


_CSS = ("body{font-family:sans-serif;margin:0 16px 16px;color:#222}"
        "#wrap{overflow:auto;max-width:100%;border:1px solid #ddd;margin-top:8px}")


def page(timeline: Timeline) -> Iterator[str]:
    yield ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(timeline.title)}</title><style>{_CSS}</style></head><body>\n")
    yield "<div id=\"wrap\">\n"
    yield from svg(timeline)
    yield "</div>\n</body></html>\n"


__all__ = ["EXTENSIONS", "FILLS", "MAX_ROWS", "Timeline", "TimelineRound", "TimelineRow", "page",
           "problem", "render", "svg"]
