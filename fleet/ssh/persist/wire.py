"""The persistent-connection protocol, its socket's place, and what makes two connections the same.

One JSON object per line over a Unix socket that only its owner may use (the directory is the
user's and mode 0700, the socket the user's, and each side checks the other's uid). The CLI sends
requests with an `id`; the daemon answers each with the same `id`, in any order.

    {"id": 1, "op": "connect", "target": {...}, "host_key_checking": "yes", "timeout": 15,
     "trust": [{"path": "/home/u/.ssh/known_hosts", "sha256": "9c1e..."}, ...]}
        -> {"id": 1, "ok": true, "key": "3f2a...", "reused": false}
    {"id": 2, "op": "run", "key": "3f2a...", "command": "true", "timeout": 60}
        -> {"id": 2, "ok": true, "exit": 0, "stdout": "", "stderr": ""}
    {"id": 3, "op": "cancel", "cancel": 2}          (no answer; the run answers, cancelled)
    {"id": 4, "op": "status"} -> {"id": 4, "ok": true, "pid": ..., "connections": [...]}
    {"id": 5, "op": "stop"}   -> {"id": 5, "ok": true}, then the daemon closes everything and exits
    {"id": 6, "op": "hello", "persist": 60} -> {"id": 6, "ok": true, "pid": ..., "version": 2}

Every path in `target.ssh_options` is absolute (resolved by the CLI with its HOME and working
directory) and `trust` fingerprints each trust file the login reads (see trust.py).

A failed request answers {"ok": false, "kind": KIND, "error": "..."} with KIND a registered
HostError kind (fleet.core.errors.HOST_ERROR_KINDS: `auth`, `host-key-unknown`, `timeout`,
`command`, `connection-lost` ...) or `usage` for a request the daemon cannot read, plus the fields
the failure's class carries (HostError.to_json): `via` for a login or a lost connection (its jump
host), `command`, `exit_status`, `stdout`, `stderr` for a command. The client rebuilds the failure
from its kind through the registry (host_error_from_json), every feature's kinds loaded
(fleet.error_kinds).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.ssh.persist.trust import TrustFile, digest, host_key_policy

VERSION = 3  # 2: trust fingerprints, host_key_checking, HostError kinds; 3: `connection-lost`
SOCKET_NAME = "persist.sock"
LOCK_NAME = "persist.lock"
LOG_NAME = "persist.log"
DIR_ENV = "FLEET_PERSIST_DIR"
PERSIST_ENV = "FLEET_PERSIST"
MAX_LINE = 64 * 1024 * 1024  # a mesh answer from a 2,000-host fleet is ~0.2 MB; far below this


class PersistError(Exception):
    """The persistent-connection process cannot be used (its directory, socket or start-up)."""


class PersistRefused(PersistError):
    """The directory, the socket or the process behind it is not this user's alone: not used."""


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything that decides how a host is logged in to; sent to the daemon as JSON.

    It has the attributes the SSH transport reads from a FleetHost, so the daemon connects exactly
    as the CLI would have."""

    name: str
    ssh_host: str
    ssh_port: int | None
    username: str | None
    password: str | None = field(repr=False)
    ssh_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, host: Any) -> ConnectionSpec:
        return cls(host.name, host.ssh_host, host.ssh_port, host.username, host.password,
                   dict(host.ssh_options))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionSpec:
        try:
            return cls(str(data["name"]), str(data["ssh_host"]), data.get("ssh_port"),
                       data.get("username"), data.get("password"), dict(data.get("ssh_options") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad connection target: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        # the fields as dataclasses.asdict gives them, without its deep copy of every option
        # value (plain data from the inventory, only read): twice per host and run in the daemon
        return {"name": self.name, "ssh_host": self.ssh_host, "ssh_port": self.ssh_port,
                "username": self.username, "password": self.password,
                "ssh_options": dict(self.ssh_options)}


def connection_identity(spec: ConnectionSpec, *, policy: str) -> str:
    """What a connection is for, trust files' contents aside: the host's name, every login detail
    and the host-key policy. The name counts: two inventory hosts reached at one address get a
    connection each, as they would without --persist (an sshd allows 10 sessions per connection)."""
    identity = spec.to_json()
    identity["host_key_checking"] = policy
    text = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def connection_key(spec: ConnectionSpec, *, check_host_keys: bool | None = None,
                   host_key_checking: str | None = None, trust: Sequence[TrustFile] = ()) -> str:
    """Two runs share a connection only when its identity (above) and the contents of every trust
    file it was logged in with (known_hosts, keys, ssh config) match: a key removed from
    known_hosts, or a run from another HOME, logs in again under its own trust."""
    policy = host_key_policy(check_host_keys=check_host_keys, host_key_checking=host_key_checking)
    identity = connection_identity(spec, policy=policy)
    return hashlib.sha256(f"{identity}:{digest(trust)}".encode()).hexdigest()[:32]


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message is a JSON object")
    return message


def runtime_dir(environ: Mapping[str, str] = os.environ, uid: int | None = None) -> Path:
    """Where the socket lives: $FLEET_PERSIST_DIR, else $XDG_RUNTIME_DIR/fleet, else
    /tmp/fleet-UID (like OpenSSH's ControlPath, a directory only its owner can enter)."""
    uid = os.getuid() if uid is None else uid
    if environ.get(DIR_ENV):
        return Path(environ[DIR_ENV])
    if environ.get("XDG_RUNTIME_DIR") and Path(environ["XDG_RUNTIME_DIR"]).is_dir():
        return Path(environ["XDG_RUNTIME_DIR"]) / "fleet"
    return Path(f"/tmp/fleet-{uid}")


def prepare_runtime_dir(directory: Path) -> Path:
    """Create the directory (mode 0700) or check that an existing one is ours and private."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PersistError(f"{directory}: {exc.strerror}") from exc
    return check_runtime_dir(directory)


def _ours(path: Path, is_kind: Callable[[int], bool], kind: str) -> os.stat_result:
    """lstat of a path that must be a `kind` owned by this user, else PersistRefused;
    FileNotFoundError when there is none."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PersistRefused(f"{path}: {exc.strerror}") from exc
    if not is_kind(info.st_mode):
        raise PersistRefused(f"{path}: not a {kind}")
    if info.st_uid != os.getuid():
        raise PersistRefused(f"{path}: owned by uid {info.st_uid}, not by this user")
    return info


def check_runtime_dir(directory: Path) -> Path:
    """An existing directory that is ours and private (mode 0700), else PersistRefused.
    FileNotFoundError when there is none."""
    info = _ours(directory, stat.S_ISDIR, "directory")
    if info.st_mode & 0o077:
        raise PersistRefused(f"{directory}: mode {stat.S_IMODE(info.st_mode):o}; others could use "
                             "its socket (chmod 700)")
    return directory


def check_socket(path: Path) -> None:
    """The daemon's socket file is a socket and ours, else PersistRefused. FileNotFoundError when
    there is none."""
    _ours(path, stat.S_ISSOCK, "socket")


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED), None if unknown."""
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                             struct.calcsize("3i")))
    except OSError:
        return None
    return int(uid)


def peer_is_ours(uid: int | None, our_uid: int) -> bool:
    """Only a process of our own uid may be talked to (root included: root's daemon serves root)."""
    return uid is not None and uid == our_uid


def socket_path(directory: Path) -> Path:
    """The daemon's socket in `directory`; a Unix socket's path is at most 107 bytes."""
    path = directory / SOCKET_NAME
    if len(os.fsencode(path)) > 107:
        raise PersistError(f"{path}: too long for a Unix socket ({len(os.fsencode(path))} bytes, at "
                           f"most 107); set ${DIR_ENV} to a shorter directory")
    return path


def parse_persist(value: str) -> float:
    """`60`, `60s`, `5m`, `1h` (OpenSSH's ControlPersist style) or `0`/`no` for off."""
    text = value.strip().lower()
    if text in ("", "0", "no", "off", "false"):
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600}
    scale = units.get(text[-1], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"{value!r}: give seconds (60), or 60s, 5m, 1h, or 0 for off") from None
    if not 0 <= seconds <= 7 * 86400 or seconds != seconds:
        raise ValueError(f"{value!r}: between 0 and 7 days")
    return seconds
