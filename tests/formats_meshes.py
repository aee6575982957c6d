"""Synthetic meshes and reports for the formats' tests, built straight from the model's values
(no inventory: host names here may be anything a remote or an inventory could hold)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from types import SimpleNamespace
from typing import Any

from fleet.core.results import HostOutcome, HostsReport
from fleet.mesh.model import MTU_FAILED, MTU_OK, HostState, Mesh, MeshHost, PairColumns, PairState
from fleet.mesh.probe import ProbeParams
from fleet.mesh.report import MeshReport
from fleet.mesh.verdict import MeshVerdict, judge

OK_RTT = (0.1, 0.2, 0.3, 0.05)


def mesh_of(names: list[str], special: dict[tuple[str, str], dict[str, Any]] | None = None,
            skip: set[tuple[str, str]] = frozenset(), failed_hosts: set[str] = frozenset(),
            mtu: dict[tuple[str, str], bool | None] | None = None, underlay: bool = False) -> Mesh:
    """Every directed pair ok (3 of 3, rtt 0.1/0.2/0.3 ms) unless `special` gives its add()
    arguments; pairs in `skip` are not probed at all. `mtu`: the MTU check was made (--mtu),
    every pair passing but those given (False: failed, None: could not tell); `underlay`: the
    IPv4 ping was made (--underlay), answering on every pair."""
    special = special or {}
    columns = PairColumns()
    for s, src in enumerate(names):
        for d, dst in enumerate(names):
            if s == d or (src, dst) in skip:
                continue
            args = special.get((src, dst), {"state": PairState.OK, "sent": 3, "received": 3,
                                            "rtt": OK_RTT})
            columns.add(s, d, **args)
            row = len(columns) - 1
            if underlay:
                columns.u_state[row], columns.u_sent[row], columns.u_received[row] = 0, 3, 3
                columns.u_rtt[row] = 0.2
            if mtu is not None:
                passed = mtu.get((src, dst), True)
                if passed is None:
                    columns.set_mtu_unknown(row, "the probe failed")
                else:
                    columns.mtu[row] = MTU_OK if passed else MTU_FAILED
    hosts = tuple(MeshHost(n, IPv4Address(f"172.31.{i // 250}.{i % 250 + 1}"),
                           IPv6Address(f"fd00::5efe:{i:x}"),
                           HostState.ERROR if n in failed_hosts else HostState.OK,
                           error="cannot connect" if n in failed_hosts else None, probe="fping")
                  for i, n in enumerate(names))
    return Mesh(hosts, columns, ProbeParams(underlay=underlay,
                                            mtu_size=None if mtu is None else 1480))


UNREACHABLE = {"state": PairState.UNREACHABLE, "sent": 3, "received": 0}
LOSSY = {"state": PairState.LOSSY, "sent": 3, "received": 2, "rtt": (0.1, 0.4, 0.9, 0.2)}
ERROR = {"state": PairState.ERROR, "error": "source failed: cannot connect"}


def mesh_outcome(mesh: Mesh, task: str = "mesh", findings: tuple[Any, ...] | None = None) -> Any:
    """The mesh's report, judged as a run judges it; `findings` replace the diagnosis's own
    (the verdict's status stays the mesh's)."""
    verdict = judge(mesh)
    if findings is not None:
        verdict = MeshVerdict(verdict.status, tuple(findings), mesh.pair_count)
    report = MeshReport(mesh, interrupted=False, elapsed=2.5, verdict=verdict)
    return SimpleNamespace(task=task, report=report)


@dataclass(frozen=True)
class Finding:
    kind: str
    hosts: tuple[str, ...]
    text: str
    pairs: int = 0


def hosts_outcome(task: str, statuses: dict[str, str]) -> Any:
    """A HostsReport: status ok/changed/failed/interrupted per host."""
    hosts = []
    for name, status in statuses.items():
        if status == "failed":
            hosts.append(HostOutcome(name, "failed", "cannot connect to 10.0.0.1:22", "unreachable",
                                     None, "unreachable: cannot connect to 10.0.0.1:22"))
        elif status == "interrupted":
            hosts.append(HostOutcome(name, "failed", "the run was interrupted", "interrupted", None,
                                     "interrupted: the run was interrupted"))
        else:
            hosts.append(HostOutcome(name, status, None, None, {"summary": "sit1 up"}, "sit1 up"))
    return SimpleNamespace(task=task, report=HostsReport(task, tuple(hosts), 1.25, False))
