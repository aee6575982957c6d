"""The in-process SSH server of sshserver.py with sshd's MaxSessions: at most `max_sessions`
command channels open at once on one connection, the next channel refused (as OpenSSH refuses it,
"open failed"), so that a channel a client leaves open is seen. `refused` counts the refusals.

A command whose channel closes (the client closed it, or the connection ended) is killed at once,
and `close()` ends the connections and waits for their commands, so that none outlives the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import asyncssh
from sshserver import CommandServer, ServerSide, relay_output

SFTP_VERSION = 3  # no SFTP is served; asyncssh's process wants a version all the same


class _Session(asyncssh.SSHServerProcess):
    """A command's server-side process that remembers its channel, to see it close."""

    chan: Any = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan
        super().connection_made(chan)

    @property
    def open(self) -> bool:
        return self.chan is None or not self.chan.is_closing()


class _LimitedSide(ServerSide):
    """A connection's server side that refuses a session channel past `max_sessions` open."""

    def __init__(self, server: LimitedCommandServer) -> None:
        super().__init__(server)
        self.limited = server
        self.sessions: list[_Session] = []

    def session_requested(self) -> Any:
        self.sessions = [s for s in self.sessions if s.open]
        if len(self.sessions) >= self.limited.max_sessions:
            self.limited.refused += 1
            return False
        session = _Session(self.limited._tracked, None, SFTP_VERSION, False)
        self.sessions.append(session)
        return session


class LimitedCommandServer(CommandServer):
    def __init__(self, workdir: Path, *, max_sessions: int = 10, **kwargs: Any) -> None:
        super().__init__(workdir, **kwargs)
        self.max_sessions = max_sessions
        self.refused = 0
        self._handlers: set[asyncio.Task] = set()

    def server_side(self) -> _LimitedSide:
        return _LimitedSide(self)

    def listen_options(self) -> dict[str, Any]:
        return {}  # sessions come from _LimitedSide.session_requested, text (utf-8) channels

    async def _tracked(self, process: asyncssh.SSHServerProcess) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._handle(process)
        finally:
            self._handlers.discard(task)

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command or ""
        self.commands.append(command)
        child = await self._spawn(command)
        finished = asyncio.ensure_future(relay_output(process, child, text=True))  # as sshd streams
        closed = asyncio.ensure_future(process.channel.wait_closed())  # the connection ended
        try:
            # A channel the client closed while the command runs is not "closed" for asyncssh's
            # server until the command's side closes it too: look at its state as well.
            while not (finished.done() or closed.done() or process.channel.is_closing()):
                await asyncio.wait({finished, closed}, timeout=0.02)
            if not finished.done():
                return
            process.exit(child.returncode or 0)
        finally:
            closed.cancel()
            if child.returncode is None:  # the whole group: `sh -c` may have forked the command
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.shield(finished)

    async def settle(self, timeout: float = 10) -> None:
        """Wait until every command whose channel was closed has been stopped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while any(not t.done() for t in self._handlers) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await super().close()
        self.drop_connections()
        await self.settle()
