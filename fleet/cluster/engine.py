"""What a sharded run needs of a cluster engine: a worker per shard that answers four calls.

The engine places one ShardWorker (fleet.cluster.worker) per shard on its workers and gives back
a handle for each; the handle's calls run on the worker. fleet.cluster.dask_engine is the one
engine; a test or another engine provides the same two protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleet.cluster.spec import ShardSpec
from fleet.cluster.wire import ShardProgress, ShardRun


class ShardHandle(Protocol):
    """One shard's worker, seen from the parent."""

    async def run_task(self, index: int) -> ShardRun: ...

    async def stop(self) -> None: ...

    async def progress(self) -> ShardProgress: ...

    async def close(self) -> None: ...


class Engine(Protocol):
    """Starts (or joins) a cluster, places the shards' workers on it, and lets go of it."""

    async def start(self, specs: Sequence[ShardSpec]) -> list[ShardHandle]: ...

    async def close(self) -> None: ...


__all__ = ["Engine", "ShardHandle"]
