"""Dask distributed as the cluster engine: a local cluster of processes, or a running scheduler.

Each shard's ShardWorker is a Dask actor, placed round-robin on the cluster's workers and kept for
the whole run, so its connections stay open between tasks. Its calls are `async` methods, which
Dask runs on the worker's loop concurrently: `stop()` reaches a shard while its task runs. The
local cluster uses one process per shard with one thread each (the shard's own loop does the
work; there is nothing for more threads to do).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fleet.cluster.engine import ShardHandle
from fleet.cluster.spec import ShardSpec
from fleet.cluster.wire import ShardProgress, ShardRun
from fleet.cluster.worker import ShardWorker
from fleet.core.errors import UsageError

LOCAL = "local"


class DaskShard:
    def __init__(self, actor: Any, future: Any) -> None:
        self._actor = actor
        self._future = future  # the actor lives as long as its future is held

    async def run_task(self, index: int) -> ShardRun:
        answer: ShardRun = await self._actor.run_task(index)
        return answer

    async def stop(self) -> None:
        await self._actor.stop()

    async def progress(self) -> ShardProgress:
        answer: ShardProgress = await self._actor.progress()
        return answer

    async def close(self) -> None:
        try:
            await self._actor.close()
        finally:
            self._future.release()


class DaskEngine:
    """`address` "local" starts a local cluster of `workers` processes (stopped with the run);
    any other address is a running scheduler's (tcp://HOST:PORT), which the run only uses."""

    def __init__(self, address: str, workers: int, *, connect_timeout: float = 10.0) -> None:
        self.address = address
        self.workers = workers
        self.connect_timeout = connect_timeout
        self._cluster: Any = None
        self._client: Any = None
        self.placement: list[str] = []  # the worker's address of each shard

    async def start(self, specs: Sequence[ShardSpec]) -> list[ShardHandle]:
        from distributed import Client, LocalCluster

        if self.address == LOCAL:
            self._cluster = await LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True, asynchronous=True,
                dashboard_address=":0", silence_logs=logging.ERROR)
            self._client = await Client(self._cluster, asynchronous=True)
        else:
            try:
                self._client = await Client(self.address, asynchronous=True,
                                            timeout=self.connect_timeout)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                raise UsageError(f"--cluster {self.address}: no Dask scheduler answered within "
                                 f"{self.connect_timeout:g} s ({type(exc).__name__}: {exc}); give "
                                 f"a scheduler's address (tcp://HOST:8786) or `local`") from None
        info = await self._client.scheduler.identity()  # every worker (the default is -1: all)
        addresses = sorted(info["workers"])
        if not addresses:
            raise UsageError(f"--cluster {self.address}: the scheduler has no worker")
        self.placement = [addresses[i % len(addresses)] for i in range(len(specs))]
        # Each spec (the whole fleet's hosts, a few MB at 50,000 hosts) goes straight to its
        # worker, not inside the task graph through the scheduler.
        sent = [await self._client.scatter(spec, workers=[where], hash=False)
                for spec, where in zip(specs, self.placement)]
        futures = [self._client.submit(ShardWorker, spec, actor=True, pure=False, workers=[where])
                   for spec, where in zip(sent, self.placement)]
        actors = await self._client.gather(futures)
        return [DaskShard(actor, future) for actor, future in zip(actors, futures)]

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._cluster is not None:
            await self._cluster.close()

    def worker_pid(self, shard: int) -> int | None:
        """The process of the local cluster's worker that holds shard `shard` (a test kills it)."""
        if self._cluster is None:
            return None
        for nanny in self._cluster.workers.values():
            if nanny.worker_address == self.placement[shard] and nanny.process is not None:
                pid: int | None = nanny.process.pid
                return pid
        return None


__all__ = ["LOCAL", "DaskEngine", "DaskShard"]
