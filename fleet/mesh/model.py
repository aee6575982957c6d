"""The reachability matrix: every directed pair's state and numbers. Pure: values in, values out.

States of a pair: `ok` (no loss), `lossy` (some loss), `unreachable` (every probe lost), `error` (the
probe could not run, so we cannot tell). "Could not tell" is never reported as "unreachable".

Pairs are stored in columns (`array`s, about 30 bytes a pair), not as one object each, so that a
2,000-host mesh (4 million pairs) fits in memory; `Pair` objects are made on demand.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, IPv6Interface
from itertools import chain
from typing import Any

from fleet.core.errors import error_kind, failure_reason
from fleet.inventory import FleetHost
from fleet.mesh.ping import RTT_DECIMALS, loss_pct
from fleet.mesh.probe import PingOutcome, ProbeParams
from fleet.tunnel.isatap import ISATAP_PREFIX_LENGTH

NAN = float("nan")
_CHUNK = 4096  # rows whose RTTs are converted at once


class PairState(StrEnum):
    OK = "ok"
    LOSSY = "lossy"
    UNREACHABLE = "unreachable"
    ERROR = "error"


STATES = tuple(PairState)  # state code = index in this tuple


class HostState(StrEnum):
    OK = "ok"                      # probed its peers, tunnel in place
    UNCONFIGURED = "unconfigured"  # probed its peers, but sit1 lacks its ISATAP address
    ERROR = "error"                # could not probe (unreachable over SSH, command failed)


@dataclass(frozen=True)
class Pair:
    """One directed pair as reported: its fields, in this order, are the JSON report's pair objects
    (`PAIR_FIELDS`)."""

    src: str
    dst: str
    state: PairState
    sent: int = 0
    received: int = 0
    loss_pct: float | None = None
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_mdev_ms: float | None = None
    error: str | None = None


PAIR_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Pair))


def rtts_ms(values: Iterable[float]) -> list[float | None]:
    """Stored RTTs (NaN: no reply) as reported: milliseconds to the microsecond, or None."""
    return [None if v != v else round(v, RTT_DECIMALS) for v in values]


def pair_loss_pct(state: PairState, sent: int, received: int) -> float | None:
    """A pair's loss in percent; None when it could not tell (an error, or nothing sent)."""
    return None if state is PairState.ERROR or sent == 0 else loss_pct(sent, received)


def classify(outcome: PingOutcome) -> PairState:
    stats = outcome.stats
    if stats is None or stats.sent == 0:
        return PairState.ERROR
    if stats.received >= stats.sent:
        return PairState.OK
    if stats.received == 0:
        return PairState.UNREACHABLE
    return PairState.LOSSY


class PairColumns:
    """Directed pairs as parallel arrays: host indices, state code, counts and RTTs (ms, NaN when
    none), and the error text of the few pairs that have one."""

    def __init__(self) -> None:
        self.src = array("I")
        self.dst = array("I")
        self.state = array("B")
        self.sent = array("H")
        self.received = array("H")
        self.rtt = array("f")  # min, avg, max, mdev for each pair, flattened
        self.errors: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.state)

    def add(self, src: int, dst: int, state: PairState, sent: int = 0, received: int = 0,
            rtt: tuple[float | None, ...] = (None, None, None, None), error: str | None = None) -> None:
        if error is not None:
            self.errors[len(self.state)] = error
        self.src.append(src)
        self.dst.append(dst)
        self.state.append(STATES.index(state))
        self.sent.append(min(sent, 0xFFFF))
        self.received.append(min(received, 0xFFFF))
        self.rtt.extend(NAN if v is None else v for v in rtt)

    def add_outcome(self, src: int, dst: int, outcome: PingOutcome | None) -> None:
        if outcome is None:
            self.add(src, dst, PairState.ERROR, error="not probed")
            return
        state, stats = classify(outcome), outcome.stats
        if stats is None or state is PairState.ERROR:
            self.add(src, dst, PairState.ERROR, sent=stats.sent if stats else 0,
                     error=outcome.error or "the probe printed no statistics")
            return
        self.add(src, dst, state, stats.sent, stats.received,
                 (stats.rtt_min_ms, stats.rtt_avg_ms, stats.rtt_max_ms, stats.rtt_mdev_ms))

    def clear(self) -> None:
        for name in ("src", "dst", "state", "sent", "received", "rtt"):
            setattr(self, name, array(getattr(self, name).typecode))
        self.errors = {}

    def extend(self, other: PairColumns) -> None:
        offset = len(self)
        self.errors.update({offset + i: e for i, e in other.errors.items()})
        for name in ("src", "dst", "state", "sent", "received", "rtt"):
            getattr(self, name).extend(getattr(other, name))

    def with_state(self, row: int, state: PairState, error: str) -> None:
        self.state[row] = STATES.index(state)
        self.errors[row] = error


@dataclass(frozen=True)
class SourceReport:
    """What one source host reported: the method it used, the addresses on its tunnel, and its
    pairs (src is its own index in the fleet)."""

    method: str
    tunnel_addresses: tuple[IPv6Interface, ...]
    pairs: PairColumns
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeshHost:
    name: str
    ipv4: IPv4Address
    address: IPv6Address
    state: HostState
    error: str | None = None
    probe: str | None = None
    notes: tuple[str, ...] = ()
    error_kind: str | None = None  # why it could not probe, as fleet.core.errors names it


def peer_plan(count: int, peers: int | None) -> list[array[int]]:
    """Which hosts each host probes. Every other host by default; with `peers` = K < count - 1, K
    peers at evenly spread offsets (a circulant graph), so every host is also probed by exactly K
    others and each covers near and far neighbours in inventory order (as in Pingmesh)."""
    if peers is None or peers >= count - 1:
        # array('I'): 4 bytes a pair; a list of ints is 36 (144 MB at 2,000 hosts, kept all run)
        return [array("I", chain(range(i), range(i + 1, count))) for i in range(count)]
    offsets = sorted({max(1, min(count - 1, round((j + 1) * count / (peers + 1))))
                      for j in range(peers)})
    step = 1
    while len(offsets) < peers:  # rounding merged some offsets: fill with the smallest unused
        if step not in offsets:
            offsets.append(step)
        step += 1
    return [array("I", sorted((i + o) % count for o in offsets)) for i in range(count)]


@dataclass
class Mesh:
    hosts: tuple[MeshHost, ...]
    columns: PairColumns
    params: ProbeParams
    peers: int | None = None
    _starts: list[int] = field(default_factory=list, repr=False)

    @property
    def probe(self) -> str:
        """The method the sources used ("fping", or e.g. "fping+ping" when they differ)."""
        used = Counter(h.probe for h in self.hosts if h.probe)
        return "+".join(name for name, _ in used.most_common()) or "none"

    @property
    def pair_count(self) -> int:
        return len(self.columns)

    @property
    def full(self) -> bool:
        n = len(self.hosts)
        return self.pair_count == n * (n - 1)

    def coverage(self) -> float:
        n = len(self.hosts)
        return 1.0 if n < 2 else self.pair_count / (n * (n - 1))

    def counts(self) -> dict[str, int]:
        return {state.value: self.columns.state.count(code) for code, state in enumerate(STATES)}

    def summary(self) -> dict[str, int]:
        return {"hosts": len(self.hosts), "pairs": self.pair_count, **self.counts()}

    @property
    def all_ok(self) -> bool:
        """Every pair ok and every host probed. A host whose sit1 lacks its address but whose
        every pair answered is ok here; the diagnosis says so as a warning (`unconfigured`)."""
        return self.columns.state.count(0) == self.pair_count and all(
            h.state is not HostState.ERROR for h in self.hosts)

    def value_columns(self, start: int = 0, stop: int | None = None) -> tuple[list[Any], ...]:
        """Rows `start` to `stop` as one list per field of a Pair, in PAIR_FIELDS order, read
        straight from the columns: what a writer of millions of pairs renders a column at a time."""
        c, stop = self.columns, len(self.columns) if stop is None else stop
        names = [h.name for h in self.hosts]
        states = list(map(STATES.__getitem__, c.state[start:stop]))
        sent, received = c.sent[start:stop].tolist(), c.received[start:stop].tolist()
        rtt = rtts_ms(c.rtt[4 * start:4 * stop])
        return (list(map(names.__getitem__, c.src[start:stop])),
                list(map(names.__getitem__, c.dst[start:stop])),
                states, sent, received, list(map(pair_loss_pct, states, sent, received)),
                rtt[0::4], rtt[1::4], rtt[2::4], rtt[3::4],
                list(map(c.errors.get, range(start, stop))))

    def row_values(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[Any, ...]]:
        """Rows `start` to `stop` as tuples of a Pair's values (PAIR_FIELDS order)."""
        stop = self.pair_count if stop is None else stop
        for begin in range(start, stop, _CHUNK):
            yield from zip(*self.value_columns(begin, min(stop, begin + _CHUNK)))

    def row(self, i: int) -> Pair:
        return Pair(*next(self.row_values(i, i + 1)))

    @property
    def pairs(self) -> Iterator[Pair]:
        return (Pair(*values) for values in self.row_values())

    def find(self, src: int, dst: int) -> int | None:
        """The row of pair (src, dst) by host index, or None when it was not probed."""
        if not self._starts:
            starts, row = [0] * (len(self.hosts) + 1), 0
            for s in range(len(self.hosts)):
                starts[s] = row
                while row < self.pair_count and self.columns.src[row] == s:
                    row += 1
            starts[-1] = row
            self._starts = starts
        lo, hi = self._starts[src], self._starts[src + 1]
        at = bisect_left(self.columns.dst, dst, lo, hi)
        return at if at < hi and self.columns.dst[at] == dst else None

    def pair(self, src: str, dst: str) -> Pair | None:
        index = {h.name: i for i, h in enumerate(self.hosts)}
        row = self.find(index[src], index[dst])
        return None if row is None else self.row(row)

    def state_at(self, row: int) -> PairState:
        return STATES[self.columns.state[row]]


def source_report(src: int, targets: Sequence[tuple[int, str]], method: str,
                  tunnel_addresses: tuple[IPv6Interface, ...],
                  outcomes: Mapping[str, PingOutcome],
                  notes: tuple[str, ...] = ()) -> SourceReport:
    """Fold one source's outcomes (keyed by the peers' address texts) into columns, right away
    (the outcomes are then dropped)."""
    pairs = PairColumns()
    for dst, address in targets:
        pairs.add_outcome(src, dst, outcomes.get(address))
    return SourceReport(method, tunnel_addresses, pairs, notes)


def build_mesh(hosts: Sequence[FleetHost],
               reports: Mapping[str, SourceReport | str | BaseException],
               params: ProbeParams, plan: Sequence[Sequence[int]], peers: int | None = None) -> Mesh:
    """Combine each source's report (or the reason it has none) into the matrix.

    `reports` maps a host name to its SourceReport, or to the exception (or a message) that says
    why it could not probe;
    `plan[i]` lists the hosts that host i was to probe. The reports' columns are moved into the
    mesh (they are left empty), so the pairs are never held twice.
    """
    mesh_hosts: list[MeshHost] = []
    columns = PairColumns()
    for i, src in enumerate(hosts):
        report = reports.get(src.name, "no result")
        if not isinstance(report, SourceReport):
            kind, reason = error_kind(report) or "error", failure_reason(report)
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.ERROR, reason,
                                       error_kind=kind))
            for j in plan[i]:
                columns.add(i, j, PairState.ERROR, error=f"source failed: {reason}")
            continue
        own = IPv6Interface(f"{src.address}/{ISATAP_PREFIX_LENGTH}")
        start = len(columns)
        columns.extend(report.pairs)
        report.pairs.clear()
        if own in report.tunnel_addresses:
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.OK,
                                       probe=report.method, notes=report.notes))
            continue
        note = f"sit1 does not carry {own}; run `fleet run setup`"
        mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.UNCONFIGURED, note,
                                   probe=report.method, notes=report.notes))
        # Without its address, a source's silence says nothing about the peer: could not tell.
        for row in range(start, len(columns)):
            if columns.state[row] == STATES.index(PairState.UNREACHABLE):
                columns.with_state(row, PairState.ERROR, f"source not configured: {note}")
    return Mesh(tuple(mesh_hosts), columns, params, peers)
