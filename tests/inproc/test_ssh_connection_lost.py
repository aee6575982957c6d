"""A connection that ends while a command runs is a lost connection (kind `connection-lost`), never a
command's exit status: the command's outcome is not known, whether the task checks exit statuses or
not. When the jump host went, every host behind it says so (`via`). A command killed by a signal on
the host is a real result (128 + the signal's number).

Real asyncssh servers in this process; "killed" is a server whose connections end without a word
(the TCP connection aborted, as when sshd's process is killed)."""

import asyncio

from conftest import write_inventory
from sshserver import CommandServer
from sshtarget import target_for
from test_persist import _inventory as persist_inventory
from test_persist import persist_dir  # noqa: F401  (a fixture)
from test_ssh_jump_shared import bed, close_all

from fleet.core.errors import (
    HOST_ERROR_KINDS,
    CommandError,
    ConnectError,
    ConnectionLostError,
    error_kind,
    host_error_from_kind,
)
from fleet.core.results import host_error_kind
from fleet.core.runner import Runner
from fleet.inventory import load_inventory
from fleet.ssh.persist.client import PersistentTransport
from fleet.ssh.transport import AsyncsshTransport

SLOW = "echo started; sleep 5; echo finished"


def kill(server: CommandServer) -> None:
    """The server's process dies: its listening socket closes and its connections end abruptly."""
    server.abort()


async def run_then(session, action, command=SLOW):
    """Run `command` on `session`, do `action` half a second in; what the run raised or returned."""
    running = asyncio.ensure_future(session.run(command, timeout=20))
    await asyncio.sleep(0.5)
    action()
    try:
        return await running
    except Exception as exc:  # the failure is what the test looks at
        return exc


def test_a_server_closing_the_connection_mid_command_is_connection_lost(tmp_path):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        transport = AsyncsshTransport()
        session = await transport.connect(target_for(server), timeout=10)
        outcome = await run_then(session, server.drop_connections)
        await session.close()
        await transport.close()
        await server.close()
        return outcome, server.port

    outcome, port = asyncio.run(scenario())
    assert isinstance(outcome, ConnectionLostError), outcome
    assert not isinstance(outcome, CommandError)
    assert isinstance(outcome, ConnectError) and outcome.kind == "connection-lost"
    assert outcome.via is None and outcome.command == SLOW and outcome.stdout == "started\n"
    assert str(outcome).startswith(f"a: connection to 127.0.0.1:{port} lost while a command ran")


def test_a_host_killed_mid_command_is_connection_lost(tmp_path):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        transport = AsyncsshTransport()
        session = await transport.connect(target_for(server), timeout=10)
        outcome = await run_then(session, lambda: kill(server))
        await session.close()
        await transport.close()
        await server.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, ConnectionLostError) and outcome.via is None, outcome


def test_a_jump_host_killed_mid_command_fails_every_host_behind_it_naming_the_jump_host(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=3)
        transport = AsyncsshTransport()
        sessions = [await transport.connect(host, timeout=10) for host in hosts]
        running = [asyncio.ensure_future(s.run(SLOW, timeout=20)) for s in sessions]
        await asyncio.sleep(0.5)
        kill(jump)
        outcomes = await asyncio.gather(*running, return_exceptions=True)
        for session in sessions:
            await session.close()
        await transport.close()
        await close_all(jump, servers)
        return outcomes, jump.port

    outcomes, port = asyncio.run(scenario())
    assert [type(o) for o in outcomes] == [ConnectionLostError] * 3, outcomes
    assert [o.host for o in outcomes] == ["h0", "h1", "h2"]
    assert all(o.via == f"127.0.0.1:{port}" and o.kind == "connection-lost" for o in outcomes)
    assert all(str(o).startswith(f"h{i}: via jump host 127.0.0.1:{port}: connection lost")
               for i, o in enumerate(outcomes))


def test_a_target_lost_behind_a_live_jump_host_is_the_targets_own(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=1)
        transport = AsyncsshTransport()
        session = await transport.connect(hosts[0], timeout=10)
        outcome = await run_then(session, lambda: kill(servers[0]))
        await session.close()
        await transport.close()
        await close_all(jump, servers)
        return outcome, servers[0].port

    outcome, port = asyncio.run(scenario())
    assert isinstance(outcome, ConnectionLostError) and outcome.via is None, outcome
    assert f"connection to 127.0.0.1:{port} lost" in str(outcome)


async def _lost_mid(host):
    await host.run("sleep 5")  # no check=True: a lost connection fails it all the same
    return host.result("finished")


def test_a_task_that_does_not_check_exit_statuses_still_fails_on_a_lost_connection(tmp_path):
    async def scenario():
        (tmp_path / "s").mkdir()
        server = await CommandServer(tmp_path / "s").start()
        inventory = load_inventory(write_inventory(
            tmp_path / "inv", server.inventory_entry("h2", "10.0.0.2"),
            defaults="data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"))
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, server.drop_connections)
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("lost", _lost_mid, inventory.hosts)
        await server.close()
        return outcome.results["h2"][0]

    result = asyncio.run(scenario())
    assert result.failed and result.result != "finished"
    assert host_error_kind(result) == "connection-lost", result.exception
    assert isinstance(result.exception, ConnectionLostError)


def test_a_command_killed_by_a_signal_on_the_host_is_a_result_not_a_lost_connection(tmp_path):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        transport = AsyncsshTransport()
        session = await transport.connect(target_for(server), timeout=10)
        killed = await session.run("echo before; kill -KILL $$", timeout=10)
        after = await session.run("echo still here", timeout=10)
        await session.close()
        await transport.close()
        await server.close()
        return killed, after

    killed, after = asyncio.run(scenario())
    assert (killed.exit_status, killed.stdout) == (128 + 9, "before\n")
    assert (after.exit_status, after.stdout) == (0, "still here\n")


def test_connection_lost_round_trips_with_its_jump_host():
    assert HOST_ERROR_KINDS["connection-lost"] is ConnectionLostError
    rebuilt = host_error_from_kind("connection-lost", "h1", "via jump host j:22: connection lost",
                                   via="j:22", command="true", stdout="so far", exit_status=None)
    assert isinstance(rebuilt, ConnectionLostError) and error_kind(rebuilt) == "connection-lost"
    assert (rebuilt.via, rebuilt.command, rebuilt.stdout) == ("j:22", "true", "so far")


def test_a_kept_connection_lost_mid_command_is_connection_lost_through_the_daemon(tmp_path, persist_dir):  # noqa: F811
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = persist_inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        outcome = await run_then(session, server.drop_connections)
        await transport.close()
        await server.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, ConnectionLostError) and outcome.kind == "connection-lost", outcome
    assert outcome.command == SLOW and "lost while a command ran" in str(outcome)
