"""Host-key policy, OpenSSH's way: the StrictHostKeyChecking words, the known_hosts file in use,
its line format, what to tell the user, and appending a newly accepted key safely.

No SSH library here: the transport (fleet/ssh/transport.py) matches keys with asyncssh and asks this module
what the policy says and how to say it.

    yes         a key known_hosts does not hold is refused (unknown or changed)
    accept-new  an unknown key is trusted and recorded in the known_hosts file; a changed one is
                refused, as with `yes`
    no          an unknown key is trusted silently; a changed one is trusted with a warning, and
                then no password is sent to that host (keys still are)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fleet.core.transport import DEFAULT_SSH_PORT

HostKeyChecking = Literal["yes", "accept-new", "no"]
HOST_KEY_CHECKING: tuple[HostKeyChecking, ...] = ("yes", "accept-new", "no")


def host_key_checking(value: str | bool) -> HostKeyChecking:
    """A policy word from a command-line value (`yes`, `accept-new`, `no`) or the old boolean."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    word = str(value).strip().lower()
    for policy in HOST_KEY_CHECKING:
        if word == policy:
            return policy
    raise ValueError(f"host key checking must be one of {', '.join(HOST_KEY_CHECKING)}, not {value!r}")


def default_known_hosts() -> Path:
    """`~/.ssh/known_hosts`, `~` from this process's environment (HOME)."""
    return Path(os.path.expanduser("~/.ssh/known_hosts"))


def known_hosts_files(ssh_options: Mapping[str, Any]) -> tuple[Path, ...] | None:
    """The known_hosts files in use for a host: its `known_hosts` extra (a path or a list of paths)
    when given, else ~/.ssh/known_hosts. None when the extra is something else (explicit `null`,
    which turns checking off, or keys given inline): then there is no file to name or append to."""
    if "known_hosts" not in ssh_options:
        return (default_known_hosts(),)
    value = ssh_options["known_hosts"]
    if isinstance(value, (str, os.PathLike)):
        return (Path(os.path.expanduser(os.fspath(value))),)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike))
                                                         for v in value):
        return tuple(Path(os.path.expanduser(os.fspath(v))) for v in value)
    return None


def known_hosts_name(host: str, port: int | None) -> str:
    """How OpenSSH names a host in known_hosts: `host` on port 22, `[host]:port` otherwise."""
    if port is None or port == DEFAULT_SSH_PORT:
        return host
    return f"[{host}]:{port}"


def known_hosts_line(host: str, port: int | None, public_key: str) -> str:
    """A known_hosts line (unhashed) for host:port and an OpenSSH public key (`type base64`)."""
    algorithm, data = public_key.split()[:2]
    return f"{known_hosts_name(host, port)} {algorithm} {data}\n"


@dataclass(frozen=True)
class OfferedKey:
    """The host key a server offered that known_hosts did not vouch for."""

    host: str  # the name it was looked up under in known_hosts
    port: int
    algorithm: str
    fingerprint: str  # SHA256:...
    public_key: str  # `type base64`
    changed: bool  # known_hosts holds other keys for this host and port
    authority: bool = False  # a certificate signed by a CA that known_hosts does not trust

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def _files_text(files: tuple[Path, ...] | None) -> str:
    if not files:
        return "the known_hosts given inline in the inventory"
    return ", ".join(str(f) for f in files)


def removal_command(host: str, port: int, file: Path | None) -> str:
    """OpenSSH's remedy for a changed key: the command that removes the old one."""
    where = f" -f {shlex.quote(str(file))}" if file is not None else ""
    return f"ssh-keygen -R {shlex.quote(known_hosts_name(host, port))}{where}"


def unknown_key_message(offered: OfferedKey, files: tuple[Path, ...] | None) -> str:
    what = "host certificate of" if offered.authority else "host key of"
    signer = " (signed by a CA key it does not trust)" if offered.authority else ""
    missing = [f for f in files or () if not f.exists()]
    absent = f"; {', '.join(str(f) for f in missing)} does not exist" if missing else ""
    add = (f"ssh-keyscan -p {offered.port} {shlex.quote(offered.host)} >> {shlex.quote(str(files[0]))}"
           if files else "add it to the inventory's known_hosts")
    return (f"{what} {offered.target} is not verifiable: it is unknown ({offered.algorithm} "
            f"{offered.fingerprint} is not in {_files_text(files)}{signer}{absent}). If that "
            f"fingerprint is the host's, add it ({add}) or run once with --host-key-checking accept-new")


def changed_key_message(offered: OfferedKey, files: tuple[Path, ...] | None) -> str:
    return (f"host key of {offered.target} is not verifiable: it has CHANGED (someone may be "
            f"intercepting the connection, or the host was reinstalled): it offered {offered.algorithm} "
            f"{offered.fingerprint}, which {_files_text(files)} does not hold for it. If the change is "
            f"expected, remove the old key with: "
            f"{removal_command(offered.host, offered.port, files[0] if files else None)}")


def changed_key_warning(offered: OfferedKey, files: tuple[Path, ...] | None) -> str:
    return (f"host key of {offered.target} has changed ({offered.algorithm} {offered.fingerprint} is not "
            f"the one in {_files_text(files)}); connected anyway because host key checking is off, "
            "without sending a password. To trust the new key: "
            f"{removal_command(offered.host, offered.port, files[0] if files else None)}")


class KnownHostsWriter:
    """Appends accepted keys to known_hosts files, one write at a time.

    Within the event loop an asyncio lock serialises the hosts that accept a key at once; across
    processes (a second fleet, the persistent-connection process) an flock on the file does. A line
    already present (another process recorded the same key first) is not written twice.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def append(self, file: Path, line: str) -> None:
        async with self._lock:
            await asyncio.to_thread(append_line, file, line)


def append_line(file: Path, line: str) -> None:
    """Append one known_hosts line, creating the file (0600) and its directory (0700) if missing."""
    if not file.parent.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            existing = handle.read()
            data = line.encode()
            if data in existing.splitlines(keepends=True) or data.rstrip(b"\n") in existing.splitlines():
                return
            if existing and not existing.endswith(b"\n"):
                data = b"\n" + data
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
