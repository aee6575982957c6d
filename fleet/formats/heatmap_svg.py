"""The heatmap's drawing: the matrix as one SVG element, with (standalone) the verdict, the run's
time and settings and the legend above it. What a cell shows is fleet.formats.heatmap_cells';
the page around it is fleet.formats.heatmap_page's."""


from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleet.formats.heatmap_cells import (
    DEFAULT_RTT_THRESHOLDS_MS,
    STATE_LABELS,
    Cell,
    band_labels,
    block_cells,
    blocks,
    fill,
    pair_cells,
    rtt_band,
    rtt_scale,
)
from fleet.formats.text import xml_text
from fleet.mesh.verdict import MeshVerdict, judge

if TYPE_CHECKING:
    from fleet.mesh.model import Mesh

VERDICT_COLOURS = {"ok": "#2ca02c", "not-ok": "#d62728", "could-not-tell": "#8c6d00"}
RTT_SCALE = rtt_scale(DEFAULT_RTT_THRESHOLDS_MS)



class Run:
    """What the drawing needs besides the mesh: when, how long, the RTT bands, the groups."""

    def __init__(self, generated: datetime | None = None, elapsed: float | None = None,
                 thresholds: Sequence[float] = DEFAULT_RTT_THRESHOLDS_MS,
                 groups: Mapping[str, str] | None = None) -> None:
        self.generated = generated or datetime.now(UTC)
        self.elapsed = elapsed
        self.thresholds = tuple(thresholds)
        self.scale = rtt_scale(self.thresholds)
        self.groups = groups

    def when(self) -> str:
        stamp = self.generated.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        took = "" if self.elapsed is None else f"; the run took {self.elapsed:.1f} s"
        return f"written {stamp} (when this file was written{took})"


def settings(mesh: Mesh) -> str:
    """The probe settings and the inventory's size, in one line."""
    p = mesh.params
    method = mesh.probe if p.method == "auto" else p.method
    asked = f" (asked: {p.method})" if p.method == "auto" else ""
    peers = "every other host" if mesh.peers is None else f"{mesh.peers} peers each"
    return (f"{len(mesh.hosts)} hosts, {peers}; probe {method}{asked}, count {p.count}, "
            f"interval {p.interval:g} s, timeout {p.timeout:g} s, "
            f"underlay {'on' if p.underlay else 'off'}, "
            f"mtu {p.mtu_size if p.mtu_size is not None else 'off'}")


def drawn(mesh: Mesh, run: Run) -> tuple[list[str], list[Cell]]:
    """The axis labels and the cells to draw (pairs, or blocks of pairs for big meshes)."""
    names = [h.name for h in mesh.hosts]
    found = blocks(names, run.groups)
    if found is None:
        return names, pair_cells(mesh, names, run.thresholds)
    return found.labels, block_cells(mesh, found, run.thresholds)


def cells(mesh: Mesh) -> tuple[list[str], list[Cell]]:
    return drawn(mesh, Run())


def _cell_px(side: int) -> int:
    return max(4, min(24, 1200 // max(side, 1)))


def swatch(kind: str, band: int | None, run: Run, x: float = 0, y: float = 0) -> str:
    if kind == "underlay-failed":
        return (f'<rect x="{x}" y="{y}" width="16" height="16" stroke="#999" fill="{run.scale[0]}"/>'
                f'<path d="M{x + 10} {y}h6v6z" fill="#000"/>')
    return (f'<rect x="{x}" y="{y}" width="16" height="16" stroke="#999" '
            f'fill="{fill(kind, band, run.scale)}"/>')


def legend_entries(mesh: Mesh, run: Run) -> list[tuple[str, int | None, str]]:
    """(kind, band, label): the ok bands, then the other states."""
    entries: list[tuple[str, int | None, str]] = [
        ("ok", i, label) for i, label in enumerate(band_labels(run.thresholds))]
    entries += [(kind, None, label) for kind, label in STATE_LABELS.items() if kind != "off"]
    if mesh.params.underlay:
        entries.append(("underlay-failed", None, "underlay (IPv4) failed"))
    return entries


PATTERN_DEFS = (
    '<defs><pattern id="p-lossy" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#d95f02"/>'
    '<rect width="2" height="6" fill="#f5b98a"/></pattern>'
    '<pattern id="p-error" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#737373"/>'
    '<path d="M0 0L6 6M6 0L0 6" stroke="#c8c8c8" stroke-width="1"/></pattern>'
    '<pattern id="p-mtu" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#7b4fa6"/><circle cx="3" cy="3" r="1.2" fill="#d9c8ea"/>'
    '</pattern></defs>\n')


def svg(mesh: Mesh, *, title: str, verdict: MeshVerdict | None = None, run: Run | None = None,
        legend: bool = True) -> Iterator[str]:
    """The matrix as an SVG element, in pieces: with `legend`, the verdict, the run's time and
    settings and the legend above it (the page draws those in HTML instead)."""
    verdict = judge(mesh) if verdict is None else verdict
    run = Run() if run is None else run
    labels, found = drawn(mesh, run)
    side = len(labels)
    px = _cell_px(side)
    font = max(6, min(11, px - 2))
    every = max(1, math.ceil((font + 1) / px))  # a label per `every` rows when cells are small
    shown = [label if len(label) <= 28 else label[:27] + "\u2026" for label in labels]
    margin = int(min(28, max((len(s) for s in shown), default=1)) * font * 0.62) + 12
    entries = legend_entries(mesh, run)
    rows = math.ceil(len(entries) / 5)
    head = 26 + (70 + 22 * rows if legend else 0)
    top = head + margin
    width = max(margin + side * px + 20, 960 if legend else 420)
    height = top + side * px + 24
    yield (f'<svg xmlns="http://www.w3.org/2000/svg" id="fleet-heatmap" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
           f'data-hosts="{len(mesh.hosts)}" data-side="{side}" '
           f'data-verdict="{verdict.status.value}">\n')
    yield f"<title>{xml_text(title)}</title>\n"
    stroke = "0.5" if px >= 6 else "0"
    yield (f"<style>.lab{{font-size:{font}px;fill:#222}}.cell{{stroke:#fff;stroke-width:{stroke}}}"
           ".cell:hover{stroke:#000;stroke-width:1.5}.none{stroke:#ddd}"
           ".leg{font-size:12px;fill:#222}</style>\n")
    yield PATTERN_DEFS
    if legend:
        yield (f'<text id="verdict" x="8" y="18" font-size="15" font-weight="bold" '
               f'fill="{VERDICT_COLOURS[verdict.status.value]}" data-status="{verdict.status.value}">'
               f'{xml_text(verdict.text)}</text>\n')
        yield f'<text class="leg" id="run-time" x="8" y="38">{xml_text(run.when())}</text>\n'
        yield f'<text class="leg" id="run-settings" x="8" y="56">{xml_text(settings(mesh))}</text>\n'
        yield '<g id="legend">\n'
        for i, (kind, band, label) in enumerate(entries):
            x, y = 8 + 190 * (i % 5), 66 + 22 * (i // 5)
            yield (f"{swatch(kind, band, run, x, y)}"
                   f'<text class="leg" x="{x + 22}" y="{y + 12}">{xml_text(label)}</text>\n')
        yield "</g>\n"
    yield (f'<text class="leg" x="8" y="{head - 6}">rows: source, columns: destination'
           f"{'' if side == len(mesh.hosts) else ', each cell a block of hosts'}</text>\n")
    for i, label in enumerate(shown):
        if i % every:
            continue
        full = xml_text(labels[i])
        ly = top + i * px + px / 2 + font / 3
        lx = margin + i * px + px / 2 + font / 3
        yield (f'<text class="lab" x="{margin - 4}" y="{ly:.1f}" text-anchor="end">'
               f'<title>{full}</title>{xml_text(label)}</text>\n')
        yield (f'<text class="lab" transform="translate({lx:.1f},{top - 4}) rotate(-90)">'
               f'<title>{full}</title>{xml_text(label)}</text>\n')
    yield f'<g id="cells" data-blocks="{int(side != len(mesh.hosts))}">\n'
    for c in found:
        x, y = margin + c.col * px, top + c.row * px
        layers = c.layers
        yield (f'<rect class="cell {c.kind}" x="{x}" y="{y}" width="{px}" height="{px}" '
               f'fill="{fill(c.kind, c.band, run.scale)}" data-t="{layers["tunnel"]}" '
               f'data-m="{layers["mtu"]}" data-u="{layers["underlay"]}" '
               f'data-b="{"" if c.band is None else c.band}" '
               f'data-rc="{c.row},{c.col}"><title>{xml_text(c.tip)}</title></rect>\n')
        if c.underlay_failed:
            corner = max(3, px // 3)
            yield (f'<path class="underlay-failed" d="M{x + px - corner} {y}h{corner}v{corner}z" '
                   f'fill="#000"><title>{xml_text(c.tip)}</title></path>\n')
    yield "</g>\n"
    if legend:
        yield (f'<text class="leg" id="rtt-percentiles" x="{margin}" y="{height - 8}">'
               f"{xml_text(rtt_figures(mesh))}</text>\n")
    yield "</svg>\n"


def rtt_figures(mesh: Mesh) -> str:
    """The mesh's RTT as every output gives it: percentiles over every reply."""
    found = [f"{name} {ms:.3f}" for name, ms in mesh.rtt_percentiles().items() if ms is not None]
    return "rtt over every reply: " + (", ".join(found) + " ms" if found else "too few replies")


def rtt_colour(value: float, thresholds: Sequence[float] = DEFAULT_RTT_THRESHOLDS_MS) -> str:
    """The ok colour of an average RTT (ms): its band's, the same in every run."""
    return rtt_scale(thresholds)[rtt_band(value, thresholds)]

