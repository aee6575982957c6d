"""A kept connection's channels and failures: a command that times out or is given up never holds a
session of the host, and a failure through the daemon is the same HostError as without it.

A real daemon process and asyncssh's in-process SSH server with sshd's MaxSessions.
"""

import asyncio
import contextlib

import pytest
import test_persist as tp
from sshserver_limits import LimitedCommandServer

from fleet.core.errors import CommandError, CommandTimeoutError, ConnectError
from fleet.ssh.persist.client import PersistentTransport
from fleet.ssh.transport import AsyncsshTransport

persist_dir = tp.persist_dir
CAP = 3  # sessions at once per connection (sshd's MaxSessions, 10 by default); stopping a
# command briefly takes one more (the channel that kills it, before its own is closed)


def test_commands_that_time_out_do_not_use_up_the_hosts_sessions(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path, max_sessions=CAP).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        for _ in range(CAP + 2):
            with pytest.raises(CommandTimeoutError):
                await session.run("sleep 30", timeout=0.3)
        result = await session.run("echo healthy", timeout=10)
        await transport.close()
        refused, logins = server.refused, server.connections
        await server.close()
        return result, refused, logins

    result, refused, logins = asyncio.run(scenario())
    assert (result.exit_status, result.stdout) == (0, "healthy\n")
    assert (refused, logins) == (0, 1)  # the same kept connection, no channel refused


def test_commands_given_up_by_their_client_do_not_use_up_the_hosts_sessions(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path, max_sessions=CAP).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        for _ in range(CAP + 1):  # cancelled, as Ctrl-C or --host-timeout does to a host's task
            running = asyncio.create_task(session.run("sleep 30", timeout=60))
            await asyncio.sleep(0.3)
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        for _ in range(CAP + 1):  # a run that goes away (killed) with its command running
            leaving = PersistentTransport(persist=30, directory=persist_dir)
            await leaving.start()
            running = asyncio.create_task((await leaving.connect(host, timeout=5)).run("sleep 30",
                                                                                        timeout=60))
            await asyncio.sleep(0.3)
            await leaving.close()
            with contextlib.suppress(CommandError):
                await running
        await server.settle(timeout=15)  # every command stopped (a channel left open never is)
        result = await session.run("echo healthy", timeout=10)
        await transport.close()
        refused, logins = server.refused, server.connections
        await server.close()
        return result, refused, logins

    result, refused, logins = asyncio.run(scenario())
    assert (result.exit_status, result.stdout) == (0, "healthy\n")
    assert (refused, logins) == (0, 1)


def test_a_channel_refused_by_a_full_host_is_the_hosts_command_error(tmp_path, persist_dir):
    # The other side of the two tests above: the cap is real, and what a full host says arrives.
    async def scenario():
        server = await LimitedCommandServer(tmp_path, max_sessions=1).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        busy = asyncio.create_task(session.run("sleep 1", timeout=10))
        await asyncio.sleep(0.3)
        with pytest.raises(CommandError) as caught:
            await session.run("true", timeout=10)
        await busy
        await transport.close()
        await server.close()
        return caught.value

    error = asyncio.run(scenario())
    assert (type(error), error.kind, error.command) == (CommandError, "command", "true")
    assert "server refused to run a command" in error.reason


# -- failures keep their kind ------------------------------------------------------------------------
async def _direct(host, command=None, *, timeout=10.0):
    """The same failure without the daemon: AsyncsshTransport, in this process."""
    session = await AsyncsshTransport().connect(host, timeout=5)
    try:
        return await session.run(command, timeout=timeout)
    finally:
        await session.close()


def test_a_timed_out_command_is_a_timeout_with_its_fields(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        command = "echo started; sleep 30"
        with pytest.raises(CommandError) as kept:
            await tp._one_run(persist_dir, host, command, timeout=0.5)
        with pytest.raises(CommandError) as direct:
            await _direct(host, command, timeout=0.5)
        await server.close()
        return kept.value, direct.value, command

    kept, direct, command = asyncio.run(scenario())
    assert isinstance(kept, CommandTimeoutError) and kept.kind == "timeout"
    assert type(kept) is type(direct)
    assert (kept.host, kept.command, kept.stdout, kept.stderr, kept.reason) == (
        "h1", command, direct.stdout, direct.stderr, direct.reason)


@pytest.mark.parametrize("case", ["unknown host key", "refused login"])
def test_a_failed_login_is_the_same_error_as_without_the_daemon(tmp_path, persist_dir, case):
    async def scenario():
        server = await LimitedCommandServer(tmp_path, accept_auth=case != "refused login").start()
        host = tp._inventory(tmp_path, server).hosts[0]
        if case == "unknown host key":
            server.known_hosts_path.write_text("")
        with pytest.raises(ConnectError) as kept:
            await tp._one_run(persist_dir, host, "true")
        with pytest.raises(ConnectError) as direct:
            await _direct(host, "true")
        await server.close()
        return kept.value, direct.value

    kept, direct = asyncio.run(scenario())
    assert (type(kept), kept.kind, kept.via, kept.host) == (type(direct), direct.kind, direct.via, "h1")
    assert kept.reason == direct.reason


def test_a_lost_connection_that_cannot_log_in_again_says_why(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        server.drop_connections()  # the host's sshd restarted ...
        server.accept_auth = False  # ... and no longer takes our key
        await asyncio.sleep(0.3)
        with pytest.raises(ConnectError) as kept:
            await session.run("true", timeout=10)
        await transport.close()
        with pytest.raises(ConnectError) as direct:
            await _direct(host, "true")
        await server.close()
        return kept.value, direct.value

    kept, direct = asyncio.run(scenario())
    assert (type(kept), kept.kind) == (type(direct), direct.kind)
    assert kept.reason.startswith("kept connection was lost and logging in again failed: ")


@pytest.mark.parametrize("policy", ["yes", "accept-new", "no"])
def test_the_host_key_policy_reaches_the_transport(policy):
    from fleet.ssh.persist.daemon import transport_for_policy

    assert transport_for_policy(policy).host_key_checking == policy
