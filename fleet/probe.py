"""Probing a source host's peers in one SSH command.

A probe builds one shell script per source host that pings all of its peers concurrently (bounded
by `parallel`) and reads that script's output back into one PingOutcome per peer. `Probe` is the
seam: `PingProbe` (iputils `ping -6`, one process per peer, `parallel` lanes) is the first.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Protocol

from fleet.ping import PingStats, failure_reason, parse_ping
from fleet.sections import MARKER, section
from fleet.tunnel import TUNNEL_NAME

_PING = MARKER + "ping "
_RC = MARKER + "rc "


@dataclass(frozen=True)
class ProbeParams:
    """How hard to probe: pings per peer, seconds between them, seconds to wait for each reply,
    and peers probed at once from one source."""

    count: int = 3
    interval: float = 0.2
    timeout: float = 1.0
    parallel: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 1000:
            raise ValueError("--count must be between 1 and 1000")
        if not 0.002 <= self.interval <= 60:
            raise ValueError("--interval must be between 0.002 and 60 seconds")
        if not 0.1 <= self.timeout <= 60:
            raise ValueError("--timeout must be between 0.1 and 60 seconds")
        if not 1 <= self.parallel <= 1024:
            raise ValueError("--parallel must be between 1 and 1024")

    def seconds_per_peer(self) -> float:
        return (self.count - 1) * self.interval + self.timeout

    def expected_seconds(self, peers: int) -> float:
        """How long one source's probe should take at most, lanes being sequential."""
        lanes = max(1, min(self.parallel, peers))
        rounds = -(-peers // lanes)
        return rounds * self.seconds_per_peer()


@dataclass(frozen=True)
class PingOutcome:
    """What probing one peer gave: statistics, or why there are none."""

    target: IPv6Address
    stats: PingStats | None
    exit_status: int | None
    error: str | None = None


class Probe(Protocol):
    name: str

    def script(self, targets: Sequence[IPv6Address], params: ProbeParams) -> str: ...

    def parse(self, output: str, targets: Sequence[IPv6Address]) -> dict[IPv6Address, PingOutcome]: ...


def _lanes(targets: Sequence[IPv6Address], count: int) -> list[list[IPv6Address]]:
    lanes: list[list[IPv6Address]] = [[] for _ in range(max(1, min(count, len(targets))))]
    for i, target in enumerate(targets):
        lanes[i % len(lanes)].append(target)
    return lanes


class PingProbe:
    """iputils `ping -6` for every peer, `parallel` lanes of sequential pings."""

    name = "ping"

    def script(self, targets: Sequence[IPv6Address], params: ProbeParams) -> str:
        ping = shlex.join(["ping", "-6", "-n", "-q", "-c", str(params.count),
                           "-i", f"{params.interval:g}", "-W", f"{params.timeout:g}"])
        lines = [
            section("addr"), f"ip -j addr show dev {TUNNEL_NAME} 2>/dev/null || true",
            section("probe"),
            "d=$(mktemp -d /tmp/fleet-probe.XXXXXX) || exit 3",
            "trap 'rm -rf \"$d\"' EXIT",
            "trap 'exit 130' HUP INT TERM",
            f'p() {{ for a in "$@"; do echo "{_PING}$a"; {ping} "$a" 2>&1; echo "{_RC}$?"; done; }}',
        ]
        for i, lane in enumerate(_lanes(targets, params.parallel)):
            addrs = " ".join(shlex.quote(str(a)) for a in lane)
            lines.append(f'p {addrs} > "$d/{i}" &')
        lines += ["wait", 'cat "$d"/* 2>/dev/null']
        return "\n".join(lines)

    def parse(self, output: str, targets: Sequence[IPv6Address]) -> dict[IPv6Address, PingOutcome]:
        outcomes: dict[IPv6Address, PingOutcome] = {}
        current: IPv6Address | None = None
        body: list[str] = []
        for line in output.splitlines():
            if line.startswith(_PING):
                current, body = IPv6Address(line[len(_PING):].strip()), []
            elif line.startswith(_RC) and current is not None:
                text = "\n".join(body)
                status = int(line[len(_RC):].strip() or -1)
                stats = parse_ping(text)
                error = None if stats is not None else failure_reason(text)
                outcomes[current] = PingOutcome(current, stats, status, error)
                current = None
            elif current is not None:
                body.append(line)
        for target in targets:
            if target not in outcomes:
                outcomes[target] = PingOutcome(target, None, None, "no result from the probe")
        return outcomes
