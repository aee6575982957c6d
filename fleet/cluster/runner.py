"""A runner over shards: the same `run(...)` as fleet.core.runner.Runner, the work on a cluster.

fleet.api.execute runs a prepared run's tasks in order through a runner; this one sends each task
to every shard's worker at once (each runs it for its own hosts over its own connections, seeing
the whole fleet as `host.fleet`), waits for them all, and merges their results into one
RunOutcome (fleet.cluster.merge) for the task's report. `stop` stops every shard (their
unfinished hosts are interrupted); a shard whose worker is lost fails its hosts
(`connection-lost`, naming the worker).
Progress: every shard's events, polled twice a second and counted over the whole fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from fleet.cluster.engine import Engine, ShardHandle
from fleet.cluster.merge import Answer, merge
from fleet.cluster.spec import ShardSpec
from fleet.core.progress import HOST_DONE, ProgressEvent, ProgressListener
from fleet.core.results import RunOutcome
from fleet.core.runner import HostTask, RunLimits
from fleet.core.transport import RunTarget

POLL = 0.5  # seconds between two reads of the shards' progress
STOP_GRACE = 30.0  # seconds the shards get to report their interrupted hosts after a stop


class ShardedRunner:
    """Use as an async context manager: entering starts the shards' workers, leaving closes them."""

    def __init__(self, engine: Engine, specs: Sequence[ShardSpec], limits: RunLimits, *,
                 on_warning: Callable[[str, str], None] | None = None) -> None:
        self.limits = limits
        self._on_warning = on_warning
        self._engine = engine
        self._specs = list(specs)
        self._shards = [spec.shard for spec in specs]
        self._handles: list[ShardHandle] = []
        self._next = 0

    async def __aenter__(self) -> ShardedRunner:
        try:
            self._handles = await self._engine.start(self._specs)
        except BaseException:
            await self._engine.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*(h.close() for h in self._handles),
                                                  return_exceptions=True), STOP_GRACE)
        except TimeoutError:
            pass
        finally:
            await self._engine.close()

    async def run(self, name: str, task: HostTask, hosts: Sequence[RunTarget], *,
                  params: Any = None, dry_run: bool = False, stop: asyncio.Event | None = None,
                  progress: ProgressListener | None = None,
                  fleet: Sequence[RunTarget] | None = None) -> RunOutcome:
        """The next task of the specs (tasks run in the order they were prepared) on every shard;
        `task`, `params` and `dry_run` are the specs' own, given again for Runner's signature."""
        index, self._next = self._next, self._next + 1
        started = time.monotonic()
        calls = [asyncio.ensure_future(h.run_task(index)) for h in self._handles]
        relay = _Relay(name, len(hosts), len(self._handles), progress)
        poller = asyncio.ensure_future(self._poll(relay)) if progress is not None else None
        stopped = False
        try:
            waiting = asyncio.ensure_future(asyncio.wait(calls))
            stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
            await asyncio.wait([waiting] + ([stopping] if stopping else []),
                               return_when=asyncio.FIRST_COMPLETED)
            if stopping is not None and stopping.done() and not waiting.done():
                stopped = True
                await asyncio.gather(*(h.stop() for h in self._handles), return_exceptions=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiting), STOP_GRACE)
            if stopping is not None:
                stopping.cancel()
        finally:
            if poller is not None:
                poller.cancel()
                await self._drain(relay)
            for call in calls:
                if not call.done():
                    call.cancel()
        answers: list[Answer] = []
        for call in calls:
            if not call.done() or call.cancelled():
                answers.append(None)
            elif call.exception() is not None:
                answers.append(call.exception())
            else:
                answers.append(call.result())
                if self._on_warning is not None:
                    for host, text in call.result().warnings:
                        self._on_warning(host, text)
        return merge(name, hosts, self._shards, answers, stopped=stopped,
                     elapsed=time.monotonic() - started)

    async def _poll(self, relay: _Relay) -> None:
        while True:
            await asyncio.sleep(POLL)
            await self._drain(relay)

    async def _drain(self, relay: _Relay) -> None:
        answers = await asyncio.gather(*(h.progress() for h in self._handles),
                                       return_exceptions=True)
        for shard, answer in enumerate(answers):
            if not isinstance(answer, BaseException):
                relay.relay(shard, answer.events, answer.connected)


class _Relay:
    """The shards' events told again as the whole run's: hosts done over every shard, and the
    connections open over every shard."""

    def __init__(self, task: str, total: int, shards: int, listener: ProgressListener | None) -> None:
        self.task, self.total, self.listener = task, total, listener
        self.done = 0
        self.connected = [0] * shards

    def relay(self, shard: int, events: Sequence[ProgressEvent], connected: int) -> None:
        self.connected[shard] = connected
        if self.listener is None:
            return
        for event in events:
            if event.kind == HOST_DONE:
                self.done += 1
            self.listener(ProgressEvent(self.task, event.kind, event.host, self.done, self.total,
                                        sum(self.connected), event.failed, event.count,
                                        event.count_label))



__all__ = ["ShardedRunner"]
