"""The reachability matrix: every directed pair's state and numbers. Pure: values in, values out.

States of a pair: `ok` (no loss), `lossy` (some loss), `unreachable` (every probe lost), `error` (the
probe could not run, so we cannot tell). "Could not tell" is never reported as "unreachable".

Pairs are stored in columns (`array`s, about 30 bytes a pair, about 20 more with percentiles,
the underlay and the MTU check), not as one object each, so that a 2,000-host mesh (4 million
pairs) fits in memory; `Pair` objects are made on demand. Every reply's RTT is also counted, in
microseconds, for the mesh's percentiles.

With `--underlay` a pair also has the state of the same source pinging the peer's tunnel IPv4,
outside the tunnel (`Underlay`); with `--mtu`, whether don't-fragment pings that fill the tunnel
MTU got through (`MtuCheck`). Both are measurements only: what they mean together is for the
reader to decide.
"""

from __future__ import annotations

import functools
from array import array
from bisect import bisect_left
from collections import Counter, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, IPv6Interface
from itertools import chain
from typing import Any

from fleet.core.errors import error_kind, failure_reason
from fleet.inventory import FleetHost
from fleet.isatap import ISATAP_PREFIX_LENGTH
from fleet.mesh.percentiles import (
    counter_percentiles,
    micro_counts,
    micros,
    percentile_indexes,
    sample_percentiles,
)
from fleet.mesh.ping import RTT_DECIMALS, loss_pct
from fleet.mesh.probe import PingOutcome, ProbeParams

NAN = float("nan")
_CHUNK = 4096  # rows whose RTTs are converted at once


class PairState(StrEnum):
    OK = "ok"
    LOSSY = "lossy"
    UNREACHABLE = "unreachable"
    ERROR = "error"


STATES = tuple(PairState)  # state code = index in this tuple
NOT_MEASURED = 255  # underlay state code of a pair whose underlay was not pinged
MTU_NOT_MEASURED, MTU_UNKNOWN, MTU_FAILED, MTU_OK = -2, -1, 0, 1  # MTU check codes


class HostState(StrEnum):
    OK = "ok"                      # probed its peers, tunnel in place
    UNCONFIGURED = "unconfigured"  # probed its peers, but sit1 lacks its ISATAP address
    ERROR = "error"                # could not probe (unreachable over SSH, command failed)


@dataclass(frozen=True)
class Underlay:
    """The same source pinging the peer's tunnel IPv4 (outside the tunnel): the JSON report's
    `pairs[].underlay`."""

    state: PairState
    sent: int = 0
    received: int = 0
    loss_pct: float | None = None
    rtt_avg_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class MtuCheck:
    """Whether don't-fragment pings of `size` bytes (the IPv6 packet) got through the tunnel:
    True (a reply), False (none), None (could not tell: the probe failed, or not even the small
    pings got through). The JSON report's `pairs[].mtu`."""

    ok: bool | None
    size: int
    error: str | None = None


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
    rtt_p50_ms: float | None = None
    rtt_p90_ms: float | None = None
    rtt_p99_ms: float | None = None
    error: str | None = None
    underlay: Underlay | None = None
    mtu: MtuCheck | None = None


PAIR_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Pair))
# The fields read from the stored RTTs (pair_values' `rtts`).
RTT_FIELDS = ("rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_mdev_ms", "rtt_p50_ms", "rtt_p90_ms",
              "rtt_p99_ms")
# A pair's values by name without a Pair object: what renderers of millions of pairs read.
PairRow = namedtuple("PairRow", PAIR_FIELDS)  # type: ignore[misc]  # fields from Pair, one definition


def rtts_ms(values: Iterable[float]) -> list[float | None]:
    """Stored RTTs (NaN: no reply) as reported: milliseconds to the microsecond, or None.
    Each distinct value is rounded once: a mesh's RTTs repeat (microseconds, stored as float32)."""
    values = values.tolist() if isinstance(values, array) else list(values)
    # a NaN is found by identity: each one read from the array is its own object, in the set too
    shown = {v: None if v != v else round(v, RTT_DECIMALS) for v in set(values)}
    return list(map(shown.__getitem__, values))


def rtt_texts(values: array[float]) -> list[str]:
    """Stored RTTs as the JSON report writes them: rtts_ms's numbers as json writes them, or
    "null"; each distinct value rounded and written once."""
    listed = values.tolist()
    shown = {v: "null" if v != v else repr(round(v, RTT_DECIMALS)) for v in set(listed)}
    return list(map(shown.__getitem__, listed))


@functools.lru_cache(maxsize=4096)
def pair_loss_pct(state: PairState, sent: int, received: int) -> float | None:
    """A pair's loss in percent; None when it could not tell (an error, or nothing sent).
    Remembered: a mesh has millions of pairs and a handful of (state, sent, received)."""
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


_ARRAYS = ("src", "dst", "state", "sent", "received", "rtt", "pct",
           "u_state", "u_sent", "u_received", "u_rtt", "mtu")
_ERRORS = ("errors", "u_errors", "mtu_errors")


class PairColumns:
    """Directed pairs as parallel arrays: host indices, state code, counts, RTTs and percentiles
    (ms, NaN when none), the underlay's state code (NOT_MEASURED when not pinged), counts and
    average RTT, the MTU check's code, and the error texts of the few pairs that have one; and
    every tunnel reply's RTT counted in microseconds."""

    def __init__(self) -> None:
        self.src = array("I")
        self.dst = array("I")
        self.state = array("B")
        self.sent = array("H")
        self.received = array("H")
        self.rtt = array("f")  # min, avg, max, mdev for each pair, flattened
        self.pct = array("f")  # p50, p90, p99 for each pair, flattened
        self.u_state = array("B")
        self.u_sent = array("H")
        self.u_received = array("H")
        self.u_rtt = array("f")  # the underlay's average
        self.mtu = array("b")
        self.errors: dict[int, str] = {}
        self.u_errors: dict[int, str] = {}
        self.mtu_errors: dict[int, str] = {}
        self.replies: Counter[int] = Counter()  # every tunnel reply's RTT, in microseconds

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
        self.pct.extend((NAN, NAN, NAN))
        self.u_state.append(NOT_MEASURED)
        self.u_sent.append(0)
        self.u_received.append(0)
        self.u_rtt.append(NAN)
        self.mtu.append(MTU_NOT_MEASURED)

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
        if stats.replies_ms:
            row = len(self) - 1
            self.pct[3 * row:3 * row + 3] = array("f", (
                NAN if v is None else v for v in sample_percentiles(stats.replies_ms)))
            self.replies.update(micros(stats.replies_ms))

    def add_outcomes(self, src: int, dsts: Sequence[int],
                     outcomes: Iterable[PingOutcome | None]) -> None:
        """add_outcome for each destination and its outcome, in one pass: the columns are
        extended once and the replies counted once (what a source's hundreds of pairs need;
        the same values as add_outcome, pair by pair)."""
        start = len(self)
        states: list[int] = []
        sent: list[int] = []
        received: list[int] = []
        rtt: list[float] = []
        pct: list[float] = []
        micro: list[float] = []
        errors = self.errors
        ok, lossy, unreachable, error = (STATES.index(s) for s in (
            PairState.OK, PairState.LOSSY, PairState.UNREACHABLE, PairState.ERROR))
        no_rtt, no_pct = (NAN, NAN, NAN, NAN), (NAN, NAN, NAN)
        for row, outcome in enumerate(outcomes, start):
            stats = outcome.stats if outcome is not None else None
            if stats is None or stats.sent == 0:
                errors[row] = "not probed" if outcome is None else (
                    outcome.error or "the probe printed no statistics")
                states.append(error)
                sent.append(0 if stats is None else min(stats.sent, 0xFFFF))
                received.append(0)
                rtt += no_rtt
                pct += no_pct
                continue
            n, got = stats.sent, stats.received
            states.append(ok if got >= n else unreachable if got == 0 else lossy)
            sent.append(min(n, 0xFFFF))
            received.append(min(got, 0xFFFF))
            lo, avg, hi, dev = stats.rtt_min_ms, stats.rtt_avg_ms, stats.rtt_max_ms, stats.rtt_mdev_ms
            if lo is None or avg is None or hi is None or dev is None:
                rtt += [NAN if v is None else v for v in (lo, avg, hi, dev)]
            else:
                rtt += (lo, avg, hi, dev)
            replies = stats.replies_ms
            if replies:
                ordered = sorted(replies)
                pct += [NAN if i is None else ordered[i] for i in percentile_indexes(len(ordered))]
                micro += replies
            else:
                pct += no_pct
        count = len(states)
        if len(dsts) != count:
            raise ValueError(f"{len(dsts)} destinations for {count} outcomes")
        self.src.extend(array("I", [src]) * count)
        self.dst.extend(dsts)
        self.state.fromlist(states)
        self.sent.fromlist(sent)
        self.received.fromlist(received)
        self.rtt.fromlist(rtt)
        self.pct.fromlist(pct)
        self.u_state.extend(array("B", [NOT_MEASURED]) * count)
        self.u_sent.extend(array("H", [0]) * count)
        self.u_received.extend(array("H", [0]) * count)
        self.u_rtt.extend(array("f", [NAN]) * count)
        self.mtu.extend(array("b", [MTU_NOT_MEASURED]) * count)
        if micro:
            self.replies.update(micro_counts(micro))

    def set_underlay(self, row: int, outcome: PingOutcome | None) -> None:
        """Row `row`'s underlay from the outcome of pinging the peer's IPv4 (None: no answer)."""
        state = PairState.ERROR if outcome is None else classify(outcome)
        stats = outcome.stats if outcome is not None else None
        self.u_state[row] = STATES.index(state)
        if stats is not None:
            self.u_sent[row], self.u_received[row] = min(stats.sent, 0xFFFF), min(stats.received,
                                                                                 0xFFFF)
            self.u_rtt[row] = NAN if stats.rtt_avg_ms is None else stats.rtt_avg_ms
        if state is PairState.ERROR:
            self.u_errors[row] = (outcome.error if outcome else None) or "not probed"

    def set_underlay_error(self, row: int, error: str) -> None:
        self.u_state[row] = STATES.index(PairState.ERROR)
        self.u_errors[row] = error

    def set_mtu(self, row: int, outcome: PingOutcome | None) -> None:
        """Row `row`'s MTU check from its full-size outcome: a reply is ok, none is a failure,
        unless not even the row's small pings got through (then it cannot tell)."""
        stats = outcome.stats if outcome is not None else None
        if stats is None or stats.sent == 0:
            self.set_mtu_unknown(row, (outcome.error if outcome else None) or "not probed")
        elif stats.received > 0:
            self.mtu[row] = MTU_OK
        elif self.received[row] == 0:
            self.set_mtu_unknown(row, "not even the small pings got through")
        else:
            self.mtu[row] = MTU_FAILED
            if outcome is not None and outcome.error:
                self.mtu_errors[row] = outcome.error

    def set_mtu_unknown(self, row: int, error: str) -> None:
        self.mtu[row] = MTU_UNKNOWN
        self.mtu_errors[row] = error

    def clear(self) -> None:
        for name in _ARRAYS:
            setattr(self, name, array(getattr(self, name).typecode))
        for name in _ERRORS:
            setattr(self, name, {})
        self.replies = Counter()

    def extend(self, other: PairColumns) -> None:
        offset = len(self)
        for name in _ERRORS:
            getattr(self, name).update({offset + i: e for i, e in getattr(other, name).items()})
        for name in _ARRAYS:
            getattr(self, name).extend(getattr(other, name))
        self.replies.update(other.replies)

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
    groups: tuple[str, ...] = ()  # its inventory groups, in the inventory's order


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
    # The percentiles over every reply when only the figures are known (a mesh read back from a
    # report, whose replies one by one were not saved); None: computed from columns.replies.
    reply_percentiles: dict[str, float | None] | None = None

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

    def value_columns(self, start: int = 0, stop: int | None = None) -> tuple[list[Any], ...]:
        """Rows `start` to `stop` as one list per field of a Pair, in PAIR_FIELDS order, read
        straight from the columns: what a writer of millions of pairs renders a column at a time."""
        return pair_values(self.columns, [h.name for h in self.hosts], self.params.mtu_size,
                           start, stop)

    def row_values(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        """Rows `start` to `stop` as PairRows: a Pair's values, by name or in PAIR_FIELDS order."""
        stop = self.pair_count if stop is None else stop
        for begin in range(start, stop, _CHUNK):
            yield from map(PairRow._make, zip(*self.value_columns(begin, min(stop, begin + _CHUNK))))

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

    def underlay_state_at(self, row: int) -> PairState | None:
        """The state of row `row`'s underlay ping (the peer's tunnel IPv4, outside the tunnel);
        None when the underlay was not measured."""
        code = self.columns.u_state[row]
        return None if code == NOT_MEASURED else STATES[code]

    def mtu_ok_at(self, row: int) -> bool | None:
        """Whether row `row`'s full-size don't-fragment pings got through; None when not
        measured or when it could not tell (see MtuCheck)."""
        code = self.columns.mtu[row]
        return None if code in (MTU_NOT_MEASURED, MTU_UNKNOWN) else code == MTU_OK

    def rtt_percentiles(self) -> dict[str, float | None]:
        """{"p50", "p90", "p99"} in ms over every tunnel reply of the mesh (nearest rank; None
        with too few replies: see fleet.mesh.percentiles). Replies the prober did not print one
        by one (the ping method's summaries) are not among them."""
        if self.reply_percentiles is not None:
            return dict(self.reply_percentiles)
        return counter_percentiles(self.columns.replies)

    def underlay_counts(self) -> dict[str, int] | None:
        """Underlay pairs per state, or None when the underlay was not measured."""
        if not self.params.underlay:
            return None
        return {state.value: self.columns.u_state.count(code) for code, state in enumerate(STATES)}

    def mtu_counts(self) -> dict[str, int] | None:
        """MTU checks that passed, failed and could not tell, or None when not measured."""
        if self.params.mtu_size is None:
            return None
        m = self.columns.mtu
        return {"ok": m.count(MTU_OK), "failed": m.count(MTU_FAILED),
                "unknown": m.count(MTU_UNKNOWN)}


def pair_values(c: PairColumns, names: Sequence[str], mtu_size: int | None, start: int = 0,
                stop: int | None = None,
                rtts: Callable[[array[float]], list[Any]] = rtts_ms) -> tuple[list[Any], ...]:
    """Rows `start` to `stop` of columns `c` as one list per field of a Pair, in PAIR_FIELDS
    order; `names` are the hosts' names by index, `mtu_size` the MTU check's (None: not run).
    `rtts` reads the stored RTTs (the fields in RTT_FIELDS): rtts_ms, or rtt_texts for JSON."""
    stop = len(c) if stop is None else stop
    states = list(map(STATES.__getitem__, c.state[start:stop]))
    sent, received = c.sent[start:stop].tolist(), c.received[start:stop].tolist()
    rtt = rtts(c.rtt[4 * start:4 * stop])
    pct = rtts(c.pct[3 * start:3 * stop])
    return (list(map(names.__getitem__, c.src[start:stop])),
            list(map(names.__getitem__, c.dst[start:stop])),
            states, sent, received, list(map(pair_loss_pct, states, sent, received)),
            rtt[0::4], rtt[1::4], rtt[2::4], rtt[3::4], pct[0::3], pct[1::3], pct[2::3],
            list(map(c.errors.get, range(start, stop))),
            [None] * (stop - start) if _none_measured(c.u_state, NOT_MEASURED, start, stop)
            else [_underlay(c, row) for row in range(start, stop)],
            [None] * (stop - start)
            if mtu_size is None or _none_measured(c.mtu, MTU_NOT_MEASURED, start, stop)
            else [_mtu(c, mtu_size, row) for row in range(start, stop)])


def _none_measured(codes: array[int], not_measured: int, start: int, stop: int) -> bool:
    return codes[start:stop].count(not_measured) == stop - start


def _underlay(c: PairColumns, row: int) -> Underlay | None:
    code = c.u_state[row]
    if code == NOT_MEASURED:
        return None
    state, sent, received = STATES[code], c.u_sent[row], c.u_received[row]
    avg = c.u_rtt[row]
    return Underlay(state, sent, received, pair_loss_pct(state, sent, received),
                    None if avg != avg else round(avg, RTT_DECIMALS), c.u_errors.get(row))


def _mtu(c: PairColumns, mtu_size: int | None, row: int) -> MtuCheck | None:
    code = c.mtu[row]
    if code == MTU_NOT_MEASURED or mtu_size is None:
        return None
    ok = None if code == MTU_UNKNOWN else code == MTU_OK
    return MtuCheck(ok, mtu_size, c.mtu_errors.get(row))


def _plain(value: Any) -> Any:
    if isinstance(value, PairState):
        return value.value
    if isinstance(value, Underlay | MtuCheck):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def source_data(report: SourceReport, names: Sequence[str], mtu_size: int | None) -> dict[str, Any]:
    """One source's report as plain data (texts, numbers, lists, dicts): its method, tunnel
    addresses and notes, and its pairs as the JSON report's pair objects (PAIR_FIELDS)."""
    rows = zip(*pair_values(report.pairs, names, mtu_size))
    return {"method": report.method,
            "tunnel_addresses": [str(a) for a in report.tunnel_addresses],
            "notes": list(report.notes),
            "pairs": [{name: _plain(v) for name, v in zip(PAIR_FIELDS, row)} for row in rows]}


def source_report(src: int, targets: Sequence[tuple[int, str]], method: str,
                  tunnel_addresses: tuple[IPv6Interface, ...],
                  outcomes: Mapping[str, PingOutcome],
                  notes: tuple[str, ...] = (),
                  underlay: tuple[Sequence[str], Mapping[str, PingOutcome]] | None = None,
                  mtu: Mapping[str, PingOutcome] | None = None) -> SourceReport:
    """Fold one source's outcomes (keyed by the peers' address texts) into columns, right away
    (the outcomes are then dropped). `underlay`: the peers' IPv4 texts, in `targets`' order, and
    the outcomes keyed by them; `mtu`: the full-size outcomes keyed by the IPv6 texts."""
    pairs = PairColumns()
    ipv4s = underlay[0] if underlay is not None else ()
    pairs.add_outcomes(src, array("I", [dst for dst, _ in targets]),
                       map(outcomes.get, [address for _, address in targets]))
    if underlay is not None:
        for row, ipv4 in enumerate(ipv4s):
            pairs.set_underlay(row, underlay[1].get(ipv4))
    if mtu is not None:
        for row, (_, address) in enumerate(targets):
            pairs.set_mtu(row, mtu.get(address))
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
                                       error_kind=kind, groups=src.groups))
            for j in plan[i]:
                columns.add(i, j, PairState.ERROR, error=f"source failed: {reason}")
                if params.underlay:
                    columns.set_underlay_error(len(columns) - 1, f"source failed: {reason}")
                if params.mtu_size is not None:
                    columns.set_mtu_unknown(len(columns) - 1, f"source failed: {reason}")
            continue
        own = IPv6Interface((src.address, ISATAP_PREFIX_LENGTH))
        start = len(columns)
        columns.extend(report.pairs)
        report.pairs.clear()
        if own in report.tunnel_addresses:
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.OK,
                                       probe=report.method, notes=report.notes, groups=src.groups))
            continue
        note = f"sit1 does not carry {own}; run `fleet run setup`"
        mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.UNCONFIGURED, note,
                                   probe=report.method, notes=report.notes, groups=src.groups))
        # Without its address, a source's silence says nothing about the peer: could not tell.
        for row in range(start, len(columns)):
            if columns.state[row] == STATES.index(PairState.UNREACHABLE):
                columns.with_state(row, PairState.ERROR, f"source not configured: {note}")
                if columns.mtu[row] == MTU_FAILED:
                    columns.set_mtu_unknown(row, f"source not configured: {note}")
    return Mesh(tuple(mesh_hosts), columns, params, peers)
