"""fleet as a library: run tasks on an inventory's hosts and get typed outcomes back.

    import fleet
    outcome = fleet.run(["setup", "mesh"], "inventory", params={"mesh": {"count": 5}})
    mesh = outcome["mesh"].report.mesh          # fleet.mesh.model.Mesh
    print(outcome["mesh"].report.render())
    raise SystemExit(outcome.exit_code)

`run` owns one event loop for the whole run; `run_async` is the same inside a caller's loop.
Everything is checked before any host is touched (the tasks, their parameters, the inventory, the
SSH key and known_hosts files): a problem raises a fleet.core.errors.FleetError subclass
(UsageError, TaskError, InventoryError). A host's failure is never raised: it is that host's
failed Result and its line in the report. The command line is a thin layer over this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nornir.core.task import AggregatedResult

from fleet.catalog import task as load_task
from fleet.core.errors import UsageError
from fleet.core.progress import HOST_DONE, ProgressEvent, ProgressListener
from fleet.core.results import EXIT_INTERRUPTED, EXIT_OK, Report
from fleet.core.runner import RunLimits, Runner
from fleet.core.task import Task, TaskContext
from fleet.core.transport import Transport
from fleet.inventory import Inventory, check_ssh_files, load_inventory

Warn = Callable[[str, str], None]  # (host or "", text)
TaskProgress = Callable[[str, int, int, str, bool], None]  # task, done, total, last host, it failed
# The richer alternative: `on_progress` gets every fleet.core.progress.ProgressEvent (connections
# established, hosts done with the task's own count).


@dataclass(frozen=True)
class TaskOutcome:
    """One task's run: Nornir's results per host, and the task's report (typed, renderable)."""

    task: str
    results: AggregatedResult
    report: Report
    interrupted: bool
    elapsed: float

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


@dataclass(frozen=True)
class Outcome:
    """Every task's outcome, in the order they ran; a task after an interruption did not run."""

    tasks: tuple[TaskOutcome, ...] = field(default_factory=tuple)

    @property
    def interrupted(self) -> bool:
        return any(t.interrupted for t in self.tasks)

    @property
    def exit_code(self) -> int:
        """0 all ok, 1 some host or pair not ok, 130 interrupted (the command line's codes)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return max((t.exit_code for t in self.tasks), default=EXIT_OK)

    def __getitem__(self, task: str) -> TaskOutcome:
        for outcome in self.tasks:
            if outcome.task == task:
                return outcome
        raise KeyError(task)

    def __iter__(self) -> Iterator[TaskOutcome]:
        return iter(self.tasks)

    def json_documents(self) -> list[Any]:
        return [t.report.to_json() for t in self.tasks]


@dataclass(frozen=True)
class PreparedRun:
    """A run checked and ready: its tasks, each with its parameters, and the hosts."""

    tasks: tuple[Task, ...]
    contexts: tuple[TaskContext, ...]
    inventory: Inventory


def select(inventory: Inventory | str | Path, limit: Sequence[str] = (),
           groups: Sequence[str] = ()) -> Inventory:
    """The inventory (loaded and validated when given as a directory), narrowed to `limit`
    (names or glob patterns) and `groups`; an empty selection is a UsageError."""
    loaded = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    selected = loaded.select(list(limit), list(groups))
    if not selected.hosts:
        raise UsageError("no host matches --limit/--groups")
    return selected


def prepare(tasks: Sequence[str | Task], inventory: Inventory, *,
            params: Mapping[str, Any] | None = None, dry_run: bool = False,
            tasks_dirs: Sequence[Path] = (), host_key_checking: str = "yes") -> PreparedRun:
    """Load the tasks, build and check their parameters, run their prepare() and check the SSH
    files: everything that can be known wrong before any host is touched."""
    loaded = tuple(t if isinstance(t, Task) else load_task(t, tasks_dirs) for t in tasks)
    given = dict(params or {})
    unknown = set(given) - {t.name for t in loaded}
    if unknown:
        raise UsageError(f"params for {', '.join(sorted(unknown))}: not among the tasks run")
    contexts = tuple(TaskContext(t.name, inventory.hosts, t.make_params(given.get(t.name)),
                                 dry_run=dry_run, inventory=inventory) for t in loaded)
    for task, context in zip(loaded, contexts):
        task.prepare(context)
    check_ssh_files(inventory, allow_missing_known_hosts=host_key_checking != "yes")
    return PreparedRun(loaded, contexts, inventory)


async def execute(prepared: PreparedRun, transport: Transport | None, *,
                  limits: RunLimits | None = None,
                  stop: asyncio.Event | None = None, progress: TaskProgress | None = None,
                  on_task_done: Callable[[TaskOutcome], None] | None = None,
                  on_progress: ProgressListener | None = None,
                  runner: AbstractAsyncContextManager[Any] | None = None) -> Outcome:
    """Run prepared tasks in order over one connection per host; stops after an interrupted
    task. The transport stays the caller's to close.

    `progress(task, done, total, host, failed)` is called as each host finishes a task;
    `on_progress(event)` gets every ProgressEvent (fleet.core.progress): each connection
    established too, and the count a task reports per host (the mesh: pairs answered).
    `runner` replaces the Runner over `transport` (a sharded run's, fleet.cluster)."""
    done: list[TaskOutcome] = []
    listeners = [f for f in (on_progress, None if progress is None else _host_done(progress)) if f]
    step = None if not listeners else _each(listeners)
    if runner is None:
        if transport is None:
            raise ValueError("execute needs a transport or a runner")
        runner = Runner(transport, limits)
    async with runner as running:
        for task, context in zip(prepared.tasks, prepared.contexts):
            run = await running.run(task.name, task.run, prepared.inventory.hosts,
                                   params=context.params, dry_run=context.dry_run, stop=stop,
                                   progress=step)
            outcome = TaskOutcome(task.name, run.results, task.report(context, run),
                                  run.interrupted, run.elapsed)
            done.append(outcome)
            if on_task_done is not None:
                on_task_done(outcome)
            if run.interrupted:
                break
    return Outcome(tuple(done))


def _host_done(progress: TaskProgress) -> ProgressListener:
    """The positional callback, fed the events of hosts done."""
    def listener(event: ProgressEvent) -> None:
        if event.kind == HOST_DONE:
            progress(event.task, event.done, event.total, event.host, event.failed)
    return listener


def _each(listeners: Sequence[ProgressListener]) -> ProgressListener:
    def listener(event: ProgressEvent) -> None:
        for one in listeners:
            one(event)
    return listener


async def open_transport(*, host_key_checking: str = "yes", persist: float = 0.0,
                         on_warning: Warn | None = None) -> Transport:
    """Kept connections with `persist` seconds > 0 (falling back to direct ones, with a warning,
    when the background process cannot be used), otherwise a fresh connection per host."""
    if persist > 0:
        from fleet.ssh.persist import wire
        from fleet.ssh.persist.client import PersistentTransport

        persistent = PersistentTransport(persist=persist, host_key_checking=host_key_checking)
        try:
            await persistent.start()
            return persistent
        except wire.PersistError as exc:
            if on_warning is not None:
                on_warning("", f"--persist: {exc}; connecting directly")
    from fleet.ssh.transport import AsyncsshTransport  # imports asyncssh: only when connecting

    return AsyncsshTransport(host_key_checking=host_key_checking, on_warning=on_warning)


def preflight_warnings(prepared: PreparedRun) -> list[str]:
    """What the run should hear before it starts, from outside the hosts: each task's own
    `warnings(context)` (e.g. what blocks IP protocol 41 between EC2 instances). Warnings
    only: the run goes on, even when a task's check itself fails (that is a warning too)."""
    found: list[str] = []
    for task, context in zip(prepared.tasks, prepared.contexts):
        try:
            found += task.warnings(context)
        except Exception as exc:
            found.append(f"{task.name}: its warnings check failed: {type(exc).__name__}: {exc}")
    return found


async def run_async(tasks: Sequence[str | Task], inventory: Inventory | str | Path = "inventory", *,
                    limit: Sequence[str] = (), groups: Sequence[str] = (),
                    params: Mapping[str, Any] | None = None, dry_run: bool = False,
                    limits: RunLimits | None = None, host_key_checking: str = "yes",
                    persist: float = 0.0, transport: Transport | None = None,
                    tasks_dirs: Sequence[Path] = (), stop: asyncio.Event | None = None,
                    progress: TaskProgress | None = None, on_warning: Warn | None = None,
                    on_task_done: Callable[[TaskOutcome], None] | None = None,
                    on_progress: ProgressListener | None = None) -> Outcome:
    """`run`, inside a running event loop."""
    prepared = prepare(tasks, select(inventory, limit, groups), params=params, dry_run=dry_run,
                       tasks_dirs=tasks_dirs, host_key_checking=host_key_checking)
    if on_warning is not None:
        for warning in await asyncio.to_thread(preflight_warnings, prepared):
            on_warning("", warning)
    return await run_prepared(prepared, limits=limits, host_key_checking=host_key_checking,
                              persist=persist, transport=transport, stop=stop, progress=progress,
                              on_warning=on_warning, on_task_done=on_task_done,
                              on_progress=on_progress)


def run(tasks: Sequence[str | Task], inventory: Inventory | str | Path = "inventory", *,
        limit: Sequence[str] = (), groups: Sequence[str] = (),
        params: Mapping[str, Any] | None = None, dry_run: bool = False,
        limits: RunLimits | None = None, host_key_checking: str = "yes", persist: float = 0.0,
        transport: Transport | None = None, tasks_dirs: Sequence[Path] = (),
        on_warning: Warn | None = None) -> Outcome:
    """Run `tasks` (names: "setup", "mesh", "teardown" or your own) in order on the inventory's
    selected hosts, on one event loop, and return their outcomes.

    `params` maps a task's name to its parameters: its Params instance (e.g.
    fleet.tasks.mesh.MeshParams(count=5)) or a mapping of their fields. `limits` bounds
    concurrency and sets timeouts (fleet.core.runner.RunLimits). `host_key_checking` is yes,
    accept-new or no, as OpenSSH's. `persist` keeps the connections open that many seconds in a
    background process for the next runs. `transport` replaces SSH (tests, other transports).
    """
    return asyncio.run(run_async(tasks, inventory, limit=limit, groups=groups, params=params,
                                 dry_run=dry_run, limits=limits,
                                 host_key_checking=host_key_checking, persist=persist,
                                 transport=transport, tasks_dirs=tasks_dirs, on_warning=on_warning))


async def run_prepared(prepared: PreparedRun, *, limits: RunLimits | None = None,
                       host_key_checking: str = "yes", persist: float = 0.0,
                       transport: Transport | None = None, stop: asyncio.Event | None = None,
                       progress: TaskProgress | None = None, on_warning: Warn | None = None,
                       on_task_done: Callable[[TaskOutcome], None] | None = None,
                       on_progress: ProgressListener | None = None,
                       on_closed: Callable[[Transport], None] | None = None,
                       cluster: str | None = None, shards: int | None = None,
                       on_note: Callable[[str], None] | None = None) -> Outcome:
    """A prepared run, start to end: over `transport` (the caller's to close), else over one
    opened here (open_transport: `host_key_checking`, `persist`, `on_warning`) and closed when the
    run ends, however it ends, then given to `on_closed` (kept connections say how many they
    reused); the rest is execute's. What to check before the run (preflight_warnings, the
    caller's own files) is the caller's: run_async and the command line both run here.

    `cluster` ("local", a Dask scheduler's address, or "no") and `shards` shard the run
    (fleet.cluster); neither given, a big fleet is sharded on a local cluster when the `cluster`
    extra is installed, and `on_note` hears that choice either way."""
    if transport is None:
        from fleet.cluster.choice import open_files_warning, plan
        from fleet.core.oslimits import open_file_limit

        hosts, open_files = len(prepared.inventory.hosts), open_file_limit()
        chosen, note = plan(hosts, cluster, shards, open_files)
        if note and on_note is not None:
            on_note(note)
        too_few_files = open_files_warning(hosts, chosen, open_files)
        if too_few_files and on_warning is not None:
            on_warning("", too_few_files)
        if chosen is not None:
            from fleet.cluster.start import sharded_runner

            if persist > 0 and on_warning is not None:
                on_warning("", "--persist is not used by a sharded run: its workers connect "
                           "directly")

            sharded = sharded_runner(prepared.tasks, [c.params for c in prepared.contexts],
                                     any(c.dry_run for c in prepared.contexts),
                                     prepared.inventory.hosts, chosen, limits or RunLimits(),
                                     host_key_checking, on_warning)
            return await execute(prepared, None, limits=limits, stop=stop, progress=progress,
                                 on_task_done=on_task_done, on_progress=on_progress,
                                 runner=sharded)
    own = transport is None
    used = transport or await open_transport(host_key_checking=host_key_checking,
                                             persist=persist, on_warning=on_warning)
    try:
        return await execute(prepared, used, limits=limits, stop=stop, progress=progress,
                             on_task_done=on_task_done, on_progress=on_progress)
    finally:
        if own:
            await used.close()
            if on_closed is not None:
                on_closed(used)


__all__ = ["Outcome", "PreparedRun", "ProgressEvent", "TaskOutcome", "execute", "open_transport",
           "preflight_warnings", "prepare", "run", "run_async", "run_prepared", "select"]
