"""Ping every host's ISATAP address from every other host; show the reachability matrix.

One SSH command per source host probes all of its peers (fping, else fleet's own single-process
prober, else parallel ping -6); loss and round-trip times per directed pair.
"""

from __future__ import annotations

import asyncio
import functools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from nornir.core.task import Result

from fleet.core.errors import CommandError, PreflightError, UsageError
from fleet.core.params import option
from fleet.core.results import RunOutcome, host_error
from fleet.core.runner import HostRun, host_task
from fleet.core.task import TaskContext
from fleet.core.transport import RepeatedCommand
from fleet.inventory import FleetHost
from fleet.mesh.model import STATES, PairState, build_mesh, peer_plan, source_report
from fleet.mesh.probe import (
    DEFAULT_MTU_SIZE,
    METHODS,
    MTU_PINGS,
    NO_PROBER_STATUS,
    MeshProbe,
    ProbeParams,
)
from fleet.mesh.report import MeshReport

PROBE = MeshProbe()
_ANSWERED = {STATES.index(PairState.OK), STATES.index(PairState.LOSSY)}  # a reply came


@dataclass(frozen=True)
class MeshParams:
    """How the mesh is probed."""

    count: int = option(3, help="pings per pair (default 3)")
    interval: float = option(0.2, help="seconds between pings of one pair (default 0.2)")
    timeout: float = option(1.0, help="seconds to wait for each reply (default 1)")
    parallel: int = option(16, help="peers one source pings at once with the ping method (default 16)")
    probe: str = option("auto", choices=METHODS, help="fping, python (fleet's own prober), ping, or "
                        "auto: the first the host has, in that order (default)")
    peers: int | None = option(None, metavar="K", help="sampled mesh: each host probes K peers and "
                               "is probed by K others (default: every other host)")
    underlay: bool = option(False, help="also ping every peer's tunnel IPv4 (data.ipv4), outside the "
                            "tunnel, in the same command (about one more ping round)")
    mtu: bool = option(False, help=f"also send {MTU_PINGS} don't-fragment pings that fill the tunnel "
                       f"MTU ({DEFAULT_MTU_SIZE} bytes) to every peer (about one more ping round)")

    def __post_init__(self) -> None:
        self.probe_params  # noqa: B018  # its checks
        if self.peers is not None and self.peers < 1:
            raise ValueError("--peers must be at least 1")

    @property
    def probe_params(self) -> ProbeParams:
        return ProbeParams(count=self.count, interval=self.interval, timeout=self.timeout,
                           parallel=self.parallel, method=self.probe, underlay=self.underlay,
                           mtu_size=DEFAULT_MTU_SIZE if self.mtu else None)


Params = MeshParams


@functools.lru_cache(maxsize=4)
def _plan(count: int, peers: int | None) -> list[array[int]]:
    return peer_plan(count, peers)


_POSITIONS: list[tuple[Sequence[FleetHost], dict[str, int]]] = []  # the last fleets seen


def _position(host: HostRun[FleetHost]) -> int:
    """The host's index in its fleet: looked up in the fleet's index of names, made once per
    fleet (every host of a run shares one), not by a search of the fleet per host."""
    fleet, name = host.fleet, host.name
    for seen, positions in _POSITIONS:
        i = positions.get(name, -1) if seen is fleet else -1
        if 0 <= i < len(fleet) and fleet[i].name == name:
            return i
    positions = {}
    for i, h in enumerate(fleet):
        positions.setdefault(h.name, i)
    _POSITIONS[:] = [(fleet, positions), *_POSITIONS[:3]]
    return positions[name]


def _targets(host: HostRun[FleetHost]) -> tuple[int, list[tuple[int, FleetHost]]]:
    index = _position(host)
    plan = _plan(len(host.fleet), host.params.peers)
    return index, [(j, host.fleet[j]) for j in plan[index]]


def prepare(context: TaskContext) -> None:
    """A mesh needs at least 2 hosts: with fewer there is no pair to measure, and nothing that
    was not measured may read as ok. Said before any host is touched."""
    if len(context.hosts) < 2:
        named = ", ".join(h.name for h in context.hosts) or "none"
        raise UsageError(f"mesh: {len(context.hosts)} host(s) selected ({named}): a mesh needs at "
                         "least 2 (check --limit/--groups, or the inventory)")


@host_task
async def run(host: HostRun[FleetHost]) -> Result:
    index, peers = _targets(host)
    if not peers:  # one host alone (e.g. through Nornir's nr.filter): no prober is started
        raise PreflightError(host.name, "no peer to probe: a mesh needs at least 2 hosts")
    probe_params = host.params.probe_params
    addresses = [peer.address_text for _, peer in peers]
    ipv4s = [str(peer.ipv4) for _, peer in peers] if probe_params.underlay else []
    script = PROBE.script(addresses, probe_params, ipv4s)
    budget = max(host.limits.command_timeout, probe_params.expected_seconds(len(peers)) * 2 + 10)
    answer = await host.run(RepeatedCommand(script), timeout=budget)  # a kept shell may run it
    parse = functools.partial(PROBE.parse, answer.stdout, addresses,
                              ipv4s if probe_params.underlay else None,
                              probe_params.mtu_size is not None)
    # a big reply: fold it off the event loop, which runs handshakes
    parsed = await asyncio.to_thread(parse) if len(addresses) > 200 else parse()
    if answer.exit_status == NO_PROBER_STATUS:
        if parsed.notes:
            raise CommandError(host.name, "every prober failed: " + "; ".join(parsed.notes),
                               command=script, exit_status=answer.exit_status)
        raise PreflightError(host.name, "no prober: neither fping, python3 nor ping (iputils-ping) "
                             "is installed")
    if answer.exit_status != 0:
        raise CommandError(host.name,
                           f"probe failed (exit status {answer.exit_status}): {answer.last_words}",
                           command=script, exit_status=answer.exit_status, stdout=answer.stdout,
                           stderr=answer.stderr)
    targets = [(j, peer.address_text) for j, peer in peers]
    fold = functools.partial(source_report, index, targets, parsed.method, parsed.tunnel_addresses,
                             parsed.outcomes, parsed.notes,
                             (ipv4s, parsed.underlay) if parsed.underlay is not None else None,
                             parsed.mtu)
    report = await asyncio.to_thread(fold) if len(targets) > 200 else fold()
    host.tally(sum(1 for code in report.pairs.state if code in _ANSWERED), "pairs answered")
    return host.result(report)


def report(context: TaskContext, outcome: RunOutcome) -> MeshReport:
    reports = {}
    for host in context.hosts:
        result = outcome.results[host.name][0]
        reports[host.name] = (result.exception or host_error(result)) if result.failed \
            else result.result
    params: MeshParams = context.params
    hosts: Sequence[FleetHost] = context.hosts  # type: ignore[assignment]  # mesh runs on FleetHosts
    mesh = build_mesh(hosts, reports, params.probe_params,
                      _plan(len(context.hosts), params.peers), params.peers)
    return MeshReport(mesh, interrupted=outcome.interrupted, elapsed=outcome.elapsed)
