"""The shell kept on a connection for a command run every round (fleet.ssh.kept_shell): the same
results as a session of its own, one session for every round, and a session's failures.

Real asyncssh servers in this process, whose commands run in a local /bin/sh, as sshd's do."""

import asyncio
import os
import signal

import pytest
from sshserver import CommandServer
from sshtarget import target_for

from fleet.core.errors import CommandError, CommandTimeoutError, ConnectionLostError
from fleet.core.transport import RepeatedCommand
from fleet.ssh.kept_shell import SHELL
from fleet.ssh.transport import AsyncsshTransport


async def on_session(tmp_path, scenario):
    server = await CommandServer(tmp_path).start()
    transport = AsyncsshTransport()
    session = await transport.connect(target_for(server), timeout=10)
    try:
        return await scenario(server, session)
    finally:
        await session.close()
        await transport.close()
        await server.close()


def shells(server: CommandServer) -> int:
    return sum(1 for c in server.commands if c.endswith(SHELL))


@pytest.mark.parametrize("command", [
    "echo hi; echo there >&2; exit 3",  # exit leaves the subshell, not the kept shell
    "printf 'no newline at the end'",
    "printf 'err, no newline' >&2",
    "cat; echo read-nothing",  # no stdin: the next command's text is not its input
    "printf '\\n@@fleet-done-0000000000000000 0\\n'",  # a marker of another nonce is output
    "true",
    "kill -TERM $(sh -c 'echo $PPID')",  # killed by a signal: 128 + its number, as a session
])
def test_a_repeated_command_answers_as_a_session_of_its_own_would(tmp_path, command):
    async def scenario(server, session):
        alone = await session.run(command, timeout=10)
        kept = [await session.run_repeated(RepeatedCommand(command), timeout=10) for _ in range(3)]
        return alone, kept

    alone, kept = asyncio.run(on_session(tmp_path, scenario))
    for result in kept:
        assert (result.exit_status, result.stdout, result.stderr) == (
            alone.exit_status, alone.stdout, alone.stderr)


def test_every_round_runs_in_the_one_kept_shell_and_leaves_it_nothing(tmp_path):
    async def scenario(server, session):
        first = await session.run_repeated(RepeatedCommand("cd /; X=set; echo $$ $X; pwd"), timeout=10)
        second = await session.run_repeated(RepeatedCommand("echo $$ ${X:-unset}; pwd"), timeout=10)
        return first.stdout.split(), second.stdout.split(), shells(server), len(server.commands)

    first, second, kept, sessions = asyncio.run(on_session(tmp_path, scenario))
    assert first[0] == second[0]  # $$: the same shell both rounds
    assert first[1:] == ["set", "/"] and second[1] == "unset" and second[2] != "/"
    assert kept == 1 and sessions == 1  # one session for both rounds


def test_a_round_that_times_out_is_stopped_on_the_host_and_the_next_gets_a_new_shell(tmp_path):
    marker = tmp_path / "slept"

    async def scenario(server, session):
        with pytest.raises(CommandTimeoutError) as timed_out:
            await session.run_repeated(RepeatedCommand(f"echo begun; sleep 30; touch {marker}"),
                                       timeout=1)
        after = await session.run_repeated(RepeatedCommand("echo again"), timeout=10)
        return timed_out.value, after, shells(server)

    error, after, kept = asyncio.run(on_session(tmp_path, scenario))
    assert "did not finish within 1 s; stopped it on the host" in str(error)
    assert error.stdout == "begun\n"
    assert after.stdout == "again\n" and after.exit_status == 0
    assert kept == 2  # the stopped shell went with its command's process group
    assert not marker.exists()


def test_a_kept_shell_that_died_between_rounds_is_replaced(tmp_path):
    async def scenario(server, session):
        pid = int((await session.run_repeated(RepeatedCommand("echo $$"), timeout=10)).stdout)
        os.kill(pid, signal.SIGKILL)  # the host's shell dies while no round runs
        async with asyncio.timeout(30):  # until the client has seen the channel end
            while session._shell.alive:
                await asyncio.sleep(0.05)
        again = await session.run_repeated(RepeatedCommand("echo $$"), timeout=10)
        return pid, int(again.stdout), shells(server)

    dead, new, kept = asyncio.run(on_session(tmp_path, scenario))
    assert new != dead and kept == 2


def test_a_round_while_the_shell_starts_or_runs_another_gets_a_session_of_its_own(tmp_path):
    async def scenario(server, session):
        slow = asyncio.ensure_future(
            session.run_repeated(RepeatedCommand("sleep 1; echo slow"), timeout=10))
        await asyncio.sleep(0)  # the slow round begins: it starts the shell
        starting = await session.run_repeated(RepeatedCommand("echo starting"), timeout=10)
        async with asyncio.timeout(10):  # until the slow round runs in the kept shell
            while session._shell is None or not session._shell.busy:
                await asyncio.sleep(0.01)
        quick = await session.run_repeated(RepeatedCommand("echo quick"), timeout=10)
        return (await slow).stdout, starting.stdout, quick.stdout, shells(server), len(server.commands)

    slow, starting, quick, kept, sessions = asyncio.run(on_session(tmp_path, scenario))
    assert (slow, starting, quick) == ("slow\n", "starting\n", "quick\n")
    assert kept == 1 and sessions == 3  # the shell, and a session for each of the two others


def test_a_kept_shell_that_dies_mid_round_is_the_rounds_error_and_the_next_round_starts_anew(tmp_path):
    async def scenario(server, session):
        with pytest.raises(CommandError) as failed:
            await session.run_repeated(RepeatedCommand("echo begun; kill -KILL $$"), timeout=10)
        after = await session.run_repeated(RepeatedCommand("echo again"), timeout=10)
        return failed.value, after.stdout, shells(server)

    error, after, kept = asyncio.run(on_session(tmp_path, scenario))
    assert not isinstance(error, (CommandTimeoutError, ConnectionLostError))
    assert "the shell kept for this command ended while it ran" in str(error)
    assert error.stdout == "begun\n"
    assert after == "again\n" and kept == 2


def test_a_connection_lost_mid_round_is_connection_lost(tmp_path):
    async def scenario(server, session):
        running = asyncio.ensure_future(
            session.run_repeated(RepeatedCommand("echo begun; sleep 5"), timeout=20))
        await asyncio.sleep(0.5)
        server.drop_connections()
        with pytest.raises(ConnectionLostError) as lost:
            await running
        return lost.value

    error = asyncio.run(on_session(tmp_path, scenario))
    assert "lost while a command ran" in str(error) and error.stdout == "begun\n"


def test_a_host_that_cannot_keep_a_shell_gets_a_session_every_round_without_trying_again(tmp_path):
    async def scenario(server, session):
        server.paths = {"/bin/sh 3>&2": "/no/such/shell 3>&2"}  # the shell cannot start there
        answers = [await session.run_repeated(RepeatedCommand("echo $((1 + 1))"), timeout=10)
                   for _ in range(3)]
        return [a.stdout for a in answers], shells(server), len(server.commands)

    answers, tried, sessions = asyncio.run(on_session(tmp_path, scenario))
    assert answers == ["2\n"] * 3
    assert tried == 1 and sessions == 4  # one try of the shell, then a session a round
