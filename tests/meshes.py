"""Synthetic meshes for the tests of saved reports and comparisons: hosts and pairs given as plain
values, the columns filled as build_mesh fills them (by source, then destination)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from fleet.mesh.model import HostState, Mesh, MeshHost, PairColumns, PairState
from fleet.mesh.percentiles import micros
from fleet.mesh.probe import ProbeParams


def host(name: str, i: int, state: HostState = HostState.OK) -> MeshHost:
    ipv4 = IPv4Address("172.31.0.10") + i
    return MeshHost(name, ipv4, IPv6Address(int(IPv6Address("fd00:5efe:1ab::5efe:0:0")) + int(ipv4)), state,
                    probe=None if state is HostState.ERROR else "fping",
                    error="cannot connect" if state is HostState.ERROR else None,
                    error_kind="unreachable" if state is HostState.ERROR else None)


def mesh(names: Sequence[str], special: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
         rtt: float = 0.5, count: int = 3) -> Mesh:
    """Every directed pair of `names` ok with average `rtt` ms, unless `special[(src, dst)]` says
    otherwise: `state`, `received`, `rtt` (average), `error`. Each reply is counted at its pair's
    average, as the mesh counts every reply for its percentiles."""
    special = special or {}
    columns = PairColumns()
    for i, src in enumerate(names):
        for j, dst in enumerate(names):
            if i == j:
                continue
            how = special.get((src, dst), {})
            state = how.get("state", PairState.OK)
            if state is PairState.ERROR:
                columns.add(i, j, state, error=how.get("error", "source failed: cannot connect"))
                continue
            received = how.get("received", {PairState.OK: count, PairState.UNREACHABLE: 0,
                                            PairState.LOSSY: count - 1}[state])
            avg = how.get("rtt", rtt)
            rtts = (avg / 2, avg, avg * 2, avg / 10) if received else (None, None, None, None)
            columns.add(i, j, state, count, received, rtts)
            if received:
                columns.replies.update(micros([avg] * received))
    return Mesh(tuple(host(n, i) for i, n in enumerate(names)), columns, ProbeParams(count=count))
