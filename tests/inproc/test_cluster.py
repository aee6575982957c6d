"""Sharded runs on a local Dask cluster (the `cluster` extra) against in-process SSH hosts.

The hosts are tests/inprocess.py's in-process SSH servers with stand-ins; the cluster's workers
are processes of their own that log in to them over loopback. A sharded run must give what one
process gives: the same host outcomes, the same pairs (states and counts, not round-trip
times) and the same verdict, computed once from the merged results.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time

import pytest
from inprocess import InProcessFleet

pytest.importorskip("distributed", reason="the cluster extra (Dask distributed) is not installed")

from fleet import api  # noqa: E402
from fleet.cluster.choice import ClusterPlan  # noqa: E402
from fleet.cluster.start import sharded_runner  # noqa: E402
from fleet.core.runner import RunLimits  # noqa: E402

HOSTS = [(f"h{i}", f"172.31.0.{10 + i}") for i in range(1, 6)]


def same_fleet(fleet: InProcessFleet) -> None:
    for name, ipv4 in HOSTS:
        fleet.add_host(name, ipv4, fping=name != "h4")  # h4 probes with the fallback prober
    fleet.add_unreachable("h6", "172.31.0.16")  # a failure in a shard


def comparable(report: dict) -> dict:
    """What must be equal between two runs: every host's state and kind, every pair's state and
    counts, the summary (without round-trip times), the verdict and the diagnosis (no times, no
    ports)."""
    found = {}
    for document in report["tasks"]:
        hosts = sorted((h["name"], h.get("state") or h.get("status"), h.get("error_kind"))
                       for h in document["hosts"])
        pairs = sorted((p["src"], p["dst"], p["state"], p["sent"], p["received"], p["loss_pct"])
                       for p in document.get("pairs", []))
        summary = {k: v for k, v in document["summary"].items() if k not in ("rtt_ms",)}
        found[document["task"]] = {"hosts": hosts, "pairs": pairs, "summary": summary,
                                   "verdict": document.get("verdict"),
                                   "diagnosis": document.get("diagnosis"),
                                   "coverage": document.get("coverage"),
                                   "interrupted": document.get("interrupted")}
    # the two fleets' servers listen on different ports
    return json.loads(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", json.dumps(found)))


def test_sharded_setup_and_mesh_give_what_one_process_gives(inprocess_fleet, tmp_path, capsys):
    same_fleet(inprocess_fleet)
    single = inprocess_fleet.run("setup", "mesh", "--cluster", "no", "--connect-timeout", "3")
    other = InProcessFleet(tmp_path / "sharded", capsys)
    try:
        same_fleet(other)
        sharded = other.run("setup", "mesh", "--cluster", "local", "--shards", "2",
                            "--connect-timeout", "3")
    finally:
        other.close()
    assert single.code == sharded.code == 1, sharded.err  # h6 is unreachable
    assert comparable(sharded.report) == comparable(single.report)
    found = comparable(sharded.report)
    assert len(found["mesh"]["pairs"]) == 6 * 5
    assert sum(p[2] == "ok" for p in found["mesh"]["pairs"]) >= 12  # not a run of failures
    assert [h for h in found["setup"]["hosts"] if h[2]] == [["h6", "failed", "unreachable"]]
    # each stand-in was configured by exactly one worker: one sit1, fleet's
    for member in other.members.values():
        assert member.stand_in.files()["alias"] == "fleet-isatap"


SLOW_TASK = '''"""Sleeps on the host (a test's slow task)."""
from fleet.core.runner import host_task


@host_task
async def run(host):
    answer = await host.run("sleep 4; echo slept", check=True)
    return host.result(answer.stdout.strip())
'''


def slow_run(fleet: InProcessFleet, tmp_path, hosts: int) -> api.PreparedRun:
    for i in range(hosts):
        fleet.add_host(f"s{i}", f"172.31.1.{i + 1}")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "slow.py").write_text(SLOW_TASK)
    return api.prepare(["slow"], api.select(fleet.write_inventory()), tasks_dirs=[tasks])


async def run_on_cluster(prepared: api.PreparedRun, during,
                         fleet: InProcessFleet) -> tuple[api.Outcome, object]:
    limits = RunLimits(connect_timeout=5)
    runner = sharded_runner(prepared.tasks, [c.params for c in prepared.contexts], False,
                            prepared.inventory.hosts, ClusterPlan("local", 2), limits, "yes")
    stop = asyncio.Event()
    job = asyncio.ensure_future(api.execute(prepared, None, limits=limits, stop=stop,
                                            runner=runner))
    engine = runner._engine
    started = time.monotonic()
    while not getattr(engine, "placement", None) and time.monotonic() - started < 60:
        await asyncio.sleep(0.1)
    while not all(any("sleep 4" in c for c in m.server.commands)
                  for m in fleet.members.values()):  # until every host's command runs
        assert time.monotonic() - started < 60, "the shards' commands never started"
        await asyncio.sleep(0.05)
    await during(engine, stop)
    return await asyncio.wait_for(job, 60), engine


def test_a_worker_killed_mid_run_fails_its_hosts_with_a_kind(inprocess_fleet, tmp_path):
    prepared = slow_run(inprocess_fleet, tmp_path, 4)

    async def kill_shard_one(engine, stop):
        os.kill(engine.worker_pid(0), signal.SIGKILL)

    outcome, _ = asyncio.run(run_on_cluster(prepared, kill_shard_one, inprocess_fleet))
    report = outcome["slow"].report.to_json()
    kinds = {h["name"]: h.get("error_kind") for h in report["hosts"]}
    assert kinds == {"s0": "connection-lost", "s1": "connection-lost", "s2": None, "s3": None}
    assert outcome.exit_code == 1
    lost = next(h for h in report["hosts"] if h["name"] == "s0")
    assert "worker of shard 1, which held" in lost["error"]


def test_stop_interrupts_every_shard(inprocess_fleet, tmp_path):
    prepared = slow_run(inprocess_fleet, tmp_path, 4)

    async def press_ctrl_c(engine, stop):
        stop.set()

    outcome, _ = asyncio.run(run_on_cluster(prepared, press_ctrl_c, inprocess_fleet))
    assert outcome.interrupted and outcome.exit_code == 130
    kinds = {h["name"]: h.get("error_kind") for h in outcome["slow"].report.to_json()["hosts"]}
    assert kinds == dict.fromkeys(["s0", "s1", "s2", "s3"], "interrupted")


def test_a_cluster_address_where_nothing_listens_is_exit_2(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = inprocess_fleet.run("mesh", "--cluster", f"tcp://127.0.0.1:{port}",
                               "--connect-timeout", "2")
    assert done.code == 2, done.err
    assert f"--cluster tcp://127.0.0.1:{port}: no Dask scheduler answered" in done.err
    assert "Traceback" not in done.err
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0}
