"""A command that times out or is cancelled is stopped on the host, and its channel closed."""

import asyncio
import os
import time

import pytest
from sshserver import CommandServer
from sshtarget import target_for

from fleet.core.errors import CommandTimeoutError
from fleet.core.privilege import privileged
from fleet.ssh.group_marker import split_marker
from fleet.ssh.transport import AsyncsshTransport

LATE = 1.5  # the command's background child writes its file this long after starting


def late_writer(path):
    """A command whose background child would write `path` after LATE seconds; the shell waits."""
    return f"(sleep {LATE}; echo late > {path}) & sleep 37"


def processes_mentioning(text):
    """PIDs of this machine's processes whose command line holds `text`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if text.encode() in cmdline.read():
                    found.append(int(pid))
        except OSError:
            continue  # gone meanwhile
    return found


async def writer_gone(path):
    """Wait until no process of late_writer(path) is left (the shell that would write the file
    is among them), at most LATE + 5 s. If it was not stopped, it writes the file and exits
    first: the caller's check that the file does not exist still fails then."""
    deadline = time.monotonic() + LATE + 5
    while processes_mentioning(str(path)):
        assert time.monotonic() < deadline, f"the command writing {path} still runs"
        await asyncio.sleep(0.05)


async def with_session(tmp_path, body, **server_options):
    server = await CommandServer(tmp_path, **server_options).start()
    session = await AsyncsshTransport().connect(target_for(server), timeout=10)
    try:
        return await body(server, session)
    finally:
        await session.close()
        await server.close()


def test_a_timed_out_command_and_its_children_are_stopped_on_the_host(tmp_path):
    flag = tmp_path / "late"

    async def body(server, session):
        with pytest.raises(CommandTimeoutError) as caught:
            await session.run(late_writer(flag), timeout=0.5)
        await writer_gone(flag)
        return caught.value

    error = asyncio.run(with_session(tmp_path, body))
    assert error.kind == "timeout" and "did not finish within 0.5 s; stopped it on the host" in str(error)
    assert not flag.exists()


def test_a_cancelled_command_is_stopped_on_the_host(tmp_path):
    flag = tmp_path / "late"

    async def body(server, session):
        job = asyncio.ensure_future(session.run(late_writer(flag), timeout=30))
        await asyncio.sleep(0.5)
        job.cancel()  # what Ctrl-C or --host-timeout does to the task
        with pytest.raises(asyncio.CancelledError):
            await job
        await writer_gone(flag)
        return (await session.run("echo still here", timeout=5)).stdout

    assert asyncio.run(with_session(tmp_path, body)) == "still here\n"
    assert not flag.exists()


def test_many_timeouts_leave_no_channel_open(tmp_path):
    async def body(server, session):
        for _ in range(6):  # three times the server's session limit
            with pytest.raises(CommandTimeoutError):
                await session.run("sleep 37", timeout=0.3)
        after = await session.run("echo ok", timeout=5)
        await asyncio.sleep(0.2)  # the server's side of the last channel closes after ours
        return after, server.refused_sessions, server.open_sessions

    after, refused, still_open = asyncio.run(with_session(tmp_path, body, max_sessions=2))
    assert after.ok and after.stdout == "ok\n" and after.stderr == ""
    assert refused == 0 and still_open == 0


def test_a_command_run_as_root_is_stopped_as_root(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    for f in fake.iterdir():
        f.chmod(0o755)
    flag = tmp_path / "late"

    async def body(server, session):
        with pytest.raises(CommandTimeoutError):
            await session.run(privileged(late_writer(flag)), timeout=0.5)
        await writer_gone(flag)
        return server.commands

    commands = asyncio.run(with_session(tmp_path, body, path_prefix=fake))
    assert not flag.exists()
    assert "kill -TERM" in commands[-1] and "sudo -n" in commands[-1]


def test_the_marker_line_is_taken_off_stderr():
    assert split_marker(b"fleet-pgid:4242\nwarning: x\n") == (4242, b"warning: x\n")
    assert split_marker(b"no marker\n") == (None, b"no marker\n")


def test_a_command_s_own_output_is_unchanged(tmp_path):
    async def body(server, session):
        return await session.run("echo out; echo err >&2; exit 7", timeout=5)

    result = asyncio.run(with_session(tmp_path, body))
    assert (result.exit_status, result.stdout, result.stderr) == (7, "out\n", "err\n")
