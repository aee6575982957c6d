"""fleet as a library: fleet.run_async against real SSH servers (asyncssh's, in-process), typed
parameters and outcomes, and every check done before any host is touched."""

import asyncio

import pytest
from conftest import write_inventory
from sshserver import CommandServer

import fleet
from fleet import api
from fleet.core.errors import UsageError
from fleet.core.results import HostsReport
from fleet.core.runner import RunLimits
from fleet.mesh.report import MeshReport
from fleet.tasks.mesh import MeshParams

HELLO = ('"""Say hello."""\n'
         "from dataclasses import dataclass\n"
         "from fleet.core.params import option\n"
         "@dataclass(frozen=True)\n"
         "class Params:\n"
         "    greeting: str = option('hi', help='what to say')\n"
         "    def __post_init__(self):\n"
         "        if not self.greeting.isalpha():\n"
         "            raise ValueError('--greeting must be letters only')\n"
         "async def run(host):\n"
         "    out = await host.run('echo ' + host.params.greeting + ' from $0', check=True)\n"
         "    return host.result({'summary': out.stdout.strip()}, changed=host.name == 'b')\n")


async def servers(tmp_path, count):
    started = []
    for i in range(count):
        d = tmp_path / f"s{i}"
        d.mkdir()
        started.append(await CommandServer(d).start())
    for server in started:
        server.known_hosts_path.write_text(server.host_key_line)
    return started


def inventory_of(tmp_path, started):
    entries = "".join(s.inventory_entry(n, f"10.0.0.{i + 1}")
                      for i, (n, s) in enumerate(zip("abc", started)))
    return write_inventory(tmp_path / "inv", entries,
                           defaults="data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")


@pytest.fixture
def tasks_dir(tmp_path):
    directory = tmp_path / "tasks"
    directory.mkdir()
    (directory / "hello.py").write_text(HELLO)
    return directory


def test_run_gives_typed_outcomes_per_task_and_host(tmp_path, tasks_dir):
    async def scenario():
        started = await servers(tmp_path, 2)
        try:
            return await fleet.run_async(["hello"], inventory_of(tmp_path, started),
                                         params={"hello": {"greeting": "hey"}},
                                         tasks_dirs=[tasks_dir], limits=RunLimits(workers=1))
        finally:
            for s in started:
                await s.close()

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, api.Outcome) and outcome.exit_code == 0 and not outcome.interrupted
    hello = outcome["hello"]
    assert isinstance(hello.report, HostsReport)
    assert [(h.name, h.status, h.detail) for h in hello.report.hosts] == [
        ("a", "ok", "hey from /bin/sh"), ("b", "changed", "hey from /bin/sh")]
    assert hello.results["b"][0].changed and not hello.results.failed
    assert hello.report.to_json()["summary"] == {"hosts": 2, "ok": 1, "changed": 1, "failed": 0}
    assert "hello: 2 hosts: 1 ok, 1 changed, 0 failed" in hello.report.render()


def test_a_failing_host_is_data_and_sets_the_exit_code(tmp_path, tasks_dir):
    async def scenario():
        started = await servers(tmp_path, 2)
        started[1].accept_auth = False
        try:
            return await fleet.run_async(["hello"], inventory_of(tmp_path, started),
                                         tasks_dirs=[tasks_dir])
        finally:
            for s in started:
                await s.close()

    outcome = asyncio.run(scenario())
    report = outcome["hello"].report
    assert outcome.exit_code == 1
    assert report["a"].status == "ok" and report["b"].failed and report["b"].error_kind == "auth"


def test_every_check_comes_before_any_host_is_touched(tmp_path, tasks_dir):
    async def scenario():
        started = await servers(tmp_path, 1)
        inventory = inventory_of(tmp_path, started)
        problems = []
        for tasks, params in ((["hello"], {"hello": {"greeting": "h i"}}),
                              (["hello"], {"hello": {"volume": 3}}),
                              (["hello"], {"mesh": {"count": 2}}),
                              (["mesh"], {"mesh": MeshParams} )):
            with pytest.raises(UsageError) as caught:
                await fleet.run_async(tasks, inventory, params=params, tasks_dirs=[tasks_dir])
            problems.append(str(caught.value))
        with pytest.raises(ValueError):
            MeshParams(count=0)
        await started[0].close()
        return problems, started[0].connections

    problems, logins = asyncio.run(scenario())
    assert problems[0] == "task 'hello': --greeting must be letters only"
    assert "unknown parameter(s) volume" in problems[1]
    assert problems[2] == "params for mesh: not among the tasks run"
    assert "expected MeshParams or a mapping" in problems[3]
    assert logins == 0


FPING = """#!/bin/sh
# A stand-in fping -C: the first peer answers every ping, the others never do.
count=1; first=1
while [ $# -gt 0 ]; do
  case "$1" in -C) count=$2; shift 2 ;; -p|-i|-t|-B|-r) shift 2 ;; -*) shift ;;
  *) if [ $first = 1 ]; then times=$(yes 0.5 | head -n "$count" | tr '\\n' ' ');
     else times=$(yes - | head -n "$count" | tr '\\n' ' '); fi
     echo "$1 : $times" >&2; first=0; shift ;; esac
done
exit 1
"""


def test_the_mesh_report_is_the_model(tmp_path):
    # Three hosts whose fping (a stand-in: no packet leaves) reaches only its first peer.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fping").write_text(FPING)
    (bin_dir / "fping").chmod(0o755)

    async def scenario():
        started = []
        for i in range(3):
            d = tmp_path / f"s{i}"
            d.mkdir()
            started.append(await CommandServer(d, path_prefix=bin_dir).start())
            started[-1].known_hosts_path.write_text(started[-1].host_key_line)
        try:
            return await fleet.run_async(["mesh"], inventory_of(tmp_path, started),
                                         params={"mesh": MeshParams(count=2, probe="fping")})
        finally:
            for s in started:
                await s.close()

    outcome = asyncio.run(scenario())
    report = outcome["mesh"].report
    assert isinstance(report, MeshReport)
    mesh = report.mesh
    assert [h.name for h in mesh.hosts] == ["a", "b", "c"] and mesh.pair_count == 6
    states = {(mesh.row(i).src, mesh.row(i).dst): mesh.row(i).state.value
              for i in range(mesh.pair_count)}
    # Unanswered pairs from a source whose sit1 lacks its address (this machine has no sit1)
    # are errors, not "unreachable": the source could not have reached anyone.
    assert states == {("a", "b"): "ok", ("a", "c"): "error", ("b", "a"): "ok",
                      ("b", "c"): "error", ("c", "a"): "ok", ("c", "b"): "error"}
    assert "source not configured: sit1 does not carry" in mesh.row(1).error
    assert [h.state.value for h in mesh.hosts] == ["unconfigured"] * 3
    assert outcome.exit_code == report.exit_code == 1
    assert report.to_json().as_dict()["summary"] == {"hosts": 3, "pairs": 6, "ok": 3, "lossy": 0,
                                                      "unreachable": 0, "error": 3,
                                                      "rtt_ms": {"p50": 0.5, "p90": None, "p99": None},
                                                      "underlay": None, "mtu": None}


def test_progress_events_say_connections_hosts_done_and_the_tasks_count(tmp_path, tasks_dir):
    (tasks_dir / "letters.py").write_text(
        '"""Count letters."""\n'
        "async def run(host):\n"
        "    await host.run('true', check=True)\n"
        "    host.tally(len(host.name) + 2, 'letters')\n"
        "    return host.result({'summary': 'counted'})\n")
    calls, events = [], []

    async def scenario():
        started = await servers(tmp_path, 2)
        started[1].accept_auth = False
        try:
            return await fleet.run_async(["letters"], inventory_of(tmp_path, started),
                                         tasks_dirs=[tasks_dir], limits=RunLimits(workers=1),
                                         progress=lambda *args: calls.append(args),
                                         on_progress=events.append)
        finally:
            for s in started:
                await s.close()

    outcome = asyncio.run(scenario())
    assert outcome.exit_code == 1
    assert calls == [("letters", 1, 2, "a", False), ("letters", 2, 2, "b", True)]  # as before
    assert [(e.kind, e.host, e.done, e.total, e.connected, e.failed, e.count, e.count_label)
            for e in events] == [
        ("connected", "a", 0, 2, 1, False, None, ""),
        ("host-done", "a", 1, 2, 1, False, 3, "letters"),
        ("host-done", "b", 2, 2, 1, True, None, ""),   # refused at login: never connected
    ]
    assert {e.task for e in events} == {"letters"}


def test_each_tasks_own_warnings_hook_is_heard_before_the_run_and_never_stops_it(tmp_path):
    directory = tmp_path / "tasks"
    directory.mkdir()
    (directory / "careful.py").write_text(
        '"""Warns."""\n'
        "def warnings(context):\n"
        "    return [f'{len(context.hosts)} host(s) from {context.inventory.directory.name}']\n"
        "async def run(host):\n    return host.result()\n")
    (directory / "clumsy.py").write_text(
        '"""Its check breaks."""\n'
        "def warnings(context):\n    raise RuntimeError('no credentials')\n"
        "async def run(host):\n    return host.result()\n")
    inventory = write_inventory(tmp_path / "inv", "a:\n  hostname: 10.0.0.1\n",
                                defaults="data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")
    prepared = api.prepare(["careful", "clumsy", "teardown"], api.select(inventory),
                           tasks_dirs=[directory], host_key_checking="no")
    assert api.preflight_warnings(prepared) == [
        "1 host(s) from inv", "clumsy: its warnings check failed: RuntimeError: no credentials"]


class CountingTransport:
    """A caller's own transport: SSH, with its close() calls counted."""

    def __init__(self):
        from fleet.ssh.transport import AsyncsshTransport

        self.ssh, self.closes = AsyncsshTransport(host_key_checking="yes"), 0

    async def connect(self, host, *, timeout):
        return await self.ssh.connect(host, timeout=timeout)

    async def close(self):
        self.closes += 1
        await self.ssh.close()


def test_run_prepared_closes_only_the_transport_it_opened(tmp_path, tasks_dir):
    """api.run_prepared, the one way the command line and run_async run a prepared run: a
    transport it opens is closed when the run ends and then given to on_closed; the caller's own
    stays open, for the next run over it."""
    handed = []

    async def scenario():
        started = await servers(tmp_path, 2)
        given = CountingTransport()
        try:
            prepared = api.prepare(["hello"], api.select(inventory_of(tmp_path, started)),
                                   tasks_dirs=[tasks_dir])
            own = await api.run_prepared(prepared, on_closed=handed.append)
            handed_after_own = list(handed)
            over_given = [await api.run_prepared(prepared, transport=given, on_closed=handed.append)
                          for _ in range(2)]
            closes = given.closes
            await given.close()
            return own, handed_after_own, over_given, closes, [s.connections for s in started]
        finally:
            for s in started:
                await s.close()

    own, handed_after_own, over_given, closes, logins = asyncio.run(scenario())
    assert [o.exit_code for o in (own, *over_given)] == [0, 0, 0]
    assert [type(t).__name__ for t in handed_after_own] == ["AsyncsshTransport"]
    assert len(handed) == 1 and closes == 0  # the caller's transport: neither closed nor handed
    assert logins == [3, 3]  # every run logged in to both hosts
