"""The jobs: the remote command each peer sends to each source host, and how to count what worked.

Every peer sends exactly these commands (fleet sends its own mesh probe; see peers/fleet.py).

- mesh-fping: one `fping` per source host for all its peers, in about one ping round:
  `fping -6 -q -C 3 -p 200 -i 1 -t 1000 PEER...` (3 pings per peer 200 ms apart, at most one
  packet per ms from the source, a reply counts within 1 s). Its per-peer summary
  `ADDR : 0.05 0.04 0.04` ("-" for a lost ping) is the result.
- mesh-ping: 99 background iputils pings per source host, `ping -6 -n -q -c 3 -i 0.2 -W 1 PEER &`,
  then `wait`; each ping's statistics line is the result.
- command: `true` on every host.

A pair is OK when all 3 pings were answered; for `command`, a host is OK when `true` exited 0.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address

COUNT, INTERVAL_S, TIMEOUT_S = 3, 0.2, 1.0
MESH_JOBS = ("mesh-fping", "mesh-ping")
BED_JOBS = MESH_JOBS + ("command",)
ALL_JOBS = BED_JOBS + ("setup",)


@dataclass(frozen=True)
class SourceCommand:
    host: str
    command: str
    peers: tuple[IPv6Address, ...]


def fping_command(peers: Sequence[IPv6Address]) -> str:
    argv = ["fping", "-6", "-q", "-C", str(COUNT), "-p", str(int(INTERVAL_S * 1000)), "-i", "1",
            "-t", str(int(TIMEOUT_S * 1000)), *map(str, peers)]
    return shlex.join(argv) + " 2>&1; true"


def ping_command(peers: Sequence[IPv6Address]) -> str:
    ping = shlex.join(["ping", "-6", "-n", "-q", "-c", str(COUNT), "-i", f"{INTERVAL_S:g}",
                       "-W", f"{TIMEOUT_S:g}"])
    return (f"for a in {' '.join(map(str, peers))}; do {ping} $a 2>&1 & done; wait")


def commands(job: str, hosts: Sequence[tuple[str, IPv6Address]]) -> list[SourceCommand]:
    """The command for every source host of the bed, given (name, stand-in IPv6) per host."""
    out = []
    for name, own in hosts:
        peers = tuple(address for _, address in hosts if address != own)
        if job == "mesh-fping":
            out.append(SourceCommand(name, fping_command(peers), peers))
        elif job == "mesh-ping":
            out.append(SourceCommand(name, ping_command(peers), peers))
        elif job == "command":
            out.append(SourceCommand(name, "true", ()))
        else:
            raise ValueError(f"no bed job {job!r}")
    return out


def expected(job: str, count: int) -> int:
    """How many pairs (mesh) or hosts (command) a perfect run counts as OK."""
    return count * (count - 1) if job in MESH_JOBS else count


_FPING_LINE = re.compile(r"^\s*([0-9a-fA-F:.]+)\s+:\s+(.*?)\s*$")
_PING_STATS = re.compile(r"---\s+([0-9a-fA-F:.]+)\s+ping statistics\s+---\s*\n"
                         r"\s*(\d+) packets transmitted, (\d+) received")


def ok_pairs(job: str, source: SourceCommand, output: str | None, exit_status: int | None) -> int:
    """How many of a source's pairs (or 0/1 for `command`) the output shows as fully answered."""
    if job == "command":
        return 1 if exit_status == 0 else 0
    if output is None:
        return 0
    text = output.replace("\r\n", "\n")
    wanted = set(source.peers)
    ok: set[IPv6Address] = set()
    if job == "mesh-fping":
        for line in text.splitlines():
            match = _FPING_LINE.match(line)
            if not match:
                continue
            try:
                address = IPv6Address(match.group(1))
            except ValueError:
                continue
            values = match.group(2).split()
            if len(values) == COUNT and "-" not in values:
                ok.add(address)
    else:
        for match in _PING_STATS.finditer(text):
            try:
                address = IPv6Address(match.group(1))
            except ValueError:
                continue
            if int(match.group(2)) == COUNT and int(match.group(3)) == COUNT:
                ok.add(address)
    return len(ok & wanted)
