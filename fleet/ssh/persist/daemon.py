"""The background process that keeps SSH connections open between runs.

`python -m fleet.ssh.persist.daemon --dir DIR --idle SECONDS`, started by the CLI. One event loop owns
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
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from fleet.core.errors import CommandError, ConnectError, ConnectionLostError, HostError, HostInterrupted
from fleet.core.oslimits import raise_open_file_limit
from fleet.core.transport import RepeatedCommand, run_kept
from fleet.ssh.persist import trust, wire
from fleet.ssh.transport import AsyncsshSession, AsyncsshTransport

TRANSPORTS_KEPT = 32  # trust versions whose parsed files are kept (one per known_hosts edit, say)

def transport_for_policy(policy: str) -> AsyncsshTransport:
    """An AsyncsshTransport with host-key policy `policy` ("yes", "accept-new", "no")."""
    return AsyncsshTransport(host_key_checking=policy)


def _failure(exc: HostError) -> dict[str, Any]:
    """A host's failure as the wire sends it: its kind and its fields."""
    reply: dict[str, Any] = {"ok": False, **exc.to_json()}
    del reply["host"]  # the client knows which host it asked about
    return reply


@dataclass
class Pooled:
    """One kept connection and what it has done.

    `holders` counts the clients that hold a session on it; a connection whose trust was
    superseded (a newer known_hosts, say) is `retired`: no new session gets it, and it is closed
    once no client holds it and no command runs on it."""

    spec: wire.ConnectionSpec
    policy: str
    trust: tuple[trust.TrustFile, ...]
    identity: str
    login_timeout: float
    session: AsyncsshSession
    opened: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    runs: int = 0
    active: int = 0
    holders: int = 0
    retired: bool = False

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
        # identity -> the keys of its connections (some perhaps gone from the pool since): a
        # connect looks at the same host's other connections only, not the whole pool
        self._keys_of: dict[str, set[str]] = {}
        # One transport per (policy, trust digest): a transport reads each file once, so a file
        # whose contents changed is read by a new transport, never served from an old parse.
        self._transports: OrderedDict[tuple[str, str], AsyncsshTransport] = OrderedDict()
        self._clients = 0
        self._last_activity = time.monotonic()
        self._closing: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()

    # -- requests -------------------------------------------------------------------------------
    async def connect(self, request: dict[str, Any], held: set[str]) -> dict[str, Any]:
        spec = wire.ConnectionSpec.from_json(request["target"])
        policy = trust.host_key_policy(check_host_keys=request.get("check_host_keys"),
                                       host_key_checking=request.get("host_key_checking"))
        files = tuple(trust.TrustFile.from_json(f) for f in request.get("trust") or ())
        try:
            key, reused = await self._kept(spec, policy, files, float(request.get("timeout", 15)))
        except ConnectError as exc:
            return _failure(exc)
        if key not in held:
            held.add(key)
            self.pool[key].holders += 1
        return {"ok": True, "key": key, "reused": reused}

    def _transport(self, policy: str, files: tuple[trust.TrustFile, ...]) -> AsyncsshTransport:
        index = (policy, trust.digest(files))
        transport = self._transports.pop(index, None) or transport_for_policy(policy)
        self._transports[index] = transport
        while len(self._transports) > TRANSPORTS_KEPT:
            _, evicted = self._transports.popitem(last=False)
            self._closing_soon(evicted.close())  # its shared jump logins, once no session uses them
        return transport

    async def _kept(self, spec: wire.ConnectionSpec, policy: str, files: tuple[trust.TrustFile, ...],
                    login_timeout: float) -> tuple[str, bool]:
        """The key of the kept connection for `spec` under this trust and whether it was already
        open; logs in (again) when there is none or it has ended. Raises ConnectError."""
        key = wire.connection_key(spec, host_key_checking=policy, trust=files)
        identity = wire.connection_identity(spec, policy=policy)
        self._retire_others(identity, key)
        async with self._connecting.setdefault(key, asyncio.Lock()):
            pooled = self.pool.pop(key, None)
            if pooled is not None and not pooled.session.closed:
                pooled.retired = False
                self.pool[key] = pooled
                return key, True
            session = await self._transport(policy, files).connect(spec, timeout=login_timeout)
            self.pool[key] = Pooled(spec, policy, files, identity, login_timeout,
                                    session,
                                    holders=pooled.holders if pooled is not None else 0)
            return key, False

    def _retire_others(self, identity: str, key: str) -> None:
        """The same host under other trust: no new session gets those connections any more."""
        keys = self._keys_of.setdefault(identity, set())
        for other_key in list(keys):
            other = self.pool.get(other_key)
            if other is None or other.identity != identity:
                keys.discard(other_key)
            elif other_key != key:
                other.retired = True
                self._close_if_unused(other_key)
        keys.add(key)

    def _close_if_unused(self, key: str) -> None:
        pooled = self.pool.get(key)
        if pooled is not None and pooled.retired and pooled.holders <= 0 and pooled.active <= 0:
            del self.pool[key]
            self._closing_soon(pooled.session.close())

    def _closing_soon(self, closing: Awaitable[None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def release(self, held: set[str]) -> None:
        """A client went away: it holds none of its connections any more."""
        for key in held:
            pooled = self.pool.get(key)
            if pooled is not None:
                pooled.holders -= 1
                self._close_if_unused(key)

    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        key = str(request["key"])
        command = str(request["command"])
        if request.get("repeated") is True:
            command = RepeatedCommand(command)
        timeout = float(request.get("timeout", 60))
        pooled = self.pool.get(key)
        if pooled is None:
            return {"ok": False, "kind": CommandError.kind, "command": command,
                    "error": "connection no longer kept; run again"}
        try:
            return await self._run_on(key, pooled, command, timeout)
        except (CommandError, ConnectionLostError) as exc:
            # A kept connection that died while idle (host rebooted, sshd restarted) refuses the
            # channel before the command starts: log in again once and run it then. A live
            # connection that refuses a channel (MaxSessions) is left alone: other runs may have
            # channels on it.
            if not (isinstance(exc.__cause__, asyncssh.ChannelOpenError) and pooled.session.closed):
                return self._failure(key, exc)
        try:
            await self._kept(pooled.spec, pooled.policy, pooled.trust, pooled.login_timeout)
        except ConnectError as exc:
            reply = _failure(exc)
            reply["error"] = f"kept connection was lost and logging in again failed: {exc.reason}"
            return reply
        try:
            return await self._run_on(key, self.pool[key], command, timeout)
        except (CommandError, ConnectionLostError) as exc:
            return self._failure(key, exc)

    async def _run_on(self, key: str, pooled: Pooled, command: str, timeout: float) -> dict[str, Any]:
        pooled.used = time.monotonic()
        pooled.runs += 1
        pooled.active += 1
        try:
            # a command that times out or is cancelled (its client gone) is stopped on the host
            # and its channel closed by the session itself: it never holds one of sshd's
            # MaxSessions on the kept connection
            result = await run_kept(pooled.session, command, timeout=timeout)
        finally:
            pooled.active -= 1
            self._close_if_unused(key)
        return {"ok": True, "exit": result.exit_status, "stdout": result.stdout,
                "stderr": result.stderr}

    def _failure(self, key: str, exc: CommandError | ConnectionLostError) -> dict[str, Any]:
        pooled = self.pool.get(key)
        if pooled is not None and pooled.session.closed:
            del self.pool[key]  # the next run logs in again
        return _failure(exc)

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"ok": True, "pid": os.getpid(), "idle": self.idle, "clients": self._clients,
                "connections": [{"target": p.target, "host": p.spec.name,
                                 "age": round(now - p.opened, 1), "idle": round(now - p.used, 1),
                                 "runs": p.runs, "open": not p.session.closed, "retired": p.retired,
                                 "shell": getattr(p.session, "kept_shell", "none")}
                                for p in self.pool.values()]}

    # -- serving --------------------------------------------------------------------------------
    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and not wire.peer_is_ours(wire.peer_uid(sock), os.getuid()):
            writer.close()
            return
        self._clients += 1
        for transport in self._transports.values():  # a new run: a jump host that failed is tried again
            transport.forget_failures()
        running: dict[Any, asyncio.Task[None]] = {}
        held: set[str] = set()
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
                reply = await self.dispatch(request, held)
            except asyncio.CancelledError:
                reply = {"ok": False, "kind": HostInterrupted.kind, "error": "cancelled"}
            except (KeyError, TypeError, ValueError) as exc:
                reply = {"ok": False, "kind": "usage", "error": f"bad request: {exc}"}
            except Exception as exc:  # a bug here must still answer, not leave the client waiting
                traceback.print_exc(file=sys.stderr)
                reply = {"ok": False, "kind": HostError.kind, "error": f"{type(exc).__name__}: {exc}"}
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
            self.release(held)
            self._clients -= 1
            self._last_activity = time.monotonic()
            writer.close()

    async def dispatch(self, request: dict[str, Any], held: set[str] | None = None) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            if request.get("persist") is not None:
                self.idle = max(0.0, float(request["persist"]))
            return {"ok": True, "pid": os.getpid(), "version": wire.VERSION}
        if op == "connect":
            return await self.connect(request, set() if held is None else held)
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
        await asyncio.gather(*(p.session.close() for p in pooled), *self._closing,
                             return_exceptions=True)
        transports, self._transports = list(self._transports.values()), OrderedDict()
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)


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
    parser = argparse.ArgumentParser(prog="python -m fleet.ssh.persist.daemon")
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
