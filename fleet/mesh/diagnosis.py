"""What is wrong with a mesh, in words and as data: a few findings instead of a line per pair.

Pure: host records and pair columns in, `Finding`s out. A whole row (a host reaches no one), a
whole column (no one reaches it) or the whole mesh is one finding, and findings of one kind are
aggregated over hosts (one finding naming them, at most `NAMES_SHOWN` in its text), so the
diagnosis of 1,000 hosts is as long as that of 4.

The pairs are read as columns (`array`s of host indices and state codes), counted with the C
iterators of the standard library, so 4 million pairs take about a second; only the pairs that
are not ok are looked at one by one. Two optional columns sharpen the diagnosis: `underlay`,
the state of an IPv4 ping between the same hosts' tunnel endpoints (it tells a blocked tunnel
from a down host), and `mtu_ok`, whether a full-size don't-fragment ping passed (it finds MTU
black holes).

Kinds, in the order they are reported (`KINDS`; docs/failure-semantics.md says what
each means and what to check): `all-failing`, `source-cannot-probe`, `unconfigured`,
`host-down`, `tunnel-blocked`, `host-unreachable`, `unreachable`, `asymmetric`, `pair-error`,
`mtu-blackhole`, `lossy`. A host cut off both ways is `tunnel-blocked` when IPv4 ping answers,
`host-down` when it does not, and `host-unreachable` without underlay data. A pair already
explained by a host's finding is not counted again in a pair finding.
"""

from __future__ import annotations

import heapq
import operator
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any, NamedTuple, Protocol, cast

from fleet.mesh.model import STATES, HostState, Mesh, PairState, pair_loss_pct

NAMES_SHOWN = 8    # host names written out in a finding's text, then "and N more"
PAIRS_SHOWN = 5    # pairs written out in a finding's text (the worst, for lossy)

OK, LOSSY, UNREACHABLE, ERROR = (STATES.index(s) for s in (PairState.OK, PairState.LOSSY,
                                                           PairState.UNREACHABLE, PairState.ERROR))
NOT_MEASURED = -1  # in the underlay and MTU columns

# Every kind, in the order findings are reported; those about hosts count hosts in the verdict,
# the others count pairs.
# too-few-hosts, interrupted, not-measured and mtu-unknown are about what the run verified
# (fleet.mesh.verdict makes them); the others are the diagnosis of what was measured.
KINDS = ("too-few-hosts", "interrupted", "all-failing", "source-cannot-probe", "unconfigured",
         "host-down", "tunnel-blocked", "host-unreachable", "unreachable", "asymmetric", "pair-error",
         "not-measured", "mtu-blackhole", "mtu-unknown", "lossy")
HOST_KINDS = frozenset({"too-few-hosts", "source-cannot-probe", "unconfigured", "host-down",
                        "tunnel-blocked", "host-unreachable"})
# Findings that are said but do not fail the mesh by themselves: a host whose sit1 lacks its
# address while every one of its pairs answered was measured and reached all the same (the
# addresses answer, by some other way than fleet's tunnel); its pairs that did not answer fail
# the mesh as pairs.
WARNING_KINDS = frozenset({"unconfigured"})


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the mesh: its kind, the hosts it is about (all of them, however many)
    and a sentence that says what and what to check (naming at most NAMES_SHOWN hosts).
    `pairs`: how many directed pairs it explains."""

    kind: str
    hosts: tuple[str, ...]
    text: str
    pairs: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "hosts": list(self.hosts), "text": self.text, "pairs": self.pairs}


class HostLike(Protocol):
    """What the diagnosis reads of a host: a MeshHost, or a HostRecord."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> HostState: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_kind(self) -> str | None: ...


class HostRecord(NamedTuple):
    name: str
    state: HostState
    error: str | None = None
    error_kind: str | None = None


class PairRecord(NamedTuple):
    """One directed pair by host index: the tunnel's state and loss, and when measured the
    underlay's state (IPv4 ping of the peer's tunnel endpoint) and the MTU check."""

    src: int
    dst: int
    state: PairState
    loss_pct: float | None = None
    underlay: PairState | None = None
    mtu_ok: bool | None = None


@dataclass
class PairTable:
    """Pairs as columns: host indices, state codes (index in STATES), the loss of a row on demand,
    and the optional underlay state codes and MTU results (NOT_MEASURED, 0 or 1)."""

    src: Sequence[int]
    dst: Sequence[int]
    state: Sequence[int]
    loss: Callable[[int], float | None]
    underlay: Sequence[int] | None = None
    mtu: Sequence[int] | None = None

    def __len__(self) -> int:
        return len(self.state)


def diagnose(hosts: Sequence[HostLike | tuple[str, HostState, str | None, str | None]],
             pairs: Iterable[PairRecord | tuple[Any, ...]]) -> list[Finding]:
    """The findings of a mesh given as plain records: hosts as MeshHosts, HostRecords or
    (name, state, error, error_kind) tuples; pairs as PairRecords or tuples in its field order
    (the trailing ones may be left out), `src` and `dst` indexing `hosts`."""
    records = [cast(HostLike, h) if hasattr(h, "state") else HostRecord(*h) for h in hosts]
    src, dst, state, underlay, mtu = array("I"), array("I"), array("B"), array("b"), array("b")
    loss: list[float | None] = []
    codes: dict[PairState | None, int] = {None: NOT_MEASURED}
    codes.update((s, i) for i, s in enumerate(STATES))
    for p in pairs:
        record = p if isinstance(p, PairRecord) else PairRecord(*p)
        src.append(record.src)
        dst.append(record.dst)
        state.append(codes[record.state])
        loss.append(record.loss_pct)
        underlay.append(codes[record.underlay])
        mtu.append(NOT_MEASURED if record.mtu_ok is None else int(record.mtu_ok))
    return diagnose_table(records, PairTable(
        src, dst, state, loss.__getitem__,
        underlay if underlay.count(NOT_MEASURED) < len(underlay) else None,
        mtu if mtu.count(NOT_MEASURED) < len(mtu) else None))


def diagnose_mesh(mesh: Mesh, underlay: Callable[[int], PairState | None] | None = None,
                  mtu: Callable[[int], bool | None] | None = None) -> list[Finding]:
    """The findings of a Mesh, read from its columns. `underlay(row)` and `mtu(row)`, when given,
    say a pair's underlay state and MTU check (None: not measured)."""
    c = mesh.columns

    def loss(row: int) -> float | None:
        return pair_loss_pct(STATES[c.state[row]], c.sent[row], c.received[row])

    rows = range(mesh.pair_count)
    underlay_codes = mtu_codes = None
    if underlay is not None:
        codes: dict[PairState | None, int] = {None: NOT_MEASURED}
        codes.update((s, i) for i, s in enumerate(STATES))
        underlay_codes = array("b", map(codes.__getitem__, map(underlay, rows)))
    if mtu is not None:
        mtu_codes = array("b", (NOT_MEASURED if v is None else int(v) for v in map(mtu, rows)))
    return diagnose_table(mesh.hosts, PairTable(c.src, c.dst, c.state, loss, underlay_codes,
                                                mtu_codes))


def kinds_text(findings: Sequence[Finding], pair_count: int) -> str:
    """The kinds found, each with how many hosts or pairs: `tunnel-blocked (1 host), lossy (2
    pairs)`."""
    hosts: dict[str, set[str]] = {}
    pairs: Counter[str] = Counter()
    for f in findings:
        hosts.setdefault(f.kind, set()).update(f.hosts)
        pairs[f.kind] += f.pairs
    why = []
    for kind, named in hosts.items():
        if kind == "all-failing":
            why.append(f"{kind} (all {pair_count} pairs)")
        elif kind == "interrupted":
            why.append(kind)
        elif kind in HOST_KINDS:
            why.append(f"{kind} ({_count(len(named), 'host')})")
        else:
            why.append(f"{kind} ({_count(pairs[kind], 'pair')})")
    return ", ".join(why)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def names(hosts: Sequence[str]) -> str:
    """Host names for a sentence: at most NAMES_SHOWN, then "and N more"."""
    shown = ", ".join(hosts[:NAMES_SHOWN])
    return shown if len(hosts) <= NAMES_SHOWN else f"{shown} and {len(hosts) - NAMES_SHOWN} more"


def _rows_where(column: Sequence[int], code: int) -> array[int]:
    """The rows whose value is `code`, found by C iterators (no Python loop over the rows)."""
    return array("I", compress(range(len(column)), map(operator.eq, column, repeat(code))))


class _Counts:
    """Per host, how many of its pairs (as source and as destination) have a state, from the
    columns."""

    def __init__(self, table: PairTable, n: int) -> None:
        self.n = n
        self.table = table
        self.out_all, self.in_all = self._per_host(table.src), self._per_host(table.dst)
        self.rows = {code: _rows_where(table.state, code) for code in (LOSSY, UNREACHABLE, ERROR)}
        self.out: dict[int, list[int]] = {}
        self.into: dict[int, list[int]] = {}
        for code, rows in self.rows.items():
            self.out[code] = self._per_host(map(table.src.__getitem__, rows))
            self.into[code] = self._per_host(map(table.dst.__getitem__, rows))

    def _per_host(self, indices: Iterable[int]) -> list[int]:
        counts = Counter(indices)
        return [counts.get(i, 0) for i in range(self.n)]

    def measured_out(self, h: int) -> int:
        return self.out_all[h] - self.out[ERROR][h]

    def measured_in(self, h: int) -> int:
        return self.in_all[h] - self.into[ERROR][h]

    def good_out(self, h: int) -> int:
        return self.measured_out(h) - self.out[UNREACHABLE][h]

    def good_in(self, h: int) -> int:
        return self.measured_in(h) - self.into[UNREACHABLE][h]


def diagnose_table(hosts: Sequence[HostLike], table: PairTable) -> list[Finding]:
    """The findings, in the order of the module's docstring."""
    n = len(hosts)
    counts = _Counts(table, n)
    findings = _source_findings(hosts, counts.out_all) + _unconfigured_findings(hosts)
    measured = len(table) - len(counts.rows[ERROR])
    good = measured - len(counts.rows[UNREACHABLE])
    if measured and not good:
        return [_all_failing(table, measured)] + findings
    unconfigured = {i for i, h in enumerate(hosts) if h.state is HostState.UNCONFIGURED}
    # A host no peer reaches over the tunnel, and that reaches none (or could not probe).
    isolated = [i for i in range(n) if i not in unconfigured
                and counts.measured_in(i) and not counts.good_in(i)
                and (not counts.good_out(i) or not counts.measured_out(i))]
    findings += _isolated_findings(hosts, table, isolated)
    skip = set(isolated) | unconfigured
    failing = [r for r in counts.rows[UNREACHABLE]
               if table.src[r] not in skip and table.dst[r] not in skip]
    one_way = _one_way(table, failing, n)
    findings += _unreachable_findings(hosts, table, [r for r in failing if r not in one_way])
    findings += _asymmetric_findings(hosts, table, sorted(one_way))
    failed_sources = {i for i, h in enumerate(hosts) if h.state is HostState.ERROR} | skip
    errors = [r for r in counts.rows[ERROR]
              if table.src[r] not in failed_sources and table.dst[r] not in skip]
    findings += _pair_error_findings(hosts, table, errors)
    if table.mtu is not None:
        findings += _mtu_findings(hosts, table, n)
    findings += _lossy_findings(hosts, table, counts.rows[LOSSY])
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(findings, key=lambda f: order[f.kind])


def _source_findings(hosts: Sequence[HostLike], rows_of: list[int]) -> list[Finding]:
    """Hosts that could not probe, one finding per error kind (the kind says what to fix);
    `rows_of[i]`: how many pairs host i was to probe."""
    by_kind: dict[str, list[HostLike]] = {}
    pairs: Counter[str] = Counter()
    for i, h in enumerate(hosts):
        if h.state is HostState.ERROR:
            by_kind.setdefault(h.error_kind or "error", []).append(h)
            pairs[h.error_kind or "error"] += rows_of[i]
    findings = []
    for kind, failed in by_kind.items():
        first = failed[0]
        if len(failed) == 1:
            text = f"{first.name} -> *: error, could not probe ({kind}): {first.error}"
        else:
            text = (f"{len(failed)} hosts could not probe ({kind}): "
                    f"{names([h.name for h in failed])}; {first.name}: {first.error}")
        findings.append(Finding("source-cannot-probe", tuple(h.name for h in failed), text,
                                pairs[kind]))
    return findings


def _unconfigured_findings(hosts: Sequence[HostLike]) -> list[Finding]:
    unconfigured = [h for h in hosts if h.state is HostState.UNCONFIGURED]
    if not unconfigured:
        return []
    if len(unconfigured) == 1:
        text = f"{unconfigured[0].name}: {unconfigured[0].error} (measured all the same)"
    else:
        text = (f"{len(unconfigured)} hosts' sit1 lacks their ISATAP address (measured all the "
                f"same): {names([h.name for h in unconfigured])}; "
                "run `fleet run setup`")
    return [Finding("unconfigured", tuple(h.name for h in unconfigured), text)]


def _all_failing(table: PairTable, measured: int) -> Finding:
    text = f"no tunnel ping answers anywhere ({measured} pairs measured)"
    und = _underlay_summary(table, range(len(table)))
    if und is None:
        text += (": IP protocol 41 is likely blocked everywhere (security groups, network ACLs, "
                 "host firewalls) or no host has a working sit1 (run `fleet run setup`; data.ipv4 "
                 "must be each host's private address)")
    elif und[0]:
        text += (f", while IPv4 ping answers on {und[0]} of {und[1]} pairs: IP protocol 41 is "
                 "blocked everywhere (security groups, network ACLs both ways, host firewalls) "
                 "or sit1 is misconfigured on every host")
    else:
        text += (", and not even IPv4 ping answers: the hosts are down, or ICMP and protocol 41 "
                 "are blocked between them, or data.ipv4 is not the address they have")
    return Finding("all-failing", (), text, measured)


def _underlay_summary(table: PairTable, rows: Iterable[int]) -> tuple[int, int] | None:
    """Of `rows`, how many answered IPv4 ping and how many were measured; None without data."""
    if table.underlay is None:
        return None
    codes = Counter(map(table.underlay.__getitem__, rows))
    measured = sum(v for k, v in codes.items() if k not in (NOT_MEASURED, ERROR))
    return (codes[OK] + codes[LOSSY], measured) if measured else None


def _isolated_findings(hosts: Sequence[HostLike], table: PairTable,
                       isolated: list[int]) -> list[Finding]:
    """Hosts whose tunnel fails both ways: down, tunnel blocked, or (without underlay data) one
    cannot tell which."""
    if not isolated:
        return []
    wanted = set(isolated)
    rows: dict[int, list[int]] = {i: [] for i in isolated}
    for r in compress(range(len(table)), map(wanted.__contains__, table.dst)):
        rows[table.dst[r]].append(r)
    for r in compress(range(len(table)), map(wanted.__contains__, table.src)):
        rows[table.src[r]].append(r)
    down: list[int] = []
    blocked: list[int] = []
    unknown: list[int] = []
    for i in isolated:
        und = _underlay_summary(table, rows[i])
        (unknown if und is None else blocked if und[0] else down).append(i)
    findings = []
    pairs_of = {i: len(rows[i]) for i in isolated}

    def finding(kind: str, members: list[int], text: str) -> Finding:
        return Finding(kind, tuple(hosts[i].name for i in members), text,
                       sum(pairs_of[i] for i in members))

    if down:
        findings.append(finding("host-down", down, (
            f"{_subject(hosts, down)}: neither tunnel nor IPv4 ping answers, either way: the host "
            "is down or cut off on IPv4 (check that it runs, its data.ipv4, and that its "
            "security group allows ICMP and protocol 41)")))
    if blocked:
        findings.append(finding("tunnel-blocked", blocked, (
            f"{_subject(hosts, blocked)}: IPv4 ping answers but no tunnel ping, either way: IP "
            "protocol 41 is filtered (security group, network ACL both ways, host firewall) or "
            "sit1 is misconfigured (its local must be the host's private IPv4, on the same /64)")))
    if unknown:
        one = len(unknown) == 1
        what = (f"* -> {hosts[unknown[0]].name}: unreachable from every source" if one else
                f"{len(unknown)} hosts unreachable from every source: "
                f"{names([hosts[i].name for i in unknown])}")
        failed = [i for i in unknown if hosts[i].state is HostState.ERROR]
        both = ("its own probe failed" if one and failed else
                "and it reaches none" if one else
                "and they reach none (or could not probe)")
        findings.append(finding("host-unreachable", unknown, (
            f"{what}, {both}: the tunnel fails both ways; the host is down or protocol 41 is "
            "blocked; an underlay (IPv4) ping tells which")))
    return findings


def _subject(hosts: Sequence[HostLike], members: list[int]) -> str:
    if len(members) == 1:
        return hosts[members[0]].name
    return f"{len(members)} hosts ({names([hosts[i].name for i in members])})"


def _one_way(table: PairTable, failing: list[int], n: int) -> set[int]:
    """Of the failing rows, those whose reverse pair answers (ok or lossy), found in one pass of
    C iterators over the rows rather than an index of every pair."""
    if not failing:
        return set()
    reverse = {table.dst[r] * n + table.src[r]: r for r in failing}
    keys = map(operator.add, map(operator.mul, table.src, repeat(n)), table.dst)
    found = compress(range(len(table)), map(reverse.__contains__, keys))
    return {reverse[table.src[r] * n + table.dst[r]] for r in found if table.state[r] in (OK, LOSSY)}


def _pair_text(hosts: Sequence[HostLike], table: PairTable, r: int) -> str:
    return f"{hosts[table.src[r]].name} -> {hosts[table.dst[r]].name}"


def _hosts_of(hosts: Sequence[HostLike], table: PairTable, rows: Iterable[int]) -> tuple[str, ...]:
    seen = dict.fromkeys(i for r in rows for i in (table.src[r], table.dst[r]))
    return tuple(hosts[i].name for i in seen)


def _pairs_list(hosts: Sequence[HostLike], table: PairTable, rows: Sequence[int]) -> str:
    shown = ", ".join(_pair_text(hosts, table, r) for r in rows[:PAIRS_SHOWN])
    return shown + (f" and {len(rows) - PAIRS_SHOWN} more" if len(rows) > PAIRS_SHOWN else "")


def _unreachable_findings(hosts: Sequence[HostLike], table: PairTable,
                          rows: list[int]) -> list[Finding]:
    if not rows:
        return []
    text = f"{_count(len(rows), 'pair')} unreachable over the tunnel: {_pairs_list(hosts, table, rows)}"
    und = _underlay_summary(table, rows)
    if und is not None:
        text += (f"; IPv4 ping answers on {und[0]} of {und[1]} of them"
                 + (": protocol 41 is filtered between those hosts" if und[0] else
                    ": they cannot reach each other on IPv4 either"))
    return [Finding("unreachable", _hosts_of(hosts, table, rows), text, len(rows))]


def _asymmetric_findings(hosts: Sequence[HostLike], table: PairTable,
                         rows: list[int]) -> list[Finding]:
    """Pairs that fail one way while the reverse answers. A ping carries traffic both ways, so
    this points at a filter of ICMPv6 echo requests on one host rather than at the tunnel."""
    if not rows:
        return []
    first = rows[0]
    a, b = hosts[table.src[first]].name, hosts[table.dst[first]].name
    text = f"{b} -> {a} ok but {a} -> {b} unreachable"
    if len(rows) > 1:
        text = f"{len(rows)} pairs answer one way only: {text}; " + ", ".join(
            f"{_pair_text(hosts, table, r)} fails" for r in rows[1:PAIRS_SHOWN]) + (
            f" and {len(rows) - PAIRS_SHOWN} more" if len(rows) > PAIRS_SHOWN else "")
    dsts = {table.dst[r] for r in rows}
    srcs = {table.src[r] for r in rows}
    if len(rows) > 1 and len(dsts) == 1:
        culprit = hosts[dsts.pop()].name
        text += (f" (asymmetric: every one to {culprit}: check {culprit}'s ip6tables for incoming "
                 "ICMPv6 echo requests)")
    elif len(rows) > 1 and len(srcs) == 1:
        culprit = hosts[srcs.pop()].name
        text += f" (asymmetric: every one from {culprit}: check {culprit}'s ip6tables for outgoing ICMPv6)"
    elif len(rows) == 1:
        text += (f" (asymmetric: check {b}'s ip6tables for incoming ICMPv6 echo requests, and "
                 "both hosts' tunnel local address and filters)")
    else:
        text += (" (asymmetric: check the ip6tables of each failing pair's destination for "
                 "incoming ICMPv6 echo requests, and both hosts' tunnel local address and filters)")
    return [Finding("asymmetric", _hosts_of(hosts, table, rows), text, len(rows))]


def _pair_error_findings(hosts: Sequence[HostLike], table: PairTable,
                         rows: list[int]) -> list[Finding]:
    if not rows:
        return []
    text = (f"{_count(len(rows), 'pair')} could not be measured (could not tell, not "
            f"unreachable): {_pairs_list(hosts, table, rows)}; see each pair's error in --json")
    return [Finding("pair-error", _hosts_of(hosts, table, rows), text, len(rows))]


def _mtu_findings(hosts: Sequence[HostLike], table: PairTable, n: int) -> list[Finding]:
    """Pairs whose small pings pass and full-size ones do not. A host all of whose checked pairs
    fail is named as one finding (its own MTU or path); the other pairs are listed."""
    assert table.mtu is not None
    passing = map(operator.contains, repeat((OK, LOSSY)), table.state)
    checked = array("b", map(operator.and_, passing, map(operator.ne, table.mtu, repeat(NOT_MEASURED))))
    failed = array("b", map(operator.and_, checked, map(operator.eq, table.mtu, repeat(0))))
    bad = array("I", compress(range(len(table)), failed))
    if not bad:
        return []
    checked_per = Counter(compress(table.src, checked)) + Counter(compress(table.dst, checked))
    bad_per = Counter(compress(table.src, failed)) + Counter(compress(table.dst, failed))
    culprits = [i for i in range(n) if checked_per[i] and bad_per[i] == checked_per[i]]
    # Two hosts with one checked pair between them would each be "all failing": blame the pair.
    if len(culprits) == n == 2:
        culprits = []
    findings = []
    if culprits:
        shown = set(culprits)
        explained = [r for r in bad if table.src[r] in shown or table.dst[r] in shown]
        everyone = len(culprits) == n
        findings.append(Finding("mtu-blackhole", tuple(hosts[i].name for i in culprits), (
            f"{'every host' if everyone else _subject(hosts, culprits)}: small pings pass but "
            "full-size ones (don't fragment) fail on every pair to and from "
            f"{'them' if everyone or len(culprits) > 1 else 'it'}: a path MTU below the tunnel's "
            "1480 + 20 (check sit1's MTU is 1480 and the underlay's), or ICMP \"fragmentation "
            "needed\" is dropped"), len(explained)))
        bad = array("I", (r for r in bad if table.src[r] not in shown and table.dst[r] not in shown))
    if bad:
        findings.append(Finding("mtu-blackhole", _hosts_of(hosts, table, bad), (
            f"{_count(len(bad), 'pair')} pass small pings but not full-size ones (don't "
            f"fragment): {_pairs_list(hosts, table, bad)}: a smaller MTU on their path"),
            len(bad)))
    return findings


def _lossy_findings(hosts: Sequence[HostLike], table: PairTable, rows: Sequence[int]) -> list[Finding]:
    if not rows:
        return []
    worst = heapq.nlargest(PAIRS_SHOWN, rows, key=lambda r: table.loss(r) or 0.0)
    shown = ", ".join(f"{_pair_text(hosts, table, r)} {table.loss(r) or 0.0:g}%" for r in worst)
    text = (f"{_count(len(rows), 'pair')} lost some pings" + (f"; worst by loss: {shown}"
            if len(rows) > 1 else f": {shown} loss"))
    involved = Counter(i for r in rows for i in (table.src[r], table.dst[r]))
    top, times = involved.most_common(1)[0]
    if len(rows) > 2 and times == len(rows):
        text += f"; every one to or from {hosts[top].name}: check its link and load"
    return [Finding("lossy", tuple(hosts[i].name for i, _ in involved.most_common()), text, len(rows))]
