"""A real SSH server in-process (asyncssh's), on 127.0.0.1, that runs each command with /bin/sh.

As asyncssh's own tests do: real handshakes, real authentication, real channels, real commands.
`path_prefix` puts a directory first on the commands' PATH (for stand-in `sudo`/`id`), and
`connections` counts the logins, to see connection reuse; `drop_connections` ends them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh


class CommandServer:
    def __init__(self, workdir: Path, *, path_prefix: Path | None = None,
                 accept_auth: bool = True) -> None:
        self.workdir = workdir
        self.path_prefix = path_prefix
        self.accept_auth = accept_auth
        self.connections = 0
        self._open: list[asyncssh.SSHServerConnection] = []
        self.commands: list[str] = []
        self.port = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = workdir / "client_key"
        self.client_key.write_private_key(str(self.client_key_path))
        self.known_hosts_path = workdir / "known_hosts"

    async def start(self) -> CommandServer:
        server = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                server.connections += 1
                server._open.append(conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return server.accept_auth and key.public_data == server.client_key.public_data

        self._server = await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[self.host_key],
            process_factory=self._handle)
        self.port = self._server.sockets[0].getsockname()[1]
        self.known_hosts_path.write_text(
            f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n")
        return self

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command or ""
        self.commands.append(command)
        env = dict(os.environ)
        if self.path_prefix is not None:
            env["PATH"] = f"{self.path_prefix}:{env['PATH']}"
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        try:
            finished = asyncio.ensure_future(child.communicate())
            closed = asyncio.ensure_future(process.channel.wait_closed())
            await asyncio.wait({finished, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if not finished.done():  # the client went away: stop the command, as sshd would
                child.kill()
                await asyncio.wait({finished})
                return
            out, err = finished.result()
            process.stdout.write(out.decode())
            process.stderr.write(err.decode())
            process.exit(child.returncode or 0)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()

    def drop_connections(self) -> None:
        """Close every open connection from the server's side (as a restarted sshd would)."""
        for conn in self._open:
            conn.close()
        self._open.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def inventory_entry(self, name: str, ipv4: str) -> str:
        return (f"{name}:\n  hostname: 127.0.0.1\n  port: {self.port}\n  username: tester\n"
                f"  data: {{ipv4: {ipv4}}}\n  connection_options:\n    asyncssh:\n      extras:\n"
                f"        client_keys: ['{self.client_key_path}']\n"
                f"        known_hosts: '{self.known_hosts_path}'\n")
