"""Turning results into what people and machines read: tables for a terminal, JSON for a program."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from fleet.matrix import HostState, Mesh, Pair, PairState

SYMBOLS = {PairState.OK: ".", PairState.LOSSY: "~", PairState.UNREACHABLE: "X", PairState.ERROR: "E"}
LEGEND = "legend: . ok   ~ lossy   X unreachable   E error (could not tell)   - self"


def mesh_to_json(mesh: Mesh) -> dict[str, Any]:
    """The documented JSON report of a mesh run."""
    p = mesh.params
    return {
        "task": "mesh",
        "probe": {"method": mesh.probe, "count": p.count, "interval_s": p.interval,
                  "timeout_s": p.timeout, "parallel": p.parallel},
        "hosts": [{"name": h.name, "ipv4": str(h.ipv4), "address": str(h.address),
                   "state": h.state.value, "error": h.error} for h in mesh.hosts],
        "pairs": [_pair_json(pair) for pair in mesh.pairs],
        "summary": mesh.summary(),
    }


def _pair_json(pair: Pair) -> dict[str, Any]:
    return {"src": pair.src, "dst": pair.dst, "state": pair.state.value, "sent": pair.sent,
            "received": pair.received, "loss_pct": pair.loss_pct, "rtt_min_ms": pair.rtt_min_ms,
            "rtt_avg_ms": pair.rtt_avg_ms, "rtt_max_ms": pair.rtt_max_ms,
            "rtt_mdev_ms": pair.rtt_mdev_ms, "error": pair.error}


def write_json(document: Any, stream: TextIO) -> None:
    json.dump(document, stream, indent=2)
    stream.write("\n")


def render_mesh(mesh: Mesh) -> str:
    """The matrix (one character a pair, rows are sources), hosts, problems and RTTs."""
    lines = [_mesh_headline(mesh), ""]
    lines += _matrix_lines(mesh)
    lines += ["", LEGEND, "", "hosts:"]
    lines += _columns([[f"{i}", h.name, str(h.ipv4), str(h.address), h.state.value,
                        h.error or ""] for i, h in enumerate(mesh.hosts, 1)], indent=2)
    problems = _problem_lines(mesh)
    if problems:
        lines += ["", "problems:"] + problems
    rtt = _rtt_line(mesh)
    if rtt:
        lines += ["", rtt]
    return "\n".join(lines)


def _mesh_headline(mesh: Mesh) -> str:
    c = mesh.counts()
    p = mesh.params
    verdict = "ALL OK" if mesh.all_ok else "NOT OK"
    return (f"mesh {verdict}: {len(mesh.hosts)} hosts, {len(mesh.pairs)} pairs: {c['ok']} ok, "
            f"{c['lossy']} lossy, {c['unreachable']} unreachable, {c['error']} error  "
            f"(probe {mesh.probe} -6: {p.count} x {p.interval:g} s, wait {p.timeout:g} s)")


def _matrix_lines(mesh: Mesh) -> list[str]:
    names = [h.name for h in mesh.hosts]
    index = {name: i for i, name in enumerate(names)}
    cell = len(str(len(names))) + 1
    grid = [["-" if r == c else " " for c in range(len(names))] for r in range(len(names))]
    for pair in mesh.pairs:
        grid[index[pair.src]][index[pair.dst]] = SYMBOLS[pair.state]
    label_width = max(len(str(len(names))) + 1 + max(map(len, names), default=0), len("src \\ dst"))
    header = "src \\ dst".ljust(label_width) + "".join(str(i).rjust(cell) for i in range(1, len(names) + 1))
    rows = [header]
    for i, name in enumerate(names):
        label = f"{i + 1:>{len(str(len(names)))}} {name}".ljust(label_width)
        rows.append(label + "".join(sym.rjust(cell) for sym in grid[i]))
    return rows


def _problem_lines(mesh: Mesh) -> list[str]:
    lines: list[str] = []
    failed_sources = {h.name: h.error for h in mesh.hosts if h.state is HostState.ERROR}
    for name, error in failed_sources.items():
        lines.append(f"  {name} -> *: error, could not probe: {error}")
    for host in mesh.hosts:
        if host.state is HostState.UNCONFIGURED:
            lines.append(f"  {host.name}: {host.error}")
    bad = [p for p in mesh.pairs if p.state is not PairState.OK and p.src not in failed_sources]
    # A destination that no working source can reach is one problem, not N.
    by_dst: dict[str, list[Pair]] = {}
    for pair in bad:
        by_dst.setdefault(pair.dst, []).append(pair)
    sources = len([h for h in mesh.hosts if h.name not in failed_sources])
    whole = {dst for dst, pairs in by_dst.items()
             if len(pairs) == sources - (0 if dst in failed_sources else 1) and len(pairs) > 1
             and all(p.state is PairState.UNREACHABLE for p in pairs)}
    for dst in sorted(whole, key=[h.name for h in mesh.hosts].index):
        why = f" (its own probe failed: {failed_sources[dst]})" if dst in failed_sources else ""
        lines.append(f"  * -> {dst}: unreachable from every source{why}")
    for pair in bad:
        if pair.dst in whole:
            continue
        if pair.state is PairState.ERROR:
            lines.append(f"  {pair.src} -> {pair.dst}: error: {pair.error}")
        else:
            lines.append(f"  {pair.src} -> {pair.dst}: {pair.state.value}, {pair.sent} sent, "
                         f"{pair.received} received ({pair.loss_pct:g}% loss)")
    asymmetric = [p for p in mesh.pairs if p.state is PairState.OK and
                  (back := mesh.pair(p.dst, p.src)) is not None and back.state is PairState.UNREACHABLE
                  and p.dst not in failed_sources] if len(mesh.pairs) <= 10_000 else []
    for pair in asymmetric:
        lines.append(f"  {pair.src} -> {pair.dst} ok but {pair.dst} -> {pair.src} unreachable "
                     "(asymmetric: check both hosts' tunnel local address and filters)")
    return lines


def _rtt_line(mesh: Mesh) -> str:
    measured = [p for p in mesh.pairs if p.rtt_avg_ms is not None]
    if not measured:
        return ""
    averages = [p.rtt_avg_ms for p in measured if p.rtt_avg_ms is not None]
    slowest = max(measured, key=lambda p: p.rtt_max_ms or 0.0)
    return (f"rtt ms: median of averages {statistics.median(averages):.3f}, "
            f"min {min(p.rtt_min_ms or 0.0 for p in measured):.3f}, "
            f"max {slowest.rtt_max_ms:.3f} ({slowest.src} -> {slowest.dst})")


def _columns(rows: Sequence[Sequence[str]], indent: int = 0) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [(" " * indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths))).rstrip()
            for row in rows]


def render_host_table(task: str, rows: Iterable[tuple[str, str, str]], counts: Mapping[str, int],
                      elapsed: float, *, interrupted: bool = False) -> str:
    """Per-host lines (name, status, detail) and a recap, for tasks like setup and teardown."""
    lines = _columns([list(row) for row in rows])
    recap = ", ".join(f"{n} {status}" for status, n in counts.items())
    total = sum(counts.values())
    tail = "; INTERRUPTED" if interrupted else ""
    lines.append(f"{task}: {total} host{'s' if total != 1 else ''}: {recap} ({elapsed:.1f} s){tail}")
    return "\n".join(lines)
