"""Synthetic meshes and reports for the formats' tests, built straight from the model's values
(no inventory: host names here may be anything a remote or an inventory could hold)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from types import SimpleNamespace
from typing import Any

from fleet.core.results import HostOutcome, HostsReport
from fleet.mesh.model import HostState, Mesh, MeshHost, PairColumns, PairState
from fleet.mesh.probe import ProbeParams
from fleet.mesh.report import MeshReport

OK_RTT = (0.1, 0.2, 0.3, 0.05)


def mesh_of(names: list[str], special: dict[tuple[str, str], dict[str, Any]] | None = None,
            skip: set[tuple[str, str]] = frozenset(), failed_hosts: set[str] = frozenset()) -> Mesh:
    """Every directed pair ok (3 of 3, rtt 0.1/0.2/0.3 ms) unless `special` gives its add()
    arguments; pairs in `skip` are not probed at all."""
    special = special or {}
    columns = PairColumns()
    for s, src in enumerate(names):
        for d, dst in enumerate(names):
            if s == d or (src, dst) in skip:
                continue
            args = special.get((src, dst), {"state": PairState.OK, "sent": 3, "received": 3,
                                            "rtt": OK_RTT})
            columns.add(s, d, **args)
    hosts = tuple(MeshHost(n, IPv4Address(f"172.31.{i // 250}.{i % 250 + 1}"),
                           IPv6Address(f"fd00::5efe:{i:x}"),
                           HostState.ERROR if n in failed_hosts else HostState.OK,
                           error="cannot connect" if n in failed_hosts else None, probe="fping")
                  for i, n in enumerate(names))
    return Mesh(hosts, columns, ProbeParams())


UNREACHABLE = {"state": PairState.UNREACHABLE, "sent": 3, "received": 0}
LOSSY = {"state": PairState.LOSSY, "sent": 3, "received": 2, "rtt": (0.1, 0.4, 0.9, 0.2)}
ERROR = {"state": PairState.ERROR, "error": "source failed: cannot connect"}


def mesh_outcome(mesh: Mesh, task: str = "mesh", findings: tuple[Any, ...] | None = None) -> Any:
    report = MeshReport(mesh, interrupted=False, elapsed=2.5,
                        findings=None if findings is None else list(findings))
    return SimpleNamespace(task=task, report=report)


@dataclass(frozen=True)
class Finding:
    kind: str
    hosts: tuple[str, ...]
    text: str


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
