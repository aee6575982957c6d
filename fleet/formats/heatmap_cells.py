"""The heatmap's cells: what each cell of the matrix shows, per layer, before any drawing.

A pair has three layers, each with a state of its own: the tunnel (its ping: ok, lossy,
unreachable, error), the MTU check (ok, `mtu` failed, `error` could not tell, `off` not
measured) and the underlay (the IPv4 ping, with the tunnel's states, or `off`). A cell shows the
worst state among the layers turned on (KINDS, from the worst); by default the tunnel and the
MTU, the two the verdict judges; the underlay explains a failure and fails nothing by itself.

Ok pairs are coloured by their average tunnel RTT against absolute thresholds (ms), the same in
every run. The default, 1, 5, 20 and 100 ms, fits hosts in a VPC: under 1 ms is one zone (a few
hundred microseconds through a hypervisor's switch), 1-5 ms crosses zones of one region, 5-20 ms
is a neighbouring region or a loaded path, 20-100 ms another continent's side of a country, and
over 100 ms an ocean or a queue. Pass others (`rtt_thresholds_ms`) for another network.

Big meshes are drawn in blocks: inventory groups when given (host -> group) and there are at most
CELL_HOSTS of them, else consecutive hosts, at most CELL_HOSTS blocks a side. A block shows per
layer the worst state among its pairs, and its ok colour by the median RTT of its ok pairs.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

from fleet.mesh.model import MTU_FAILED, MTU_OK, MTU_UNKNOWN, NOT_MEASURED

if TYPE_CHECKING:
    from fleet.mesh.model import Mesh

CELL_HOSTS = 150
DEFAULT_RTT_THRESHOLDS_MS = (1.0, 5.0, 20.0, 100.0)
# Cell kinds, from the worst: a cell shows the first of these among its layers and pairs.
KINDS = ("unreachable", "lossy", "mtu", "error", "ok", "off", "none", "self")
LAYERS = ("tunnel", "mtu", "underlay")
JUDGED = ("tunnel", "mtu")  # the layers the verdict reads: on by default
# Failures are dark and saturated; every ok colour is much lighter (see OK_LIGHT / OK_DARK).
STATE_COLOURS = {"lossy": "#d95f02", "unreachable": "#d62728", "mtu": "#7b4fa6", "error": "#737373",
                 "off": "#f0f0f0", "none": "#ffffff", "self": "#222222"}
STATE_LABELS = {"lossy": "lossy (some loss)", "unreachable": "unreachable (all lost)",
                "mtu": "mtu check failed", "error": "error (could not tell)",
                "off": "layer not measured", "none": "not probed", "self": "self"}
PATTERNS = {"lossy": "url(#p-lossy)", "mtu": "url(#p-mtu)", "error": "url(#p-error)"}
OK_LIGHT, OK_DARK = "#e3eef9", "#6baed6"  # the RTT scale's ends: fastest, slowest
OK_PLAIN = "#cde8c8"  # ok, shown without a tunnel RTT (the underlay or MTU layer alone)
_TUNNEL = ("ok", "lossy", "unreachable", "error")  # by fleet.mesh.model's state codes
_MTU = {MTU_OK: "ok", MTU_FAILED: "mtu", MTU_UNKNOWN: "error"}


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(t) for t in thresholds)
    if not 1 <= len(values) <= 8 or any(not t > 0 for t in values) or \
            any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError("the RTT thresholds are 1 to 8 increasing numbers of ms above 0, "
                         f"not {', '.join(map(str, thresholds)) or 'none'}")
    return values


def rtt_scale(thresholds: Sequence[float]) -> tuple[str, ...]:
    """One colour per band (len(thresholds) + 1), from OK_LIGHT to OK_DARK."""
    ends = [[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in (OK_LIGHT, OK_DARK)]
    steps = len(thresholds)
    return tuple("#" + "".join(f"{round(a + (b - a) * i / steps):02x}" for a, b in zip(*ends))
                 for i in range(steps + 1))


def rtt_band(value: float, thresholds: Sequence[float] = DEFAULT_RTT_THRESHOLDS_MS) -> int:
    """The band of an RTT: 0 below the first threshold, len(thresholds) from the last on."""
    return bisect_right(thresholds, value)


def band_labels(thresholds: Sequence[float]) -> list[str]:
    t = [f"{v:g}" for v in thresholds]
    return [f"< {t[0]} ms", *(f"{a}-{b} ms" for a, b in zip(t, t[1:])), f"\u2265 {t[-1]} ms"]


def fill(kind: str, band: int | None, scale: Sequence[str]) -> str:
    if kind == "ok":
        return OK_PLAIN if band is None else scale[band]
    return PATTERNS.get(kind, STATE_COLOURS[kind])


def worst(kinds: Sequence[str]) -> str:
    return min(kinds, key=KINDS.index) if kinds else "off"


def shown(layers: Mapping[str, str], on: Sequence[str] = JUDGED) -> str:
    """The kind a cell shows: the worst of the layers turned on that were measured."""
    if layers["tunnel"] in ("none", "self"):
        return layers["tunnel"]
    return worst([layers[name] for name in on if layers[name] != "off"])


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    layers: Mapping[str, str]  # layer -> kind
    band: int | None  # the ok RTT's band (tunnel), None without one
    tip: str
    underlay_failed: bool = False

    @property
    def kind(self) -> str:
        return shown(self.layers)


@dataclass(frozen=True)
class Blocks:
    """How hosts gather into the blocks of a big mesh: each host's block, and each block's label
    and hosts (inventory order)."""

    of_host: list[int]
    labels: list[str]
    members: list[list[int]]
    by_group: bool


def pair_layers(mesh: Mesh, r: int) -> dict[str, str]:
    cols = mesh.columns
    u = cols.u_state[r]
    return {"tunnel": _TUNNEL[cols.state[r]],
            "mtu": _MTU.get(cols.mtu[r], "off") if mesh.params.mtu_size is not None else "off",
            "underlay": "off" if u == NOT_MEASURED else _TUNNEL[u]}


def pair_band(mesh: Mesh, r: int, thresholds: Sequence[float]) -> int | None:
    avg = mesh.columns.rtt[4 * r + 1]
    ok = mesh.columns.state[r] == 0 and avg == avg
    return rtt_band(avg, thresholds) if ok else None


def block_size(hosts: int) -> int:
    return max(1, math.ceil(hosts / CELL_HOSTS))


def blocks(names: Sequence[str], groups: Mapping[str, str] | None = None) -> Blocks | None:
    """None: a cell per pair (at most CELL_HOSTS hosts); else the blocks."""
    n = len(names)
    if n <= CELL_HOSTS:
        return None
    if groups:
        order: dict[str, int] = {}
        of_host = [order.setdefault(groups.get(name, "(no group)"), len(order)) for name in names]
        if len(order) <= CELL_HOSTS:
            members: list[list[int]] = [[] for _ in order]
            for host, block in enumerate(of_host):
                members[block].append(host)
            labels = [f"{group} ({len(members[i])})" for group, i in order.items()]
            return Blocks(of_host, labels, members, True)
    size = block_size(n)
    side = math.ceil(n / size)
    spans = [list(range(i * size, min(n, (i + 1) * size))) for i in range(side)]
    labels = [names[s[0]] if len(s) == 1 else f"{names[s[0]]} .. {names[s[-1]]}" for s in spans]
    return Blocks([i // size for i in range(n)], labels, spans, False)


def block_cells(mesh: Mesh, found: Blocks, thresholds: Sequence[float]) -> list[Cell]:
    side = len(found.labels)
    cols = mesh.columns
    tallies: list[dict[str, dict[str, int]]] = [{} for _ in range(side * side)]
    rtts: list[list[float]] = [[] for _ in range(side * side)]
    underlay_failed = [0] * (side * side)
    for r in range(len(cols)):
        b = found.of_host[cols.src[r]] * side + found.of_host[cols.dst[r]]
        for layer, kind in pair_layers(mesh, r).items():
            counts = tallies[b].setdefault(layer, {})
            counts[kind] = counts.get(kind, 0) + 1
        if cols.u_state[r] in (1, 2):
            underlay_failed[b] += 1
        if cols.state[r] == 0 and cols.rtt[4 * r + 1] == cols.rtt[4 * r + 1]:
            rtts[b].append(cols.rtt[4 * r + 1])
    out = []
    for bs in range(side):
        for bd in range(side):
            b = bs * side + bd
            rows, columns = len(found.members[bs]), len(found.members[bd])
            possible = rows * columns - (rows if bs == bd else 0)
            probed = sum(tallies[b].get("tunnel", {}).values())
            empty = "self" if possible == 0 else "none"
            layers = {layer: worst(list(tallies[b].get(layer, {}))) if probed else empty
                      for layer in LAYERS}
            rtt = median(rtts[b]) if rtts[b] else None
            lines = [f"{found.labels[bs]} -> {found.labels[bd]}: {possible} pairs"]
            for layer in LAYERS:
                counts = tallies[b].get(layer, {})
                parts = [f"{counts[k]} {k}" for k in KINDS if counts.get(k)]
                if parts and counts.get("off") != probed:
                    lines.append(f"{layer}: {', '.join(parts)}")
            if possible > probed:
                lines.append(f"{possible - probed} not probed")
            if rtt is not None:
                lines.append(f"median rtt of ok pairs: {rtt:.3f} ms")
            if underlay_failed[b]:
                lines.append(f"underlay (IPv4) failed on {underlay_failed[b]} pairs")
            band = None if rtt is None else rtt_band(rtt, thresholds)
            out.append(Cell(bs, bd, layers, band, "\n".join(lines), bool(underlay_failed[b])))
    return out


def pair_cells(mesh: Mesh, names: Sequence[str], thresholds: Sequence[float]) -> list[Cell]:
    n = len(names)
    found: dict[tuple[int, int], Cell] = {}
    cols = mesh.columns
    for r, values in enumerate(mesh.row_values()):
        layers = pair_layers(mesh, r)
        lines = [f"{values.src} -> {values.dst}: {shown(layers)}",
                 f"tunnel: {values.state}, sent {values.sent}, received {values.received}"
                 + ("" if values.loss_pct is None else f", loss {values.loss_pct:g}%")]
        if values.rtt_avg_ms is not None:
            lines.append(f"rtt ms: min {values.rtt_min_ms} avg {values.rtt_avg_ms} "
                         f"max {values.rtt_max_ms}")
        if values.error:
            lines.append(f"error: {values.error}")
        if values.mtu is not None:
            lines.append(f"mtu {values.mtu.size}: " + {True: "ok", False: "failed",
                                                       None: "could not tell"}[values.mtu.ok]
                         + (f" ({values.mtu.error})" if values.mtu.error else ""))
        if values.underlay is not None:
            u = values.underlay
            lines.append(f"underlay (IPv4): {u.state}" + ("" if u.loss_pct is None
                                                          else f", loss {u.loss_pct:g}%"))
        s, d = cols.src[r], cols.dst[r]
        found[(s, d)] = Cell(s, d, layers, pair_band(mesh, r, thresholds), "\n".join(lines),
                             cols.u_state[r] in (1, 2))
    out = []
    for s in range(n):
        for d in range(n):
            if (s, d) in found:
                out.append(found[(s, d)])
            else:
                kind = "self" if s == d else "none"
                tip = f"{names[s]} (self)" if s == d else f"{names[s]} -> {names[d]}: not probed"
                out.append(Cell(s, d, dict.fromkeys(LAYERS, kind), None, tip))
    return out


# Drill-down: every pair of a big mesh as one character (state code + DRILL_BASE), a string per
# source host. code = ((band or a state) * 5 + underlay) * 4 + mtu, at most 0x217.
DRILL_BASE = 0x100
DRILL_T = ("lossy", "unreachable", "error", "none", "self")  # after the ok bands
DRILL_U = ("off", "ok", "lossy", "unreachable", "error")
DRILL_M = ("off", "ok", "mtu", "error")


def drill_rows(mesh: Mesh, thresholds: Sequence[float]) -> list[str]:
    """Each source's row: one character per destination (see the page's script)."""
    n = len(mesh.hosts)
    bands = len(thresholds) + 1
    none = ((bands + DRILL_T.index("none")) * 5) * 4
    rows = [[DRILL_BASE + none] * n for _ in range(n)]
    for s in range(n):
        rows[s][s] = DRILL_BASE + (bands + DRILL_T.index("self")) * 20
    cols = mesh.columns
    for r in range(len(cols)):
        layers = pair_layers(mesh, r)
        band = pair_band(mesh, r, thresholds)
        first = band if band is not None else (
            bands + DRILL_T.index(layers["tunnel"]) if layers["tunnel"] != "ok" else 0)
        code = (first * 5 + DRILL_U.index(layers["underlay"])) * 4 + DRILL_M.index(layers["mtu"])
        rows[cols.src[r]][cols.dst[r]] = DRILL_BASE + code
    return ["".join(map(chr, row)) for row in rows]
