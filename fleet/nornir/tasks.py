"""fleet's tasks as synchronous Nornir task functions, for Nornir's own runners.

    nr.run(task=fleet.nornir.setup)                     # or teardown, with replace= / dry_run=
    probes = nr.run(task=fleet.nornir.mesh_probe, count=5)
    print(fleet.nornir.mesh_report(nr, probes).render())

Nornir's runners are threads and call a task synchronously, one host per call. So each function
here runs fleet's task for `task.host` on a private event loop (asyncio.run) in the calling
thread, with fleet's runner, over a connection of its own that it closes before returning: calls
share no event loop and no connection pool, and every call logs in anew (a threaded run of 20
workers makes 20 logins at a time, each on its own thread). For a whole fleet, the supported fast
way is fleet.nornir.run(nr, TASK) or fleet.run(): one event loop, one connection per host,
bounded concurrency.

Each returns a real Nornir Result, as fleet's runner makes it: `changed`, `failed`, `result`
(the task's data, or "KIND: why" for a failed host) and `exception` (a fleet.core.errors.HostError
whose `kind` is the error kind: unreachable, auth, preflight ...). A failing host is a failed
Result, never an exception that stops the others; `raise_on_error` is the caller's choice, as
always in Nornir. `dry_run` defaults to the Nornir object's (InitNornir(dry_run=...)).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.task import AggregatedResult, MultiResult, Result, Task

from fleet.api import open_transport
from fleet.catalog import BUILTIN_TASKS
from fleet.core.errors import UsageError
from fleet.core.results import RunOutcome
from fleet.core.runner import RunLimits, Runner
from fleet.core.task import Task as FleetTask
from fleet.core.task import TaskContext
from fleet.inventory import FleetHost
from fleet.nornir.hosts import fleet_host, fleet_inventory

logger = logging.getLogger(__name__)


def setup(task: Task, replace: bool = False, dry_run: bool | None = None, *,
          host_key_checking: str = "yes", limits: RunLimits | None = None) -> Result:
    """Configure sit1 on this host (fleet's `setup`): only what differs; `replace` replaces a
    sit1 that is not fleet's."""
    return _run_on_host(task, "setup", {"replace": replace}, dry_run, host_key_checking, limits)


def teardown(task: Task, replace: bool = False, dry_run: bool | None = None, *,
             host_key_checking: str = "yes", limits: RunLimits | None = None) -> Result:
    """Remove fleet's sit1 from this host (fleet's `teardown`); `replace` removes any sit1."""
    return _run_on_host(task, "teardown", {"replace": replace}, dry_run, host_key_checking, limits)


def mesh_probe(task: Task, count: int = 3, interval: float = 0.2, timeout: float = 1.0,
               parallel: int = 16, probe: str = "auto", peers: int | None = None, *,
               host_key_checking: str = "yes", limits: RunLimits | None = None) -> Result:
    """This host's share of the mesh: ping its peers' ISATAP addresses (the peers are the hosts
    of the Nornir object, `task.nornir.inventory.hosts`). The Result's `result` is this source's
    report; fleet.nornir.mesh_report() makes the matrix of every host's."""
    given = {"count": count, "interval": interval, "timeout": timeout, "parallel": parallel,
             "probe": probe, "peers": peers}
    fleet = fleet_inventory(task.nornir).hosts
    return _run_on_host(task, "mesh", given, False, host_key_checking, limits, fleet=fleet)


def mesh_report(nr: Nornir, results: AggregatedResult, *, elapsed: float | None = None) -> Any:
    """The reachability matrix (fleet.mesh.report.MeshReport) of `nr.run(task=mesh_probe)` over
    the same Nornir object `nr`: every one of its hosts must have a result. The report is fleet's
    own (fleet.mesh.task.report); `elapsed` is the run's wall time when the caller measured it,
    else the longest host's own time. `results` are left as they were."""
    from fleet.mesh import task as mesh_task  # the mesh only when asked for

    hosts = fleet_inventory(nr).hosts
    missing = [h.name for h in hosts if h.name not in results]
    if missing:
        raise UsageError(f"no mesh_probe result for {', '.join(missing)}: run mesh_probe on every "
                         "host of this Nornir object (a host that failed before is skipped by "
                         "nr.run unless on_failed=True)")
    firsts = {h.name: results[h.name][0] for h in hosts}
    recorded = {p for r in firsts.values() if (p := getattr(r, "fleet_params", None)) is not None}
    if len(recorded) != 1 or not isinstance(next(iter(recorded)), mesh_task.MeshParams):
        raise UsageError("these are not the results of one nr.run(task=fleet.nornir.mesh_probe)")
    (params,) = recorded
    copied = AggregatedResult(results.name)
    for name, result in firsts.items():
        multi = MultiResult(result.name or "mesh")
        multi.append(Result(host=result.host, result=copy.deepcopy(result.result),  # build_mesh
                            changed=result.changed, failed=result.failed,         # moves the pairs
                            exception=result.exception))
        copied[name] = multi
    took = elapsed if elapsed is not None else max(
        (getattr(r, "fleet_elapsed", 0.0) for r in firsts.values()), default=0.0)
    context = TaskContext("mesh", hosts, params)
    return mesh_task.report(context, RunOutcome(copied, interrupted=False, elapsed=took))


def _builtin(name: str) -> FleetTask:
    """fleet's own task NAME (never a ./tasks file of the same name)."""
    module = importlib.import_module(BUILTIN_TASKS[name])
    return FleetTask(name, Path(module.__file__ or name), module)


def _run_on_host(task: Task, name: str, given: Mapping[str, Any], dry_run: bool | None,
                 host_key_checking: str, limits: RunLimits | None,
                 fleet: Sequence[FleetHost] | None = None) -> Result:
    host = fleet_host(task.host)
    fleet_task = _builtin(name)
    params = fleet_task.make_params(dict(given))
    dry = task.is_dry_run(dry_run)
    fleet_task.prepare(TaskContext(name, fleet or (host,), params, dry_run=dry))
    result, elapsed = asyncio.run(_one_host(fleet_task, host, fleet, params, dry,
                                            host_key_checking, limits))
    # What mesh_report needs to rebuild the run's plan (Nornir's Result takes extra attributes).
    setattr(result, "fleet_params", params)  # noqa: B010
    setattr(result, "fleet_elapsed", elapsed)  # noqa: B010
    return result


async def _one_host(fleet_task: FleetTask, host: FleetHost, fleet: Sequence[FleetHost] | None,
                    params: Any, dry_run: bool, host_key_checking: str,
                    limits: RunLimits | None) -> tuple[Result, float]:
    transport = await open_transport(host_key_checking=host_key_checking, on_warning=_warn)
    try:
        async with Runner(transport, limits) as runner:
            outcome = await runner.run(fleet_task.name, fleet_task.run, [host], params=params,
                                       dry_run=dry_run, fleet=fleet)
    finally:
        await transport.close()
    return outcome.results[host.name][0], outcome.elapsed


def _warn(host: str, text: str) -> None:
    logger.warning("%s%s", f"{host}: " if host else "", text)


__all__ = ["mesh_probe", "mesh_report", "setup", "teardown"]
