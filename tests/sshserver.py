"""A real SSH server in-process (asyncssh's), on 127.0.0.1, that runs each command with /bin/sh.

As asyncssh's own tests do: real handshakes, real authentication, real channels, real commands.
The keys, the listening, the logins and the connection counts are benchmarks/loopback_ssh.py's
(shared with the scale simulation's server); this module adds the commands and the forwarding.
`path_prefix` puts a directory first on the commands' PATH (for stand-in `sudo`/`id`), and
`connections` counts the logins, to see connection reuse, and `disconnections` the connections
that ended (either side); `drop_connections` ends them.

Like sshd, each command's shell is a session leader (setsid: its PID is its process group), and a
command is NOT stopped when the client closes its channel: whoever started it must stop it.
`open_sessions` counts the session channels open now and `max_sessions` refuses more (sshd's
MaxSessions). A command killed by a signal ends with that signal (exit-signal), as under sshd.
`password` turns on password authentication (what clients sent is in `passwords`);
`forwarding` lets clients open direct-tcpip channels through it (a jump host); "prohibited" refuses
them as sshd does with AllowTcpForwarding no.

Test-side seams for stand-in hosts (tests/standins.py), never needed by fleet itself: `paths`
maps literal paths to others, rewritten in each command before it runs (the scripts read
/sys/class/net, /proc/net/if_inet6 ... literally; the map points them at a stand-in tree, as a
mount namespace would), and `search_path` replaces the server's own PATH (a host without ping,
fping or python3), `path_prefix` still coming first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncssh
from conftest import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a directory of the repository, not installed
    sys.path.insert(0, str(REPO))

from benchmarks.loopback_ssh import LoopbackServerSide, LoopbackSSHServer  # noqa: E402


def rewrite_paths(command: str, paths: Mapping[str, str]) -> str:
    """`command` with each literal occurrence of a key of `paths` replaced by its value, all in one
    pass (a replacement is never rewritten again)."""
    if not paths:
        return command
    pattern = re.compile("|".join(re.escape(path) for path in sorted(paths, key=len, reverse=True)))
    return pattern.sub(lambda found: paths[found.group(0)], command)


async def relay_output(process: asyncssh.SSHServerProcess, child: asyncio.subprocess.Process, *,
                       text: bool = False) -> None:
    """The command's stdout and stderr to the channel's as they come (decoded on a `text` channel),
    then its end."""
    async def pump(source: asyncio.StreamReader, sink: Any) -> None:
        while chunk := await source.read(65536):
            with contextlib.suppress(OSError, asyncssh.Error):
                sink.write(chunk.decode(errors="replace") if text else chunk)

    assert child.stdout is not None and child.stderr is not None
    await asyncio.gather(pump(child.stdout, process.stdout), pump(child.stderr, process.stderr))
    await child.wait()


async def relay_input(process: asyncssh.SSHServerProcess, child: asyncio.subprocess.Process,
                      paths: Mapping[str, str]) -> None:
    """The channel's stdin to the command's as it comes, closed at the client's EOF; `paths`
    rewritten in it as in commands (a kept shell's commands come this way, each in one write)."""
    assert child.stdin is not None
    with contextlib.suppress(OSError, asyncssh.Error, ConnectionError):
        while chunk := await process.stdin.read(65536):
            if paths:
                chunk = rewrite_paths(chunk.decode(errors="surrogateescape"), paths).encode(
                    errors="surrogateescape")
            child.stdin.write(chunk)
            await child.stdin.drain()
    with contextlib.suppress(OSError, ConnectionError):
        child.stdin.close()


class ServerSide(LoopbackServerSide):
    """The server's side of one connection: the base's logins, and forwarding."""

    server: CommandServer

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        self.server.forwarded.append((dest_host, dest_port))
        if self.server.forwarding == "prohibited":  # as sshd with AllowTcpForwarding no
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            "port forwarding is disabled")
        return bool(self.server.forwarding)


class CommandServer(LoopbackSSHServer):
    def __init__(self, workdir: Path, *, path_prefix: Path | None = None, accept_auth: bool = True,
                 max_sessions: int | None = None, password: str | None = None,
                 forwarding: bool | str = False, paths: Mapping[str, str] | None = None,
                 search_path: str | None = None) -> None:
        super().__init__(workdir, accept_auth=accept_auth, password=password)
        self.path_prefix = path_prefix
        self.paths = dict(paths or {})
        self.search_path = search_path
        self.max_sessions = max_sessions
        self.forwarding = forwarding
        self.open_sessions = 0
        self.refused_sessions = 0
        self.forwarded: list[tuple[str, int]] = []
        self._children: set[asyncio.subprocess.Process] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self.commands: list[str] = []

    def server_side(self) -> ServerSide:
        return ServerSide(self)

    def listen_options(self) -> dict[str, Any]:
        return {**super().listen_options(), "encoding": None}

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        if self.max_sessions is not None and self.open_sessions >= self.max_sessions:
            self.refused_sessions += 1
            process.stderr.write(b"too many sessions\n")
            process.exit(254)
            return
        self.open_sessions += 1
        watcher = asyncio.ensure_future(self._count_close(process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        command = process.command or ""
        if isinstance(command, bytes):
            command = command.decode()
        self.commands.append(command)
        command = rewrite_paths(command, self.paths)
        child = await self._spawn(command)
        self._children.add(child)
        feeding = asyncio.ensure_future(relay_input(process, child, self.paths))  # as sshd's stdin
        self._watchers.add(feeding)
        feeding.add_done_callback(self._watchers.discard)
        finished = asyncio.ensure_future(relay_output(process, child))
        closed = asyncio.ensure_future(process.channel.wait_closed())
        await asyncio.wait({finished, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if not finished.done():  # the client went away; like sshd, leave the command running
            finished.add_done_callback(lambda _: self._children.discard(child))
            return
        self._children.discard(child)
        if child.returncode is not None and child.returncode < 0:  # as sshd: the signal, no status
            process.exit_with_signal(signal.Signals(-child.returncode).name.removeprefix("SIG"))
        else:
            process.exit(child.returncode or 0)

    async def _spawn(self, command: str) -> asyncio.subprocess.Process:
        """`/bin/sh -c command` in a session of its own, on this server's PATH, output piped."""
        env = dict(os.environ)
        if self.search_path is not None:
            env["PATH"] = self.search_path
        if self.path_prefix is not None:
            env["PATH"] = f"{self.path_prefix}:{env['PATH']}"
        return await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)

    async def _count_close(self, process: asyncssh.SSHServerProcess) -> None:
        try:
            await process.channel.wait_closed()
        finally:
            self.open_sessions -= 1

    async def close(self) -> None:
        left = list(self._children)
        for child in left:  # what no client stopped: the test is over
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        if left:  # reaped on this loop, not after it closed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(child.wait() for child in left)), 5)
        await super().close()
        for watcher in list(self._watchers):
            watcher.cancel()

    def inventory_entry(self, name: str, ipv4: str) -> str:
        return (f"{name}:\n  hostname: 127.0.0.1\n  port: {self.port}\n  username: tester\n"
                f"  data: {{ipv4: {ipv4}}}\n  connection_options:\n    asyncssh:\n      extras:\n"
                f"        client_keys: ['{self.client_key_path}']\n"
                f"        known_hosts: '{self.known_hosts_path}'\n")
