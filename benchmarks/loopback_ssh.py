"""A real SSH server in-process (asyncssh's) on loopback: the skeleton the tests' servers and the
scale simulation's server share, as asyncssh's own tests/server.py is the skeleton of its tests.

It generates an ed25519 host key and an ed25519 client key, writes the client key and a known_hosts
file into its work directory, listens on 127.0.0.1 (or several loopback addresses) on a port the
kernel picks, accepts that client key (and, with `password`, that password) for any user, and counts
the connections that came and went. What a session does is the subclass's: `_handle` is the
process factory, and `listen_options` adds to or replaces the options of asyncssh.create_server.

It imports nothing of fleet and nothing of the tests: tests/sshserver.py and
benchmarks/simserver.py both build on it, and benchmarks/ runs on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import asyncssh


class LoopbackServerSide(asyncssh.SSHServer):
    """The server's side of one connection: the logins; it reports to its LoopbackSSHServer."""

    def __init__(self, server: LoopbackSSHServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.server.connections += 1
        self.server._open.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.disconnections += 1
        if self.conn is not None:
            self.server._open.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every user must authenticate

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.server.accept_auth and key.public_data == self.server.client_key.public_data

    def password_auth_supported(self) -> bool:
        return self.server.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        self.server.passwords.append(password)
        return self.server.accept_auth and password == self.server.password


class LoopbackSSHServer:
    """An asyncssh server on `addresses` (all on one port), with keys of its own in `workdir`.

    `connections` counts the connections made, `disconnections` those that ended (either side);
    `drop_connections` ends the open ones from the server's side, `abort` as a dying sshd would.
    `accept_auth=False` refuses every login; `passwords` keeps what clients sent as passwords.
    `host_certificate`, when set before `start`, is offered with the host key.
    """

    def __init__(self, workdir: Path, *, addresses: Sequence[str] = ("127.0.0.1",),
                 accept_auth: bool = True, password: str | None = None,
                 host_key: asyncssh.SSHKey | None = None,
                 client_key: asyncssh.SSHKey | None = None) -> None:
        self.workdir = workdir
        self.addresses = list(addresses)
        self.accept_auth = accept_auth
        self.password = password
        self.connections = 0
        self.disconnections = 0
        self.passwords: list[str] = []
        self._open: set[asyncssh.SSHServerConnection] = set()
        self.port = 0
        self._servers: list[asyncssh.SSHAcceptor] = []
        # Given keys: one server of several processes that play one host key (benchmarks).
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.host_certificate: asyncssh.SSHCertificate | None = None
        self.client_key = client_key or asyncssh.generate_private_key("ssh-ed25519")
        workdir.mkdir(parents=True, exist_ok=True)
        self.client_key_path = workdir / "client_key"
        self.client_key.write_private_key(str(self.client_key_path))
        self.client_key_path.chmod(0o600)
        self.known_hosts_path = workdir / "known_hosts"

    @property
    def host_key_line(self) -> str:
        """This server's known_hosts line for its first address."""
        return self._known_line(self.addresses[0])

    def _known_line(self, address: str) -> str:
        return f"[{address}]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"

    def server_side(self) -> LoopbackServerSide:
        """The asyncssh.SSHServer of a new connection."""
        return LoopbackServerSide(self)

    def listen_options(self) -> dict[str, Any]:
        """Options for asyncssh.create_server besides the addresses, port, host key and server side."""
        return {"process_factory": self._handle}

    async def _handle(self, process: asyncssh.SSHServerProcess[Any]) -> None:
        """One session (the process factory): the subclass's."""
        raise NotImplementedError

    async def start(self, port: int = 0) -> Self:
        """Listen on `port` (0: the kernel picks one for the first address, and the others share
        it), then write known_hosts (every address, with that port)."""
        host_key = (self.host_key, self.host_certificate) if self.host_certificate else self.host_key

        async def listen(addresses: list[str], port: int) -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(self.server_side, addresses, port,
                                                server_host_keys=[host_key], **self.listen_options())

        self._servers = [await listen(self.addresses[:1], port)]
        self.port = self._servers[0].sockets[0].getsockname()[1]
        if self.addresses[1:]:
            self._servers.append(await listen(self.addresses[1:], self.port))
        self.known_hosts_path.write_text("".join(map(self._known_line, self.addresses)))
        return self

    def drop_connections(self) -> None:
        """Close every open connection from the server's side (as a restarted sshd would)."""
        for conn in list(self._open):
            conn.close()
        self._open.clear()

    def abort(self) -> None:
        """As if the server's process died: stop listening, end every connection abruptly."""
        for server in self._servers:
            server.close()
        for conn in list(self._open):
            conn.abort()
        self._open.clear()

    async def close(self) -> None:
        """Stop listening (the open connections stay; see drop_connections)."""
        for server in self._servers:
            server.close()
            await server.wait_closed()
