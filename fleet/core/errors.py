"""The project's exceptions: the base classes every feature builds on, and the registry of kinds.

    FleetError                      base of everything fleet raises on purpose
    ├── InventoryError              bad inventory input; names file, host and field (exit 2)
    ├── UsageError                  bad command-line input (exit 2)
    ├── TaskError                   a task file that cannot be found or loaded (exit 2)
    ├── LocalError                  something on this machine (not a host of the fleet) failed:
    │                               a local tool, process or state (fleet.lab.errors.LabError)
    └── HostError                   one host failed; carried as data in that host's Result
        ├── ConnectError            could not reach the host            kind `unreachable`
        │   ├── AuthError           it would not let us log in          kind `auth`
        │   ├── HostKeyUnknownError its host key is not known           kind `host-key-unknown`
        │   ├── HostKeyChangedError its host key differs from the known kind `host-key-changed`
        │   ├── SSHSetupError       a local SSH file (key, known_hosts) kind `ssh-setup`
        │   │                       is missing or unreadable
        │   └── ConnectionLostError the connection (or its jump host's) kind `connection-lost`
        │                           ended while a command ran
        ├── CommandError            a remote command failed             kind `command`
        │   └── CommandTimeoutError it did not finish in time           kind `timeout`
        ├── HostTimeoutError        the task on the host ran too long   kind `host-timeout`
        ├── PreflightError          the host lacks what a task needs    kind `preflight`
        │   └── PrivilegeError      no root and no `sudo -n`            kind `privilege`
        └── HostInterrupted         the run was stopped (Ctrl-C)        kind `interrupted`

A feature adds its own HostErrors in its own package (fleet.tunnel.errors: `foreign-tunnel`,
`foreign-route`); this module knows none of them.

Every HostError class that names a `kind` registers it when the class is defined
(`__init_subclass__`): two classes with one kind are an error at import time, and a subclass
that names no kind of its own shares its parent's and is rebuilt as its parent. The table and
every JSON report show the kind as `error_kind`. Kinds are decided where the failure happens
(the SSH edge, the task) and travel as types, never recovered from message text: `error_kind()`
reads it back from any exception, `to_json()` and `host_error_from_json()` carry one across a
process boundary (the persistent-connection socket), with the fields its class names
(`fields`). A kind is rebuilt only when its class was imported: fleet.error_kinds imports every
feature's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar


class FleetError(Exception):
    """Base of every error fleet raises on purpose."""


class UsageError(FleetError):
    """The command line asks for something that cannot be done."""


class TaskError(FleetError):
    """A task named on the command line cannot be found or loaded."""


class LocalError(FleetError):
    """Something on this machine, not on a host of the fleet, failed: a local tool, a local
    process, local state. Features name their own (fleet.lab.errors.LabError)."""


class InventoryError(FleetError):
    """The inventory is unreadable or invalid.

    The message always names the file and, where they apply, the host and the field.
    """

    def __init__(self, message: str, *, file: str | None = None, host: str | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.host = host
        self.field = field
        where = [part for part in (
            file,
            f"host {host!r}" if host else None,
            f"field {field!r}" if field else None,
        ) if part]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


_KINDS: dict[str, type[HostError]] = {}


class HostError(FleetError):
    """One host failed; the run records it and carries on with the others.

    `kind` names the failure (registered when the class is defined, see the module's docstring);
    `fields` are the keyword arguments of its constructor, beyond host and message, that travel
    with it (to_json / host_error_from_json).
    """

    kind: ClassVar[str] = "error"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _register(cls)

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.reason = message
        super().__init__(f"{host}: {message}")

    def to_json(self) -> dict[str, Any]:
        """The failure as JSON: `kind`, `host`, `error` (the reason) and the class's fields that
        are set."""
        data: dict[str, Any] = {"kind": self.kind, "host": self.host, "error": self.reason}
        for name in self.fields:
            value = getattr(self, name, None)
            if value is not None:
                data[name] = value
        return data


def _register(cls: type[HostError]) -> None:
    kind = cls.kind
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__}: an error kind is a non-empty string, "
                        f"not {kind!r}")
    taken = _KINDS.get(kind)
    if taken is not None and taken is not cls:
        raise TypeError(f"error kind {kind!r} of {cls.__module__}.{cls.__qualname__} is already "
                        f"{taken.__module__}.{taken.__qualname__}'s: give it a kind of its own")
    _KINDS[kind] = cls


_register(HostError)

# Every registered kind and its class, read-only and live: a feature's kinds join it when its
# errors module is imported.
HOST_ERROR_KINDS: Mapping[str, type[HostError]] = MappingProxyType(_KINDS)


class ConnectError(HostError):
    """The host could not be reached (refused, no route, DNS, connect timeout).

    `via` names the jump host when the failure was the jump host's, not the target's.
    """

    kind = "unreachable"
    fields: ClassVar[tuple[str, ...]] = ("via",)

    def __init__(self, host: str, message: str, *, via: str | None = None) -> None:
        self.via = via
        super().__init__(host, message)


class AuthError(ConnectError):
    """The host (or its jump host) refused every credential we offered."""

    kind = "auth"


class HostKeyUnknownError(ConnectError):
    """The host's key is in no known_hosts file in use."""

    kind = "host-key-unknown"


class HostKeyChangedError(ConnectError):
    """The host offered a key other than the one known_hosts holds for it."""

    kind = "host-key-changed"


class SSHSetupError(ConnectError):
    """This side cannot log in: a client key or known_hosts file named for the host is missing,
    unreadable or invalid. The message names the file; nothing was sent to the host."""

    kind = "ssh-setup"


class ConnectionLostError(ConnectError):
    """The connection ended while a command ran (or was about to): the host went, its sshd was
    killed or closed the connection, or the jump host it goes through (`via`) did. The command
    gave no exit status, so whether it ran to the end is not known; never a command's result.
    `stdout` and `stderr` hold what it said before."""

    kind = "connection-lost"
    fields: ClassVar[tuple[str, ...]] = ("via", "command", "stdout", "stderr")

    def __init__(self, host: str, message: str, *, via: str | None = None, command: str = "",
                 stdout: str = "", stderr: str = "") -> None:
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(host, message, via=via)


class CommandError(HostError):
    """A remote command failed (non-zero exit, refused channel)."""

    kind = "command"
    fields: ClassVar[tuple[str, ...]] = ("command", "exit_status", "stdout", "stderr")

    def __init__(self, host: str, message: str, *, command: str = "", exit_status: int | None = None,
                 stdout: str = "", stderr: str = "") -> None:
        self.command = command
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(host, message)


class CommandTimeoutError(CommandError):
    """A remote command did not finish within its timeout (it was stopped on the host)."""

    kind = "timeout"


class HostTimeoutError(HostError):
    """A task did not finish on the host within --host-timeout (the runner's own limit; a task's
    own TimeoutError is the task's failure, not this)."""

    kind = "host-timeout"


class PreflightError(HostError):
    """The host lacks something the task needs (sit, IPv6, ip, ping)."""

    kind = "preflight"


class PrivilegeError(PreflightError):
    """The task needs root and the login user is not root and `sudo -n` refused."""

    kind = "privilege"


class HostInterrupted(HostError):
    """The run was interrupted before this host finished."""

    kind = "interrupted"


def error_kind(exc: object) -> str | None:
    """The kind of a host's failure: a HostError's own, `error` for anything else, None for none."""
    if exc is None:
        return None
    return exc.kind if isinstance(exc, HostError) else "error"


def failure_reason(exc: object) -> str:
    """A host's failure in one line, without the host's name (the table and JSON carry it)."""
    if isinstance(exc, HostError):
        return exc.reason
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)



def host_error_from_kind(kind: str, host: str, message: str, **fields: object) -> HostError:
    """Rebuild a HostError of the given kind (the base HostError for a kind not registered), with
    those of `fields` its class carries (`fields`); the others are left out."""
    cls = _KINDS.get(kind, HostError)
    return cls(host, message, **{name: fields[name] for name in cls.fields if name in fields})


def host_error_from_json(data: Mapping[str, Any]) -> HostError:
    """The HostError that `to_json()` gave (`kind`, `host`, `error` and its fields)."""
    fields = {name: value for name, value in data.items() if name not in ("kind", "host", "error")}
    return host_error_from_kind(str(data.get("kind")), str(data.get("host")), str(data.get("error")),
                                **fields)
