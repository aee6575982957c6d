"""The CLI's side of persistent connections: a Transport whose sessions live in the daemon.

The runner sees the usual Transport and Session. `connect` asks the daemon for a connection to the
host (a kept one when the login details match, else a new login, host keys checked as usual);
`run` runs a command on it. Closing a session leaves the connection to the daemon, which keeps it
for `persist` seconds after the last run. This module does not import asyncssh: a run on kept
connections skips that start-up cost too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fleet
from fleet.errors import CommandError, CommandTimeoutError, ConnectError
from fleet.persist import wire
from fleet.session import CommandResult, SSHTarget

START_TIMEOUT = 10.0  # seconds to wait for a freshly started daemon's socket
SLACK = 5.0  # the daemon enforces timeouts; the client waits this much longer before giving up


class DaemonLink:
    """One Unix-socket connection to the daemon, with requests answered by id in any order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._gone: str | None = None
        self.started = False  # this link's daemon was started for it
        self._listener = asyncio.create_task(self._listen())

    @classmethod
    async def open(cls, path: Path) -> DaemonLink:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=wire.MAX_LINE)
        return cls(reader, writer)

    async def _listen(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = wire.decode(line)
                future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
        except (ValueError, ConnectionError, asyncio.IncompleteReadError) as exc:
            self._gone = f"persistent-connection process sent something unreadable ({exc})"
        finally:
            self._gone = self._gone or "persistent-connection process went away"
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(wire.PersistError(self._gone))
            self._pending.clear()

    async def request(self, message: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        if self._gone:
            raise wire.PersistError(self._gone)
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(wire.encode({**message, "id": request_id}))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except (asyncio.CancelledError, TimeoutError):
            self._pending.pop(request_id, None)
            if not self._gone:
                with contextlib.suppress(Exception):
                    self._writer.write(wire.encode({"op": "cancel", "cancel": request_id}))
            raise

    async def close(self) -> None:
        self._listener.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class PersistentSession:
    """A Session on a connection the daemon keeps."""

    def __init__(self, host: SSHTarget, link: DaemonLink, key: str, reused: bool) -> None:
        self._host, self._link, self._key = host, link, key
        self.reused = reused

    async def run(self, command: str, *, timeout: float) -> CommandResult:
        name = self._host.name
        try:
            reply = await self._link.request({"op": "run", "key": self._key, "command": command,
                                              "timeout": timeout}, timeout=timeout + SLACK)
        except TimeoutError:
            raise CommandTimeoutError(name, f"command did not finish within {timeout:g} s (no answer from "
                               "the persistent-connection process)", command=command) from None
        except wire.PersistError as exc:
            raise CommandError(name, str(exc), command=command) from exc
        if not reply.get("ok"):
            raise CommandError(name, str(reply.get("error")), command=command,
                               stdout=str(reply.get("stdout") or ""),
                               stderr=str(reply.get("stderr") or ""))
        return CommandResult(command, int(reply["exit"]), str(reply["stdout"]), str(reply["stderr"]))

    async def close(self) -> None:
        """The connection stays open in the daemon for the next run."""


class PersistentTransport:
    """Opens sessions through the daemon, starting it when none is running."""

    def __init__(self, *, persist: float, check_host_keys: bool = True,
                 directory: Path | None = None) -> None:
        self.persist = persist
        self.check_host_keys = check_host_keys
        self.directory = directory or wire.runtime_dir()
        self.started_daemon = False
        self.reused = 0
        self._link: DaemonLink | None = None

    async def start(self) -> None:
        """Reach the daemon (starting one if needed) and tell it how long to keep connections."""
        wire.prepare_runtime_dir(self.directory)
        self._link = await reach(self.directory, persist=self.persist, start=True)
        self.started_daemon = self._link.started

    async def connect(self, host: SSHTarget, *, timeout: float) -> PersistentSession:
        if self._link is None:
            raise ConnectError(host.name, "persistent connections not started")
        spec = wire.ConnectionSpec.of(host)
        try:
            reply = await self._link.request({"op": "connect", "target": spec.to_json(),
                                              "check_host_keys": self.check_host_keys,
                                              "timeout": timeout}, timeout=timeout + SLACK)
        except TimeoutError:
            raise ConnectError(host.name, f"did not connect and log in within {timeout:g} s (no "
                               "answer from the persistent-connection process)") from None
        except wire.PersistError as exc:
            raise ConnectError(host.name, str(exc)) from exc
        if not reply.get("ok"):
            raise ConnectError(host.name, str(reply.get("error")))
        self.reused += bool(reply.get("reused"))
        return PersistentSession(host, self._link, str(reply["key"]), bool(reply.get("reused")))

    async def aclose(self) -> None:
        if self._link is not None:
            await self._link.close()
            self._link = None


async def reach(directory: Path, *, persist: float | None = None, start: bool = False) -> DaemonLink:
    """A link to the daemon of `directory`; with `start`, start one when none answers.
    Raises PersistError when none runs (and `start` is false) or it cannot be started."""
    path = wire.socket_path(directory)
    started: subprocess.Popen[bytes] | None = None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            link = await DaemonLink.open(path)
            hello = await link.request({"op": "hello", "persist": persist}, timeout=START_TIMEOUT)
            break
        except (FileNotFoundError, ConnectionRefusedError, wire.PersistError) as exc:
            # PersistError: the connection was taken, then reset without an answer. A daemon
            # that was just killed does that for a moment: the kernel releases a dead process's
            # listening socket a little after the process is gone.
            if isinstance(exc, wire.PersistError):
                await link.close()
            if not start:
                raise wire.PersistError(f"no persistent-connection process at {path}") from exc
            if started is None:
                started = _spawn(directory, persist or 60.0)
            elif started.poll() not in (None, 0):
                raise wire.PersistError(f"the persistent-connection process exited with status "
                                        f"{started.returncode}; see {directory / wire.LOG_NAME}") from exc
            if time.monotonic() > deadline:
                raise wire.PersistError(f"no persistent-connection process answered at {path} "
                                        f"within {START_TIMEOUT:g} s") from exc
            await asyncio.sleep(0.01)
        except OSError as exc:
            raise wire.PersistError(f"{path}: {exc.strerror or exc}") from exc
    link.started = started is not None
    if not hello.get("ok") or hello.get("version") != wire.VERSION:
        await link.close()
        raise wire.PersistError(f"the process at {path} speaks another version; stop it with "
                                "`fleet persist stop`")
    return link


def _spawn(directory: Path, idle: float) -> subprocess.Popen[bytes]:
    """Start the daemon detached from this process (its own session, no terminal)."""
    package_root = str(Path(fleet.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with open(directory / wire.LOG_NAME, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet.persist.daemon", "--dir", str(directory), "--idle", f"{idle:g}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd="/",
            env=env, start_new_session=True, close_fds=True)
