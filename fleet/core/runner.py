"""Run a task on many hosts at once, on one event loop.

A failure belongs to one host: it becomes that host's failed Result and the others carry on.
Concurrency is bounded twice: how many hosts run at once (`workers`) and how many SSH handshakes
are in flight at once (`connect_workers`; handshakes are the expensive part). Every layer has a
timeout: connect and login, each command, each host. Connections are pooled for the whole run, so
several tasks in one invocation talk to each host over the same connection.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nornir.core.task import AggregatedResult, MultiResult, Result

from fleet.core.errors import (
    CommandError,
    ConnectError,
    HostError,
    HostInterrupted,
    HostTimeoutError,
)
from fleet.core.privilege import check_privilege, privileged
from fleet.core.progress import CONNECTED, HOST_DONE, ProgressEvent, ProgressListener
from fleet.core.results import RunOutcome, failed_result
from fleet.core.transport import CommandResult, RunTarget, Session, Transport

INTERRUPTED = "interrupted before this host finished"


@dataclass(frozen=True)
class RunLimits:
    """Bounds and timeouts for one run; every one is a command-line option."""

    workers: int = 500
    connect_workers: int = 50
    connect_timeout: float = 15.0
    command_timeout: float = 60.0
    host_timeout: float = 300.0


class ConnectionPool:
    """One SSH session per host for the whole run, opened on first use (and again when the one
    it had has ended).

    A host that failed to connect is not tried again within the run: its error is replayed.
    """

    def __init__(self, transport: Transport, limits: RunLimits) -> None:
        self._transport = transport
        self._limits = limits
        self._handshakes = asyncio.Semaphore(limits.connect_workers)
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, ConnectError] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def connected(self) -> int:
        """Hosts with a session open now."""
        return len(self._sessions)

    async def session(self, host: RunTarget, *,
                      on_connect: Callable[[str], None] | None = None) -> Session:
        """The host's session, opened when it has none; `on_connect` (the caller's, as each run
        has its own) is told the host's name when this call opened it."""
        lock = self._locks.setdefault(host.name, asyncio.Lock())
        async with lock:
            if host.name in self._failures:
                raise self._failures[host.name]
            kept = self._sessions.get(host.name)
            if kept is not None and getattr(kept, "closed", False):
                del self._sessions[host.name]  # lost, or given up after a command would not stop
            if host.name not in self._sessions:
                async with self._handshakes:
                    try:
                        self._sessions[host.name] = await self._transport.connect(
                            host, timeout=self._limits.connect_timeout)
                    except ConnectError as exc:
                        self._failures[host.name] = exc
                        raise
                if on_connect is not None:
                    on_connect(host.name)
            return self._sessions[host.name]

    async def discard(self, host: RunTarget) -> None:
        """Close and forget a host's session (after it timed out or broke)."""
        session = self._sessions.pop(host.name, None)
        if session is not None:
            await session.close()

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


H = TypeVar("H", bound=RunTarget)


class HostRun(Generic[H]):
    """What a task sees of one host while it runs there: the host, every selected host, the
    task's typed parameters, whether this is a dry run, and the limits."""

    def __init__(self, host: H, fleet: Sequence[H], params: Any, pool: ConnectionPool,
                 limits: RunLimits, task_name: str, *, dry_run: bool = False,
                 on_connect: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.fleet = fleet
        self.params = params
        self.limits = limits
        self.task_name = task_name
        self.dry_run = dry_run
        self._pool = pool
        self._on_connect = on_connect  # the run's, told when this host's connection is opened
        self.count: int | None = None
        self.count_label = ""

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def options(self) -> Any:
        """The task's parameters (the name tasks written before typed parameters use)."""
        return self.params

    async def run(self, command: str, *, as_root: bool = False, timeout: float | None = None,
                  check: bool = False) -> CommandResult:
        """Run a shell command on the host. With `as_root`, as root (sudo -n when needed);
        with `check`, a non-zero exit raises CommandError."""
        session = await self._pool.session(self.host, on_connect=self._on_connect)
        wrapped = privileged(command) if as_root else command
        result = await session.run(wrapped, timeout=timeout or self.limits.command_timeout)
        if as_root:
            check_privilege(self.host.name, result)
        if check and not result.ok:
            raise CommandError(self.host.name, f"exit status {result.exit_status}: {result.last_words}",
                               command=command, exit_status=result.exit_status,
                               stdout=result.stdout, stderr=result.stderr)
        return result

    def tally(self, count: int, label: str) -> None:
        """Report a number for this host (`label` says what it counts: "pairs answered"); a
        progress display sums it over the hosts done so far."""
        self.count, self.count_label = count, label

    def result(self, result: object = None, *, changed: bool = False, failed: bool = False,
               diff: str = "", exception: BaseException | None = None) -> Result:
        """A Nornir Result for this host; a failure without a result of its own carries its
        kind and reason (fleet.core.results.failed_result)."""
        if failed and exception is not None:
            return failed_result(self.host.nornir_host, self.task_name, exception, result)
        return Result(host=self.host.nornir_host, result=result, changed=changed, failed=failed,
                      diff=diff, exception=exception, name=self.task_name)


HostTask = Callable[[HostRun[Any]], Awaitable[Result]]


def host_task(run: Callable[[HostRun[Any]], Awaitable[Result]]) -> HostTask:
    """Mark `async def run(host)` as a fleet task that refuses anything but a HostRun.

    A Nornir runner calls a task function with its own Task object and takes whatever comes back
    as the result: an un-awaited coroutine would be a success that did nothing. This wrapper
    raises instead, so Nornir records a failed Result that says what to use.
    """
    @functools.wraps(run)
    def checked(host: HostRun[Any]) -> Awaitable[Result]:
        if not isinstance(host, HostRun):
            raise TypeError(
                f"{run.__module__}.{run.__qualname__} is an async fleet task: it runs on fleet's "
                f"event loop, given a fleet HostRun, not a {type(host).__name__}. From a Nornir "
                "script use the functions of fleet.nornir (nr.run(task=fleet.nornir.setup)), "
                "or fleet.run() for the whole fleet on one event loop")
        return run(host)

    checked.__fleet_host_task__ = True  # type: ignore[attr-defined]  # fleet.core.task.is_host_task
    return checked


class Runner:
    """Runs tasks on hosts over pooled connections; use as an async context manager."""

    def __init__(self, transport: Transport, limits: RunLimits | None = None) -> None:
        self.limits = limits or RunLimits()
        self._pool = ConnectionPool(transport, self.limits)

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pool.close()

    async def run(self, name: str, task: HostTask, hosts: Sequence[RunTarget], *,
                  params: Any = None, dry_run: bool = False, stop: asyncio.Event | None = None,
                  progress: ProgressListener | None = None,
                  fleet: Sequence[RunTarget] | None = None) -> RunOutcome:
        """Run `task` on every host with the task's `params`. When `stop` is set, unfinished
        hosts are cancelled and reported as interrupted; what finished is kept. `fleet` is what
        each host's task sees as `host.fleet` (default: `hosts`), for running on some hosts of a
        larger fleet (one host's share of a mesh). `progress` gets an event for each connection
        established and each host done (fleet.core.progress)."""
        started = time.monotonic()
        seen = hosts if fleet is None else fleet
        results = AggregatedResult(name)
        slots = asyncio.Semaphore(self.limits.workers)
        done = 0
        interrupted = False

        def connected(host: str) -> None:
            if progress is not None:
                progress(ProgressEvent(name, CONNECTED, host, done, len(hosts), self._pool.connected))

        async def one(host: RunTarget) -> None:
            nonlocal done
            async with slots:
                result, run = await self._run_host(name, task, host, seen, params, dry_run, connected)
            multi = MultiResult(name)
            multi.append(result)
            results[host.name] = multi
            done += 1
            if progress is not None:
                progress(ProgressEvent(name, HOST_DONE, host.name, done, len(hosts),
                                       self._pool.connected, result.failed, run.count,
                                       run.count_label))

        async def stop_when_asked(stop: asyncio.Event, jobs: list[asyncio.Task[None]]) -> None:
            nonlocal interrupted
            await stop.wait()
            unfinished = [job for job in jobs if not job.done()]
            interrupted = bool(unfinished)
            for job in unfinished:
                job.cancel()

        # One scope owns every host's job, as asyncio.TaskGroup does: a host's failure is its
        # Result (_run_host catches it), so an exception that reaches the group is the runner's
        # own bug, which cancels the other hosts and is raised (an ExceptionGroup), not kept
        # until they are done. `stop` cancels only the hosts, which are then interrupted.
        async with asyncio.TaskGroup() as group:
            jobs = [group.create_task(one(h), name=f"{name}:{h.name}") for h in hosts]
            watcher = (group.create_task(stop_when_asked(stop, jobs), name=f"{name}:stop")
                       if stop is not None else None)
            if jobs:
                await asyncio.wait(jobs)
            if watcher is not None:
                watcher.cancel()
        for host in hosts:
            if host.name not in results:
                multi = MultiResult(name)
                stopped = HostInterrupted(host.name, INTERRUPTED)
                multi.append(failed_result(host.nornir_host, name, stopped))
                results[host.name] = multi
        return RunOutcome(results, interrupted, time.monotonic() - started)

    async def _run_host(self, name: str, task: HostTask, host: RunTarget,
                        fleet: Sequence[RunTarget], params: Any, dry_run: bool,
                        on_connect: Callable[[str], None] | None = None,
                        ) -> tuple[Result, HostRun[Any]]:
        run = HostRun(host, fleet, params, self._pool, self.limits, name, dry_run=dry_run,
                      on_connect=on_connect)
        scope = asyncio.timeout(self.limits.host_timeout)
        try:
            async with scope:
                result = await task(run)
        except HostError as exc:  # a timed-out command was stopped and its channel closed
            return run.result(failed=True, exception=exc), run
        except TimeoutError as exc:
            if not scope.expired():  # the task's own timeout, not --host-timeout
                return run.result(failed=True, exception=HostError(
                    host.name, f"{name} crashed: {type(exc).__name__}: {exc or 'timed out'}")), run
            await self._pool.discard(host)
            return run.result(failed=True, exception=HostTimeoutError(
                host.name, f"{name} did not finish within --host-timeout {self.limits.host_timeout:g} s"
            )), run
        except Exception as exc:  # a failure belongs to one host, even a bug in a task
            return run.result(failed=True, exception=HostError(
                host.name, f"{name} crashed: {type(exc).__name__}: {exc}")), run
        result.name = name  # type: ignore[assignment]  # nornir annotates Result.name as None
        if result.host is None:
            result.host = host.nornir_host
        return result, run
