"""A real SSH server in-process (asyncssh's), on 127.0.0.1, that runs each command with /bin/sh.

As asyncssh's own tests do: real handshakes, real authentication, real channels, real commands.
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
from collections.abc import Mapping
from pathlib import Path

import asyncssh


def rewrite_paths(command: str, paths: Mapping[str, str]) -> str:
    """`command` with each literal occurrence of a key of `paths` replaced by its value, all in one
    pass (a replacement is never rewritten again)."""
    if not paths:
        return command
    pattern = re.compile("|".join(re.escape(path) for path in sorted(paths, key=len, reverse=True)))
    return pattern.sub(lambda found: paths[found.group(0)], command)


class ServerSide(asyncssh.SSHServer):
    """The server's side of one connection: logins, forwarding; it reports to its CommandServer."""

    def __init__(self, server: CommandServer) -> None:
        self.server = server

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.server.connections += 1
        self.server._open.append(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.disconnections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.server.accept_auth and key.public_data == self.server.client_key.public_data

    def password_auth_supported(self) -> bool:
        return self.server.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        self.server.passwords.append(password)
        return self.server.accept_auth and password == self.server.password

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        self.server.forwarded.append((dest_host, dest_port))
        if self.server.forwarding == "prohibited":  # as sshd with AllowTcpForwarding no
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            "port forwarding is disabled")
        return bool(self.server.forwarding)


class CommandServer:
    def __init__(self, workdir: Path, *, path_prefix: Path | None = None, accept_auth: bool = True,
                 max_sessions: int | None = None, password: str | None = None,
                 forwarding: bool | str = False, paths: Mapping[str, str] | None = None,
                 search_path: str | None = None) -> None:
        self.workdir = workdir
        self.path_prefix = path_prefix
        self.paths = dict(paths or {})
        self.search_path = search_path
        self.accept_auth = accept_auth
        self.max_sessions = max_sessions
        self.password = password
        self.forwarding = forwarding
        self.connections = 0
        self.disconnections = 0
        self.open_sessions = 0
        self.refused_sessions = 0
        self.passwords: list[str] = []
        self.forwarded: list[tuple[str, int]] = []
        self._open: list[asyncssh.SSHServerConnection] = []
        self._children: set[asyncio.subprocess.Process] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self.commands: list[str] = []
        self.port = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_certificate: asyncssh.SSHCertificate | None = None  # offered with the key when set
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = workdir / "client_key"
        self.client_key.write_private_key(str(self.client_key_path))
        self.known_hosts_path = workdir / "known_hosts"

    @property
    def host_key_line(self) -> str:
        """This server's known_hosts line."""
        return f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"

    async def start(self) -> CommandServer:
        self._server = await asyncssh.create_server(
            lambda: ServerSide(self), "127.0.0.1", 0,
            server_host_keys=[(self.host_key, self.host_certificate) if self.host_certificate
                              else self.host_key],
            process_factory=self._handle, encoding=None)
        self.port = self._server.sockets[0].getsockname()[1]
        self.known_hosts_path.write_text(self.host_key_line)
        return self

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
        env = dict(os.environ)
        if self.search_path is not None:
            env["PATH"] = self.search_path
        if self.path_prefix is not None:
            env["PATH"] = f"{self.path_prefix}:{env['PATH']}"
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        self._children.add(child)
        finished = asyncio.ensure_future(self._relay(process, child))
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

    @staticmethod
    async def _relay(process: asyncssh.SSHServerProcess, child: asyncio.subprocess.Process) -> None:
        async def pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter) -> None:
            while chunk := await source.read(65536):
                with contextlib.suppress(OSError, asyncssh.Error):
                    sink.write(chunk)

        assert child.stdout is not None and child.stderr is not None
        await asyncio.gather(pump(child.stdout, process.stdout), pump(child.stderr, process.stderr))
        await child.wait()

    async def _count_close(self, process: asyncssh.SSHServerProcess) -> None:
        try:
            await process.channel.wait_closed()
        finally:
            self.open_sessions -= 1

    def drop_connections(self) -> None:
        """Close every open connection from the server's side (as a restarted sshd would)."""
        for conn in self._open:
            conn.close()
        self._open.clear()

    async def close(self) -> None:
        left = list(self._children)
        for child in left:  # what no client stopped: the test is over
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        if left:  # reaped on this loop, not after it closed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(child.wait() for child in left)), 5)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for watcher in list(self._watchers):
            watcher.cancel()

    def inventory_entry(self, name: str, ipv4: str) -> str:
        return (f"{name}:\n  hostname: 127.0.0.1\n  port: {self.port}\n  username: tester\n"
                f"  data: {{ipv4: {ipv4}}}\n  connection_options:\n    asyncssh:\n      extras:\n"
                f"        client_keys: ['{self.client_key_path}']\n"
                f"        known_hosts: '{self.known_hosts_path}'\n")
