"""A shell kept open on a connection, for a command that runs every round (the mesh's probe).

A new session per command costs the host a channel, a fork and its login shell's start-up: about
3.4 ms of the host's CPU on the namespace bed, three quarters of a probe round's 4.6 ms
(docs/performance.md). A connection kept between runs (`--persist`, `fleet watch`) instead
keeps one `/bin/sh` per host, reading commands from its stdin, and writes each round's command to
it:

    ( exec 2>&3 3>&-; COMMAND
    ) </dev/null
    printf '\\n@@fleet-done-NONCE %s\\n' "$?"; printf '\\n@@fleet-done-NONCE\\n' >&3

The command runs in a subshell (its `exit`, `cd` and variables end with it) with no stdin and the
channel's stderr (fd 3: the shell's own is /dev/null); what it writes before the markers is its
output, and the first marker carries its exit status. NONCE is
new for every command, so no output can end it early. Only commands marked RepeatedCommand come
here: fleet's own POSIX sh scripts, one at a time per shell.

Failures are a session's: a command that does not finish in time is stopped on the host by
killing the shell's process group (the shell with it; the next round starts a new one), a
connection that ends is the session's ConnectionLostError. A shell that ends by itself, or cannot
be started, is not an error of the command: KeptShellGone tells the session to run the command
in a session of its own instead.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import asyncssh

from fleet.core.transport import CommandResult
from fleet.ssh.group_marker import marked, split_marker

# After the process group's marker (fleet.ssh.group_marker). The shell's own stderr is /dev/null (its
# "Terminated" when a command is killed is no command's output); fd 3 is the channel's stderr,
# which each command gets as its own.
SHELL = "exec /bin/sh 3>&2 2>/dev/null"


class KeptShellGone(Exception):
    """The kept shell is not there (it could not start, or it ended by itself): run the command
    another way. Never raised once the command may have started to change anything."""


class KeptShell:
    """One `/bin/sh` on a connection; `run` one command at a time (`busy` says when one runs)."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes], pgid: int) -> None:
        self._process = process
        self.pgid = pgid
        self.busy = False
        self._out = bytearray()
        self._err = bytearray()

    @classmethod
    async def start(cls, connection: asyncssh.SSHClientConnection) -> KeptShell:
        """Open the shell and read its process group. KeptShellGone when the host refuses it or
        it ends at once; the caller's timeout (a stalled connection) is the caller's."""
        process: asyncssh.SSHClientProcess[bytes] | None = None
        try:
            process = await connection.create_process(marked(SHELL), encoding=None)
            err = bytearray()
            while True:
                more = await process.stderr.read(4096)
                if not more:
                    raise KeptShellGone("the shell ended as it started")
                err.extend(more)
                pgid, rest = split_marker(bytes(err))
                if pgid is not None:
                    break
            # The marker comes before the exec: a shell that answers its first line is there.
            process.stdin.write(b"echo @@fleet-shell-ready\n")
            answer = bytearray()
            while b"@@fleet-shell-ready\n" not in answer:
                more = await process.stdout.read(4096)
                if not more:
                    raise KeptShellGone("the shell ended as it started")
                answer.extend(more)
            shell = cls(process, pgid)
            shell._err.extend(rest)
            process = None
            return shell
        except (OSError, asyncssh.Error) as exc:
            raise KeptShellGone(f"the shell did not start: {type(exc).__name__}: {exc}") from exc
        finally:
            if process is not None:  # not handed over: refused, ended, timed out or cancelled
                process.close()

    @property
    def alive(self) -> bool:
        return not self._process.is_closing()

    async def run(self, command: str, *, timeout: float,
                  stop: Callable[[int], Awaitable[str]]) -> CommandResult:
        """Run `command`; a timeout or a cancellation calls `stop(pgid)` (which kills the shell's
        process group on the host and says how that went), closes the shell and raises
        TimeoutError with that text as its argument / re-raises the cancellation."""
        if self.busy:
            raise KeptShellGone("the shell is running another command")
        nonce = secrets.token_hex(8)
        done = f"\n@@fleet-done-{nonce}".encode()
        self._out.clear()
        self._err.clear()
        try:
            self._process.stdin.write(
                (f"( exec 2>&3 3>&-; {command}\n) </dev/null\n"
                 f"printf '\\n@@fleet-done-{nonce} %s\\n' \"$?\"; "
                 f"printf '\\n@@fleet-done-{nonce}\\n' >&3\n").encode())
        except (OSError, asyncssh.Error) as exc:  # the channel closed: nothing was sent
            raise KeptShellGone(f"the shell is gone: {exc}") from exc
        self.busy = True
        try:
            try:
                async with asyncio.timeout(timeout):
                    status = await self._read_both(done)
            except TimeoutError:
                stopped = await asyncio.shield(self._stop(stop))
                raise TimeoutError(stopped) from None
            except asyncio.CancelledError:
                await asyncio.shield(self._stop(stop))
                raise
            out_end = self._out.index(done)
            err_end = self._err.index(done)
            return CommandResult(command, status,
                                 self._out[:out_end].decode("utf-8", "replace"),
                                 self._err[:err_end].decode("utf-8", "replace"))
        finally:
            self.busy = False

    async def _read_both(self, done: bytes) -> int:
        """Read stdout and stderr at once (neither may fill the channel's window while the other
        is waited for) until both markers came; the exit status. EOFError when the shell ends."""
        reads = [asyncio.ensure_future(self._read_until(self._process.stdout, self._out, done, True)),
                 asyncio.ensure_future(self._read_until(self._process.stderr, self._err, done, False))]
        try:
            await asyncio.gather(*reads)
        finally:
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
        status = reads[0].result()
        return 255 if status is None else status

    @staticmethod
    async def _read_until(stream: asyncssh.SSHReader[bytes], into: bytearray, done: bytes,
                          with_status: bool) -> int | None:
        """Read into `into` until the line `done[ STATUS]` has arrived; the status, or None.
        EOFError when the stream ends first."""
        while True:
            at = into.find(done)
            if at >= 0:
                end = into.find(b"\n", at + len(done))
                if end >= 0:
                    if not with_status:
                        return None
                    return int(into[at + len(done):end].strip() or b"255")
            more = await stream.read(65536)
            if not more:
                raise EOFError("the shell ended before the command finished")
            into.extend(more)

    async def _stop(self, stop: Callable[[int], Awaitable[str]]) -> str:
        try:
            return await stop(self.pgid)
        finally:
            self.close()

    def output_so_far(self) -> tuple[str, str]:
        return (self._out.decode("utf-8", "replace"), self._err.decode("utf-8", "replace"))

    def close(self) -> None:
        self._process.close()


__all__ = ["SHELL", "KeptShell", "KeptShellGone"]
