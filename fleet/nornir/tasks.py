"""fleet's tasks as synchronous Nornir task functions, for Nornir's own runners.

    nr.run(task=fleet.nornir.setup)                     # or teardown, with replace= / dry_run=
    probes = nr.run(task=fleet.nornir.mesh_probe, count=5)
    print(fleet.nornir.mesh_report(nr, probes).render())

Nornir's runners are threads and call a task synchronously, one host per call. Each function
here runs fleet's task for `task.host` with fleet's runner over the host's kept connection, the
Nornir connection plugin `fleet` (fleet.nornir.connection): the first call logs in and keeps the
connection in `task.host.connections`, later calls reuse it, and `nr.close_connections()` ends
it. The connections live on one event loop in a background thread; a call hands its work to that
loop and waits for it. A host whose login fails gets a failed Result (the connection is opened
again on the next call). For a whole fleet at once, fleet.nornir.run(nr, TASK) or fleet.run()
also check everything before any host is touched and bound the concurrency.

The functions are made from the tasks themselves (tasks/setup.py, tasks/teardown.py,
tasks/mesh.py): their parameters are the task's Params fields, with the same defaults, then
`dry_run` (for a task that changes hosts) and the keyword-only `host_key_checking` and `limits`.
Each returns a real Nornir Result, as fleet's runner makes it: `changed`, `failed`, `result`
(the task's data as plain dicts and lists, which nornir_utils' print_result shows as they are;
for mesh_probe the source's method, tunnel addresses and pairs, each pair a dict of the JSON
report's pair fields; or "KIND: why" for a failed host) and `exception` (a
fleet.core.errors.HostError whose `kind` is the error kind: unreachable, auth, preflight ...).
A failing host is a failed Result, never an exception that stops the others; `raise_on_error` is
the caller's choice, as always in Nornir. `dry_run` defaults to the Nornir object's
(InitNornir(dry_run=...)).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.task import AggregatedResult, MultiResult, Result, Task

from fleet.core.errors import HostError, UsageError
from fleet.core.results import RunOutcome, failed_result
from fleet.core.runner import RunLimits, Runner
from fleet.core.task import Task as FleetTask
from fleet.core.task import TaskContext
from fleet.core.transport import Transport
from fleet.inventory import FleetHost
from fleet.nornir.connection import host_connection
from fleet.nornir.hosts import fleet_host, fleet_inventory

NornirTask = Callable[..., Result]


@dataclass(frozen=True)
class _Adapter:
    """How one fleet task is offered to Nornir: under which name, whether it takes `dry_run`
    (a task that changes hosts), whether it needs the whole fleet (the mesh: the peers), and how
    its result becomes plain data."""

    task: str
    dry_run: bool = True
    whole_fleet: bool = False
    plain: Callable[[Any, TaskContext], Any] | None = None


def _mesh_data(value: Any, context: TaskContext) -> Any:
    from fleet.mesh.model import SourceReport, source_data

    if not isinstance(value, SourceReport):
        return value
    names = [h.name for h in context.hosts]
    return source_data(value, names, context.params.probe_params.mtu_size)


ADAPTERS = {
    "setup": _Adapter("setup"),
    "teardown": _Adapter("teardown"),
    "mesh_probe": _Adapter("mesh", dry_run=False, whole_fleet=True, plain=_mesh_data),
}


# Made on first use (below): each is a NornirTask whose signature is its task's Params.
setup: NornirTask
teardown: NornirTask
mesh_probe: NornirTask


def __getattr__(name: str) -> Any:
    """setup, teardown, mesh_probe: made on first use, so using one loads no other task."""
    if name in ADAPTERS:
        return nornir_task(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def nornir_task(name: str) -> NornirTask:
    """The Nornir task function `name` (setup, teardown, mesh_probe), made from the fleet task's
    Params: one parameter per field, with its default."""
    adapter = ADAPTERS[name]
    fleet_task = _builtin(adapter.task)
    parameters = [inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=Task)]
    cls = fleet_task.params_class
    fields = dataclasses.fields(cls) if cls is not None else ()
    parameters += [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=_default(f), annotation=f.type) for f in fields]
    if adapter.dry_run:
        parameters.append(inspect.Parameter("dry_run", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=None, annotation="bool | None"))
    parameters += [inspect.Parameter("host_key_checking", inspect.Parameter.KEYWORD_ONLY,
                                     default="yes", annotation="str"),
                   inspect.Parameter("limits", inspect.Parameter.KEYWORD_ONLY, default=None,
                                     annotation="RunLimits | None")]
    signature = inspect.Signature(parameters, return_annotation=Result)
    names = [f.name for f in fields]

    def function(*args: Any, **kwargs: Any) -> Result:
        bound = signature.bind(*args, **kwargs)  # a TypeError for a wrong argument, as ever
        bound.apply_defaults()
        given = bound.arguments
        return _run_on_host(fleet_task, adapter, given["task"], {n: given[n] for n in names},
                            given.get("dry_run"), given["host_key_checking"], given["limits"])

    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__signature__ = signature  # type: ignore[attr-defined]
    function.__doc__ = _doc(fleet_task, adapter, names)
    return function


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty


def _doc(fleet_task: FleetTask, adapter: _Adapter, names: Sequence[str]) -> str:
    first = fleet_task.description
    where = ("This host's share: it probes its peers, the hosts of the Nornir object "
             "(task.nornir.inventory.hosts); fleet.nornir.mesh_report() makes the matrix of every "
             "host's Result.") if adapter.whole_fleet else ""
    return "\n\n".join(p for p in (
        f"{first}", f"fleet's `{fleet_task.name}` task ({fleet_task.path.name}) for Nornir's runners; "
        f"its parameters: {', '.join(names) or 'none'} (see `fleet run {fleet_task.name} --help`).",
        where) if p)


def mesh_report(nr: Nornir, results: AggregatedResult, *, elapsed: float | None = None) -> Any:
    """The reachability matrix (fleet.mesh.report.MeshReport) of `nr.run(task=mesh_probe)` over
    the same Nornir object `nr`: every one of its hosts must have a result. The report is fleet's
    own (the mesh task's report); `elapsed` is the run's wall time when the caller measured it,
    else the longest host's own time. `results` are left as they were."""
    mesh_task = _builtin("mesh")  # the mesh only when asked for
    hosts = fleet_inventory(nr).hosts
    missing = [h.name for h in hosts if h.name not in results]
    if missing:
        raise UsageError(f"no mesh_probe result for {', '.join(missing)}: run mesh_probe on every "
                         "host of this Nornir object (a host that failed before is skipped by "
                         "nr.run unless on_failed=True)")
    firsts = {h.name: results[h.name][0] for h in hosts}
    recorded = {p for r in firsts.values() if (p := getattr(r, "fleet_params", None)) is not None}
    params_class = mesh_task.params_class
    if len(recorded) != 1 or params_class is None or not isinstance(next(iter(recorded)),
                                                                    params_class):
        raise UsageError("these are not the results of one nr.run(task=fleet.nornir.mesh_probe)")
    (params,) = recorded
    copied = AggregatedResult(results.name)
    for name, result in firsts.items():
        multi = MultiResult(result.name or "mesh")
        # The source's report as the task made it (result.result is its plain rendering);
        # copied, because build_mesh moves the pairs.
        value = getattr(result, "fleet_value", result.result)
        multi.append(Result(host=result.host, result=copy.deepcopy(value),
                            changed=result.changed, failed=result.failed,
                            exception=result.exception))
        copied[name] = multi
    took = elapsed if elapsed is not None else max(
        (getattr(r, "fleet_elapsed", 0.0) for r in firsts.values()), default=0.0)
    context = TaskContext("mesh", hosts, params)
    return mesh_task.report(context, RunOutcome(copied, interrupted=False, elapsed=took))


def _builtin(name: str) -> FleetTask:
    """fleet's own task NAME, the module fleet.tasks.NAME (never a ./tasks file of that name)."""
    module = importlib.import_module(f"fleet.tasks.{name}")
    return FleetTask(name, Path(module.__file__ or name), module)


def _run_on_host(fleet_task: FleetTask, adapter: _Adapter, task: Task, given: Mapping[str, Any],
                 dry_run: bool | None, host_key_checking: str,
                 limits: RunLimits | None) -> Result:
    host = fleet_host(task.host)
    fleet = fleet_inventory(task.nornir).hosts if adapter.whole_fleet else None
    params = fleet_task.make_params(dict(given))
    dry = task.is_dry_run(dry_run) if adapter.dry_run else False
    context = TaskContext(fleet_task.name, fleet or (host,), params, dry_run=dry)
    fleet_task.prepare(context)
    bounds = limits or RunLimits()
    try:
        connection = host_connection(task.host, task.nornir.config, host,
                                     host_key_checking=host_key_checking,
                                     connect_timeout=bounds.connect_timeout)
    except HostError as exc:  # the login failed: this host's failure, as fleet's runner says it
        result, elapsed = failed_result(task.host, fleet_task.name, exc), 0.0
    else:
        result, elapsed = connection.run(_one_host(fleet_task, host, fleet, params, dry,
                                                   connection.transport(), bounds))
    # What mesh_report needs to rebuild the run's plan (Nornir's Result takes extra attributes).
    setattr(result, "fleet_params", params)  # noqa: B010
    setattr(result, "fleet_elapsed", elapsed)  # noqa: B010
    if adapter.plain is not None and not result.failed:
        setattr(result, "fleet_value", result.result)  # noqa: B010
        result.result = adapter.plain(result.result, context)
    return result


async def _one_host(fleet_task: FleetTask, host: FleetHost, fleet: Sequence[FleetHost] | None,
                    params: Any, dry_run: bool, transport: Transport,
                    limits: RunLimits) -> tuple[Result, float]:
    """fleet's runner for one host, over the host's kept connection (on the connection's loop)."""
    async with Runner(transport, limits) as runner:
        outcome = await runner.run(fleet_task.name, fleet_task.run, [host], params=params,
                                   dry_run=dry_run, fleet=fleet)
    return outcome.results[host.name][0], outcome.elapsed


__all__ = ["mesh_probe", "mesh_report", "nornir_task", "setup", "teardown"]
