"""One shard's worker: fleet's runner for a subset of the hosts, on its own event loop.

A ShardWorker lives in a cluster worker's process (a Dask actor). It owns a thread running an
event loop of its own, its own transport and connection pool, so its SSH logins and parsing do not
share a loop with the engine's, and its connections stay open from one task to the next. The
engine calls its `async` methods on the engine's loop; each hands the work to the shard's loop and
waits for it there, so `stop()` and `progress()` answer while a task runs.

Everything it is given and gives back is plain data (fleet.cluster.spec, fleet.cluster.wire): the
parent loaded the inventory, checked the run and will compute the report; the worker only runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from fleet.cluster.spec import ShardSpec, load_spec_tasks
from fleet.cluster.wire import HostOutcome, ShardProgress, ShardRun
from fleet.core.oslimits import raise_open_file_limit
from fleet.core.progress import ProgressEvent
from fleet.core.runner import Runner
from fleet.core.transport import Transport

T = TypeVar("T")


class ShardWorker:
    """Runs the spec's tasks, one at a time when asked, on the spec's hosts of its shard."""

    def __init__(self, spec: ShardSpec) -> None:
        raise_open_file_limit()  # this shard's connections, on a worker started by anyone
        self._spec = spec
        self._tasks, self._params = load_spec_tasks(spec)
        self._fleet = spec.hosts
        self._mine = [spec.hosts[i] for i in spec.shard]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet-shard",
                                        daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._events: list[ProgressEvent] = []
        self._connected = 0
        self._transport: Transport | None = None
        self._runner: Runner | None = None
        self._stop: asyncio.Event | None = None
        self._warnings: list[tuple[str, str]] = []

    def _warn(self, host: str, text: str) -> None:
        self._warnings.append((host, text))

    @property
    def hosts(self) -> int:
        return len(self._mine)

    async def run_task(self, index: int) -> ShardRun:
        """Task number `index` of the spec on this shard's hosts (their results, plain)."""
        return await self._on_own_loop(self._run(index))

    async def stop(self) -> None:
        """Stop the task running now: its unfinished hosts are reported as interrupted."""
        await self._on_own_loop(self._set_stop())

    async def progress(self) -> ShardProgress:
        """The progress events since the last call, and the connections open now."""
        with self._lock:
            events, self._events = self._events, []
            return ShardProgress(events, self._connected)

    async def close(self) -> None:
        """Close the connections and stop the shard's loop."""
        try:
            await self._on_own_loop(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 10)

    async def _on_own_loop(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def _set_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _open(self) -> Runner:
        if self._runner is None:
            from fleet.ssh.transport import AsyncsshTransport  # on the worker, when it connects

            self._transport = AsyncsshTransport(host_key_checking=self._spec.host_key_checking,
                                                on_warning=self._warn)
            self._runner = Runner(self._transport, self._spec.limits)
        return self._runner

    async def _run(self, index: int) -> ShardRun:
        runner = await self._open()
        task, context = self._tasks[index], self._spec.tasks[index]
        self._stop = asyncio.Event()

        def record(event: ProgressEvent) -> None:
            with self._lock:
                self._events.append(event)
                self._connected = event.connected

        run = await runner.run(task.name, task.run, self._mine, params=self._params[index],
                               dry_run=context.dry_run, stop=self._stop, progress=record,
                               fleet=self._fleet)
        outcomes = tuple(HostOutcome.of(h.name, run.results[h.name][0]) for h in self._mine)
        warnings, self._warnings = tuple(self._warnings), []
        return ShardRun(task.name, outcomes, run.interrupted, run.elapsed, warnings)

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.__aexit__(None, None, None)
        if self._transport is not None:
            await self._transport.close()


__all__ = ["ShardWorker"]
