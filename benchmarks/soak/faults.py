"""Faults on a NamespaceBed: a host's sshd killed (listener and every session, as when the daemon
crashes or the host's sshd is restarted hard) and started again, and a host's packets dropped.

Only processes of the bed are touched: the listener the bed started and the sshd processes in
that host's own network namespace (its listener's children). Drops are an nftables `bridge`
table in the bed's hub namespace, matching the packets the host sends into the bridge.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from benchmarks.soak.procfs import is_sshd, netns_inode, processes_by_netns
from fleet.lab.errors import LabError
from fleet.lab.nsbed import SSHD, NamespaceBed

TABLE = "fleet_soak"


def _wait_gone(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    left = list(pids)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for pid in left:
            try:  # the listener is the bed's child: reap it
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        left = [pid for pid in left if Path(f"/proc/{pid}").exists()
                and not _zombie(pid)]
        if left:
            time.sleep(0.02)
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_sshd(bed: NamespaceBed, name: str) -> int:
    """Kill a host's sshd listener and every sshd session process in its namespace (SIGKILL);
    returns how many processes were killed. The host keeps answering on the network."""
    host = next(h for h in bed.hosts if h.name == name)
    listener = bed.sshd_pids[name]
    inode = netns_inode(Path("/run/netns", host.netns))
    victims = [pid for pid in processes_by_netns().get(inode, []) if is_sshd(pid, SSHD)]
    for pid in {listener, *victims}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    left = _wait_gone({listener, *victims})
    if left:
        raise LabError(f"sshd processes of {name} did not die: {left}")
    bed.sshd_killed(name)  # gone for good: never signal that PID again at teardown
    return len({listener, *victims})


def restart_sshd(bed: NamespaceBed, name: str, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start a host's sshd again with the configuration and host key it had (the bed's own start
    makes a new key); returns the new listener once it accepts connections. The bed's teardown
    stops it; keep the Popen until then."""
    assert bed.workdir is not None
    host = next(h for h in bed.hosts if h.name == name)
    hostdir = bed.workdir / name
    process = bed.restart_sshd(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"sshd of {name} exited with {process.returncode} on restart; "
                           f"see {hostdir / 'sshd.log'}")
        if _listening(process.pid, host.ipv4):
            return process
        time.sleep(0.05)
    raise LabError(f"sshd of {name} did not listen within {timeout:g} s of its restart")


def _listening(pid: int, address: IPv4Address) -> bool:
    """The process listens on address:22 (/proc shows IPv4 addresses as little-endian hex)."""
    local = f"{int.from_bytes(address.packed, 'little'):08X}:0016"
    try:
        rows = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(row.split()[1] == local and row.split()[3] == "0A" for row in rows)


class Drops:
    """Packet drops on chosen hosts, switched by replacing the rules of one nftables table."""

    def __init__(self, bed: NamespaceBed) -> None:
        self.hub = f"{bed.tag}-hub"
        self.hosts: frozenset[str] = frozenset()
        self._made = False

    def _nft(self, script: str) -> None:
        done = subprocess.run(["ip", "netns", "exec", self.hub, "nft", "-f", "-"], input=script,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"nft in {self.hub} failed: {done.stderr.strip()}")

    def set(self, hosts: Iterable[str]) -> None:
        """Drop every frame these hosts send into the bridge (to other hosts and to the hub);
        an empty set lets everything through."""
        wanted = frozenset(hosts)
        if wanted == self.hosts:
            return
        lines = [] if self._made else [
            f"add table bridge {TABLE}",
            f"add chain bridge {TABLE} forward {{ type filter hook forward priority 0; }}",
            f"add chain bridge {TABLE} input {{ type filter hook input priority 0; }}"]
        lines += [f"flush chain bridge {TABLE} forward", f"flush chain bridge {TABLE} input"]
        for name in sorted(wanted):
            for chain in ("forward", "input"):
                lines.append(f'add rule bridge {TABLE} {chain} iifname "v{name}" drop')
        self._nft("\n".join(lines) + "\n")
        self._made = True
        self.hosts = wanted

    def remove(self) -> None:
        if self._made:
            subprocess.run(["ip", "netns", "exec", self.hub, "nft", "delete", "table", "bridge",
                            TABLE], capture_output=True)
            self._made = False
            self.hosts = frozenset()


def nft_available() -> bool:
    return shutil.which("nft") is not None
