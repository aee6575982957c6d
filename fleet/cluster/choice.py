"""Whether a run is sharded, over which cluster and in how many shards (no engine imported).

Asked for (`--cluster local|ADDRESS`, `--shards N`), it is. Not asked for, a fleet of at least
AUTO_HOSTS hosts is run on a local cluster with a shard per core, when the engine is installed
(the `cluster` extra) and the machine has more than one core; smaller fleets, and any fleet
without the engine, run in this process. AUTO_HOSTS is where sharding started to gain on a
shared 2-core machine (docs/performance.md, "Sharded runs"): below it, the cluster's start-up
(about 1.5 s and 2.5 s of CPU) and the second process's work cost more than they save.

Every host's connection stays open for the whole run, so a process holds one file per host: a
fleet bigger than a process may open (`ulimit -n`, less RESERVED_FILES) is sharded, when it is
sharded automatically, into enough shards that each fits, even on one core; run in one process,
or in shards asked for that are too big, it gets a warning before any host is touched.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass

from fleet.core.errors import UsageError

LOCAL = "local"
AUTO_HOSTS = 4000
NO_CLUSTER = "no"
RESERVED_FILES = 256  # what a fleet process opens besides its hosts' connections


@dataclass(frozen=True)
class ClusterPlan:
    address: str  # "local" or a scheduler's address
    shards: int


def engine_installed() -> bool:
    return importlib.util.find_spec("distributed") is not None


def hosts_per_process(open_files: int | None) -> int | None:
    """How many hosts' connections one process can hold with `open_files` (None: no limit)."""
    return None if open_files is None else max(1, open_files - RESERVED_FILES)


def plan(hosts: int, cluster: str | None, shards: int | None,
         open_files: int | None = None) -> tuple[ClusterPlan | None, str]:
    """The cluster to use (None: this process) and, when the choice was automatic, a note that
    says why (for -v). `open_files` is what one process may open (None: no limit)."""
    if shards is not None and shards < 1:
        raise UsageError(f"--shards {shards}: must be at least 1")
    if cluster == NO_CLUSTER:
        return None, ""
    needed = _shards_for_files(hosts, open_files)
    if cluster is not None or shards is not None:
        if not engine_installed():
            raise UsageError("--cluster/--shards need Dask distributed: pip install "
                             "'fleet-isatap[cluster]'")
        return ClusterPlan(cluster or LOCAL, shards or max(_cores(), needed)), ""
    too_many = needed > 1
    if (hosts < AUTO_HOSTS or _cores() < 2) and not too_many:
        return None, ""
    if not engine_installed():
        return None, (f"{hosts} hosts run in one process: sharding them over this machine's "
                      f"{_cores()} cores needs Dask distributed (pip install 'fleet-isatap[cluster]')")
    count = max(_cores(), needed)
    why = (f"more than one process may hold ({open_files} open files each, ulimit -n)"
           if too_many else f"at least {AUTO_HOSTS}")
    return ClusterPlan(LOCAL, count), (f"{hosts} hosts ({why}): sharded over a local cluster of "
                                       f"{count} processes (--cluster no: one process)")


def open_files_warning(hosts: int, chosen: ClusterPlan | None, open_files: int | None, *,
                       remedy: str | None = None) -> str:
    """What to tell the user when a process of this run will hold more connections than it may
    open files: those hosts would fail with "Too many open files" ("" when every process fits).
    `remedy` replaces the way out it suggests besides a higher limit."""
    capacity = hosts_per_process(open_files)
    if capacity is None:
        return ""
    per_process = hosts if chosen is None else math.ceil(hosts / chosen.shards)
    if per_process <= capacity:
        return ""
    where = ("this process" if chosen is None else
             f"each of the {chosen.shards} shards (~{per_process} hosts)")
    remedy = remedy or (
        f"--shards {_shards_for_files(hosts, open_files)} or more" if chosen is not None
        else "run it sharded (--cluster local; the `cluster` extra)" if engine_installed()
        else "install the `cluster` extra (pip install 'fleet-isatap[cluster]') to shard it")
    return (f"{hosts} hosts: {where} may open only {open_files} files (ulimit -n), so hosts past "
            f"about {capacity} in it will fail with 'Too many open files'; raise the limit "
            f"(ulimit -Hn) or {remedy}")


def _shards_for_files(hosts: int, open_files: int | None) -> int:
    capacity = hosts_per_process(open_files)
    return 1 if capacity is None else max(1, math.ceil(hosts / capacity))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


__all__ = ["AUTO_HOSTS", "LOCAL", "NO_CLUSTER", "RESERVED_FILES", "ClusterPlan",
           "engine_installed", "hosts_per_process", "open_files_warning", "plan"]
