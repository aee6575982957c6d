"""The Nornir connection plugin `fleet`: one SSH connection per host, kept across nr.run calls.

    nr.run(task=fleet.nornir.setup)          # logs in to each host: host.connections["fleet"]
    nr.run(task=fleet.nornir.mesh_probe)     # the same connections
    nr.close_connections(on_failed=True)     # and they end (on_failed: hosts that failed too)

Registered under the entry point group `nornir.plugins.connections` (pyproject.toml) as `fleet`,
as nornir_netmiko and nornir_scrapli register theirs, and opened by fleet's task functions
(fleet.nornir.tasks) on first use, with the host's settings as fleet validated them
(`host_connection`). `host.get_connection("fleet", nr.config)` is the HostConnection.

Design: Nornir's runners are threads, and asyncssh's connections belong to the event loop that
opened them. So every fleet connection lives on one event loop in a background thread
(fleet.nornir.loop.SHARED, started by the first connection and stopped when the last one closes),
and a task function in a runner thread runs its work there through its host's HostConnection
(`HostConnection.run`), waiting for the outcome. The SSH side is fleet's own transport
(fleet.ssh.transport.AsyncsshTransport): its host-key policy, ssh config, jump hosts, timeouts
and typed errors. A login that fails raises its ConnectError from open() (so Nornir keeps no
connection), which fleet's task functions turn into the host's failed Result.

Opened by hand (`host.get_connection("fleet", nr.config)`), it uses Nornir's parameters for
`fleet`: hostname, port, username, password and `extras` (asyncssh's options, as in the
inventory's `asyncssh` connection options), whose one key `fleet` (a mapping, taken out before
asyncssh sees the rest) holds fleet's own settings: `name` (the host's name in messages; default
the hostname), `host_key_checking` (yes, accept-new or no; default yes) and `connect_timeout`
(seconds; default fleet.core.runner.RunLimits's). fleet's task functions reopen a connection that
was opened with other settings than the ones they were given.

Nornir loads every installed connection plugin whenever anyone calls InitNornir, so this module
imports nothing of fleet at load time; the transport is imported when a connection opens.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from nornir.core.configuration import Config
from nornir.core.inventory import Host

from fleet.nornir.loop import SHARED, LoopThread

if TYPE_CHECKING:
    from fleet.core.transport import Session, SSHTarget
    from fleet.ssh.transport import AsyncsshTransport

logger = logging.getLogger(__name__)

CONNECTION = "fleet"  # the plugin's name: host.connections[CONNECTION], host.get_connection(...)
SETTINGS = "fleet"  # the key of `extras` that holds fleet's own settings
_SETTING_NAMES = ("name", "host_key_checking", "connect_timeout")

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionTarget:
    """Where and how a connection logs in (fleet's SSHTarget): a FleetHost's values, or the
    parameters Nornir gave open()."""

    name: str
    ssh_host: str
    ssh_port: int | None
    username: str | None
    password: str | None = field(repr=False)
    ssh_options: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, host: SSHTarget) -> ConnectionTarget:
        return cls(host.name, host.ssh_host, host.ssh_port, host.username, host.password,
                   dict(host.ssh_options))


class HostConnection:
    """One host's kept SSH connection, on the shared loop: what `host.get_connection("fleet",
    config)` returns. `run(coroutine)` runs fleet's async code on its loop from any other thread;
    `transport()` is the fleet Transport whose session is this connection, for fleet's runner."""

    def __init__(self, loop: LoopThread, target: ConnectionTarget, host_key_checking: str,
                 connect_timeout: float, transport: AsyncsshTransport, session: Session) -> None:
        self.loop = loop
        self.target = target
        self.host_key_checking = host_key_checking
        self.connect_timeout = connect_timeout
        self.logins = 1  # 1 + the times the connection was found lost and opened again
        self._transport = transport
        self._session: Session | None = session

    @classmethod
    def login(cls, loop: LoopThread, target: ConnectionTarget, host_key_checking: str,
              connect_timeout: float) -> HostConnection:
        """Log in (on `loop`); a failure raises fleet's ConnectError (its kind: auth,
        unreachable, host-key-unknown ...)."""
        from fleet.ssh.transport import AsyncsshTransport  # asyncssh: only when connecting

        async def opened() -> HostConnection:
            transport = AsyncsshTransport(host_key_checking=host_key_checking, on_warning=_warn)
            try:
                session = await transport.connect(target, timeout=connect_timeout)
            except BaseException:
                await transport.close()
                raise
            return cls(loop, target, host_key_checking, connect_timeout, transport, session)

        return loop.run(opened())

    @property
    def closed(self) -> bool:
        """close() was called (a connection lost by the host is opened again on next use)."""
        return self._session is None

    def serves(self, target: SSHTarget, host_key_checking: str) -> bool:
        """Was it opened for this target (every setting) under this host-key policy?"""
        return (not self.closed and self.host_key_checking == host_key_checking
                and self.target == ConnectionTarget.of(target))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the connection's loop and return its outcome (from another thread)."""
        return self.loop.run(coroutine)

    def transport(self) -> KeptTransport:
        return KeptTransport(self)

    async def session(self, timeout: float) -> Session:
        """The open session; when the host ended it, logged in again (on the loop)."""
        if self._session is None:
            from fleet.core.errors import ConnectError

            raise ConnectError(self.target.name, "its fleet connection was closed")
        if getattr(self._session, "closed", False):
            await self._session.close()
            self._session = await self._transport.connect(self.target, timeout=timeout)
            self.logins += 1
        return self._session

    def close(self) -> None:
        """Close the session and the transport (on the loop, from another thread)."""
        session, self._session = self._session, None
        if session is None:
            return

        async def closed() -> None:
            try:
                await session.close()
            finally:
                await self._transport.close()

        self.loop.run(closed())


class KeptTransport:
    """fleet's Transport over one HostConnection: connect() gives its session, for every host
    the runner is given (a task function's one host); closing a session or the transport leaves
    the connection open, as it is the plugin's to close."""

    def __init__(self, connection: HostConnection) -> None:
        self._connection = connection

    async def connect(self, host: SSHTarget, *, timeout: float) -> Session:
        return _KeptSession(await self._connection.session(timeout))

    async def close(self) -> None:
        return None


class _KeptSession:
    """A session the runner may close when its run ends: the connection stays open."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def closed(self) -> bool:
        return bool(getattr(self._session, "closed", False))

    async def run(self, command: str, *, timeout: float) -> Any:
        return await self._session.run(command, timeout=timeout)

    async def close(self) -> None:
        return None


class FleetConnection:
    """Nornir's connection plugin `fleet` (nornir.core.plugins.connections.ConnectionPlugin)."""

    def __init__(self) -> None:
        self._connection: HostConnection | None = None

    @property
    def connection(self) -> HostConnection:
        if self._connection is None:
            raise RuntimeError("the fleet connection is not open")
        return self._connection

    def open(self, hostname: str | None, username: str | None, password: str | None,
             port: int | None, platform: str | None, extras: dict[str, Any] | None = None,
             configuration: Config | None = None) -> None:
        target, host_key_checking, connect_timeout = _settings(hostname, username, password, port,
                                                               extras)
        loop = SHARED.acquire()
        try:
            self._connection = HostConnection.login(loop, target, host_key_checking,
                                                    connect_timeout)
        except BaseException:
            SHARED.release(loop)
            raise

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.close()
        finally:
            SHARED.release(connection.loop)


def host_connection(host: Host, configuration: Config, target: SSHTarget, *,
                    host_key_checking: str, connect_timeout: float) -> HostConnection:
    """The host's kept fleet connection for `target` (the host's validated FleetHost) under this
    host-key policy: opened (logged in) when the host has none, or one opened otherwise, then
    kept in `host.connections` for the next calls. A failed login raises its ConnectError."""
    from fleet.core.errors import UsageError
    from fleet.ssh.hostkeys import host_key_checking as policy

    _register()
    try:
        checking = policy(host_key_checking)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    kept = host.connections.get(CONNECTION)
    if kept is not None:
        found = kept.connection if isinstance(kept, FleetConnection) else None
        if found is not None and found.serves(target, checking):
            return found
        host.close_connection(CONNECTION)  # opened with other settings (or by another plugin)
    settings = {"name": target.name, "host_key_checking": checking,
                "connect_timeout": connect_timeout}
    host.open_connection(CONNECTION, configuration, hostname=target.ssh_host,
                         port=target.ssh_port, username=target.username,
                         password=target.password, platform=None,
                         extras={**target.ssh_options, SETTINGS: settings},
                         default_to_host_attributes=False)
    connection: HostConnection = host.get_connection(CONNECTION, configuration)
    return connection


def _register() -> None:
    """Make sure Nornir knows the plugin: an installed fleet registers it by its entry point
    (InitNornir loads those), but a Nornir object made otherwise (load_inventory(DIR).nornir, a
    source tree) has not read them. Registering the same class again is a no-op for Nornir."""
    from nornir.core.plugins.connections import ConnectionPluginRegister

    if CONNECTION not in ConnectionPluginRegister.available:
        ConnectionPluginRegister.register(CONNECTION, FleetConnection)


def _settings(hostname: str | None, username: str | None, password: str | None,
              port: int | None, extras: Mapping[str, Any] | None,
              ) -> tuple[ConnectionTarget, str, float]:
    """open()'s parameters checked: the target, the host-key policy and the login timeout."""
    from fleet.core.errors import UsageError
    from fleet.core.runner import RunLimits
    from fleet.inventory import check_username, parse_ssh_hostname
    from fleet.ssh.hostkeys import host_key_checking as policy

    options = dict(extras or {})
    own = options.pop(SETTINGS, None) or {}
    where = f"fleet connection to {hostname!r}"
    if not isinstance(own, Mapping) or set(own) - set(_SETTING_NAMES):
        raise UsageError(f"{where}: extras[{SETTINGS!r}] is a mapping of "
                         f"{', '.join(_SETTING_NAMES)}, not {own!r}")
    if hostname is None:
        raise UsageError("a fleet connection needs a hostname")
    try:
        parse_ssh_hostname(hostname)
        if username is not None:
            check_username(username)
        checking = policy(own.get("host_key_checking", "yes"))
        timeout = float(own.get("connect_timeout", RunLimits().connect_timeout))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from exc
    if not timeout > 0:
        raise UsageError(f"{where}: connect_timeout must be positive, not {timeout:g}")
    name = own.get("name", hostname)
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}: its name must be a non-empty string, not {name!r}")
    return (ConnectionTarget(name, hostname, port, username, password, options), checking,
            timeout)


def _warn(host: str, text: str) -> None:
    logger.warning("%s%s", f"{host}: " if host else "", text)


__all__ = ["CONNECTION", "ConnectionTarget", "FleetConnection", "HostConnection", "KeptTransport",
           "host_connection"]
