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
    from fleet.mesh.verdict import MeshVerdict


@dataclass(frozen=True)
class MeshSource:
    """A mesh to render, with its one verdict (the report's own: formats never judge again)."""

    task: str
    mesh: Mesh
    elapsed: float
    verdict: MeshVerdict

    @property
    def findings(self) -> tuple[Any, ...]:
        return self.verdict.findings


def mesh_source(outcome: TaskOutcomeLike) -> MeshSource | None:
    mesh = getattr(outcome.report, "mesh", None)
    if mesh is None or not hasattr(mesh, "columns"):
        return None
    verdict = getattr(outcome.report, "verdict", None)
    if verdict is None:
        from fleet.mesh.verdict import judge

        verdict = judge(mesh, interrupted=bool(getattr(outcome.report, "interrupted", False)))
    return MeshSource(outcome.task, mesh, float(getattr(outcome.report, "elapsed", 0.0)), verdict)


def task_ok(outcome: TaskOutcomeLike) -> bool:
    """Whether a task's outcome is ok, as its exit code says (0)."""
    return int(getattr(outcome.report, "exit_code", 1)) == 0


def mesh_sources(outcomes: Sequence[TaskOutcomeLike]) -> list[MeshSource]:
    return [s for s in map(mesh_source, outcomes) if s is not None]


def hosts_reports(outcomes: Sequence[TaskOutcomeLike]) -> list[HostsReport]:
    return [o.report for o in outcomes if isinstance(o.report, HostsReport)]
