"""A sharded runner for a checked run: its hosts split into shards, each shard's spec, the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fleet.cluster.choice import ClusterPlan
from fleet.cluster.runner import ShardedRunner
from fleet.cluster.shards import split
from fleet.cluster.spec import shard_specs
from fleet.core.runner import RunLimits
from fleet.core.task import Task
from fleet.inventory import FleetHost


def sharded_runner(tasks: Sequence[Task], params: Sequence[Any], dry_run: bool,
                   hosts: Sequence[FleetHost], cluster: ClusterPlan, limits: RunLimits,
                   host_key_checking: str,
                   on_warning: Callable[[str, str], None] | None = None) -> ShardedRunner:
    from fleet.cluster.dask_engine import DaskEngine

    shards = split(len(hosts), cluster.shards)
    specs = shard_specs(tasks, params, dry_run, hosts, shards, limits, host_key_checking)
    engine = DaskEngine(cluster.address, len(shards), connect_timeout=limits.connect_timeout)
    return ShardedRunner(engine, specs, limits,
                         on_warning=on_warning)


__all__ = ["sharded_runner"]
