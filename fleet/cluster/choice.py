"""Whether a run is sharded, over which cluster and in how many shards (no engine imported).

Asked for (`--cluster local|ADDRESS`, `--shards N`), it is. Not asked for, a fleet of at least
AUTO_HOSTS hosts is run on a local cluster with a shard per core, when the engine is installed
(the `cluster` extra) and the machine has more than one core; smaller fleets, and any fleet
without the engine, run in this process. AUTO_HOSTS is where sharding started to gain on a
shared 2-core machine (docs/performance.md, "Sharded runs"): below it, the cluster's start-up
(about 1.5 s and 2.5 s of CPU) and the second process's work cost more than they save.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from fleet.core.errors import UsageError

LOCAL = "local"
AUTO_HOSTS = 4000
NO_CLUSTER = "no"


@dataclass(frozen=True)
class ClusterPlan:
    address: str  # "local" or a scheduler's address
    shards: int


def engine_installed() -> bool:
    return importlib.util.find_spec("distributed") is not None


def plan(hosts: int, cluster: str | None, shards: int | None) -> tuple[ClusterPlan | None, str]:
    """The cluster to use (None: this process) and, when the choice was automatic, a note that
    says why (for -v)."""
    if shards is not None and shards < 1:
        raise UsageError(f"--shards {shards}: must be at least 1")
    if cluster == NO_CLUSTER:
        return None, ""
    if cluster is not None or shards is not None:
        if not engine_installed():
            raise UsageError("--cluster/--shards need Dask distributed: pip install "
                             "'fleet-isatap[cluster]'")
        return ClusterPlan(cluster or LOCAL, shards or _cores()), ""
    if hosts < AUTO_HOSTS or _cores() < 2:
        return None, ""
    if not engine_installed():
        return None, (f"{hosts} hosts run in one process: sharding them over this machine's "
                      f"{_cores()} cores needs Dask distributed (pip install 'fleet-isatap[cluster]')")
    return ClusterPlan(LOCAL, _cores()), (f"{hosts} hosts (at least {AUTO_HOSTS}): sharded over a "
                                          f"local cluster of {_cores()} processes (--cluster no: "
                                          "one process)")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


__all__ = ["AUTO_HOSTS", "LOCAL", "NO_CLUSTER", "ClusterPlan", "engine_installed", "plan"]
