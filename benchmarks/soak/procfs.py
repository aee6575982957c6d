"""What a process holds, read from /proc: open fds, TCP sockets, memory, threads.

Also the SSH connections the bed's sshds hold: for each host namespace, the established TCP
connections on port 22 (read through any process in that namespace) and the sshd processes other
than the listener (OpenSSH forks a monitor and a session process per connection).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = "01"
SSH_PORT_HEX = "0016"


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def thread_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _socket_inodes(pid: int | str) -> set[str]:
    inodes = set()
    base = f"/proc/{pid}/fd"
    for fd in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp_table(pid: int | str) -> list[list[str]]:
    """Rows of /proc/PID/net/tcp and tcp6 (the tables of that process's network namespace)."""
    rows = []
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        rows += [line.split() for line in lines]
    return rows


def tcp_sockets(pid: int | str = "self") -> int:
    """TCP sockets this process has open (any state)."""
    inodes = _socket_inodes(pid)
    return sum(1 for row in _tcp_table(pid) if len(row) > 9 and row[9] in inodes)


@dataclass(frozen=True)
class ProcessFigures:
    fds: int
    rss_mb: float
    tcp: int
    threads: int


def process_figures(pid: int | str = "self") -> ProcessFigures:
    return ProcessFigures(fd_count(pid), rss_mb(pid), tcp_sockets(pid), thread_count(pid))


def netns_inode(path: str | Path) -> int:
    return os.stat(path).st_ino


def processes_by_netns() -> dict[int, list[int]]:
    """Every process's PID grouped by the inode of its network namespace."""
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            inode = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        groups.setdefault(inode, []).append(int(entry))
    return groups


def is_sshd(pid: int, sshd: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == sshd
    except OSError:
        return False


@dataclass(frozen=True)
class ServerFigures:
    connections: int  # established TCP connections to port 22, over every host
    processes: int  # sshd processes other than the listeners
    per_host: Mapping[str, int]  # host name -> its established connections


def server_figures(namespaces: Mapping[str, int], listeners: Iterable[int], sshd: str) -> ServerFigures:
    """`namespaces`: host name -> netns inode; `listeners`: the PIDs of the listening sshds."""
    groups = processes_by_netns()
    listening = set(listeners)
    per_host: dict[str, int] = {}
    processes = 0
    for name, inode in namespaces.items():
        pids = groups.get(inode, [])
        processes += sum(1 for pid in pids if pid not in listening and is_sshd(pid, sshd))
        count = 0
        for pid in pids:  # any process of the namespace shows its TCP table
            rows = _tcp_table(pid)
            if rows:
                count = sum(1 for row in rows if len(row) > 3 and row[3] == ESTABLISHED
                            and row[1].endswith(":" + SSH_PORT_HEX))
                break
        per_host[name] = count
    return ServerFigures(sum(per_host.values()), processes, per_host)
