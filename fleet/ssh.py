"""The SSH transport: the one module that owns asyncssh.

It turns asyncssh's errors into the project's own (ConnectError, CommandError), each message naming
the host and what was being attempted. Other code sees only the `Transport` and `Session` protocols,
so a test or a future transport (a bastion, a local shell) plugs in without touching the runner.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from typing import Any

import asyncssh

from fleet.errors import CommandError, CommandTimeoutError, ConnectError
from fleet.session import CommandResult, SSHTarget

DEFAULT_SSH_PORT = 22

# Fast, modern algorithms first (curve25519 key exchange, AES-GCM and ChaCha20-Poly1305), the
# rest of asyncssh's defaults after them so that any server still works. Host key algorithms are
# left to asyncssh, which prefers the ones known_hosts holds keys for, as OpenSSH does.
# An `asyncssh` extras entry in the inventory (kex_algs, encryption_algs, ...) overrides these.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                     "chacha20-poly1305@openssh.com")


def _with_preferred(preferred: tuple[str, ...], supported: list[bytes]) -> list[str]:
    names = [alg.decode() for alg in supported]
    return [alg for alg in preferred if alg in names] + [alg for alg in names if alg not in preferred]


class AsyncsshSession:
    """A Session over one asyncssh connection."""

    def __init__(self, host: SSHTarget, connection: asyncssh.SSHClientConnection) -> None:
        self._host = host
        self._connection = connection

    @property
    def closed(self) -> bool:
        """The connection has ended (closed by either side or lost)."""
        return self._connection.is_closed()

    async def run(self, command: str, *, timeout: float) -> CommandResult:
        name = self._host.name
        try:
            completed = await self._connection.run(command, check=False, timeout=timeout)
        except asyncssh.TimeoutError as exc:  # both a ProcessError and a TimeoutError: first
            raise CommandTimeoutError(name, f"command did not finish within {timeout:g} s",
                               command=command, stdout=_text(exc.stdout),
                               stderr=_text(exc.stderr)) from exc
        except asyncssh.ChannelOpenError as exc:
            raise CommandError(name, f"server refused to run a command: {exc.reason}",
                               command=command) from exc
        except asyncssh.DisconnectError as exc:
            raise CommandError(name, f"connection lost while running a command: {exc.reason}",
                               command=command) from exc
        except (OSError, asyncssh.Error) as exc:
            raise CommandError(name, f"command failed to run: {exc}", command=command) from exc
        status = completed.exit_status
        if status is None:
            status = 128 + 15 if completed.exit_signal else 255
        return CommandResult(command, status, _text(completed.stdout), _text(completed.stderr))

    async def close(self) -> None:
        self._connection.close()
        try:
            await asyncio.wait_for(self._connection.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            pass


class AsyncsshTransport:
    """Connects with asyncssh, using the host's Nornir fields and its asyncssh extras."""

    def __init__(self, *, check_host_keys: bool = True,
                 login_timeout: float | None = None) -> None:
        self._check_host_keys = check_host_keys
        self._login_timeout = login_timeout
        self._known_hosts: dict[str, Any] = {}
        self._client_keys: dict[tuple[tuple[str, ...], str | None], Any] = {}

    def _known_hosts_file(self, path: str) -> Any:
        """A known_hosts file read and parsed once per run, not once per host."""
        if path not in self._known_hosts:
            try:
                self._known_hosts[path] = asyncssh.read_known_hosts(path)
            except (OSError, ValueError):
                self._known_hosts[path] = path  # let asyncssh report it per host, as usual
        return self._known_hosts[path]

    def _client_key_files(self, paths: tuple[str, ...], passphrase: str | None) -> Any:
        """Private key files read and decoded once per run, not once per host."""
        key = (paths, passphrase)
        if key not in self._client_keys:
            try:
                self._client_keys[key] = asyncssh.load_keypairs(list(paths), passphrase)
            except (OSError, ValueError, asyncssh.Error):
                self._client_keys[key] = list(paths)  # let asyncssh report it per host, as usual
        return self._client_keys[key]

    def connect_options(self, host: SSHTarget, *, timeout: float) -> dict[str, Any]:
        """The keyword arguments for asyncssh.connect(), extras last so that they win."""
        options: dict[str, Any] = {
            "port": host.ssh_port or DEFAULT_SSH_PORT,
            "connect_timeout": timeout,
            "login_timeout": self._login_timeout or timeout,
            "kex_algs": _with_preferred(PREFERRED_KEX, asyncssh.kex.get_default_kex_algs()),
            "encryption_algs": _with_preferred(PREFERRED_CIPHERS,
                                               asyncssh.encryption.get_default_encryption_algs()),
            "keepalive_interval": 15,
            "keepalive_count_max": 3,
        }
        if host.username is not None:
            options["username"] = host.username
        if host.password is not None:
            options["password"] = host.password
        options.update(_plain(host.ssh_options))
        keys = options.get("client_keys")
        if isinstance(keys, (list, tuple)) and keys and all(isinstance(k, str) for k in keys):
            options["client_keys"] = self._client_key_files(tuple(keys), options.get("passphrase"))
        if isinstance(options.get("known_hosts"), str):
            options["known_hosts"] = self._known_hosts_file(options["known_hosts"])
        if not self._check_host_keys:
            options["known_hosts"] = None
        return options

    async def connect(self, host: SSHTarget, *, timeout: float) -> AsyncsshSession:
        options = self.connect_options(host, timeout=timeout)
        target = f"{host.ssh_host}:{options['port']}"
        try:
            connection = await asyncssh.connect(host.ssh_host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise ConnectError(host.name, f"host key of {target} not verifiable ({exc.reason}); add "
                               "it to known_hosts or set connection_options.asyncssh.extras."
                               "known_hosts") from exc
        except asyncssh.PermissionDenied as exc:
            raise ConnectError(host.name, f"authentication failed at {target} as "
                               f"{options.get('username') or 'the local user'} "
                               f"({exc.reason})") from exc
        except asyncssh.DisconnectError as exc:
            raise ConnectError(host.name, f"SSH to {target} failed: {exc.reason}") from exc
        except TimeoutError as exc:
            raise ConnectError(host.name, f"SSH to {target} did not connect and log in within "
                               f"{timeout:g} s") from exc
        except socket.gaierror as exc:
            raise ConnectError(host.name, f"cannot resolve {host.ssh_host!r}: {exc.strerror}") from exc
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
            raise ConnectError(host.name, f"cannot connect to {target}: {reason}") from exc
        except (asyncssh.Error, ValueError, TypeError) as exc:
            raise ConnectError(host.name, f"SSH to {target} failed: {exc}") from exc
        return AsyncsshSession(host, connection)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Inventory YAML gives lists where asyncssh sometimes wants tuples; pass values as they are
    otherwise."""
    return {str(key): value for key, value in options.items()}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
