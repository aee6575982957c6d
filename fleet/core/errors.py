"""The project's exceptions.

    FleetError                      base of everything fleet raises on purpose
    ├── InventoryError              bad inventory input; names file, host and field (exit 2)
    ├── UsageError                  bad command-line input (exit 2)
    ├── TaskError                   a task file that cannot be found or loaded (exit 2)
    ├── HostError                   one host failed; carried as data in that host's Result
    │   ├── ConnectError            could not reach the host            kind `unreachable`
    │   │   ├── AuthError           it would not let us log in          kind `auth`
    │   │   ├── HostKeyUnknownError its host key is not known           kind `host-key-unknown`
    │   │   ├── HostKeyChangedError its host key differs from the known kind `host-key-changed`
    │   │   ├── SSHSetupError       a local SSH file (key, known_hosts) kind `ssh-setup`
    │   │   │                       is missing or unreadable
    │   │   └── ConnectionLostError the connection (or its jump host's) kind `connection-lost`
    │   │                           ended while a command ran
    │   ├── CommandError            a remote command failed             kind `command`
    │   │   └── CommandTimeoutError it did not finish in time           kind `timeout`
    │   ├── HostTimeoutError        the task on the host ran too long   kind `timeout`
    │   ├── PreflightError          the host lacks what a task needs    kind `preflight`
    │   ├── PrivilegeError          no root and no `sudo -n`            kind `privilege`
    │   ├── ForeignTunnelError      a sit1 that fleet did not make      kind `foreign-tunnel`
    │   ├── ForeignRouteError       a route fleet did not make          kind `foreign-route`
    │   └── HostInterrupted         the run was stopped (Ctrl-C)        kind `interrupted`
    └── LabError                    the local QEMU lab could not be built, started or stopped

Every HostError has a `kind` (the words above, `error` for the base class): the table and every
JSON report show it as `error_kind`. Kinds are decided where the failure happens (the SSH edge,
the task) and travel as types, never recovered from message text. `error_kind()` reads it back
from any exception, `host_error_from_kind()` rebuilds one from a kind (the persistent-connection
process sends kinds over its socket).
"""

from __future__ import annotations


class FleetError(Exception):
    """Base of every error fleet raises on purpose."""


class UsageError(FleetError):
    """The command line asks for something that cannot be done."""


class TaskError(FleetError):
    """A task named on the command line cannot be found or loaded."""


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


class HostError(FleetError):
    """One host failed; the run records it and carries on with the others."""

    kind = "error"

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.reason = message
        super().__init__(f"{host}: {message}")


class ConnectError(HostError):
    """The host could not be reached (refused, no route, DNS, connect timeout).

    `via` names the jump host when the failure was the jump host's, not the target's.
    """

    kind = "unreachable"

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

    def __init__(self, host: str, message: str, *, via: str | None = None, command: str = "",
                 stdout: str = "", stderr: str = "") -> None:
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(host, message, via=via)


class CommandError(HostError):
    """A remote command failed (non-zero exit, refused channel)."""

    kind = "command"

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
    """A task did not finish on the host within --host-timeout."""

    kind = "timeout"


class PreflightError(HostError):
    """The host lacks something the task needs (sit, IPv6, ip, ping)."""

    kind = "preflight"


class PrivilegeError(PreflightError):
    """The task needs root and the login user is not root and `sudo -n` refused."""

    kind = "privilege"


class ForeignTunnelError(HostError):
    """The host has a tunnel of the same name that fleet did not make; it was left untouched."""

    kind = "foreign-tunnel"


class ForeignRouteError(HostError):
    """The host has a route for a prefix fleet was asked to route, not fleet's; left untouched."""

    kind = "foreign-route"


class HostInterrupted(HostError):
    """The run was interrupted before this host finished."""

    kind = "interrupted"


class LabError(FleetError):
    """The local lab could not be built, started, inspected or stopped."""


HOST_ERROR_KINDS: dict[str, type[HostError]] = {
    cls.kind: cls for cls in (HostError, ConnectError, AuthError, HostKeyUnknownError,
                              HostKeyChangedError, SSHSetupError, ConnectionLostError, CommandError,
                              CommandTimeoutError, PreflightError, PrivilegeError, ForeignTunnelError,
                              ForeignRouteError, HostInterrupted)
}


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
    """Rebuild a HostError of the given kind, with the fields its class has (`command`, `stdout`
    ... for command errors and lost connections, `via` for connection errors)."""
    cls = HOST_ERROR_KINDS.get(kind, HostError)
    if issubclass(cls, ConnectionLostError):
        allowed = {"via", "command", "stdout", "stderr"}
        return cls(host, message, **{k: v for k, v in fields.items() if k in allowed})  # type: ignore[arg-type]
    if issubclass(cls, CommandError):
        allowed = {"command", "exit_status", "stdout", "stderr"}
        return cls(host, message, **{k: v for k, v in fields.items() if k in allowed})  # type: ignore[arg-type]
    if issubclass(cls, ConnectError):
        return cls(host, message, via=fields.get("via"))  # type: ignore[arg-type]
    return cls(host, message)
