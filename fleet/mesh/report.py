"""Turning results into what people and machines read: tables for a terminal, JSON for a program.

The table is rendered once with its colour spans (`render_mesh_spans`): where the headline shows
the verdict and where each matrix cell shows a pair's state, recorded while the text is written,
so a terminal colours what was rendered and never reads the text back to find it. Host names in
the row labels are never coloured, whatever letters they hold.

Mesh JSON is streamed pair by pair, so a report of millions of pairs never exists as one object.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO, get_type_hints

from fleet.core.output import columns
from fleet.core.results import EXIT_INTERRUPTED, Highlight
from fleet.core.terminal import one_line, printable
from fleet.mesh.diagnosis import Finding
from fleet.mesh.model import (
    PAIR_FIELDS,
    RTT_FIELDS,
    STATES,
    HostState,
    Mesh,
    MtuCheck,
    Pair,
    PairState,
    Underlay,
    pair_values,
    rtt_texts,
)
from fleet.mesh.verdict import MeshVerdict, expected_pairs, judge

SYMBOLS = {PairState.OK: ".", PairState.LOSSY: "~", PairState.UNREACHABLE: "X", PairState.ERROR: "E"}
# The states the table's spans name: a matrix cell's pair state, and the verdict's good or bad
# (fleet.core.results.VERDICT_STATES).
CELL_STATES = tuple(state.value for state in SYMBOLS)
MATRIX_HEADER = "src \\ dst"
LEGEND = "legend: . ok   ~ lossy   X unreachable   E error (could not tell)   - self   (blank: not probed)"
GRID_MAX_HOSTS = 60       # above this the matrix is summarised per host instead of drawn
NOTES_MAX = 20            # hosts whose prober notes are shown in the table
PAIR_BATCH = 4096         # pairs rendered at once in the JSON report

# A column of a Pair's field rendered as JSON texts, by the field's type (`quoted`: texts of the
# host names and states). Floats and ints are written as json.dumps writes them (repr, str).
def _json_or_null(value: str | float | None) -> str:
    return "null" if value is None else json.dumps(value)


def _underlay_text(u: Underlay | None) -> str:
    if u is None:
        return "null"
    return (f'{{"state": "{u.state.value}", "sent": {u.sent}, "received": {u.received}, '
            f'"loss_pct": {_json_or_null(u.loss_pct)}, "rtt_avg_ms": {_json_or_null(u.rtt_avg_ms)}, '
            f'"error": {_json_or_null(u.error)}}}')


def _mtu_text(m: MtuCheck | None) -> str:
    if m is None:
        return "null"
    return (f'{{"ok": {json.dumps(m.ok)}, "size": {m.size}, "error": {_json_or_null(m.error)}}}')


def _number_texts(column: list[float | None]) -> list[str]:
    """Each number as JSON writes it, each distinct one written once (RTTs and loss repeat)."""
    texts = {v: "null" if v is None else repr(v) for v in set(column)}
    return list(map(texts.__getitem__, column))


def _as_they_are(column: list[Any], quoted: dict[Any, str]) -> list[Any]:
    return column


_COLUMN_RENDERERS: dict[object, Callable[[list[Any], dict[Any, str]], Iterable[str]]] = {
    str: lambda column, quoted: map(quoted.__getitem__, column),
    PairState: lambda column, quoted: map(quoted.__getitem__, column),
    int: lambda column, quoted: map(str, column),
    float | None: lambda column, quoted: _number_texts(column),
    str | None: lambda column, quoted: ["null" if v is None else json.dumps(v) for v in column],
    Underlay | None: lambda column, quoted: map(_underlay_text, column),
    MtuCheck | None: lambda column, quoted: map(_mtu_text, column),
}


class MeshJson:
    """The documented JSON report of a mesh run, written pair by pair."""

    def __init__(self, mesh: Mesh, verdict: MeshVerdict | None = None, **extra: Any) -> None:
        self.mesh = mesh
        self.verdict = judge(mesh, interrupted=bool(extra.get("interrupted"))) if verdict is None \
            else verdict
        self.extra = extra

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.verdict.findings

    def header(self) -> dict[str, Any]:
        mesh, p = self.mesh, self.mesh.params
        return {
            "task": "mesh",
            "verdict": self.verdict.as_dict(),
            "probe": {"method": mesh.probe, "count": p.count, "interval_s": p.interval,
                      "timeout_s": p.timeout, "parallel": p.parallel, "underlay": p.underlay,
                      "mtu_size": p.mtu_size},
            "coverage": {"peers_per_host": mesh.peers, "pairs": mesh.pair_count,
                         "fraction": round(mesh.coverage(), 4)},
            "hosts": [{"name": h.name, "ipv4": str(h.ipv4), "address": str(h.address),
                       "state": h.state.value, "error": h.error, "error_kind": h.error_kind,
                       "probe": h.probe,
                       "notes": list(h.notes), "groups": list(h.groups)}
                      for h in mesh.hosts],
        }

    def write_json(self, stream: TextIO) -> None:
        head = json.dumps(self.header(), indent=2)
        stream.write(head[:-2] + ',\n  "pairs": [')
        batch: list[str] = []
        for i, text in enumerate(self._pair_texts()):
            batch.append(text)
            if len(batch) == 10_000:
                stream.write(("\n    " if i < 10_000 else ",\n    ") + ",\n    ".join(batch))
                batch = []
        if batch:
            stream.write(("\n    " if self.mesh.pair_count <= len(batch) else ",\n    ")
                         + ",\n    ".join(batch))
        stream.write("\n  ],\n")
        tail = json.dumps({"summary": self.summary(),
                           "diagnosis": [f.as_dict() for f in self.findings], **self.extra},
                          indent=2)
        stream.write(tail[2:])

    def summary(self) -> dict[str, Any]:
        """The pair counts, the RTT percentiles over every reply, and the underlay's and MTU
        check's counts (null when not measured)."""
        mesh = self.mesh
        return {**mesh.summary(), "rtt_ms": mesh.rtt_percentiles(),
                "underlay": mesh.underlay_counts(), "mtu": mesh.mtu_counts()}

    def _pair_texts(self) -> Iterator[str]:
        """Each pair as one JSON object with the fields of a Pair, rendered a column at a time
        from the mesh's values, without making a Pair and a dict per pair (4 million of them at
        2,000 hosts)."""
        mesh = self.mesh
        template = "{" + ", ".join(f"{json.dumps(name)}: %s" for name in PAIR_FIELDS) + "}"
        # The same few strings again and again: the host names and the states, quoted once.
        quoted = {h.name: json.dumps(h.name) for h in mesh.hosts}
        quoted.update((state, json.dumps(state.value)) for state in STATES)
        types = get_type_hints(Pair)
        # the RTTs come as JSON texts already (rtt_texts): each distinct value written once
        render = [_as_they_are if name in RTT_FIELDS else _COLUMN_RENDERERS[types[name]]
                  for name in PAIR_FIELDS]
        names = [h.name for h in mesh.hosts]
        for begin in range(0, mesh.pair_count, PAIR_BATCH):
            values = pair_values(mesh.columns, names, mesh.params.mtu_size, begin,
                                 min(mesh.pair_count, begin + PAIR_BATCH), rtts=rtt_texts)
            for row in zip(*[r(column, quoted) for r, column in zip(render, values)]):
                yield template % row

    def as_dict(self) -> dict[str, Any]:
        """The whole report as one value (for small meshes and tests): the streamed text, read
        back, so there is one writer of the format."""
        stream = io.StringIO()
        self.write_json(stream)
        document: dict[str, Any] = json.loads(stream.getvalue())
        return document


class MeshReport:
    """A mesh run's report: the model, the table, the JSON document and the exit code."""

    def __init__(self, mesh: Mesh, *, interrupted: bool, elapsed: float,
                 verdict: MeshVerdict | None = None) -> None:
        self.mesh = mesh
        self.interrupted = interrupted
        self.elapsed = elapsed
        self._verdict = verdict  # None: judged when first asked
        self._rendered: Rendered | None = None

    @property
    def verdict(self) -> MeshVerdict:
        """The verdict, made once: every output (the table, the JSON, the files, the exit code)
        renders it."""
        if self._verdict is None:
            self._verdict = judge(self.mesh, interrupted=self.interrupted)
        return self._verdict

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.verdict.findings

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else self.verdict.exit_code

    def rendered(self) -> Rendered:
        """The table and its spans, rendered once."""
        if self._rendered is None:
            self._rendered = render_mesh_spans(self.mesh, self.verdict)
        return self._rendered

    def render(self) -> str:
        return self.rendered().text

    @property
    def headline(self) -> str:
        """`mesh ALL OK: 4 hosts, 12 pairs: ...`, the first line of the table."""
        return self.rendered().headline

    def highlights(self, text: str) -> list[Highlight]:
        """Where `text` (this report's table or headline, or a text holding one of them) shows a
        pair's state or the verdict: the spans the render recorded, placed where it is found."""
        return self.rendered().spans_in(text)

    def to_json(self) -> MeshJson:
        return MeshJson(self.mesh, self.verdict, interrupted=self.interrupted,
                        elapsed_s=round(self.elapsed, 3))


def mesh_to_json(mesh: Mesh) -> dict[str, Any]:
    return MeshJson(mesh).as_dict()


@dataclass(frozen=True)
class Rendered:
    """A rendered table and its spans: (start, end, state) where it shows a state, `state` one of
    CELL_STATES or the verdict's "good" or "bad"."""

    text: str
    spans: tuple[Highlight, ...]

    @property
    def headline(self) -> str:
        return self.text.split("\n", 1)[0]

    def spans_in(self, text: str) -> list[Highlight]:
        """The spans of the whole table, or of its headline alone, where `text` holds it."""
        headline = self.headline
        for shown, spans in ((self.text, self.spans),
                             (headline, tuple(s for s in self.spans if s[1] <= len(headline)))):
            at = text.find(shown)
            if at >= 0:
                return [(start + at, end + at, state) for start, end, state in spans]
        return []


class _Lines:
    """Lines being written, each made printable as it is added, with the spans on them kept at
    their offsets in the finished text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.spans: list[Highlight] = []
        self._length = 0

    def add(self, line: str, spans: Iterable[Highlight] = ()) -> None:
        """One line, `spans` at offsets in the line as made printable."""
        start = self._length + (1 if self.lines else 0)
        shown = printable(line)
        self.spans += [(start + begin, start + end, state) for begin, end, state in spans]
        self.lines.append(shown)
        self._length = start + len(shown)

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.add(line)

    def rendered(self) -> Rendered:
        return Rendered("\n".join(self.lines), tuple(self.spans))


def render_mesh(mesh: Mesh, verdict: MeshVerdict | None = None) -> str:
    """The table's text (see render_mesh_spans)."""
    return render_mesh_spans(mesh, verdict).text


def render_mesh_spans(mesh: Mesh, verdict: MeshVerdict | None = None) -> Rendered:
    """The matrix (one character a pair, rows are sources) or, for big meshes, a line per host;
    then the diagnosis in words (a line per finding, however big the mesh), the probers' notes
    and the RTT spread. With the spans of the headline's verdict and of the matrix's cells."""
    verdict = judge(mesh) if verdict is None else verdict
    findings = verdict.findings
    out = _Lines()
    headline = _mesh_headline(mesh, verdict)
    at = len("mesh ")
    out.add(headline, [(at, at + len(verdict.word), "good" if verdict.ok else "bad")])
    out.add("")
    lines: list[str] = []
    if len(mesh.hosts) <= GRID_MAX_HOSTS:
        for row, spans in _matrix_rows(mesh):
            out.add(row, spans)
        lines += ["", LEGEND, "", "hosts:"]
        lines += columns([[f"{i}", h.name, str(h.ipv4), str(h.address), h.state.value,
                            one_line(h.error or "")] for i, h in enumerate(mesh.hosts, 1)], indent=2)
    else:
        lines += _host_summary_lines(mesh)
    if findings:
        lines += ["", f"diagnosis: {verdict.text}"]
        lines += [f"  {f.kind}: {one_line(f.text)}" for f in findings]
    notes = [f"  {h.name}: {'; '.join(h.notes)}; probed with {h.probe}" for h in mesh.hosts if h.notes]
    if notes:
        lines += ["", "notes:"] + notes[:NOTES_MAX]
        if len(notes) > NOTES_MAX:
            lines.append(f"  ... and {len(notes) - NOTES_MAX} more (see --json)")
    rtt = _rtt_line(mesh)
    if rtt:
        lines += ["", rtt]
    lines += _extra_round_lines(mesh)
    out.extend(lines)
    return out.rendered()


def _extra_round_lines(mesh: Mesh) -> list[str]:
    """One line each for the underlay and the MTU check, when they were measured."""
    lines = []
    underlay = mesh.underlay_counts()
    if underlay is not None:
        lines.append("underlay (ping -4 to the tunnel IPv4): " + ", ".join(
            f"{n} {state}" for state, n in underlay.items()))
    mtu = mesh.mtu_counts()
    if mtu is not None:
        lines.append(f"mtu {mesh.params.mtu_size} (don't fragment): {mtu['ok']} ok, "
                     f"{mtu['failed']} failed, {mtu['unknown']} could not tell")
    return lines


def _mesh_headline(mesh: Mesh, verdict: MeshVerdict) -> str:
    c = mesh.counts()
    p = mesh.params
    promised = expected_pairs(len(mesh.hosts), mesh.peers)
    if mesh.peers is not None and not mesh.full:
        sampled = f", sampled: {mesh.peers} peers per host ({100 * mesh.coverage():.1f}% of pairs)"
    else:
        sampled = "" if mesh.pair_count == promised else f" of {promised} promised"
    return (f"mesh {verdict.word}: {len(mesh.hosts)} hosts, {mesh.pair_count} pairs{sampled}: "
            f"{c['ok']} ok, {c['lossy']} lossy, {c['unreachable']} unreachable, {c['error']} error"
            f"  (probe {mesh.probe}: {p.count} x {p.interval:g} s, wait {p.timeout:g} s"
            f"{', underlay' if p.underlay else ''}"
            f"{f', mtu {p.mtu_size}' if p.mtu_size is not None else ''})")


def _matrix_rows(mesh: Mesh) -> list[tuple[str, list[Highlight]]]:
    """The header, then a row per source: its label and a cell per destination, each probed
    cell with its span (the cell's symbol, the pair's state)."""
    names = [printable(h.name) for h in mesh.hosts]
    cell = len(str(len(names))) + 1
    grid: list[list[PairState | None]] = [[None] * len(names) for _ in names]
    cols = mesh.columns
    for i in range(mesh.pair_count):
        grid[cols.src[i]][cols.dst[i]] = STATES[cols.state[i]]
    label_width = max(len(str(len(names))) + 1 + max(map(len, names), default=0), len(MATRIX_HEADER))
    header = MATRIX_HEADER.ljust(label_width) + "".join(
        str(i).rjust(cell) for i in range(1, len(names) + 1))
    rows: list[tuple[str, list[Highlight]]] = [(header, [])]
    for r, name in enumerate(names):
        label = f"{r + 1:>{len(str(len(names)))}} {name}".ljust(label_width)
        symbols, spans = [], []
        for c, state in enumerate(grid[r]):
            symbols.append("-" if r == c else " " if state is None else SYMBOLS[state])
            if state is not None and r != c:
                at = len(label) + (c + 1) * cell - 1
                spans.append((at, at + 1, state.value))
        rows.append((label + "".join(symbol.rjust(cell) for symbol in symbols), spans))
    return rows


def _host_summary_lines(mesh: Mesh) -> list[str]:
    """For big meshes: per host, how many of its outgoing and incoming pairs are ok."""
    n = len(mesh.hosts)
    out_ok, out_all, in_ok, in_all = [0] * n, [0] * n, [0] * n, [0] * n
    cols = mesh.columns
    for i in range(mesh.pair_count):
        s, d, ok = cols.src[i], cols.dst[i], cols.state[i] == 0
        out_all[s] += 1
        in_all[d] += 1
        out_ok[s] += ok
        in_ok[d] += ok
    rows = [["HOST", "IPV4", "STATE", "OUT OK", "IN OK", "NOTE"]]
    for i, h in enumerate(mesh.hosts):
        if h.state is not HostState.ERROR and out_ok[i] == out_all[i] and in_ok[i] == in_all[i]:
            continue
        rows.append([h.name, str(h.ipv4), h.state.value, f"{out_ok[i]}/{out_all[i]}",
                     f"{in_ok[i]}/{in_all[i]}", h.error or ""])
    fine = n - (len(rows) - 1)
    lines = [f"{fine} of {n} hosts have every pair ok, both ways" + (":" if len(rows) > 1 else ".")]
    if len(rows) > 1:
        lines += ["the others:"] + columns(rows, indent=2)
    return lines


def _rtt_line(mesh: Mesh) -> str:
    """The mesh's RTT: its percentiles over every reply (the one figure every output gives), and
    the fastest and slowest replies with the slowest pair."""
    rtt = mesh.columns.rtt
    if not any(v == v for v in rtt[1::4]):  # NaN != NaN: no pair had a reply
        return ""
    maxima = rtt[2::4]
    worst = max(range(len(maxima)), key=lambda i: maxima[i] if maxima[i] == maxima[i] else -1.0)
    slowest = mesh.row(worst)
    found = mesh.rtt_percentiles()
    spread = ", ".join(f"{name} {value:.3f}" for name, value in found.items() if value is not None)
    return ("rtt ms, every reply: " + (spread or "too few replies for percentiles") + "; "
            f"min {min(v for v in rtt[0::4] if v == v):.3f}, "
            f"max {slowest.rtt_max_ms:.3f} ({slowest.src} -> {slowest.dst})")


