"""The benchmark's bed: fleet's NamespaceBed (lab.md section 2) plus what every peer needs of it.

Two ways to reach the hosts, the same for every tool in a run (`--via`):

- `hub` (default): every client (fleet included) runs inside the bed's hub namespace
  (`ip netns exec <tag>-hub ...`) and connects to each host's sshd at 172.31.1.x:22 directly;
  nothing relays the SSH bytes.
- `forwarder`: every client runs in the machine's own namespace and connects to 127.0.0.1:PORT,
  through the bed's forwarder (one Python process relaying every SSH byte); its CPU is reported.

The hosts' IPv6 addresses are ISATAP-format stand-ins on plain veth interfaces (this kernel has no
sit): the mesh measures real ICMPv6 between namespaces, not tunnels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

from fleet.lab.nsbed import NamespaceBed

VIA = ("hub", "forwarder")


@dataclass(frozen=True)
class Target:
    """One bed host as a client sees it: the SSH address and port, and its stand-in IPv6."""

    name: str
    address: str
    port: int
    ipv6: IPv6Address
    netns: str


class BenchBed:
    """A started NamespaceBed and the files the peers share: key, known_hosts, inventories."""

    def __init__(self, bed: NamespaceBed, via: str) -> None:
        if via not in VIA:
            raise ValueError(f"via must be one of {VIA}")
        assert bed.workdir is not None and bed.inventory_dir is not None
        self.bed = bed
        self.via = via
        self.workdir = Path(bed.workdir)
        self.hub = f"{bed.tag}-hub"
        self.key = self.workdir / "client_key"
        self.user = "root"
        if via == "hub":
            self.targets = [Target(h.name, str(h.ipv4), 22, h.ipv6, h.netns) for h in bed.hosts]
            self.known_hosts = self.workdir / "known_hosts_direct"
            self.known_hosts.write_text("".join(
                f"{h.ipv4} {self._host_key(h.name)}\n" for h in bed.hosts))
            self.inventory_dir = self._write_direct_inventory()
        else:
            self.targets = [Target(h.name, "127.0.0.1", h.ssh_port, h.ipv6, h.netns)
                            for h in bed.hosts]
            self.known_hosts = bed.inventory_dir / "known_hosts"
            self.inventory_dir = bed.inventory_dir

    @property
    def prefix(self) -> list[str]:
        """What runs a client where it can reach the hosts (empty in forwarder mode)."""
        return ["ip", "netns", "exec", self.hub] if self.via == "hub" else []

    def _host_key(self, name: str) -> str:
        kind, key, *_ = (self.workdir / name / "ssh_host_ed25519_key.pub").read_text().split()
        return f"{kind} {key}"

    def _write_direct_inventory(self) -> Path:
        """The bed's inventory, but each host's hostname is its own 172.31.1.x and port 22."""
        return self.bed.write_inventory(self.workdir / "inventory-direct",
                                        {h.name: (str(h.ipv4), 22) for h in self.bed.hosts},
                                        self.user, self.key, self.known_hosts)

    def forwarder_pid(self) -> int | None:
        """The PID of the bed's SSH forwarder."""
        return self.bed.forwarder_pid

    def sshd_pids(self) -> list[int]:
        return list(self.bed.sshd_pids.values())


def describe(bench: BenchBed) -> str:
    first = bench.targets[0]
    how = (f"ip netns exec {bench.hub}, {first.address}:22 directly" if bench.via == "hub"
           else "127.0.0.1:PORT through the forwarder")
    return (f"bed: {len(bench.targets)} OpenSSH hosts in network namespaces {bench.bed.tag}-h*, "
            f"hub {bench.hub}; clients reach them via {bench.via} ({how}); "
            f"IPv6 addresses are ISATAP-format stand-ins (e.g. {first.ipv6}) on plain veth "
            f"interfaces, not tunnels (this kernel has no sit)")


def machine_facts() -> dict[str, str]:
    import platform
    import subprocess

    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "absent"
        text = (done.stdout + done.stderr).strip()
        return text.splitlines()[0] if text else "?"

    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    return {"cores": str(os.cpu_count()), "memory": memory, "debian": debian,
            "kernel": platform.release(), "python": platform.python_version(),
            "openssh": out(["ssh", "-V"]),
            "fleet_commit": out(["git", "-C", str(Path(__file__).resolve().parents[1]), "describe",
                                 "--always", "--dirty"]), "fping": out(["fping", "-v"]),
            "cpu": next((line.split(":", 1)[1].strip() for line in
                         Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), "?")}
