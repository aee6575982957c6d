"""Dask distributed and Ray measured side by side for fleet's sharded runs (how the engine was chosen).

    python -m benchmarks.cluster_engines --engine dask|ray [--sizes 1000,4000] [--peers 20]

Run it once per engine, each from an environment where that engine is installed (the project
installs only Dask, its `cluster` extra). For the engine it measures:

    startup      a local cluster of --workers processes started, each holding a shard's actor
    task ms      the round trip of a trivial task (submit, run, result), mean of 200 in a row
    actor ms     the round trip of a trivial call to an actor's method, mean of 200
    idle MB      the RSS of this driver and every process the engine started, cluster idle
    run s        a sharded simulated mesh (benchmarks/simserver.py) of each size, --workers
                 shards, from the cluster start to the merged report (the same ShardWorker and
                 merge as `fleet run --cluster local`)
    cpu s        user+sys of this driver and of every process it started and waited for (the
                 engine's), during that run, less the simulated server's
    tree cpu s   the same read from every live process below this driver twice a second
                 (counts Ray's workers too, which are the raylet's children, never waited for)

The install size is measured apart (pip download / the site-packages' growth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet.cluster.spec import ShardSpec
from fleet.cluster.wire import ShardProgress, ShardRun
from fleet.cluster.worker import ShardWorker

REPO = Path(__file__).resolve().parent.parent


def trivial(x: int) -> int:
    return x + 1


class Echo:
    async def ping(self, x: int) -> int:
        return x + 1


def tree_rss_mb() -> float:
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


class RayShard:
    def __init__(self, actor: Any) -> None:
        self._actor = actor

    async def run_task(self, index: int) -> ShardRun:
        answer: ShardRun = await self._actor.run_task.remote(index)
        return answer

    async def stop(self) -> None:
        await self._actor.stop.remote()

    async def progress(self) -> ShardProgress:
        answer: ShardProgress = await self._actor.progress.remote()
        return answer

    async def close(self) -> None:
        await self._actor.close.remote()


class RayEngine:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    async def start(self, specs: Sequence[ShardSpec]) -> list[Any]:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
        remote = ray.remote(num_cpus=0)(ShardWorker)
        actors = [remote.remote(spec) for spec in specs]
        await asyncio.gather(*(a.progress.remote() for a in actors))  # every actor is up
        return [RayShard(a) for a in actors]

    async def close(self) -> None:
        import ray

        ray.shutdown()


async def measure_dask(workers: int) -> dict[str, float]:
    from distributed import Client, LocalCluster

    started = time.monotonic()
    cluster = await LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                 asynchronous=True, dashboard_address=":0")
    client = await Client(cluster, asynchronous=True)
    futures = [client.submit(Echo, actor=True, pure=False) for _ in range(workers)]
    actors = await client.gather(futures)
    await asyncio.gather(*(a.ping(0) for a in actors))
    startup = time.monotonic() - started
    await asyncio.sleep(2)
    idle = tree_rss_mb()
    t = time.monotonic()
    for i in range(200):
        await client.submit(trivial, i, pure=False)
    task_ms = (time.monotonic() - t) / 200 * 1000
    t = time.monotonic()
    for i in range(200):
        await actors[0].ping(i)
    actor_ms = (time.monotonic() - t) / 200 * 1000
    await client.close()
    await cluster.close()
    return {"startup_s": startup, "idle_mb": idle, "task_ms": task_ms, "actor_ms": actor_ms}


async def measure_ray(workers: int) -> dict[str, float]:
    import ray

    started = time.monotonic()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    echo = ray.remote(num_cpus=0)(Echo)
    actors = [echo.remote() for _ in range(workers)]
    await asyncio.gather(*(a.ping.remote(0) for a in actors))
    startup = time.monotonic() - started
    await asyncio.sleep(2)
    idle = tree_rss_mb()
    remote = ray.remote(trivial)
    t = time.monotonic()
    for i in range(200):
        await remote.remote(i)
    task_ms = (time.monotonic() - t) / 200 * 1000
    t = time.monotonic()
    for i in range(200):
        await actors[0].ping.remote(i)
    actor_ms = (time.monotonic() - t) / 200 * 1000
    ray.shutdown()
    return {"startup_s": startup, "idle_mb": idle, "task_ms": task_ms, "actor_ms": actor_ms}


async def sharded_run(engine_name: str, n: int, peers: int, workers: int) -> dict[str, Any]:
    from benchmarks.simulate import SimServerProcess, process_cpu, write_inventory
    from fleet import api
    from fleet.cluster.dask_engine import DaskEngine
    from fleet.cluster.runner import ShardedRunner
    from fleet.cluster.shards import split
    from fleet.cluster.spec import shard_specs
    from fleet.core.runner import RunLimits

    work = Path(tempfile.mkdtemp(prefix="fleet-engines-"))
    server = SimServerProcess(work, "fixed", 1.0, n)
    try:
        inventory = write_inventory(work / "inv", n, server.port, server.workdir / "keys")
        prepared = api.prepare(["mesh"], api.select(inventory), params={"mesh": {"peers": peers}})
        limits = RunLimits(connect_workers=20)
        shards = split(n, workers)
        specs = shard_specs(prepared.tasks, [c.params for c in prepared.contexts], False,
                            prepared.inventory.hosts, shards, limits, "yes")
        engine: Any = DaskEngine("local", workers) if engine_name == "dask" else RayEngine(workers)
        cpu = TreeCPU(exclude=server.pid)
        cpu_before = _cpu_now()  # this driver's own so far (the tree's sum includes it)
        started = time.monotonic()
        outcome = await api.execute(prepared, None, limits=limits,
                                    runner=ShardedRunner(engine, specs, limits))
        wall = time.monotonic() - started
        return {"hosts": n, "wall_s": wall, "exit": outcome.exit_code,
                "tree_cpu_s": cpu.stop() - cpu_before,
                "server_cpu_s": process_cpu(server.pid),
                "headline": outcome["mesh"].report.headline}  # type: ignore[attr-defined]
    finally:
        server.stop()


class TreeCPU:
    """user+sys seconds of this process and every process below it (the engine's, grandchildren
    included), sampled twice a second, each process's last reading kept; `exclude`: the
    simulated server's."""

    def __init__(self, exclude: int | None = None) -> None:
        import threading

        self.exclude = exclude
        self.seen: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while True:
            for proc in [me, *me.children(recursive=True)]:
                if proc.pid == self.exclude:
                    continue
                try:
                    times = proc.cpu_times()
                    self.seen[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass
            if self._done.wait(0.5):
                return

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return sum(self.seen.values())


def _cpu_now() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_engines")
    parser.add_argument("--engine", choices=("dask", "ray"), required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", default="1000,4000")
    parser.add_argument("--peers", type=int, default=20)
    options = parser.parse_args(argv)
    measure = measure_dask if options.engine == "dask" else measure_ray
    found: dict[str, Any] = {"engine": options.engine, "load": os.getloadavg()[0]}
    found.update(asyncio.run(measure(options.workers)))
    print(json.dumps(found), flush=True)
    for n in (int(s) for s in options.sizes.split(",") if s):
        before = _cpu()
        run = asyncio.run(sharded_run(options.engine, n, options.peers, options.workers))
        # this driver and every process it waited for (the workers), less the simulated server's
        run["cpu_s"] = _cpu() - before - run["server_cpu_s"]
        run["load"] = os.getloadavg()[0]
        print(json.dumps(run), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
