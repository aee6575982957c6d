"""The background process that keeps SSH connections open between runs.

`python -m fleet.persist.daemon --dir DIR --idle SECONDS`, started by the CLI. One event loop owns
every pooled connection; the CLI's runs reach them through a Unix socket in DIR (mode 0700; a peer
of another user is refused). A lock file makes it the only daemon for DIR. It exits SECONDS after
its last client went away (each client's `hello` sets SECONDS), on `stop`, or on SIGTERM, and closes
every connection on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from fleet.errors import CommandError, ConnectError
from fleet.oslimits import raise_open_file_limit
from fleet.persist import wire
from fleet.ssh import AsyncsshSession, AsyncsshTransport


@dataclass
class Pooled:
    """One kept connection and what it has done."""

    spec: wire.ConnectionSpec
    check_host_keys: bool
    login_timeout: float
    session: AsyncsshSession
    opened: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    runs: int = 0

    @property
    def target(self) -> str:
        user = f"{self.spec.username}@" if self.spec.username else ""
        return f"{user}{self.spec.ssh_host}:{self.spec.ssh_port or 22}"


class Daemon:
    def __init__(self, directory: Path, idle: float) -> None:
        self.directory = directory
        self.idle = idle
        self.pool: dict[str, Pooled] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._transports: dict[bool, AsyncsshTransport] = {}
        self._clients = 0
        self._last_activity = time.monotonic()
        self.stopping = asyncio.Event()

    # -- requests -------------------------------------------------------------------------------
    async def connect(self, request: dict[str, Any]) -> dict[str, Any]:
        spec = wire.ConnectionSpec.from_json(request["target"])
        check = bool(request.get("check_host_keys", True))
        try:
            key, reused = await self._kept(spec, check, float(request.get("timeout", 15)))
        except ConnectError as exc:
            return {"ok": False, "kind": "connect", "error": exc.reason}
        return {"ok": True, "key": key, "reused": reused}

    async def _kept(self, spec: wire.ConnectionSpec, check: bool,
                    login_timeout: float) -> tuple[str, bool]:
        """The key of the kept connection for `spec` and whether it was already open; logs in
        (again) when there is none or it has ended. Raises ConnectError."""
        key = wire.connection_key(spec, check_host_keys=check)
        async with self._connecting.setdefault(key, asyncio.Lock()):
            pooled = self.pool.pop(key, None)
            if pooled is not None and not pooled.session.closed:
                self.pool[key] = pooled
                return key, True
            transport = self._transports.setdefault(check, AsyncsshTransport(check_host_keys=check))
            session = await transport.connect(spec, timeout=login_timeout)
            self.pool[key] = Pooled(spec, check, login_timeout, session)
            return key, False

    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        key = str(request["key"])
        command = str(request["command"])
        timeout = float(request.get("timeout", 60))
        pooled = self.pool.get(key)
        if pooled is None:
            return {"ok": False, "kind": "command", "error": "connection no longer kept; run again"}
        try:
            return await self._run_on(pooled, command, timeout)
        except CommandError as exc:
            # A kept connection that died while idle (host rebooted, sshd restarted) refuses the
            # channel before the command starts: log in again once and run it then. A live
            # connection that refuses a channel (MaxSessions) is left alone: other runs may have
            # channels on it.
            if not (isinstance(exc.__cause__, asyncssh.ChannelOpenError) and pooled.session.closed):
                return self._failure(key, exc)
        try:
            await self._kept(pooled.spec, pooled.check_host_keys, pooled.login_timeout)
        except ConnectError as exc:
            return {"ok": False, "kind": "command",
                    "error": f"kept connection was lost and logging in again failed: {exc.reason}"}
        try:
            return await self._run_on(self.pool[key], command, timeout)
        except CommandError as exc:
            return self._failure(key, exc)

    @staticmethod
    async def _run_on(pooled: Pooled, command: str, timeout: float) -> dict[str, Any]:
        pooled.used = time.monotonic()
        pooled.runs += 1
        result = await pooled.session.run(command, timeout=timeout)
        return {"ok": True, "exit": result.exit_status, "stdout": result.stdout,
                "stderr": result.stderr}

    def _failure(self, key: str, exc: CommandError) -> dict[str, Any]:
        pooled = self.pool.get(key)
        if pooled is not None and pooled.session.closed:
            del self.pool[key]  # the next run logs in again
        return {"ok": False, "kind": "command", "error": exc.reason, "stdout": exc.stdout,
                "stderr": exc.stderr}

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"ok": True, "pid": os.getpid(), "idle": self.idle, "clients": self._clients,
                "connections": [{"target": p.target, "host": p.spec.name,
                                 "age": round(now - p.opened, 1), "idle": round(now - p.used, 1),
                                 "runs": p.runs, "open": not p.session.closed}
                                for p in self.pool.values()]}

    # -- serving --------------------------------------------------------------------------------
    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and not _same_user(sock):
            writer.close()
            return
        self._clients += 1
        running: dict[Any, asyncio.Task] = {}
        lock = asyncio.Lock()

        async def answer(request_id: Any, reply: dict[str, Any]) -> None:
            reply["id"] = request_id
            async with lock:
                writer.write(wire.encode(reply))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

        async def handle(request: dict[str, Any]) -> None:
            request_id = request.get("id")
            try:
                reply = await self.dispatch(request)
            except asyncio.CancelledError:
                reply = {"ok": False, "kind": "command", "error": "cancelled"}
            except (KeyError, TypeError, ValueError) as exc:
                reply = {"ok": False, "kind": "usage", "error": f"bad request: {exc}"}
            finally:
                running.pop(request_id, None)
                self._last_activity = time.monotonic()
            await answer(request_id, reply)

        try:
            while not reader.at_eof():
                try:
                    line = await reader.readline()
                except (ValueError, ConnectionError):
                    break
                if not line:
                    break
                self._last_activity = time.monotonic()
                try:
                    request = wire.decode(line)
                except ValueError:
                    break
                if request.get("op") == "cancel":
                    task = running.get(request.get("cancel"))
                    if task is not None:
                        task.cancel()
                    continue
                running[request.get("id")] = asyncio.create_task(handle(request))
        finally:
            for task in list(running.values()):
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
            self._clients -= 1
            self._last_activity = time.monotonic()
            writer.close()

    async def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            if request.get("persist") is not None:
                self.idle = max(0.0, float(request["persist"]))
            return {"ok": True, "pid": os.getpid(), "version": wire.VERSION}
        if op == "connect":
            return await self.connect(request)
        if op == "run":
            return await self.run(request)
        if op == "status":
            return self.status()
        if op == "stop":
            self.stopping.set()
            return {"ok": True}
        return {"ok": False, "kind": "usage", "error": f"unknown op {op!r}"}

    async def watch_idle(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(min(1.0, max(self.idle / 4, 0.05)))
            quiet = time.monotonic() - self._last_activity
            if self._clients == 0 and quiet >= self.idle:
                self.stopping.set()

    async def close_all(self) -> None:
        pooled, self.pool = list(self.pool.values()), {}
        await asyncio.gather(*(p.session.close() for p in pooled), return_exceptions=True)


def _same_user(sock: socket.socket) -> bool:
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                             struct.calcsize("3i")))
    except OSError:
        return False
    return uid == os.getuid()


async def serve(directory: Path, idle: float) -> int:
    directory = wire.prepare_runtime_dir(directory)
    path = wire.socket_path(directory)
    lock = open(directory / wire.LOCK_NAME, "a+")  # held for the daemon's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another daemon owns this directory; clients will use that one
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a daemon that died: the lock says none is alive
    daemon = Daemon(directory, idle)
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(daemon.serve_client, path=str(path),
                                                 limit=wire.MAX_LINE)
    finally:
        os.umask(old_umask)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, daemon.stopping.set)
    watcher = asyncio.create_task(daemon.watch_idle())
    try:
        await daemon.stopping.wait()
    finally:
        watcher.cancel()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await daemon.close_all()
        lock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.persist.daemon")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--idle", type=float, default=60.0)
    options = parser.parse_args(argv)
    raise_open_file_limit()
    try:
        return asyncio.run(serve(options.dir, options.idle))
    except wire.PersistError as exc:
        print(f"fleet persist: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
