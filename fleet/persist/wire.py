"""The persistent-connection protocol, its socket's place, and what makes two connections the same.

One JSON object per line over a Unix socket that only its owner may use. The CLI sends requests
with an `id`; the daemon answers each with the same `id`, in any order.

    {"id": 1, "op": "connect", "target": {...}, "check_host_keys": true, "timeout": 15}
        -> {"id": 1, "ok": true, "key": "3f2a...", "reused": false}
    {"id": 2, "op": "run", "key": "3f2a...", "command": "true", "timeout": 60}
        -> {"id": 2, "ok": true, "exit": 0, "stdout": "", "stderr": ""}
    {"id": 3, "op": "cancel", "cancel": 2}          (no answer; the run answers, cancelled)
    {"id": 4, "op": "status"} -> {"id": 4, "ok": true, "pid": ..., "connections": [...]}
    {"id": 5, "op": "stop"}   -> {"id": 5, "ok": true}, then the daemon closes everything and exits
    {"id": 6, "op": "hello", "persist": 60} -> {"id": 6, "ok": true, "pid": ..., "version": 1}

A failed request answers {"ok": false, "kind": "connect" | "command" | "usage", "error": "..."}.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
SOCKET_NAME = "persist.sock"
LOCK_NAME = "persist.lock"
LOG_NAME = "persist.log"
DIR_ENV = "FLEET_PERSIST_DIR"
PERSIST_ENV = "FLEET_PERSIST"
MAX_LINE = 64 * 1024 * 1024  # a mesh answer from a 2,000-host fleet is ~0.2 MB; far below this


class PersistError(Exception):
    """The persistent-connection process cannot be used (its directory, socket or start-up)."""


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
        return asdict(self)


def connection_key(spec: ConnectionSpec, *, check_host_keys: bool) -> str:
    """Two runs share a connection only when the host's name, every login detail and the host-key
    policy match. The name counts: two inventory hosts reached at one address get a connection
    each, as they would without --persist (an sshd allows 10 sessions per connection)."""
    identity = spec.to_json()
    identity["check_host_keys"] = check_host_keys
    text = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
        info = directory.lstat()
    except OSError as exc:
        raise PersistError(f"{directory}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise PersistError(f"{directory}: not a directory")
    if info.st_uid != os.getuid():
        raise PersistError(f"{directory}: owned by uid {info.st_uid}, not by this user")
    if info.st_mode & 0o077:
        raise PersistError(f"{directory}: mode {stat.S_IMODE(info.st_mode):o}; others could use "
                           "its socket (chmod 700)")
    return directory


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
