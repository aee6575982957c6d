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
import dataclasses
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.core.errors import (
    CommandError,
    CommandTimeoutError,
    ConnectError,
    HostError,
    host_error_from_json,
)
from fleet.core.transport import CommandResult, RepeatedCommand, SSHTarget
from fleet.error_kinds import HOST_ERROR_KINDS  # every feature's kinds, to rebuild them
from fleet.ssh.persist import trust, wire

START_TIMEOUT = 10.0  # seconds to wait for a freshly started daemon's socket
SLACK = 5.0  # the daemon enforces timeouts; the client waits this much longer before giving up
CANCEL_WAIT = 8.0  # seconds a cancelled request waits for the daemon to stop its command
# The directory holding this fleet package (fleet/ssh/persist/client.py: three levels below it),
# put first on the daemon's path so that it runs this same fleet. Read from this module's own name
# and file rather than by importing the root package, which would import the whole library API.
PACKAGE_ROOT = Path(__file__).resolve().parents[len(__name__.split(".")) - 1]


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
        """Connect to the socket at `path`, which must be ours, served by a process of ours."""
        wire.check_socket(path)
        reader, writer = await asyncio.open_unix_connection(str(path), limit=wire.MAX_LINE)
        sock = writer.get_extra_info("socket")
        uid = wire.peer_uid(sock) if sock is not None else None
        if not wire.peer_is_ours(uid, os.getuid()):
            writer.close()
            raise wire.PersistRefused(f"{path}: served by uid {uid}, not by this user")
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
            if not self._gone:
                with contextlib.suppress(Exception):
                    self._writer.write(wire.encode({"op": "cancel", "cancel": request_id}))
                # As without --persist, a cancelled command is over only once it was stopped on
                # the host: wait (bounded) for the daemon to say so, then go on cancelling.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(future), CANCEL_WAIT)
            self._pending.pop(request_id, None)
            raise

    async def close(self) -> None:
        self._listener.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


def _failure(host: str, reply: dict[str, Any], *, usual: str, command: str | None = None) -> HostError:
    """The daemon's failure rebuilt as the HostError it was there, kind and fields (`usual` when the
    reply names no host-error kind, as for a request the daemon could not read)."""
    kind = str(reply.get("kind"))
    data = {name: value for name, value in reply.items() if value is not None}
    data.update(host=host, kind=kind if kind in HOST_ERROR_KINDS else usual)
    if command is not None:
        data.setdefault("command", command)
    return host_error_from_json(data)


class PersistentSession:
    """A Session on a connection the daemon keeps."""

    def __init__(self, host: SSHTarget, link: DaemonLink, key: str, reused: bool) -> None:
        self._host, self._link, self._key = host, link, key
        self.reused = reused

    async def run(self, command: str, *, timeout: float) -> CommandResult:
        name = self._host.name
        try:
            request = {"op": "run", "key": self._key, "command": str(command), "timeout": timeout}
            if isinstance(command, RepeatedCommand):
                request["repeated"] = True  # the daemon may run it in the shell it keeps for it
            reply = await self._link.request(request, timeout=timeout + SLACK)
        except TimeoutError:
            raise CommandTimeoutError(name, f"command did not finish within {timeout:g} s (no answer from "
                               "the persistent-connection process)", command=command) from None
        except wire.PersistError as exc:
            raise CommandError(name, str(exc), command=command) from exc
        if not reply.get("ok"):
            raise _failure(name, reply, usual=CommandError.kind, command=command)
        return CommandResult(command, int(reply["exit"]), str(reply["stdout"]), str(reply["stderr"]))

    async def close(self) -> None:
        """The connection stays open in the daemon for the next run."""


class PersistentTransport:
    """Opens sessions through the daemon, starting it when none is running.

    Every file path a login uses is resolved here, with this process's HOME (`environ`) and working
    directory (`cwd`), and sent with the fingerprint of each trust file: the daemon reuses a
    connection only under the same trust, and never reads a file relative to its own HOME."""

    def __init__(self, *, persist: float, check_host_keys: bool = True,
                 host_key_checking: str | None = None, directory: Path | None = None,
                 environ: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.persist = persist
        self.host_key_checking = trust.host_key_policy(check_host_keys=check_host_keys,
                                                       host_key_checking=host_key_checking)
        self.check_host_keys = self.host_key_checking != "no"
        self.directory = directory or wire.runtime_dir()
        self.started_daemon = False
        self.reused = 0
        self._environ = environ
        self._cwd = cwd
        self._trust_files = trust.TrustFiles()
        self._link: DaemonLink | None = None

    async def start(self) -> None:
        """Reach the daemon (starting one if needed) and tell it how long to keep connections."""
        wire.prepare_runtime_dir(self.directory)
        self._link = await reach(self.directory, persist=self.persist, start=True)
        self.started_daemon = self._link.started

    def connect_request(self, host: SSHTarget, *, timeout: float) -> dict[str, Any]:
        """The `connect` request for `host`: its paths resolved here, its trust fingerprinted."""
        spec = wire.ConnectionSpec.of(host)
        options, files = trust.resolve_options(
            spec.ssh_options, environ=os.environ if self._environ is None else self._environ,
            cwd=self._cwd or os.getcwd(), policy=self.host_key_checking)
        spec = dataclasses.replace(spec, ssh_options=options)
        return {"op": "connect", "target": spec.to_json(), "host_key_checking": self.host_key_checking,
                "trust": [self._trust_files.fingerprint(path).to_json() for path in files],
                "timeout": timeout}

    async def connect(self, host: SSHTarget, *, timeout: float) -> PersistentSession:
        if self._link is None:
            raise ConnectError(host.name, "persistent connections not started")
        try:
            reply = await self._link.request(self.connect_request(host, timeout=timeout),
                                             timeout=timeout + SLACK)
        except TimeoutError:
            raise ConnectError(host.name, f"did not connect and log in within {timeout:g} s (no "
                               "answer from the persistent-connection process)") from None
        except wire.PersistError as exc:
            raise ConnectError(host.name, str(exc)) from exc
        if not reply.get("ok"):
            raise _failure(host.name, reply, usual=ConnectError.kind)
        self.reused += bool(reply.get("reused"))
        return PersistentSession(host, self._link, str(reply["key"]), bool(reply.get("reused")))

    async def close(self) -> None:
        """Close the link to the background process; the connections it keeps stay open."""
        if self._link is not None:
            await self._link.close()
            self._link = None


async def reach(directory: Path, *, persist: float | None = None, start: bool = False,
                any_version: bool = False) -> DaemonLink:
    """A link to the daemon of `directory`; with `start`, start one when none answers; with
    `any_version`, accept a daemon of another protocol version (to stop it).
    Raises PersistRefused when the socket or its process is not this user's, PersistError when
    none runs (and `start` is false) or it cannot be started."""
    path = wire.socket_path(directory)
    started: subprocess.Popen[bytes] | None = None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        link: DaemonLink | None = None
        try:
            link = await DaemonLink.open(path)
            hello = await link.request({"op": "hello", "persist": persist}, timeout=START_TIMEOUT)
            break
        except wire.PersistRefused:
            raise
        except (FileNotFoundError, ConnectionRefusedError, wire.PersistError) as exc:
            # PersistError: the connection was taken, then reset without an answer. A daemon
            # that was just killed does that for a moment: the kernel releases a dead process's
            # listening socket a little after the process is gone.
            if link is not None:
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
    if not hello.get("ok") or (hello.get("version") != wire.VERSION and not any_version):
        await link.close()
        raise wire.PersistError(f"the process at {path} speaks another version; stop it with "
                                "`fleet persist stop`")
    return link


def _spawn(directory: Path, idle: float) -> subprocess.Popen[bytes]:
    """Start the daemon detached from this process (its own session, no terminal)."""
    package_root = str(PACKAGE_ROOT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with open(directory / wire.LOG_NAME, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet.ssh.persist.daemon", "--dir", str(directory),
             "--idle", f"{idle:g}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd="/",
            env=env, start_new_session=True, close_fds=True)
