"""The SSH transport: the SSH edge, where fleet meets asyncssh.

It turns asyncssh's errors into the project's own (ConnectError and its kinds, CommandError), each
message naming the host and what was being attempted (error_mapping.py for a login, session.py for
a command). Other code sees only the `Transport` and `Session` protocols, so a test or a future
transport (a local shell) plugs in without touching the runner. asyncssh is imported by the
modules of fleet/ssh only, and this is the one that other packages load to connect.

What it adds to asyncssh:

- host keys checked by an OpenSSH-style policy (fleet/ssh/hostkeys.py), decided on the key asyncssh
  received in the handshake: asyncssh trusts what known_hosts holds (keys, @cert-authority, revoked
  entries) and asks `HostKeyPolicy.validate_host_public_key` (host_key_policy.py) about any
  other key;
- the user's ~/.ssh/config applies (Port, User, IdentityFile, ProxyJump ...) wherever the
  inventory says nothing (config.py);
- jump hosts (the `tunnel` extra or ProxyJump) connected here, hop by hop, with the same host-key
  policy, so that a jump host's failure is reported as the jump host's (`via`); one login to a
  jump host is shared by every host behind it (jump_pool.py);
- commands stopped on the host when they time out, and a lost connection told from a command's
  failure (session.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncssh

from fleet.core.errors import SSHSetupError
from fleet.core.oslimits import out_of_files
from fleet.core.transport import SSHTarget
from fleet.jumps import Hop
from fleet.ssh import hostkeys
from fleet.ssh.config import Route, effective_port, jump_routes, resolve_route
from fleet.ssh.error_mapping import LOGIN_FAILURES, Login, login_error
from fleet.ssh.host_key_policy import HostKeyPolicy
from fleet.ssh.hostkeys import (
    HostKeyChecking,
    KnownHostsWriter,
    changed_key_warning,
    known_hosts_files,
    known_hosts_line,
)
from fleet.ssh.jump_pool import JumpPool, SharedJump
from fleet.ssh.session import AsyncsshSession

__all__ = ["PREFERRED_CIPHERS", "PREFERRED_KEX", "AsyncsshSession", "AsyncsshTransport", "Route",
           "Warn", "effective_port", "resolve_route"]

# Fast, modern algorithms first (curve25519 key exchange, AES-GCM and ChaCha20-Poly1305), the
# rest of asyncssh's defaults after them so that any server still works. Host key algorithms are
# left to asyncssh, which prefers the ones known_hosts holds keys for, as OpenSSH does.
# An `asyncssh` extras entry in the inventory (kex_algs, encryption_algs, ...) overrides these.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                     "chacha20-poly1305@openssh.com")

Warn = Callable[[str, str], None]


def _with_preferred(preferred: tuple[str, ...], supported: list[bytes]) -> list[str]:
    names = [alg.decode() for alg in supported]
    return [alg for alg in preferred if alg in names] + [alg for alg in names if alg not in preferred]


class AsyncsshTransport:
    """Connects with asyncssh, using the host's Nornir fields, its asyncssh extras and the user's
    ssh config.

    `host_key_checking` is OpenSSH's StrictHostKeyChecking word (yes, accept-new, no); the old
    `check_host_keys=False` means `no`. Warnings (a changed key accepted under `no`) are kept in
    `warnings` as (host, text) and passed to `on_warning` as they happen.
    """

    def __init__(self, *, host_key_checking: str | None = None, check_host_keys: bool = True,
                 login_timeout: float | None = None, on_warning: Warn | None = None) -> None:
        self.host_key_checking: HostKeyChecking = hostkeys.host_key_checking(
            host_key_checking if host_key_checking is not None else check_host_keys)
        self._login_timeout = login_timeout
        self._on_warning = on_warning
        self.warnings: list[tuple[str, str]] = []
        self._known_hosts: dict[tuple[Path, ...], Any] = {}
        self._client_keys: dict[tuple[tuple[str, ...], str | None], Any] = {}
        self._writer = KnownHostsWriter()
        self._jumps = JumpPool()  # jump logins shared by the hosts behind them

    def _known_hosts_files(self, name: str, files: tuple[Path, ...]) -> Any:
        """known_hosts files read and parsed once per run (again after a key was added); a missing
        file holds no keys, as for OpenSSH; one that cannot be read is an SSHSetupError."""
        if files not in self._known_hosts:
            try:
                texts = []
                for file in files:
                    try:
                        texts.append(file.read_text())
                    except FileNotFoundError:
                        continue
                self._known_hosts[files] = asyncssh.import_known_hosts(
                    "".join(t if t.endswith("\n") else f"{t}\n" for t in texts if t))
            except (OSError, UnicodeDecodeError, ValueError, asyncssh.KeyImportError) as exc:
                self._known_hosts[files] = (file, exc)
        known = self._known_hosts[files]
        if isinstance(known, tuple):
            if self.host_key_checking == "no":
                return asyncssh.import_known_hosts("")
            file, error = known
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise SSHSetupError(name, f"cannot read known_hosts file {file}: {reason}")
        return known

    def _client_key_files(self, name: str, paths: tuple[str, ...], passphrase: str | None) -> Any:
        """Private key files read and decoded once per run, not once per host."""
        key = (paths, passphrase)
        if key not in self._client_keys:
            try:
                self._client_keys[key] = asyncssh.load_keypairs(list(paths), passphrase)
            except OSError as exc:
                self._client_keys[key] = SSHSetupError(
                    name, f"cannot read client key file {exc.filename or ', '.join(paths)}: "
                    f"{exc.strerror or exc}")
            except (ValueError, asyncssh.Error) as exc:
                self._client_keys[key] = SSHSetupError(
                    name, f"cannot load client key file {', '.join(paths)}: {exc}")
        keys = self._client_keys[key]
        if isinstance(keys, SSHSetupError):
            raise SSHSetupError(name, keys.reason)
        return keys

    def connect_options(self, host: SSHTarget, *, timeout: float) -> dict[str, Any]:
        """The keyword arguments for asyncssh.connect(), extras last so that they win. No port
        when the inventory gives none: the ssh config's then applies, else 22. Raises
        SSHSetupError for a client key or known_hosts file that cannot be read."""
        options: dict[str, Any] = {
            "connect_timeout": timeout,
            "login_timeout": self._login_timeout or timeout,
            "kex_algs": _with_preferred(PREFERRED_KEX, asyncssh.kex.get_default_kex_algs()),
            "encryption_algs": _with_preferred(PREFERRED_CIPHERS,
                                               asyncssh.encryption.get_default_encryption_algs()),
            "keepalive_interval": 15,
            "keepalive_count_max": 3,
        }
        if host.ssh_port is not None:
            options["port"] = host.ssh_port
        if host.username is not None:
            options["username"] = host.username
        if host.password is not None:
            options["password"] = host.password
        options.update(_plain(host.ssh_options))
        keys = options.get("client_keys")
        if isinstance(keys, (list, tuple)) and keys and all(isinstance(k, str) for k in keys):
            options["client_keys"] = self._client_key_files(host.name, tuple(keys), options.get("passphrase"))
        files = known_hosts_files(host.ssh_options)
        if files is not None:
            options["known_hosts"] = self._known_hosts_files(host.name, files)
        return options

    async def close(self) -> None:
        """Close the shared jump connections no session uses any more, and wait (CLOSE_WAIT at
        most) for every jump connection being closed; the others close when their last session
        does, which waits for them. Sessions themselves are closed by whoever opened them."""
        await self._jumps.close()

    def forget_failures(self) -> None:
        """Log in to a jump host again next time even though it failed before (a new run through
        a transport that outlives runs, as the persistent-connection process's do)."""
        self._jumps.forget_failures()

    async def connect(self, host: SSHTarget, *, timeout: float) -> AsyncsshSession:
        options = self.connect_options(host, timeout=timeout)
        files = known_hosts_files(host.ssh_options)
        config = options.get("config", ())
        try:
            route = await asyncio.to_thread(resolve_route, host.ssh_host, host.ssh_port,
                                            options.get("username"), config)
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise SSHSetupError(host.name, f"cannot read the ssh config: {out_of_files() or exc}") from exc
        jump_spec: str | None = route.tunnel
        if "tunnel" in options:
            jump_spec = options["tunnel"] if isinstance(options["tunnel"], str) else None
            if jump_spec is not None:
                del options["tunnel"]
        held: list[SharedJump] = []
        through: str | None = None
        try:
            if jump_spec:
                chain: tuple[Any, ...] = (JumpPool.trust_key(host.ssh_options),)
                for hop, hop_route in await jump_routes(host.name, jump_spec, config):
                    chain += ((hop, hop_route),)
                    held.append(await self._jump(host.name, chain, hop, hop_route,
                                                 held[-1] if held else None, options, files, timeout))
                    through = hop_route.target
            if held:  # a spec of only commas names no hop: connect directly, as OpenSSH does
                options["tunnel"] = await held[-1].connection(host.name)
            connection = await self._handshake(host.name, host.ssh_host, options, files, route=route,
                                               timeout=timeout, through=through)
        except BaseException:
            self._jumps.release(held)  # a jump connection it closes is waited for by close()
            raise
        return AsyncsshSession(host, connection,
                               release=(lambda: self._jumps.release_and_close(held)) if held else None,
                               jumps=held, target=route.target)

    async def _jump(self, name: str, chain: tuple[Any, ...], hop: Hop, route: Route,
                    before: SharedJump | None, options: Mapping[str, Any],
                    files: tuple[Path, ...] | None, timeout: float) -> SharedJump:
        """The one login to a jump host (at this place in a chain) that every host behind it
        shares: started by the first host that needs it, awaited by the others; a login that
        failed is the same failure for all of them, one that ended is replaced."""
        async def login() -> asyncssh.SSHClientConnection:
            tunnel = await before.connection(name) if before is not None else None
            return await self._open_hop(name, hop, route, tunnel, options, files, timeout)

        return self._jumps.share(chain, f"{hop.host}:{route.port}", login)

    async def _open_hop(self, name: str, hop: Hop, route: Route, tunnel: asyncssh.SSHClientConnection | None,
                        options: Mapping[str, Any], files: tuple[Path, ...] | None,
                        timeout: float) -> asyncssh.SSHClientConnection:
        """Log in to a jump host: its user and port from the spec or the ssh config, the target's
        client keys, known_hosts and host-key policy; never the target's password."""
        hop_options = {key: options[key] for key in (
            "connect_timeout", "login_timeout", "kex_algs", "encryption_algs", "keepalive_interval",
            "keepalive_count_max", "known_hosts", "client_keys", "passphrase", "config") if key in options}
        hop_options["tunnel"] = tunnel  # None: the hop's own ProxyJump was expanded already
        if hop.port is not None:
            hop_options["port"] = hop.port
        if hop.username is not None:
            hop_options["username"] = hop.username
        return await self._handshake(name, hop.host, hop_options, files, route=route, timeout=timeout,
                                     via=f"{hop.host}:{route.port}")

    async def _handshake(self, name: str, address: str, options: Mapping[str, Any],
                         files: tuple[Path, ...] | None, *, route: Route, timeout: float,
                         via: str | None = None, through: str | None = None) -> asyncssh.SSHClientConnection:
        """One asyncssh.connect with the host-key policy; its errors as the project's."""
        known = options.get("known_hosts", ())
        client = HostKeyPolicy(self.host_key_checking, known if known != () else None,
                                can_record=files is not None)
        opts = dict(options)
        opts["client_factory"] = lambda: client
        password = opts.pop("password", None)
        if password is not None:  # asked for at login, after the host key was judged
            opts["password"] = lambda: None if client.changed_key_accepted else password
        login = Login(name, route.target, route.host, opts.get("username") or route.username, timeout,
                      via=via, through=through)
        try:
            connection = await asyncssh.connect(address, **opts)
        except LOGIN_FAILURES as exc:
            if isinstance(exc, asyncssh.PermissionDenied):
                await self._record(client, files)  # the key was proven; OpenSSH records it too
            raise login_error(login, exc, client.offered, files) from exc
        finally:
            if client.changed_key_accepted and client.offered is not None:  # even when login failed
                self._warn(name, login.prefix + changed_key_warning(client.offered, files))
        await self._record(client, files)
        return connection

    async def _record(self, client: HostKeyPolicy, files: tuple[Path, ...] | None) -> None:
        """accept-new: write the key just accepted to the (first) known_hosts file in use."""
        offered = client.offered
        if (self.host_key_checking != "accept-new" or not client.accepted or offered is None
                or offered.changed or offered.authority or not files):
            return
        await self._writer.append(files[0], known_hosts_line(offered.host, offered.port, offered.public_key))
        self._known_hosts.pop(files, None)  # read again: a reconnection trusts it

    def _warn(self, host: str, text: str) -> None:
        self.warnings.append((host, text))
        if self._on_warning is not None:
            self._on_warning(host, text)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Inventory YAML gives lists where asyncssh sometimes wants tuples; pass values as they are
    otherwise."""
    return {str(key): value for key, value in options.items()}

