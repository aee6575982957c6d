"""The SSH transport: the one module that owns asyncssh.

It turns asyncssh's errors into the project's own (ConnectError and its kinds, CommandError), each
message naming the host and what was being attempted. Other code sees only the `Transport` and
`Session` protocols, so a test or a future transport (a local shell) plugs in without touching the
runner.

What it adds to asyncssh:

- host keys checked by an OpenSSH-style policy (fleet/ssh/hostkeys.py), decided on the key asyncssh
  received in the handshake: asyncssh trusts what known_hosts holds (keys, @cert-authority, revoked
  entries) and asks `_HostKeyPolicy.validate_host_public_key` about any other key;
- the user's ~/.ssh/config applies (Port, User, IdentityFile, ProxyJump ...) wherever the
  inventory says nothing;
- jump hosts (the `tunnel` extra or ProxyJump) connected here, hop by hop, with the same host-key
  policy, so that a jump host's failure is reported as the jump host's (`via`);
- a command that times out or is cancelled is stopped on the host: every command first tells its
  process group (its shell is a session leader under sshd), and the group is killed on a second
  channel;
- a connection that ends while a command runs (the host's sshd killed, the host or its jump host
  gone) is a ConnectionLostError naming the jump host when it was the jump host's, never a
  command's exit status; a command killed by a signal on the host exits 128 + the signal's number.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from fleet.core.errors import (
    AuthError,
    CommandError,
    CommandTimeoutError,
    ConnectError,
    ConnectionLostError,
    HostKeyChangedError,
    HostKeyUnknownError,
    SSHSetupError,
)
from fleet.core.privilege import is_privileged, privileged
from fleet.core.transport import DEFAULT_SSH_PORT, CommandResult, SSHTarget
from fleet.jumps import Hop, parse_jumps, parse_port
from fleet.ssh import hostkeys
from fleet.ssh.hostkeys import (
    HostKeyChecking,
    KnownHostsWriter,
    OfferedKey,
    changed_key_message,
    changed_key_warning,
    known_hosts_files,
    known_hosts_line,
    unknown_key_message,
)

# Fast, modern algorithms first (curve25519 key exchange, AES-GCM and ChaCha20-Poly1305), the
# rest of asyncssh's defaults after them so that any server still works. Host key algorithms are
# left to asyncssh, which prefers the ones known_hosts holds keys for, as OpenSSH does.
# An `asyncssh` extras entry in the inventory (kex_algs, encryption_algs, ...) overrides these.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                     "chacha20-poly1305@openssh.com")

STOP_TIMEOUT = 6.0  # seconds to stop a timed-out command's processes and close its channel
TERM_GRACE = 2.0  # seconds a stopped command has after TERM (to undo what it did) before KILL
MARKER_WAIT = 2.0  # seconds to wait for a just-started command to say its process group
MAX_JUMPS = 8  # jump hosts in one route, nested ProxyJump included
LOST_WAIT = 1.0  # seconds a channel that ended with no exit status waits to see its connection end
CLOSE_WAIT = 10.0  # seconds closing waits for the jump connections it closes

Warn = Callable[[str, str], None]

# Every command first writes this line on stderr: its shell's PID, which is its process group
# (sshd starts each session's shell with setsid). The line is taken off stderr again.
_GROUP_MARK = "fleet-pgid:"
_GROUP_LINE = re.compile(rb"fleet-pgid:(\d+)\n")


def _with_preferred(preferred: tuple[str, ...], supported: list[bytes]) -> list[str]:
    names = [alg.decode() for alg in supported]
    return [alg for alg in preferred if alg in names] + [alg for alg in names if alg not in preferred]


def marked(command: str) -> str:
    """`command` preceded by the line that tells its process group."""
    return f"printf '{_GROUP_MARK}%s\\n' \"$$\" >&2\n{command}"


def split_marker(stderr: bytes) -> tuple[int | None, bytes]:
    """The process group a marked command told, and its stderr without the marker line."""
    found = _GROUP_LINE.match(stderr)
    if found is None:
        return None, stderr
    return int(found.group(1)), stderr[found.end():]


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
                 jumps: Sequence[_SharedJump] = (), target: str | None = None) -> None:
        self._host = host
        self._target = target or host.ssh_host  # host:port, where the ssh config put it
        self._connection = connection
        self._release = release  # lets go of the shared jump connections this one goes through
        self._jumps = tuple(jumps)  # the jump logins it goes through, first hop first

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
            kill = stop_group_command(pgid)
            try:
                done = await self._connection.run(privileged(kill) if is_privileged(command) else kill,
                                                  check=False, timeout=STOP_TIMEOUT)
            except (OSError, asyncssh.Error) as exc:  # asyncssh.TimeoutError included
                stopped = f"could not stop it on the host: {type(exc).__name__}: {exc}"
            else:
                stopped = ("stopped it on the host" if done.exit_status == 0 else
                           f"its processes on the host did not stop (exit status {done.exit_status})")
        # Closed after the kill, not before: the command may still be writing (an apply script
        # undoing its steps says what it undid), and a closed channel would kill it with SIGPIPE.
        process.close()
        try:
            await asyncio.wait_for(process.wait_closed(), STOP_TIMEOUT)
        except (TimeoutError, OSError, asyncssh.Error):
            self._connection.close()  # a channel that will not close: give the connection up
        collect()
        return bytes(out), split_marker(bytes(err))[1], stopped

    async def close(self) -> None:
        self._connection.close()
        try:
            await asyncio.wait_for(self._connection.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            pass
        if self._release is not None:
            release, self._release = self._release, None
            await release()  # closes the jump connections it was the last to use


class _HostKeyPolicy(asyncssh.SSHClient):
    """Decides, by the policy, about a host key that known_hosts does not vouch for.

    asyncssh calls these only for keys and CAs that known_hosts does not trust (and never for
    revoked ones); the decision and the key are kept for the transport to report.
    """

    def __init__(self, policy: HostKeyChecking, known: Any, can_record: bool) -> None:
        self._policy = policy
        self._known = known
        self._can_record = can_record
        self.offered: OfferedKey | None = None
        self.accepted = False

    @property
    def changed_key_accepted(self) -> bool:
        return self.accepted and self.offered is not None and self.offered.changed

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        lookup_port = None if port == DEFAULT_SSH_PORT else port
        trusted = asyncssh.match_known_hosts(self._known, host, addr, lookup_port)[0] if self._known else []
        algorithm, data = key.export_public_key("openssh").decode().split()[:2]
        self.offered = OfferedKey(host, port, algorithm, key.get_fingerprint("sha256"),
                                  f"{algorithm} {data}", changed=bool(trusted))
        self.accepted = self._policy == "no" or (
            self._policy == "accept-new" and not self.offered.changed and self._can_record)
        return self.accepted

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = OfferedKey(host, port, f"{key.get_algorithm()} (CA)", key.get_fingerprint("sha256"),
                                  "", changed=False, authority=True)
        self.accepted = self._policy == "no"
        return self.accepted


@dataclass(frozen=True)
class Route:
    """Where a host really is once ~/.ssh/config has had its say."""

    host: str
    port: int
    username: str
    tunnel: str | None  # ProxyJump, when the config gives one

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def resolve_route(host: str, port: int | None, username: str | None, config: Any = ()) -> Route:
    """Host, port, user and ProxyJump for a host, the given values first, then the ssh config
    (~/.ssh/config, or the `config` extra), then the defaults. Reads files: call off the loop.
    ValueError for a port that is not 1-65535."""
    options = asyncssh.SSHClientConnectionOptions(
        host=host, port=port if port is not None else (), username=username if username else (),
        config=config, client_keys=[], agent_identities=None, agent_path=None, known_hosts=None)
    tunnel = options.tunnel if isinstance(options.tunnel, str) else None
    return Route(options.host, parse_port(str(options.port)), options.username, tunnel)


def effective_port(host: SSHTarget) -> int:
    """The port fleet connects to for a host: the inventory's, else the ssh config's, else 22.
    For display (`fleet inventory`); reads ~/.ssh/config."""
    if host.ssh_port is not None:
        return host.ssh_port
    try:
        return resolve_route(host.ssh_host, None, host.username,
                             host.ssh_options.get("config", ())).port
    except (OSError, ValueError, asyncssh.Error):
        return DEFAULT_SSH_PORT


class _SharedJump:
    """One jump host's login, shared by every host behind it for as long as any uses it."""

    def __init__(self, label: str, login: asyncio.Future[asyncssh.SSHClientConnection]) -> None:
        self.label = label
        self.login = login
        self.users = 0

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        """The jump connection, or the jump host's failure as this host's (same kind, same words:
        they name the jump host)."""
        try:
            return await asyncio.shield(self.login)
        except ConnectError as exc:
            raise type(exc)(name, exc.reason, via=exc.via) from exc

    def failed(self) -> bool:
        """Its login failed (the failure is kept: the hosts behind it share it, not retry it)."""
        return self.login.done() and (self.login.cancelled() or self.login.exception() is not None)

    def lost(self) -> bool:
        """It logged in, and the connection has closed since."""
        return self.login.done() and not self.failed() and bool(self.login.result().is_closed())

    async def close(self) -> None:
        if not self.login.done():
            self.login.cancel()
        await asyncio.wait([self.login])  # its outcome, without taking a cancellation of ours
        if self.failed():  # a failed or cancelled login has nothing to close
            return
        connection = self.login.result()
        connection.close()
        try:
            await asyncio.wait_for(connection.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            pass


class AsyncsshTransport:
    """Connects with asyncssh, using the host's Nornir fields, its asyncssh extras and the user's
    ssh config.

    `host_key_checking` is OpenSSH's StrictHostKeyChecking word (yes, accept-new, no); the old
    `check_host_keys=False` means `no`. Warnings (a changed key accepted under `no`) are kept in
    `warnings` as (host, text) and passed to `on_warning` as they happen.
    """

    def __init__(self, *, host_key_checking: str | None = None, check_host_keys: bool = True,
                 login_timeout: float | None = None, on_warning: Warn | None = None) -> None:
        self.host_key_checking: HostKeyChecking = hostkeys.host_key_checking(
            host_key_checking if host_key_checking is not None else check_host_keys)
        self._login_timeout = login_timeout
        self._on_warning = on_warning
        self.warnings: list[tuple[str, str]] = []
        self._known_hosts: dict[tuple[Path, ...], Any] = {}
        self._client_keys: dict[tuple[tuple[str, ...], str | None], Any] = {}
        self._writer = KnownHostsWriter()
        self._jumps: dict[tuple[Any, ...], _SharedJump] = {}  # jump logins shared by the hosts behind
        self._closing: set[asyncio.Task[None]] = set()  # jump connections being closed
        self._closed = False

    def _known_hosts_files(self, name: str, files: tuple[Path, ...]) -> Any:
        """known_hosts files read and parsed once per run (again after a key was added); a missing
        file holds no keys, as for OpenSSH; one that cannot be read is an SSHSetupError."""
        if files not in self._known_hosts:
            try:
                texts = []
                for file in files:
                    try:
                        texts.append(file.read_text())
                    except FileNotFoundError:
                        continue
                self._known_hosts[files] = asyncssh.import_known_hosts(
                    "".join(t if t.endswith("\n") else f"{t}\n" for t in texts if t))
            except (OSError, UnicodeDecodeError, ValueError, asyncssh.KeyImportError) as exc:
                self._known_hosts[files] = (file, exc)
        known = self._known_hosts[files]
        if isinstance(known, tuple):
            if self.host_key_checking == "no":
                return asyncssh.import_known_hosts("")
            file, error = known
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise SSHSetupError(name, f"cannot read known_hosts file {file}: {reason}")
        return known

    def _client_key_files(self, name: str, paths: tuple[str, ...], passphrase: str | None) -> Any:
        """Private key files read and decoded once per run, not once per host."""
        key = (paths, passphrase)
        if key not in self._client_keys:
            try:
                self._client_keys[key] = asyncssh.load_keypairs(list(paths), passphrase)
            except OSError as exc:
                self._client_keys[key] = SSHSetupError(
                    name, f"cannot read client key file {exc.filename or ', '.join(paths)}: "
                    f"{exc.strerror or exc}")
            except (ValueError, asyncssh.Error) as exc:
                self._client_keys[key] = SSHSetupError(
                    name, f"cannot load client key file {', '.join(paths)}: {exc}")
        keys = self._client_keys[key]
        if isinstance(keys, SSHSetupError):
            raise SSHSetupError(name, keys.reason)
        return keys

    def connect_options(self, host: SSHTarget, *, timeout: float) -> dict[str, Any]:
        """The keyword arguments for asyncssh.connect(), extras last so that they win. No port
        when the inventory gives none: the ssh config's then applies, else 22. Raises
        SSHSetupError for a client key or known_hosts file that cannot be read."""
        options: dict[str, Any] = {
            "connect_timeout": timeout,
            "login_timeout": self._login_timeout or timeout,
            "kex_algs": _with_preferred(PREFERRED_KEX, asyncssh.kex.get_default_kex_algs()),
            "encryption_algs": _with_preferred(PREFERRED_CIPHERS,
                                               asyncssh.encryption.get_default_encryption_algs()),
            "keepalive_interval": 15,
            "keepalive_count_max": 3,
        }
        if host.ssh_port is not None:
            options["port"] = host.ssh_port
        if host.username is not None:
            options["username"] = host.username
        if host.password is not None:
            options["password"] = host.password
        options.update(_plain(host.ssh_options))
        keys = options.get("client_keys")
        if isinstance(keys, (list, tuple)) and keys and all(isinstance(k, str) for k in keys):
            options["client_keys"] = self._client_key_files(host.name, tuple(keys), options.get("passphrase"))
        files = known_hosts_files(host.ssh_options)
        if files is not None:
            options["known_hosts"] = self._known_hosts_files(host.name, files)
        return options

    async def close(self) -> None:
        """Close the shared jump connections no session uses any more, and wait (CLOSE_WAIT at
        most) for every jump connection being closed; the others close when their last session
        does, which waits for them. Sessions themselves are closed by whoever opened them."""
        self._closed = True
        for key, shared in list(self._jumps.items()):
            if shared.users == 0:
                del self._jumps[key]
                self._close_jump(shared)
        await self._closed_jumps(list(self._closing))

    def forget_failures(self) -> None:
        """Log in to a jump host again next time even though it failed before (a new run through
        a transport that outlives runs, as the persistent-connection process's do)."""
        for key, shared in list(self._jumps.items()):
            if shared.failed():
                del self._jumps[key]

    async def connect(self, host: SSHTarget, *, timeout: float) -> AsyncsshSession:
        options = self.connect_options(host, timeout=timeout)
        files = known_hosts_files(host.ssh_options)
        config = options.get("config", ())
        try:
            route = await asyncio.to_thread(resolve_route, host.ssh_host, host.ssh_port,
                                            options.get("username"), config)
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise SSHSetupError(host.name, f"cannot read the ssh config: {exc}") from exc
        jump_spec: str | None = route.tunnel
        if "tunnel" in options:
            jump_spec = options["tunnel"] if isinstance(options["tunnel"], str) else None
            if jump_spec is not None:
                del options["tunnel"]
        held: list[_SharedJump] = []
        through: str | None = None
        try:
            if jump_spec:
                chain: tuple[Any, ...] = (self._trust_key(host.ssh_options),)
                for hop, hop_route in await self._expand(host.name, jump_spec, config):
                    chain += ((hop, hop_route),)
                    held.append(await self._jump(host.name, chain, hop, hop_route,
                                                 held[-1] if held else None, options, files, timeout))
                    through = hop_route.target
            if held:  # a spec of only commas names no hop: connect directly, as OpenSSH does
                options["tunnel"] = await held[-1].connection(host.name)
            connection = await self._handshake(host.name, host.ssh_host, options, files, route=route,
                                               timeout=timeout, through=through)
        except BaseException:
            self._release(held)  # a jump connection it closes is waited for by close()
            raise
        return AsyncsshSession(host, connection,
                               release=(lambda: self._release_and_close(held)) if held else None,
                               jumps=held, target=route.target)

    @staticmethod
    def _trust_key(ssh_options: Mapping[str, Any]) -> str:
        """What, besides the route, decides whether two hosts may share a jump login: the keys,
        known_hosts files, passphrase and ssh config their extras name."""
        return repr(sorted((k, repr(v)) for k, v in ssh_options.items()
                           if k in ("client_keys", "known_hosts", "passphrase", "config", "agent_path")))

    async def _jump(self, name: str, chain: tuple[Any, ...], hop: Hop, route: Route,
                    before: _SharedJump | None, options: Mapping[str, Any],
                    files: tuple[Path, ...] | None, timeout: float) -> _SharedJump:
        """The one login to a jump host (at this place in a chain) that every host behind it
        shares: started by the first host that needs it, awaited by the others; a login that
        failed is the same failure for all of them, one that ended is replaced."""
        shared = self._jumps.get(chain)
        if shared is not None and shared.lost():  # log in again, once, for all behind it
            del self._jumps[chain]
            shared = None
        if shared is None:
            async def login() -> asyncssh.SSHClientConnection:
                tunnel = await before.connection(name) if before is not None else None
                return await self._open_hop(name, hop, route, tunnel, options, files, timeout)

            shared = _SharedJump(f"{hop.host}:{route.port}", asyncio.ensure_future(login()))
            self._jumps[chain] = shared
        shared.users += 1
        return shared

    def _release(self, held: Sequence[_SharedJump]) -> list[asyncio.Task[None]]:
        """Let go of jump connections; the ones no session uses any more that are lost, or whose
        transport is closed, start closing: returned, and kept until they are done (close()
        waits for them)."""
        closing = []
        for shared in held:
            shared.users -= 1
            if shared.users == 0 and (self._closed or shared.lost()):
                for key, value in list(self._jumps.items()):
                    if value is shared:
                        del self._jumps[key]
                closing.append(self._close_jump(shared))
        return closing

    def _close_jump(self, shared: _SharedJump) -> asyncio.Task[None]:
        task = asyncio.create_task(shared.close(), name=f"close jump {shared.label}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def _release_and_close(self, held: Sequence[_SharedJump]) -> None:
        await self._closed_jumps(self._release(held))

    @staticmethod
    async def _closed_jumps(tasks: Sequence[asyncio.Task[None]]) -> None:
        """Wait for jump connections to close, CLOSE_WAIT at most; one that takes longer is
        cancelled and waited for (a cancelled close returns at once)."""
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _expand(self, name: str, spec: str, config: Any) -> list[tuple[Hop, Route]]:
        """The hops of a ProxyJump, first hop first, each with where the ssh config puts it; the
        first hop's own ProxyJump (from the ssh config) expanded in front of it."""
        hops: list[tuple[Hop, Route]] = []
        pending = spec
        while pending:
            try:
                parsed = parse_jumps(pending)
            except ValueError as exc:
                raise SSHSetupError(name, f"bad jump host {pending!r}: {exc}") from exc
            if not parsed:
                break
            resolved = []
            for hop in parsed:
                try:
                    route = await asyncio.to_thread(resolve_route, hop.host, hop.port, hop.username, config)
                except (OSError, ValueError, asyncssh.Error) as exc:
                    raise SSHSetupError(name, f"cannot read the ssh config for jump host {hop.host}: "
                                        f"{exc}") from exc
                resolved.append((hop, route))
            hops[:0] = resolved
            pending = resolved[0][1].tunnel or ""
            if len(hops) > MAX_JUMPS:
                raise SSHSetupError(name, f"more than {MAX_JUMPS} jump hosts (a ProxyJump loop?)")
        return hops

    async def _open_hop(self, name: str, hop: Hop, route: Route, tunnel: asyncssh.SSHClientConnection | None,
                        options: Mapping[str, Any], files: tuple[Path, ...] | None,
                        timeout: float) -> asyncssh.SSHClientConnection:
        """Log in to a jump host: its user and port from the spec or the ssh config, the target's
        client keys, known_hosts and host-key policy; never the target's password."""
        hop_options = {key: options[key] for key in (
            "connect_timeout", "login_timeout", "kex_algs", "encryption_algs", "keepalive_interval",
            "keepalive_count_max", "known_hosts", "client_keys", "passphrase", "config") if key in options}
        hop_options["tunnel"] = tunnel  # None: the hop's own ProxyJump was expanded already
        if hop.port is not None:
            hop_options["port"] = hop.port
        if hop.username is not None:
            hop_options["username"] = hop.username
        return await self._handshake(name, hop.host, hop_options, files, route=route, timeout=timeout,
                                     via=f"{hop.host}:{route.port}")

    async def _handshake(self, name: str, address: str, options: Mapping[str, Any],
                         files: tuple[Path, ...] | None, *, route: Route, timeout: float,
                         via: str | None = None, through: str | None = None) -> asyncssh.SSHClientConnection:
        """One asyncssh.connect with the host-key policy; its errors as the project's."""
        known = options.get("known_hosts", ())
        client = _HostKeyPolicy(self.host_key_checking, known if known != () else None,
                                can_record=files is not None)
        opts = dict(options)
        opts["client_factory"] = lambda: client
        password = opts.pop("password", None)
        if password is not None:  # asked for at login, after the host key was judged
            opts["password"] = lambda: None if client.changed_key_accepted else password
        prefix = f"via jump host {via}: " if via else ""
        target = route.target
        user = opts.get("username") or route.username
        try:
            connection = await asyncssh.connect(address, **opts)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise _host_key_error(name, client.offered, files, exc, prefix, via) from exc
        except asyncssh.PermissionDenied as exc:
            await self._record(client, files)  # the key was proven; OpenSSH records it too
            raise AuthError(name, f"{prefix}authentication failed at {target} as {user} "
                            f"({exc.reason})", via=via) from exc
        except asyncssh.ChannelOpenError as exc:  # the jump host could not reach this host
            if via is None and exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:  # its policy
                raise ConnectError(name, f"via jump host {through}: it refused to forward to {target}: "
                                   f"{exc.reason}", via=through) from exc
            raise ConnectError(name, f"{prefix}jump host {through} could not connect to {target}: "
                               f"{exc.reason}", via=via) from exc
        except asyncssh.DisconnectError as exc:
            raise ConnectError(name, f"{prefix}SSH to {target} failed: {exc.reason}", via=via) from exc
        except TimeoutError as exc:
            raise ConnectError(name, f"{prefix}SSH to {target} did not connect and log in within "
                               f"{timeout:g} s", via=via) from exc
        except socket.gaierror as exc:
            raise ConnectError(name, f"{prefix}cannot resolve {route.host!r}: {exc.strerror}",
                               via=via) from exc
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
            if exc.filename:  # a file asyncssh was told to read (IdentityFile, known_hosts ...)
                raise SSHSetupError(name, f"{prefix}cannot read {exc.filename}: {reason}", via=via) from exc
            raise ConnectError(name, f"{prefix}cannot connect to {target}: {reason}", via=via) from exc
        except (asyncssh.Error, ValueError, TypeError) as exc:
            raise ConnectError(name, f"{prefix}SSH to {target} failed: {exc}", via=via) from exc
        finally:
            if client.changed_key_accepted and client.offered is not None:  # even when login failed
                self._warn(name, prefix + changed_key_warning(client.offered, files))
        await self._record(client, files)
        return connection

    async def _record(self, client: _HostKeyPolicy, files: tuple[Path, ...] | None) -> None:
        """accept-new: write the key just accepted to the (first) known_hosts file in use."""
        offered = client.offered
        if (self.host_key_checking != "accept-new" or not client.accepted or offered is None
                or offered.changed or offered.authority or not files):
            return
        await self._writer.append(files[0], known_hosts_line(offered.host, offered.port, offered.public_key))
        self._known_hosts.pop(files, None)  # read again: a reconnection trusts it

    def _warn(self, host: str, text: str) -> None:
        self.warnings.append((host, text))
        if self._on_warning is not None:
            self._on_warning(host, text)


def _host_key_error(name: str, offered: OfferedKey | None, files: tuple[Path, ...] | None,
                    exc: asyncssh.HostKeyNotVerifiable, prefix: str, via: str | None) -> ConnectError:
    if offered is None:  # refused by asyncssh itself (a revoked key, a certificate's principals)
        return HostKeyUnknownError(name, f"{prefix}host key not verifiable: {exc.reason}", via=via)
    if offered.changed:
        return HostKeyChangedError(name, prefix + changed_key_message(offered, files), via=via)
    return HostKeyUnknownError(name, prefix + unknown_key_message(offered, files), via=via)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Inventory YAML gives lists where asyncssh sometimes wants tuples; pass values as they are
    otherwise."""
    return {str(key): value for key, value in options.items()}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
