"""A Session over one asyncssh connection: run a command, stop it on the host when it times out
or is cancelled, tell a lost connection (the host's or a jump host's) from a command's failure.

- a command that times out or is cancelled is stopped on the host: every command first tells its
  process group (its shell is a session leader under sshd), and the group is killed on a second
  channel;
- a command's stdin is empty (as `ssh -n`): one that reads it reads nothing, and does not hang;
- a connection that ends while a command runs (the host's sshd killed, the host or its jump host
  gone) is a ConnectionLostError naming the jump host when it was the jump host's, never a
  command's exit status; a command killed by a signal on the host exits 128 + the signal's number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import asyncssh

from fleet.core.errors import CommandError, CommandTimeoutError, ConnectionLostError
from fleet.core.privilege import is_privileged, privileged
from fleet.core.transport import CommandResult, SSHTarget
from fleet.ssh.group_marker import marked, split_marker
from fleet.ssh.jump_pool import SharedJump
from fleet.ssh.kept_shell import KeptShell, KeptShellGone

STOP_TIMEOUT = 6.0  # seconds to stop a timed-out command's processes and close its channel
TERM_GRACE = 2.0  # seconds a stopped command has after TERM (to undo what it did) before KILL
MARKER_WAIT = 2.0  # seconds to wait for a just-started command to say its process group
LOST_WAIT = 1.0  # seconds a channel that ended with no exit status waits to see its connection end

def stop_group_command(pgid: int) -> str:
    """Stop a process group: TERM, up to TERM_GRACE seconds for it to end (an apply script uses
    them to undo its steps), then KILL; exit 0 only once no live process of it is left (zombies
    waiting for a parent that does not reap them are dead: /proc shows their state)."""
    rounds = round(TERM_GRACE / 0.1)
    return (f"g={pgid}\n"
            "alive() {\n"
            "  kill -0 -$g 2>/dev/null &&\n"
            r"  cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/.*) \([^Z]\) [0-9]* \([0-9]*\) .*/\2/p'"
            " | grep -qx $g\n"
            "}\n"
            "kill -TERM -$g 2>/dev/null || exit 0\n"
            f"i=0; while [ $i -lt {rounds} ] && alive; do sleep 0.1; i=$((i + 1)); done\n"
            "alive || exit 0\n"
            "kill -KILL -$g 2>/dev/null\n"
            "for _ in 1 2 3 4 5 6 7 8 9 10; do alive || exit 0; sleep 0.1; done\n"
            "exit 1")


class AsyncsshSession:
    """A Session over one asyncssh connection (and the jump-host connections it goes through)."""

    def __init__(self, host: SSHTarget, connection: asyncssh.SSHClientConnection, *,
                 release: Callable[[], Awaitable[None]] | None = None,
                 jumps: Sequence[SharedJump] = (), target: str | None = None) -> None:
        self._host = host
        self._target = target or host.ssh_host  # host:port, where the ssh config put it
        self._connection = connection
        self._release = release  # lets go of the shared jump connections this one goes through
        self._jumps = tuple(jumps)  # the jump logins it goes through, first hop first
        self._shell: KeptShell | None = None  # for run_repeated, once asked for
        self._no_shell = ""  # why this host cannot keep a shell: its rounds get sessions
        self._shell_starting = False  # one start at a time: a round meanwhile gets a session

    @property
    def closed(self) -> bool:
        """The connection has ended (closed by either side or lost)."""
        return self._connection.is_closed()

    async def run(self, command: str, *, timeout: float) -> CommandResult:
        name = self._host.name
        process: asyncssh.SSHClientProcess[bytes] | None = None
        try:
            async with asyncio.timeout(timeout):
                process = await self._connection.create_process(marked(command), encoding=None)
                process.stdin.write_eof()  # no input, as `ssh -n`: a command that reads stdin ends
                stdout, stderr = await process.communicate()
        except TimeoutError as exc:
            if process is None:
                # the host did not even answer the channel request: the connection is stalled
                # (packets dropped, host gone); give it up, so that the next command, here or
                # through --persist, logs in anew instead of waiting on it again
                self._connection.close()
                raise CommandTimeoutError(name, f"command did not start within {timeout:g} s; "
                                          "the connection was given up", command=command) from exc
            out, err, stopped = await asyncio.shield(self._stop(process, command))
            raise CommandTimeoutError(name, f"command did not finish within {timeout:g} s; {stopped}",
                                      command=command, stdout=_text(out), stderr=_text(err)) from exc
        except asyncio.CancelledError:
            if process is not None:
                await asyncio.shield(self._stop(process, command))
            raise
        except asyncssh.ChannelOpenError as exc:
            if self._connection.is_closed():  # it ended before the command could start
                raise self._lost(command, f"before a command could start ({exc.reason})") from exc
            raise CommandError(name, f"server refused to run a command: {exc.reason}",
                               command=command) from exc
        except asyncssh.DisconnectError as exc:  # ConnectionLost included
            raise self._lost(command, f"while a command ran ({exc.reason})", process) from exc
        except (OSError, asyncssh.Error) as exc:
            if self._connection.is_closed():
                raise self._lost(command, f"while a command ran ({exc})", process) from exc
            raise CommandError(name, f"command failed to run: {exc}", command=command) from exc
        _, stderr = split_marker(stderr)
        if process.exit_signal is not None:  # killed by a signal on the host: a real result
            returncode = process.returncode
            status = 128 - returncode if returncode is not None and returncode < 0 else 255
        elif process.exit_status is not None:
            status = process.exit_status
        else:  # the channel ended with no exit status: the connection went, or is going
            if await self._ended():
                raise self._lost(command, "while a command ran; it gave no exit status",
                                 stdout=stdout, stderr=stderr)
            raise CommandError(name, "the host closed the command's channel without an exit status",
                               command=command, stdout=_text(stdout), stderr=_text(stderr))
        return CommandResult(command, status, _text(stdout), _text(stderr))

    @property
    def kept_shell(self) -> str:
        """The shell kept for repeated commands: "open", "none" (never asked for, or gone: the
        next round starts one), or "refused: WHY" (this host's rounds get a session each)."""
        if self._no_shell:
            return f"refused: {self._no_shell}"
        return "open" if self._shell is not None and self._shell.alive else "none"

    async def run_repeated(self, command: str, *, timeout: float) -> CommandResult:
        """`command` (one that runs every round, fleet.core.transport.RepeatedCommand) in the
        shell kept on this connection (fleet.ssh.kept_shell), started the first time; in a session
        of its own, as `run`, when that shell is busy or cannot be had. The same errors as `run`."""
        name = self._host.name
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def left() -> float:
            return max(0.001, deadline - loop.time())

        shell = self._shell
        if self._no_shell or self._shell_starting:
            return await self.run(command, timeout=timeout)
        if shell is None or not shell.alive:
            if shell is not None:
                shell.close()
            self._shell = None
            self._shell_starting = True
            try:
                async with asyncio.timeout(timeout):
                    shell = await KeptShell.start(self._connection)
            except TimeoutError as exc:  # as `run` when the channel does not open: give it up
                self._connection.close()
                raise CommandTimeoutError(name, f"command did not start within {timeout:g} s; "
                                          "the connection was given up", command=command) from exc
            except KeptShellGone as exc:  # a host without /bin/sh, say: not tried again
                self._no_shell = str(exc)
                return await self.run(command, timeout=left())
            finally:
                self._shell_starting = False
            self._shell = shell
        try:
            return await shell.run(command, timeout=left(),
                                   stop=lambda pgid: self._kill_group(pgid, command))
        except KeptShellGone:  # busy, or closed before the command was sent
            return await self.run(command, timeout=left())
        except TimeoutError as exc:
            self._shell = None
            out, err = shell.output_so_far()
            raise CommandTimeoutError(name, f"command did not finish within {timeout:g} s; "
                                      f"{exc.args[0] if exc.args else 'stopped'}", command=command,
                                      stdout=out, stderr=err) from exc
        except asyncio.CancelledError:
            self._shell = None
            raise
        except (EOFError, OSError, asyncssh.Error) as exc:
            self._shell = None
            shell.close()
            out, err = shell.output_so_far()
            if await self._ended():
                raise self._lost(command, "while a command ran; it gave no exit status",
                                 stdout=out.encode(), stderr=err.encode()) from exc
            raise CommandError(name, f"the shell kept for this command ended while it ran ({exc})",
                               command=command, stdout=out, stderr=err) from exc

    async def _ended(self) -> bool:
        """The connection has ended, or ends within LOST_WAIT (a channel closed by a connection
        that is going down can be seen a moment before the connection is)."""
        if not self._connection.is_closed():
            try:
                await asyncio.wait_for(self._connection.wait_closed(), LOST_WAIT)
            except (TimeoutError, OSError, asyncssh.Error):
                pass
        return self._connection.is_closed()

    def _lost(self, command: str, when: str, process: asyncssh.SSHClientProcess[bytes] | None = None, *,
              stdout: bytes = b"", stderr: bytes = b"") -> ConnectionLostError:
        """The connection ended: the jump host's doing when a jump connection it goes through
        ended too (the first hop that did: the hops behind it went with it), else the host's."""
        if process is not None:
            stdout, raw_err = process.collect_output()
            stderr = split_marker(raw_err)[1]
        gone = next((jump for jump in self._jumps if jump.lost()), None)
        if gone is not None:
            message = f"via jump host {gone.label}: connection lost {when}"
        else:
            message = f"connection to {self._target} lost {when}"
        return ConnectionLostError(self._host.name, message, via=gone.label if gone else None,
                                   command=command, stdout=_text(stdout), stderr=_text(stderr))

    async def _stop(self, process: asyncssh.SSHClientProcess[bytes],
                    command: str) -> tuple[bytes, bytes, str]:
        """Stop a command that ran too long or was cancelled: kill its process group on the host
        (as root when it ran as root), close its channel. Bounded by STOP_TIMEOUT and MARKER_WAIT.
        Returns its output so far and what became of it, measured on the host."""
        out, err = bytearray(), bytearray()

        def collect() -> None:
            more_out, more_err = process.collect_output()
            out.extend(more_out)
            err.extend(more_err)

        collect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MARKER_WAIT
        while split_marker(bytes(err))[0] is None and not process.is_closing() and loop.time() < deadline:
            await asyncio.sleep(0.05)
            collect()
        pgid, _ = split_marker(bytes(err))
        if pgid is None:
            stopped = "its process group was not known, so nothing was stopped on the host"
        else:
            stopped = await self._kill_group(pgid, command)
        # Closed after the kill, not before: the command may still be writing (an apply script
        # undoing its steps says what it undid), and a closed channel would kill it with SIGPIPE.
        process.close()
        try:
            await asyncio.wait_for(process.wait_closed(), STOP_TIMEOUT)
        except (TimeoutError, OSError, asyncssh.Error):
            self._connection.close()  # a channel that will not close: give the connection up
        collect()
        return bytes(out), split_marker(bytes(err))[1], stopped

    async def _kill_group(self, pgid: int, command: str) -> str:
        """Stop process group `pgid` on the host (as root when `command` ran as root), on a
        channel of its own, bounded by STOP_TIMEOUT; what became of it, measured on the host."""
        kill = stop_group_command(pgid)
        try:
            done = await self._connection.run(privileged(kill) if is_privileged(command) else kill,
                                              check=False, timeout=STOP_TIMEOUT)
        except (OSError, asyncssh.Error) as exc:  # asyncssh.TimeoutError included
            return f"could not stop it on the host: {type(exc).__name__}: {exc}"
        return ("stopped it on the host" if done.exit_status == 0 else
                f"its processes on the host did not stop (exit status {done.exit_status})")

    async def close(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        self._connection.close()
        try:
            await asyncio.wait_for(self._connection.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            pass
        if self._release is not None:
            release, self._release = self._release, None
            await release()  # closes the jump connections it was the last to use


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
