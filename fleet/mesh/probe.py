"""Probing a source host's peers in one SSH command.

`MeshProbe` builds one shell script per source host that probes all of its peers and reads the
answer back into one PingOutcome per peer. The method is chosen on the host, cheapest first:

    fping    one process for every peer (`fping -6 -C`), when the host has fping
    python   fleet's own single-process ICMPv6 prober (fleet/mesh/icmp_prober.py), with python3
    ping     iputils `ping -6`, one process per peer, at most `parallel` at once

`--probe` forces one; the report names the method each host used.

The same script can run more rounds after the tunnel's, each with its own choice of method (the
same order and fallback): `underlay` pings the peers' tunnel IPv4 addresses (`-4`), outside the
tunnel, and `mtu` sends don't-fragment pings that fill the tunnel MTU. The rounds run one after the
other, so each adds about one ping round to the probe's time, and their answers never interleave.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv6Interface

from fleet.core.sections import section, split_sections
from fleet.isatap import TUNNEL_MTU, TUNNEL_NAME
from fleet.mesh.fping import parse_fping_lines
from fleet.mesh.ping import PingStats, failure_reason, parse_ping

METHODS = ("auto", "fping", "python", "ping")
ICMP6_OVERHEAD = 48  # IPv6 header (40) and ICMPv6 echo header (8): a ping of MTU - 48 data bytes fills it
MTU_PINGS = 2  # don't-fragment pings per pair: one reply proves the full-size path
NO_PROBER_STATUS = 4
# A line inside a section; unlike MARKER ("@@fleet "), it does not start a new section.
_RC = "@@fleet-rc "
_METHOD = "method "      # the tunnel round's sections ("method fping")
_UNDERLAY = "underlay "  # the underlay round's ("underlay fping")
_MTU = "mtu "            # the full-size round's ("mtu fping")
_TUNNEL = "tunnel"
_STATISTICS = re.compile(r"^--- (\S+) ping statistics ---$")
_UNATTRIBUTED = ""  # key of the reason that explains peers ping printed nothing about
_WORST_OK = {"fping": 2, "python": 0}  # fping: 1 = some unreachable, 2 = a name not resolved


@dataclass(frozen=True)
class ProbeParams:
    """How hard to probe: pings per peer, seconds between them, seconds to wait for each reply,
    and peers probed at once from one source (by the `ping` method; the others pace themselves)."""

    count: int = 3
    interval: float = 0.2
    timeout: float = 1.0
    parallel: int = 16
    method: str = "auto"
    underlay: bool = False       # also ping the peers' tunnel IPv4 addresses, outside the tunnel
    mtu_size: int | None = None  # also send don't-fragment pings of this many bytes (IPv6 packet)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 1000:
            raise ValueError("--count must be between 1 and 1000")
        if not 0.01 <= self.interval <= 60:
            raise ValueError("--interval must be between 0.01 and 60 seconds")
        if not 0.1 <= self.timeout <= 60:
            raise ValueError("--timeout must be between 0.1 and 60 seconds")
        if not 1 <= self.parallel <= 1024:
            raise ValueError("--parallel must be between 1 and 1024")
        if self.method not in METHODS:
            raise ValueError(f"--probe must be one of {', '.join(METHODS)}")
        if self.mtu_size is not None and not 1280 <= self.mtu_size <= 65535:
            raise ValueError("the MTU to check must be between 1280 (IPv6's minimum) and 65535")

    def seconds_per_peer(self) -> float:
        return (self.count - 1) * self.interval + self.timeout

    @property
    def mtu_payload(self) -> int | None:
        """ICMPv6 data bytes of a ping that fills `mtu_size` (ping's -s, fping's -b)."""
        return None if self.mtu_size is None else self.mtu_size - ICMP6_OVERHEAD

    def expected_seconds(self, peers: int) -> float:
        """How long one source's probe should take at most (the `ping` method, lanes being
        sequential, is the slowest): one ping round for the tunnel, one more for the underlay,
        and a shorter one (MTU_PINGS pings) for the MTU check."""
        lanes = max(1, min(self.parallel, peers))
        rounds = -(-peers // lanes)
        per_peer = self.seconds_per_peer() * (2 if self.underlay else 1)
        if self.mtu_size is not None:
            per_peer += (MTU_PINGS - 1) * self.interval + self.timeout
        return rounds * per_peer + peers * 0.002 * (1 + self.underlay + (self.mtu_size is not None))


DEFAULT_MTU_SIZE = TUNNEL_MTU  # what --mtu checks: the tunnel's own MTU


@dataclass(frozen=True)
class ProbeRound:
    """One round of pings from a source: its section prefix, address family, peers (as texts),
    pings per peer, and, for the MTU round, the data bytes of don't-fragment pings."""

    prefix: str
    family: int
    targets: tuple[str, ...]
    count: int
    size: int | None = None


@dataclass(frozen=True)
class PingOutcome:
    """What probing one peer (its canonical IPv6 text) gave: statistics, or why there are none."""

    target: str
    stats: PingStats | None
    exit_status: int | None
    error: str | None = None


@dataclass(frozen=True)
class ProbeAnswer:
    """One source's answer: the method it used, its tunnel's addresses and an outcome per peer;
    with the underlay round, an outcome per peer's IPv4 text, and with the MTU round, a
    full-size outcome per peer's IPv6 text (None: the round was not asked for)."""

    method: str
    tunnel_addresses: tuple[IPv6Interface, ...]
    outcomes: dict[str, PingOutcome]
    notes: tuple[str, ...] = ()
    underlay: dict[str, PingOutcome] | None = None
    mtu: dict[str, PingOutcome] | None = None


def _lanes(targets: Sequence[str], count: int) -> list[list[str]]:
    lanes: list[list[str]] = [[] for _ in range(max(1, min(count, len(targets))))]
    for i, target in enumerate(targets):
        lanes[i % len(lanes)].append(target)
    return lanes


@functools.cache
def _prober_program() -> str:
    return resources.files("fleet.mesh").joinpath("icmp_prober.py").read_text(encoding="utf-8")


class MeshProbe:
    """Builds the probe script and reads its answer."""

    def script(self, targets: Sequence[str], params: ProbeParams,
               underlay_targets: Sequence[str] = ()) -> str:
        """The probe script for peers given as canonical IPv6 texts (and, with
        `params.underlay`, their IPv4 texts, in the same order). Each round tries the methods in
        order and keeps the first that works; one that is present but fails outright (fping
        without /etc/protocols, say) leaves a note and the next one is tried. Only shell builtins
        run besides the probers: every process costs the target CPU."""
        lines = [section(_TUNNEL),
                 f'{{ while read -r a i p s f d; do [ "$d" = {TUNNEL_NAME} ] && echo "$a $p"; '
                 "done < /proc/net/if_inet6; } 2>/dev/null",
                 "nl='", "'"]  # a newline, for splitting output with builtins
        if params.method in ("auto", "python"):
            lines.insert(0, f"fp={shlex.quote(_prober_program())}")  # once, for every round
        lines += self._round(ProbeRound(_METHOD, 6, tuple(targets), params.count), params)
        lines.append(f'[ -n "$ran" ] || exit {NO_PROBER_STATUS}')
        if params.underlay:
            if len(underlay_targets) != len(targets):
                raise ValueError("the underlay round needs every peer's IPv4 address")
            lines += self._round(ProbeRound(_UNDERLAY, 4, tuple(underlay_targets), params.count),
                                 params)
        if params.mtu_payload is not None:
            lines += self._round(ProbeRound(_MTU, 6, tuple(targets), MTU_PINGS, params.mtu_payload),
                                 params)
        if params.underlay or params.mtu_payload is not None:
            lines.append("exit 0")  # the tunnel round worked; a later round's failure is in its pairs
        return "\n".join(lines)

    def _round(self, probe: ProbeRound, params: ProbeParams) -> list[str]:
        """The lines of one round: its peers set once as "$@", then each method in turn until one
        works (`ran` names it)."""
        addrs = '"$@"'  # the peers' canonical address texts, set once below: nothing to quote
        def ms(seconds: float) -> str:
            return str(max(1, round(seconds * 1000)))

        fping_df = f" -M -b {probe.size}" if probe.size is not None else ""
        python_opts = (" -4" if probe.family == 4 else "") + (
            f" -s {probe.size} -M" if probe.size is not None else "")
        summaries = {
            "fping": ("fping", f"fping -{probe.family} -q -C {probe.count} -p {ms(params.interval)} "
                               f"-i 1 -t {ms(params.timeout)}{fping_df} {addrs}", 2),
            "python": ("python3", f'python3 -c "$fp" {probe.count} {params.interval:g} '
                                  f"{params.timeout:g}{python_opts} {addrs}", 0),
        }
        chosen = ["fping", "python", "ping"] if params.method == "auto" else [params.method]
        lines = ["set -- " + " ".join(probe.targets), "ran="]
        for name in chosen:
            if name == "ping":
                lines += ['if [ -z "$ran" ] && command -v ping >/dev/null 2>&1; then',
                          "  ran=ping", "  " + section(probe.prefix + "ping")]
                lines += ["  " + line for line in self._ping_lanes(probe, params)]
                lines.append("fi")
                continue
            command_name, command, worst_ok = summaries[name]
            lines += [
                f'if [ -z "$ran" ] && command -v {command_name} >/dev/null 2>&1; then',
                f"  {section(probe.prefix + name)}",
                f"  {command} 2>&1",
                "  rc=$?",
                f'  echo "{_RC}$rc"',
                f'  [ "$rc" -le {worst_ok} ] && ran={name}',
                "fi",
            ]
        return lines

    @staticmethod
    def _ping_lanes(probe: ProbeRound, params: ProbeParams) -> list[str]:
        targets = probe.targets
        df = ["-M", "do", "-s", str(probe.size)] if probe.size is not None else []
        ping = shlex.join(["ping", f"-{probe.family}", "-n", "-q", "-c", str(probe.count),
                           "-i", f"{params.interval:g}", "-W", f"{params.timeout:g}", *df])
        # Each lane pings its peers one after the other; a lane of one peer is that ping alone.
        # No wrapper, no temporary file: ping writes its whole -q summary, which names the peer
        # ("--- ADDR ping statistics ---"), in one write at exit, atomic on the shared pipe.
        lines = [f'p() {{ for a in "$@"; do {ping} "$a" 2>&1; done; }}']
        for lane in _lanes(targets, params.parallel):
            lines.append(f"{ping} {lane[0]} 2>&1 &" if len(lane) == 1 else f"p {' '.join(lane)} &")
        lines.append("wait")
        return lines

    def parse(self, output: str, targets: Sequence[str],
              underlay_targets: Sequence[str] | None = None, mtu: bool = False) -> ProbeAnswer:
        """The answer to `script`: pass `underlay_targets` when it had the underlay round and
        `mtu` when it had the MTU round."""
        parts = split_sections(output)
        method, outcomes, notes = self._parse_round(parts, _METHOD, targets)
        underlay = full_size = None
        if underlay_targets is not None:
            _, underlay, more = self._parse_round(parts, _UNDERLAY, underlay_targets)
            notes += tuple(f"underlay: {note}" for note in more)
        if mtu:
            _, full_size, more = self._parse_round(parts, _MTU, targets)
            notes += tuple(f"mtu: {note}" for note in more)
        return ProbeAnswer(method, parse_proc_inet6(parts.get(_TUNNEL, "")), outcomes, notes,
                           underlay, full_size)

    def _parse_round(self, parts: dict[str, str], prefix: str, targets: Sequence[str]
                     ) -> tuple[str, dict[str, PingOutcome], tuple[str, ...]]:
        attempts = [name[len(prefix):] for name in parts if name.startswith(prefix)]
        method = attempts[-1] if attempts else "none"  # the script stops at the first that works
        notes = tuple(_failure_note(name, parts[prefix + name]) for name in attempts[:-1])
        body = parts.get(prefix + method, "")
        if method == "ping":
            outcomes = self._parse_ping_lanes(body)
        else:
            # a full-size ping that could not be sent (EMSGSIZE) is the MTU check's answer
            outcomes = self._parse_summaries(body, keep_stats=prefix == _MTU)
            last_rc = _last_status(body)
            if last_rc is not None and last_rc > _WORST_OK.get(method, 0):
                notes += (_failure_note(method, body),)
        unattributed = outcomes.pop(_UNATTRIBUTED, None)
        missing = unattributed.error if unattributed else "no result from the probe" + (
            f" ({'; '.join(notes)})" if notes else "")
        for target in targets:
            if target not in outcomes:
                outcomes[target] = PingOutcome(target, None, None, missing)
        return method, outcomes, notes

    @staticmethod
    def _parse_summaries(body: str, keep_stats: bool = False) -> dict[str, PingOutcome]:
        """Outcomes from `fping -C`-style lines. A peer whose pings could not be sent has no
        statistics (could not tell), unless `keep_stats`: then it keeps both."""
        status = None
        lines = body.splitlines()
        if lines and lines[-1].startswith(_RC):
            status = int(lines.pop()[len(_RC):].strip() or -1)
        stats, errors = parse_fping_lines(lines)
        if not errors:  # the usual answer: every peer's pings were sent
            return {target: PingOutcome(target, value, status) for target, value in stats.items()}
        outcomes: dict[str, PingOutcome] = {}
        for text, value in stats.items():
            target = text  # the prober prints each address as it was given
            error = errors.get(text)
            if error and value.received == 0 and not keep_stats:
                outcomes[target] = PingOutcome(target, None, status, error)
            elif error and value.received == 0:
                outcomes[target] = PingOutcome(target, value, status, error)
            else:
                outcomes[target] = PingOutcome(target, value, status)
        return outcomes

    @staticmethod
    def _parse_ping_lanes(body: str) -> dict[str, PingOutcome]:
        """Each ping's summary block; lines that name no peer (ping's own errors, such as
        "connect: Network is unreachable") explain the peers that have no summary."""
        outcomes: dict[str, PingOutcome] = {}
        said: list[str] = []
        lines = body.splitlines()
        for i, line in enumerate(lines):
            header = _STATISTICS.match(line)
            if header:
                target = header.group(1)
                stats = parse_ping("\n".join(lines[i:i + 3]))
                outcomes[target] = PingOutcome(target, stats, None,
                                               None if stats else "ping printed no statistics")
            elif line.startswith("ping: ") and line not in said:
                said.append(line)
        if said:
            reason = "ping printed no statistics (ping said: " + "; ".join(
                failure_reason(line) for line in said) + ")"
            outcomes = {t: o if o.stats else PingOutcome(t, None, None, reason)
                        for t, o in outcomes.items()}
            outcomes[_UNATTRIBUTED] = PingOutcome(_UNATTRIBUTED, None, None, reason)
        return outcomes


def _last_status(body: str) -> int | None:
    for line in reversed(body.splitlines()):
        if line.startswith(_RC):
            value = line[len(_RC):].strip()
            return int(value) if value.lstrip("-").isdigit() else None
    return None


def _failure_note(method: str, body: str) -> str:
    said = [line.strip() for line in body.splitlines() if line.strip() and not line.startswith(_RC)]
    status = _last_status(body)
    return (f"{method} failed with exit status {status}" + (f": {said[-1]}" if said else ""))


def parse_proc_inet6(text: str) -> tuple[IPv6Interface, ...]:
    """The tunnel's global addresses from /proc/net/if_inet6 lines cut to "HEX32 PREFIXLEN_HEX"."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2 or len(fields[0]) != 32:
            continue
        try:
            iface = IPv6Interface((int(fields[0], 16), int(fields[1], 16)))
        except ValueError:
            continue
        if not iface.ip.is_link_local:
            found.append(iface)
    return tuple(found)
