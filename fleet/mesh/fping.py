"""Reading `fping -C` style summaries (also what fleet's own ICMP prober prints). Pure.

    fd00::2 : 0.412 0.530 -
    fd00::3: error while sending ping: Network is unreachable
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from operator import mul

from fleet.mesh.ping import RTT_DECIMALS, PingStats

_SUMMARY = re.compile(r"^(?P<target>[0-9A-Fa-f:.%\w-]+)\s+:\s+"
                      r"(?P<times>(?:[\d.]+|-)(?:\s+(?:[\d.]+|-))*)\s*$")
_SEND_ERROR = re.compile(r"^(?P<target>\S+?):\s+error while sending ping:\s*(?P<reason>.*)$")


def stats_from_times(times: Sequence[float | None]) -> PingStats:
    """PingStats from per-probe round-trip times (None: no reply), with ping's mdev."""
    replies: list[float] = [t for t in times if t is not None]
    n = len(replies)
    if not n:
        return PingStats(len(times), 0)
    mean = sum(replies) / n
    mdev = math.sqrt(max(0.0, sum(map(mul, replies, replies)) / n - mean * mean))
    return PingStats(len(times), n, 0, min(replies), round(mean, RTT_DECIMALS), max(replies),
                     round(mdev, RTT_DECIMALS), tuple(replies))


def parse_fping(output: str) -> tuple[dict[str, PingStats], dict[str, str]]:
    """(statistics per target, send error per target) from `fping -C`-style output."""
    return parse_fping_lines(output.splitlines())


def parse_fping_lines(lines: Iterable[str]) -> tuple[dict[str, PingStats], dict[str, str]]:
    """parse_fping of output already cut into lines."""
    stats: dict[str, PingStats] = {}
    errors: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        summary = _SUMMARY.match(line)
        if summary:
            target, times = summary.groups()
            stats[target] = stats_from_times(
                [None if t == "-" else float(t) for t in times.split()] if "-" in times
                else list(map(float, times.split())))
            continue
        error = _SEND_ERROR.match(line)
        if error:
            errors.setdefault(error.group("target"), error.group("reason").strip())
    return stats, errors
