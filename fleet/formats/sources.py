"""What the formats read from tasks' outcomes, by type: a mesh report has `.mesh` (a
fleet.mesh.model.Mesh), a setup/teardown report is a HostsReport; anything else is skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleet.core.results import HostsReport

if TYPE_CHECKING:
    from fleet.formats import TaskOutcomeLike
    from fleet.mesh.model import Mesh


@dataclass(frozen=True)
class MeshSource:
    task: str
    mesh: Mesh
    elapsed: float
    findings: tuple[Any, ...]  # objects with .kind, .hosts (names) and .text, when diagnosed


def mesh_source(outcome: TaskOutcomeLike) -> MeshSource | None:
    mesh = getattr(outcome.report, "mesh", None)
    if mesh is None or not hasattr(mesh, "columns"):
        return None
    return MeshSource(outcome.task, mesh, float(getattr(outcome.report, "elapsed", 0.0)),
                      tuple(getattr(outcome.report, "findings", None) or ()))


def mesh_sources(outcomes: Sequence[TaskOutcomeLike]) -> list[MeshSource]:
    return [s for s in map(mesh_source, outcomes) if s is not None]


def hosts_reports(outcomes: Sequence[TaskOutcomeLike]) -> list[HostsReport]:
    return [o.report for o in outcomes if isinstance(o.report, HostsReport)]


def findings_about(findings: Sequence[Any], *names: str) -> list[Any]:
    """The findings naming any of these hosts (a finding naming no host concerns every pair)."""
    wanted = set(names)
    return [f for f in findings
            if not getattr(f, "hosts", ()) or wanted & set(getattr(f, "hosts", ()))]
