"""What the runner needs of a transport: sessions that run commands, and what a command did.

No SSH library here: the runner, the tasks and the persistent-connection client import this module
without paying for asyncssh (and its cryptography) at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.core.terminal import printable

DEFAULT_SSH_PORT = 22  # where SSH connects when neither the inventory nor ~/.ssh/config says


class SSHTarget(Protocol):
    """Where and how to log in to one host (a FleetHost, or a ConnectionSpec sent over a socket)."""

    @property
    def name(self) -> str: ...
    @property
    def ssh_host(self) -> str: ...
    @property
    def ssh_port(self) -> int | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ssh_options(self) -> Mapping[str, Any]: ...


class RunTarget(SSHTarget, Protocol):
    """A host the runner works on: where to log in, and the Nornir host its Results belong to."""

    @property
    def nornir_host(self) -> Any: ...


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did."""

    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def last_words(self) -> str:
        """The last line the command said (stderr first, then stdout), or "no output", with its
        control characters escaped: it goes into messages printed on a terminal."""
        said = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return printable(said[-1]) if said else "no output"


class RepeatedCommand(str):
    """A command a task runs again every round (the mesh's probe): a connection kept between
    runs (`--persist`, `fleet watch`) may run it in a shell it keeps open for it
    (fleet.ssh.kept_shell) instead of a new session each time, which spares the host a channel,
    a fork and a login shell per round. For fleet's own POSIX sh scripts that read no stdin and
    leave nothing behind; anywhere else it is the plain command it contains."""

    __slots__ = ()


class Session(Protocol):
    """An open connection to one host."""

    async def run(self, command: str, *, timeout: float) -> CommandResult: ...

    async def close(self) -> None: ...


async def run_kept(session: Session, command: str, *, timeout: float) -> CommandResult:
    """`command` on a session kept between runs (`--persist`, `fleet watch`): a RepeatedCommand
    in the shell the session keeps for it, when it can keep one (`run_repeated`), anything else
    as `run`."""
    repeated = getattr(session, "run_repeated", None)
    if isinstance(command, RepeatedCommand) and repeated is not None:
        result: CommandResult = await repeated(command, timeout=timeout)
        return result
    return await session.run(command, timeout=timeout)


class Transport(Protocol):
    """Opens sessions to hosts; `close()` releases what the transport holds itself (sessions are
    closed by whoever opened them). The caller that made a transport closes it."""

    async def connect(self, host: SSHTarget, *, timeout: float) -> Session: ...

    async def close(self) -> None: ...
