"""fleet.nornir.run: a fleet task on every host of a Nornir object, on one event loop.

    outcome = fleet.nornir.run(nr.filter(role="edge"), "mesh", params={"count": 5})
    outcome.results          # Nornir's AggregatedResult: a MultiResult of one Result per host
    outcome.report           # the task's report (for mesh: the matrix, fleet.mesh.report.MeshReport)
    outcome.exit_code        # 0 all ok, 1 some host (or pair) not ok, as the command line's

This is fleet's own runner (fleet.run) over the Nornir object's hosts: one event loop, one SSH
connection per host, bounded concurrency and timeouts (`limits`), every parameter and SSH file
checked before any host is touched. The Nornir object's bookkeeping is kept as nr.run keeps it:
with `raise_on_error` (default: its config's core.raise_on_error) a failed host raises Nornir's
NornirExecutionError, otherwise failed hosts are added to nr.data.failed_hosts. Unlike nr.run
it runs on every host of `nr`, including those that failed before (a mesh needs them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nornir.core import Nornir

from fleet.api import TaskOutcome, Warn
from fleet.api import run as fleet_run
from fleet.core.runner import RunLimits
from fleet.core.transport import Transport
from fleet.nornir.hosts import fleet_inventory


def run(nr: Nornir, task: str, *, params: Any = None, dry_run: bool | None = None,
        raise_on_error: bool | None = None, limits: RunLimits | None = None,
        host_key_checking: str = "yes", persist: float = 0.0, transport: Transport | None = None,
        tasks_dirs: Sequence[Path] = (), on_warning: Warn | None = None) -> TaskOutcome:
    """Run fleet task `task` ("setup", "mesh", "teardown" or your own) on the hosts of `nr` (a
    Nornir object from FleetInventory, possibly filtered) and return its TaskOutcome.

    `params`: the task's Params (e.g. fleet.tasks.mesh.MeshParams(count=5)) or a mapping of their
    fields. `dry_run` defaults to the Nornir object's. The other arguments are fleet.run()'s.
    """
    outcome = fleet_run([task], fleet_inventory(nr),
                        params=None if params is None else {task: params},
                        dry_run=nr.data.dry_run if dry_run is None else dry_run, limits=limits,
                        host_key_checking=host_key_checking, persist=persist, transport=transport,
                        tasks_dirs=tasks_dirs, on_warning=on_warning)
    (done,) = outcome.tasks
    if nr.config.core.raise_on_error if raise_on_error is None else raise_on_error:
        done.results.raise_on_error()
    else:
        nr.data.failed_hosts.update(done.results.failed_hosts)
    return done


__all__ = ["run"]
