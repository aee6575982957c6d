"""Reading the summary that iputils `ping` prints. Pure: text in, PingStats out."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRANSMITTED = re.compile(
    r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) (?:packets )?received"
    r"(?:, \+(?P<duplicates>\d+) duplicates)?(?:, \+(?P<corrupted>\d+) corrupted)?"
    r"(?:, \+(?P<errors>\d+) errors)?")
RTT_DECIMALS = 3  # RTTs are kept and shown to the microsecond
LOSS_DECIMALS = 1

_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/(?:mdev|stddev))? = "
                  r"(?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)(?:/(?P<mdev>[\d.]+))? ms")


@dataclass(frozen=True)
class PingStats:
    """The statistics block of one ping run. RTTs are in milliseconds, None without replies;
    `replies_ms` holds each reply's RTT when the prober printed them (fping -C and fleet's own
    prober do; ping's -q summary does not), for percentiles."""

    sent: int
    received: int
    errors: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_mdev_ms: float | None = None
    replies_ms: tuple[float, ...] = ()

    @property
    def loss_pct(self) -> float:
        return 100.0 if self.sent == 0 else loss_pct(self.sent, self.received)


def loss_pct(sent: int, received: int) -> float:
    """The share of `sent` probes that got no reply, in percent (duplicate replies do not make it
    negative). `sent` must be positive."""
    return round(100.0 * (sent - min(received, sent)) / sent, LOSS_DECIMALS)


def parse_ping(output: str) -> PingStats | None:
    """The statistics in ping's output, or None when ping printed none (it could not run)."""
    counts = _TRANSMITTED.search(output)
    if counts is None:
        return None
    rtt = _RTT.search(output)

    def ms(name: str) -> float | None:
        if rtt is None or rtt.group(name) is None:
            return None
        return float(rtt.group(name))

    return PingStats(
        sent=int(counts.group("sent")),
        received=int(counts.group("received")),
        errors=int(counts.group("errors") or 0),
        rtt_min_ms=ms("min"), rtt_avg_ms=ms("avg"), rtt_max_ms=ms("max"), rtt_mdev_ms=ms("mdev"),
    )


def failure_reason(output: str) -> str:
    """The line that says why ping could not run (its last non-empty line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "ping printed nothing"
    reason = lines[-1]
    return reason[len("ping: "):] if reason.startswith("ping: ") else reason
