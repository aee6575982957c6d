"""The project's exceptions.

    FleetError                  base of everything fleet raises on purpose
    ├── InventoryError          bad inventory input; names file, host and field (exit 2)
    ├── UsageError              bad command-line input (exit 2)
    ├── TaskError               a task file that cannot be found or loaded (exit 2)
    ├── HostError               one host failed; carried as data in that host's Result
    │   ├── ConnectError        could not reach or log in to the host
    │   ├── CommandError        a remote command failed or timed out
    │   └── PreflightError      the host lacks what a task needs (sit, IPv6, ip, ping, privilege)
    └── LabError                the local QEMU lab could not be built, started or stopped
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

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.reason = message
        super().__init__(f"{host}: {message}")


class ConnectError(HostError):
    """The host could not be reached or would not let us log in."""


class CommandError(HostError):
    """A remote command failed (non-zero exit) or did not finish in time."""

    def __init__(self, host: str, message: str, *, command: str = "", exit_status: int | None = None,
                 stdout: str = "", stderr: str = "") -> None:
        self.command = command
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(host, message)


class PreflightError(HostError):
    """The host lacks something the task needs."""


class LabError(FleetError):
    """The local lab could not be built, started, inspected or stopped."""
