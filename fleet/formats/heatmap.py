"""The mesh as a picture: a matrix of sources (rows) by destinations (columns), one SVG document,
standalone (FILE.svg) or in a page (FILE.html). Self-contained: inline CSS and script, no network.

At the top stands the run's one verdict (fleet.mesh.verdict: ALL OK, NOT OK, COULD NOT TELL),
with its diagnosis in the page, then when the file was written (the mesh keeps no clock: the
`generated` time given, by default the moment of rendering, which for `fleet run` is the end of
the run and for `fleet report` the time of the report) and how long the probing took (the
report's elapsed), the probe settings (method, count, interval, timeout, underlay, mtu) and the
inventory's size, then the legend, then the matrix. In the page the legend and the layer toggles
stay in view (a sticky bar) however far the matrix is scrolled.

Each cell shows the worst state among its layers turned on (tunnel, MTU, underlay; see
fleet.formats.heatmap_cells); ok pairs by their average RTT against absolute thresholds
(`rtt_thresholds_ms`, default 1, 5, 20, 100 ms: one colour means one RTT band in every run), from
very light (fast) to a medium blue that stays far lighter than any failure and the black
diagonal. Failures have colours of their own, three with a pattern too, so they stay apart in
grey print: lossy (orange, striped), unreachable (red), mtu (purple, dotted), error: could not
tell (grey, cross-hatched), not probed (white), self (black). A pair whose underlay (IPv4) ping
failed has a black corner. Hovering a cell shows its numbers (an SVG <title>).

Up to CELL_HOSTS hosts a cell is one directed pair. Above, a cell is a block: an inventory group
(`groups`: host -> group) or consecutive hosts, the matrix at most CELL_HOSTS cells a side (1,000
hosts: blocks of 7, 143 x 143). In the page, clicking a block shows its hosts' pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.formats.heatmap_cells import (
    CELL_HOSTS,
    DEFAULT_RTT_THRESHOLDS_MS,
    KINDS,
    STATE_COLOURS,
    STATE_LABELS,
    block_size,
    check_thresholds,
    rtt_band,
)
from fleet.formats.heatmap_page import page
from fleet.formats.heatmap_svg import RTT_SCALE, Run, svg
from fleet.formats.sources import mesh_sources

if TYPE_CHECKING:
    from fleet.formats import TaskOutcomeLike
    from fleet.mesh.model import Mesh

EXTENSIONS = (".html", ".svg")

__all__ = ["CELL_HOSTS", "DEFAULT_RTT_THRESHOLDS_MS", "EXTENSIONS", "KINDS", "RTT_SCALE",
           "STATE_COLOURS", "STATE_LABELS", "block_size", "first_groups", "problem", "render", "rtt_band"]


def first_groups(mesh: Mesh) -> dict[str, str] | None:
    """Each host's first inventory group (host -> group), None when no host has a group."""
    found = {host.name: host.groups[0] for host in mesh.hosts if host.groups}
    return found or None


def problem(path: Path, tasks: Sequence[str]) -> str | None:
    if path.suffix.lower() not in EXTENSIONS:
        return f"the heatmap is .html or .svg (by the file's extension), not {path.suffix or 'none'}"
    if "mesh" not in tasks:
        return "a heatmap draws a mesh: add the mesh task to the run"
    return None


def render(outcomes: Sequence[TaskOutcomeLike], path: Path, *, generated: datetime | None = None,
           rtt_thresholds_ms: Sequence[float] = DEFAULT_RTT_THRESHOLDS_MS,
           groups: Mapping[str, str] | None = None) -> Iterator[str] | None:
    """The last mesh's heatmap. `generated`: the time to print (default: now, in UTC);
    `rtt_thresholds_ms`: the ok colours' bands; `groups`: host -> group, the blocks of a big
    mesh (default: each host's first inventory group, as the mesh carries it; consecutive hosts
    when no host has one)."""
    sources = mesh_sources(outcomes)
    if not sources:
        return None
    source = sources[-1]
    run = Run(generated or datetime.now(UTC), source.elapsed, check_thresholds(rtt_thresholds_ms),
              first_groups(source.mesh) if groups is None else groups)
    title = f"fleet {source.task}"
    if path.suffix.lower() == ".svg":
        return iter(['<?xml version="1.0" encoding="UTF-8"?>\n',
                     *svg(source.mesh, title=title, verdict=source.verdict, run=run)])
    return page(source.mesh, title=title, verdict=source.verdict, run=run)
