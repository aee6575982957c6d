"""The reachability matrix: every directed pair's state and numbers. Pure: values in, values out.

States of a pair: `ok` (no loss), `lossy` (some loss), `unreachable` (every probe lost), `error` (the
probe could not run, so we cannot tell). "Could not tell" is never reported as "unreachable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address, IPv6Interface

from fleet.inventory import FleetHost
from fleet.isatap import ISATAP_PREFIX_LENGTH
from fleet.probe import PingOutcome, ProbeParams


class PairState(str, Enum):
    OK = "ok"
    LOSSY = "lossy"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class HostState(str, Enum):
    OK = "ok"                      # probed its peers, tunnel in place
    UNCONFIGURED = "unconfigured"  # probed its peers, but sit1 lacks its ISATAP address
    ERROR = "error"                # could not probe (unreachable over SSH, command failed)


@dataclass(frozen=True)
class SourceProbe:
    """What one source host reported: the addresses on its tunnel and one outcome per peer."""

    tunnel_addresses: tuple[IPv6Interface, ...]
    outcomes: Mapping[IPv6Address, PingOutcome]


@dataclass(frozen=True)
class MeshHost:
    name: str
    ipv4: IPv4Address
    address: IPv6Address
    state: HostState
    error: str | None = None


@dataclass(frozen=True)
class Pair:
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


@dataclass(frozen=True)
class Mesh:
    hosts: tuple[MeshHost, ...]
    pairs: tuple[Pair, ...]
    probe: str
    params: ProbeParams

    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in PairState}
        for pair in self.pairs:
            counts[pair.state.value] += 1
        return counts

    def summary(self) -> dict[str, int]:
        return {"hosts": len(self.hosts), "pairs": len(self.pairs), **self.counts()}

    @property
    def all_ok(self) -> bool:
        return all(p.state is PairState.OK for p in self.pairs) and all(
            h.state is not HostState.ERROR for h in self.hosts)

    def pair(self, src: str, dst: str) -> Pair | None:
        for pair in self.pairs:
            if pair.src == src and pair.dst == dst:
                return pair
        return None


def classify(outcome: PingOutcome) -> PairState:
    stats = outcome.stats
    if stats is None or stats.sent == 0:
        return PairState.ERROR
    if stats.received >= stats.sent:
        return PairState.OK
    if stats.received == 0:
        return PairState.UNREACHABLE
    return PairState.LOSSY


def pair_from_outcome(src: str, dst: str, outcome: PingOutcome) -> Pair:
    state = classify(outcome)
    stats = outcome.stats
    if stats is None or state is PairState.ERROR:
        return Pair(src, dst, PairState.ERROR, sent=stats.sent if stats else 0,
                    error=outcome.error or "ping printed no statistics")
    return Pair(src, dst, state, sent=stats.sent, received=stats.received, loss_pct=stats.loss_pct,
                rtt_min_ms=stats.rtt_min_ms, rtt_avg_ms=stats.rtt_avg_ms,
                rtt_max_ms=stats.rtt_max_ms, rtt_mdev_ms=stats.rtt_mdev_ms)


def build_mesh(hosts: Sequence[FleetHost], reports: Mapping[str, SourceProbe | str],
               probe: str, params: ProbeParams) -> Mesh:
    """Combine each source's report (or the reason it has none) into the matrix.

    `reports` maps a host name to its SourceProbe, or to an error message when it could not probe.
    """
    mesh_hosts: list[MeshHost] = []
    pairs: list[Pair] = []
    for src in hosts:
        report = reports.get(src.name, "no result")
        if isinstance(report, str):
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.ERROR, report))
            pairs += [Pair(src.name, dst.name, PairState.ERROR, error=f"source failed: {report}")
                      for dst in hosts if dst is not src]
            continue
        own = IPv6Interface(f"{src.address}/{ISATAP_PREFIX_LENGTH}")
        if own in report.tunnel_addresses:
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.OK))
        else:
            mesh_hosts.append(MeshHost(src.name, src.ipv4, src.address, HostState.UNCONFIGURED,
                                       f"sit1 does not carry {own}; run `fleet run setup`"))
        for dst in hosts:
            if dst is src:
                continue
            outcome = report.outcomes.get(dst.address)
            if outcome is None:
                pairs.append(Pair(src.name, dst.name, PairState.ERROR, error="not probed"))
            else:
                pairs.append(pair_from_outcome(src.name, dst.name, outcome))
    return Mesh(tuple(mesh_hosts), tuple(pairs), probe, params)
