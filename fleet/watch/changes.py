"""A round of the mesh as states, and what changed since the round before. Pure.

A round keeps, per directed pair, one state word and a few figures (loss, RTT p50 and average,
the underlay's state and the MTU check's), and per host one state word:

    pair  ok | lossy | unreachable | mtu-failed | error | not-measured
    host  ok | unconfigured | down | error

A host that could not be reached over SSH (connect refused or timed out, login refused, the
connection lost: fleet.core.errors' ConnectError kinds) is `down`, and the pairs it was to probe
are `not-measured`, never `unreachable`: a gap in what was measured, not loss. A host that was
reached but whose probe failed is `error` (its pairs `not-measured` too). Pairs towards a host
that is down keep the state other hosts measured (a stopped sshd leaves the tunnel answering);
when such a pair breaks in the round its destination went down, the change's kind says
`host-down`.

A change is (subject, before, after, kind): `kind` names the layer that failed, on the way down
and on the way back (a recovery is a change whose `after` is ok):

    tunnel        the tunnel pings (lossy, unreachable, or a probe error)
    mtu           the full-size don't-fragment pings (--mtu)
    underlay      the IPv4 pings outside the tunnel (--underlay), a change of its own
    not-measured  the pair's source could not probe (down or its probe failed)
    host-down     a host unreachable over SSH, or a pair that broke as its destination went down
    host-error    a host reached whose probe failed
    unconfigured  a host whose sit1 lacks its ISATAP address

The first round of a history has no round before it: its changes are what is not ok in it
(`before` None), so that a mesh broken from the start shows when it broke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleet.core.errors import HOST_ERROR_KINDS, ConnectError
from fleet.mesh.model import HostState, Mesh

OK = "ok"
NOT_MEASURED_STATE = "not-measured"
PAIR_STATES = ("ok", "lossy", "unreachable", "mtu-failed", "error", NOT_MEASURED_STATE)
HOST_STATES = ("ok", "unconfigured", "down", "error")
CHANGE_KINDS = ("tunnel", "mtu", "underlay", "not-measured", "host-down", "host-error",
                "unconfigured")
PAIR, HOST = "pair", "host"
_MTU_WORDS = {True: "ok", False: "failed", None: "unknown"}  # fleet.mesh.model.MtuCheck.ok


@dataclass(frozen=True, slots=True)
class PairSample:
    """One directed pair in one round."""

    src: str
    dst: str
    state: str
    loss_pct: float | None = None
    rtt_p50_ms: float | None = None
    rtt_avg_ms: float | None = None
    underlay: str | None = None  # the underlay's pair state; None: not measured
    mtu: str | None = None       # ok, failed, unknown; None: not measured


@dataclass(frozen=True, slots=True)
class HostSample:
    """One host in one round."""

    name: str
    state: str
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RoundSnapshot:
    """A round as states: what the watcher keeps of the round before (and nothing more)."""

    hosts: tuple[HostSample, ...]
    pairs: tuple[PairSample, ...]

    def host_states(self) -> dict[str, str]:
        return {h.name: h.state for h in self.hosts}

    def pair_map(self) -> dict[tuple[str, str], PairSample]:
        return {(p.src, p.dst): p for p in self.pairs}

    def counts(self) -> dict[str, int]:
        """Pairs per state (every state named, 0 when none), and hosts down."""
        found = dict.fromkeys(PAIR_STATES, 0)
        for pair in self.pairs:
            found[pair.state] += 1
        return found

    def hosts_down(self) -> int:
        return sum(1 for h in self.hosts if h.state == "down")


@dataclass(frozen=True, slots=True)
class Change:
    """A pair's or a host's state changed (`before` None: the first round of a history)."""

    subject: str  # PAIR or HOST
    src: str      # the host, or the pair's source
    dst: str | None
    kind: str
    before: str | None
    after: str

    @property
    def name(self) -> str:
        return self.src if self.dst is None else f"{self.src} -> {self.dst}"

    @property
    def recovery(self) -> bool:
        return self.after == OK

    def text(self) -> str:
        return f"{self.name} {self.before or 'new'}->{self.after} ({self.kind})"


def is_connect_kind(kind: str | None) -> bool:
    """Whether a host's error kind says it could not be reached over SSH."""
    cls = HOST_ERROR_KINDS.get(kind or "")
    return cls is not None and issubclass(cls, ConnectError)


def host_state(state: HostState, error_kind: str | None) -> str:
    if state is HostState.OK:
        return "ok"
    if state is HostState.UNCONFIGURED:
        return "unconfigured"
    return "down" if is_connect_kind(error_kind) else "error"


def snapshot(mesh: Mesh) -> RoundSnapshot:
    """The round's states, read from the mesh's pairs as the report gives them (one definition
    of loss and RTT: fleet.mesh.model's)."""
    hosts = tuple(HostSample(h.name, host_state(h.state, h.error_kind), h.error_kind, h.error)
                  for h in mesh.hosts)
    silent = {h.name for h in hosts if h.state in ("down", "error")}
    return RoundSnapshot(hosts, tuple(_pair_sample(row, row.src in silent) for row in mesh.row_values()))


def _pair_sample(row: Any, source_silent: bool) -> PairSample:
    if source_silent:
        return PairSample(row.src, row.dst, NOT_MEASURED_STATE)
    tunnel = str(row.state)
    mtu = None if row.mtu is None else _MTU_WORDS[row.mtu.ok]
    state = "mtu-failed" if tunnel in ("ok", "lossy") and mtu == "failed" else tunnel
    underlay = None if row.underlay is None else str(row.underlay.state)
    return PairSample(row.src, row.dst, state, row.loss_pct, row.rtt_p50_ms, row.rtt_avg_ms,
                      underlay, mtu)


def changes(previous: RoundSnapshot | None, current: RoundSnapshot) -> list[Change]:
    """What changed from `previous` to `current` (None: the first round; its changes are what
    is not ok), hosts first, then pairs in the mesh's order."""
    before_hosts = previous.host_states() if previous is not None else {}
    now_hosts = current.host_states()
    found = [Change(HOST, h.name, None, host_kind(before_hosts.get(h.name), h.state),
                    before_hosts.get(h.name), h.state)
             for h in current.hosts if _changed(before_hosts.get(h.name), h.state)]
    before_pairs = previous.pair_map() if previous is not None else {}
    for pair in current.pairs:
        old = before_pairs.get((pair.src, pair.dst))
        old_state = None if old is None else old.state
        if _changed(old_state, pair.state):
            failing = pair.state if pair.state != OK else (old_state or OK)
            dst_down = (now_hosts if pair.state != OK else before_hosts).get(pair.dst) == "down"
            found.append(Change(PAIR, pair.src, pair.dst, pair_kind(failing, dst_down),
                                old_state, pair.state))
        if old is not None and old.underlay is not None and pair.underlay is not None \
                and old.underlay != pair.underlay:
            found.append(Change(PAIR, pair.src, pair.dst, "underlay", old.underlay, pair.underlay))
        elif previous is None and pair.underlay not in (None, OK):
            found.append(Change(PAIR, pair.src, pair.dst, "underlay", None, str(pair.underlay)))
    return found


def _changed(before: str | None, after: str) -> bool:
    """A state that differs from the round before's; a new one (a first round, or a host or
    pair the round before did not have) counts when it is not ok."""
    return after != OK if before is None else before != after


def host_kind(before: str | None, after: str) -> str:
    """The kind of a host's change: the failing state's (on the way down or back up)."""
    failing = {before, after} - {OK, None}
    if "down" in failing:
        return "host-down"
    if "error" in failing:
        return "host-error"
    return "unconfigured"


def pair_kind(failing: str, destination_down: bool) -> str:
    """The kind of a pair's change, from the failing state (the new one on the way down, the
    old one on the way back up) and whether its destination was down then."""
    if failing == NOT_MEASURED_STATE:
        return "not-measured"
    if destination_down:
        return "host-down"
    if failing == "mtu-failed":
        return "mtu"
    return "tunnel"


def summary(found: Sequence[Change], shown: int = 4) -> str:
    """The changes in a line: the first `shown` of them, and how many more."""
    if not found:
        return "no change"
    head = ", ".join(c.text() for c in found[:shown])
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return f"{len(found)} change{'' if len(found) == 1 else 's'}: {head}{more}"
