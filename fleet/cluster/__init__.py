"""Runs sharded over a cluster engine (Dask distributed, the optional `cluster` extra).

The host list is cut into shards; each shard's worker (fleet.cluster.worker, a Dask actor) runs
the run's tasks for its hosts on its own event loop over its own SSH connections; the parent
merges their results into one outcome per task and the task's report computes the one verdict.

    choice       whether to shard, where, in how many shards (no engine imported)
    shards       the split, by count, balanced
    spec, wire   the plain data sent to a worker and back
    worker       the shard's worker
    engine       what a run needs of an engine; dask_engine is the one
    runner       fleet.core.runner.Runner's run() over shards; merge makes one outcome
    start        a sharded runner for a checked run

Nothing here is imported unless a run is sharded (fleet.api imports it lazily).
"""
