"""SIMULATION server for benchmarks/simulate.py: one asyncssh server that plays every host.

It accepts any number of SSH connections on loopback (real key exchange, real ed25519 host key,
real public-key authentication with a client key it generates) and answers each command WITHOUT
RUNNING IT. No shell is started and no packet is sent to any peer: for fleet's mesh probe (the
script `fleet.mesh.probe.MeshProbe.script` builds) it prints what a configured host with fping would
print:

    @@fleet addr
    [{"ifname": "sit1", ..., "addr_info": [{"family": "inet6", "local": <its ISATAP address>, ...}]}]
      (or, for probes that read /proc/net/if_inet6: `@@fleet tunnel` and "HEX32 40" lines)
    @@fleet method fping
    fd00:5efe:51::5efe:a00:2 : 0.041 0.052 0.047        (one line per target, every reply present)
    @@fleet-rc 0

and exits 0. Every simulated host has an SSH address of its own (`--addresses N`: 127.1.0.1 and
up, all on one port; fleet refuses two inventory hosts with one SSH target), and which host is
asking comes from the SSH user name: the driver gives every inventory host the user
`sim-A-B-C-D` for its data.ipv4 A.B.C.D, from which the host's own ISATAP address (on `--prefix`)
follows.
RTTs are deterministic pseudo-random values (same source and target: same numbers).

The only delay it adds is an optional stand-in for the ping round, from the probe's own fping flags
(`-C COUNT -p PERIOD_MS -i INTERVAL_MS`):

    --round fixed   (COUNT - 1) * PERIOD + --reply-ms   (default: what fping needs for few peers)
    --round fping   max((COUNT - 1) * PERIOD, (COUNT * TARGETS - 1) * INTERVAL) + --reply-ms
                    (fping also spaces any two pings by -i, so a big mesh takes longer on a host)
    --round none    answer at once

Any other command gets exit status 127 and a line on stderr (this is not a shell). So it keeps
no shell for fleet's kept connections either (fleet.ssh.kept_shell): each simulated host refuses
it once, and its rounds run in a session each, as on a host without /bin/sh.

Run by the driver as `python -m benchmarks.simserver --workdir DIR`; it writes DIR/client_key,
DIR/host_key, DIR/known_hosts and prints `PORT <n>` on stdout once it listens. It stops on
SIGTERM/SIGINT or when its stdin closes (the driver died), so it never outlives the driver.

A process holds two files per host (a listening socket and a connection), so past half its open-file
limit the driver runs several: the first as above, each other with `--first I --port <n>
--keys-from DIR` (the same port and keys on the next addresses), their known_hosts appended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import zlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Network
from pathlib import Path
from typing import Any

import asyncssh

from benchmarks.loopback_ssh import LoopbackSSHServer
from fleet.isatap import isatap_address, link_local_address

DEFAULT_PREFIX = "fd00:5efe:51::/64"
ROUND_MODELS = ("fixed", "fping", "none")
_RTT_TABLE_SIZE = 1021  # prime: spreads the per-pair hash


@dataclass
class Probe:
    """The parts of a probe command the answer depends on."""

    method: str
    count: int
    period_ms: float
    interval_ms: float
    timeout_ms: float
    targets: list[str]
    tunnel: str = "addr"  # how the script reads sit1's addresses: `ip -j addr` or /proc/net/if_inet6


_FPING_COMMAND = re.compile(r"\s*(?:\w+=\$\()?(fping -.*)")


def parse_probe(command: str) -> Probe | None:
    """The fping invocation of a MeshProbe script, or None when the command is not a probe.

    The script's first prober is fping (`fping -6 -q -C N -p MS -i MS -t MS ADDR...`, wrapped as
    `fping ... 2>&1` or `out=$(fping ... 2>&1)` depending on fleet's version); the simulated host
    has fping, so that is what a real host would run. `command -v fping` lines are not it.
    """
    if "@@fleet" not in command:
        return None
    positional: list[str] = []  # `set -- ADDR...`: the peers, given once, then used as "$@"
    for line in command.splitlines():
        if line.startswith("set -- "):
            positional = line.split()[2:]
        # fping as the line's command (or in `out=$(...)`), not the words "fping -C" in the
        # text of fleet's own prober, which the script sets in a variable first
        found = _FPING_COMMAND.match(line)
        if found is None:
            continue
        text = found.group(1)
        for end in ("2>&1", ")", ";"):
            cut = text.find(end)
            if cut >= 0:
                text = text[:cut]
        tokens = text.split()
        flags = {"-C": 1.0, "-p": 1000.0, "-i": 10.0, "-t": 500.0}
        targets: list[str] = []
        i = 1
        while i < len(tokens):
            token = tokens[i]
            if token in flags and i + 1 < len(tokens):
                flags[token] = float(tokens[i + 1])
                i += 2
            elif token.startswith("-"):
                i += 1
            elif token == '"$@"':
                targets.extend(positional)
                i += 1
            else:
                targets.append(token.strip("'\""))
                i += 1
        tunnel = "tunnel" if "@@fleet tunnel" in command else "addr"
        return Probe("fping", int(flags["-C"]), flags["-p"], flags["-i"], flags["-t"], targets,
                     tunnel)
    return None


def round_seconds(probe: Probe, model: str, reply_ms: float) -> float:
    """How long the simulated host takes to answer (see the module docstring)."""
    if model == "none":
        return 0.0
    span_ms = (probe.count - 1) * probe.period_ms
    if model == "fping":
        span_ms = max(span_ms, (probe.count * len(probe.targets) - 1) * probe.interval_ms)
    return max(0.0, span_ms + reply_ms) / 1000.0


def rtt_table(count: int) -> list[str]:
    """Pre-generated `fping -C` time columns: COUNT replies of 0.020-0.099 ms each."""
    rng = random.Random(count * 7919)
    return [" ".join(f"{rng.uniform(0.02, 0.099):.3f}" for _ in range(count))
            for _ in range(_RTT_TABLE_SIZE)]


def addr_json(ipv4: IPv4Address, prefix: IPv6Network) -> str:
    """What `ip -j addr show dev sit1` prints on a host whose tunnel fleet set up."""
    life = 4294967295
    return json.dumps([{
        "ifindex": 4, "link": None, "ifname": "sit1", "flags": ["NOARP", "UP", "LOWER_UP"],
        "mtu": 1480, "qdisc": "noqueue", "operstate": "UNKNOWN", "group": "default",
        "txqlen": 1000, "link_type": "sit", "address": str(ipv4), "broadcast": "0.0.0.0",
        "addr_info": [
            {"family": "inet6", "local": str(isatap_address(prefix, ipv4)), "prefixlen": 64,
             "scope": "global", "valid_life_time": life, "preferred_life_time": life},
            {"family": "inet6", "local": str(link_local_address(ipv4)), "prefixlen": 64,
             "scope": "link", "valid_life_time": life, "preferred_life_time": life}],
    }], separators=(",", ":"))


SIM_FIRST_ADDRESS = IPv4Address("127.1.0.1")
HOST_KEY = "host_key"  # beside client_key in the first process's --workdir


def sim_address(i: int) -> str:
    """The SSH address of simulated host i: 127.1.0.1 and up (loopback: Linux routes 127/8 to lo)."""
    return str(SIM_FIRST_ADDRESS + i)


def sim_user(ipv4: str) -> str:
    """The SSH user that tells the server which host is asking: sim-A-B-C-D for A.B.C.D."""
    return "sim-" + ipv4.replace(".", "-")


def ipv4_of_user(username: str) -> IPv4Address:
    """The IPv4 a sim_user() name stands for; ValueError for any other name."""
    if not username.startswith("sim-"):
        raise ValueError(f"not a simulated host's user: {username!r}")
    return IPv4Address(username[4:].replace("-", "."))


class SimServer(LoopbackSSHServer):
    """The loopback server, on `addresses` loopback addresses, answering probes (see above)."""

    def __init__(self, workdir: Path, *, prefix: IPv6Network, model: str, reply_ms: float,
                 addresses: int = 1, first: int = 0, keys_from: Path | None = None) -> None:
        keys = {} if keys_from is None else {
            "host_key": asyncssh.read_private_key(str(keys_from / HOST_KEY)),
            "client_key": asyncssh.read_private_key(str(keys_from / "client_key"))}
        super().__init__(workdir, addresses=[sim_address(i) for i in range(first, first + addresses)],
                         **keys)
        if keys_from is None:  # for the other processes of this server (--keys-from)
            self.host_key.write_private_key(str(workdir / HOST_KEY))
            (workdir / HOST_KEY).chmod(0o600)
        self.prefix = prefix
        self.model = model
        self.reply_ms = reply_ms
        self.counts = {"commands": 0, "probes": 0, "pairs": 0, "other": 0}
        self._tables: dict[int, list[str]] = {}
        self._addr: dict[str, str] = {}

    @property
    def stats(self) -> dict[str, int]:
        """What the server saw: connections, commands, probes, pairs and other commands."""
        return {"connections": self.connections, **self.counts}

    def listen_options(self) -> dict[str, Any]:
        return {**super().listen_options(), "backlog": 1024, "allow_scp": False,
                "agent_forwarding": False, "x11_forwarding": False}

    def _own_addr(self, username: str) -> str:
        if username not in self._addr:
            try:
                self._addr[username] = addr_json(ipv4_of_user(username), self.prefix)
            except ValueError:
                self._addr[username] = ""  # not an IPv4: the host shows as unconfigured
        return self._addr[username]

    def _own_inet6(self, username: str) -> str:
        """The sit1 lines of /proc/net/if_inet6 as newer probes cut them: "HEX32 PREFIXLEN_HEX"."""
        key = "inet6 " + username
        if key not in self._addr:
            try:
                ipv4 = ipv4_of_user(username)
                self._addr[key] = (f"{int(isatap_address(self.prefix, ipv4)):032x} 40\n"
                                   f"{int(link_local_address(ipv4)):032x} 40")
            except ValueError:
                self._addr[key] = ""
        return self._addr[key]

    def answer(self, username: str, probe: Probe) -> str:
        table = self._tables.get(probe.count)
        if table is None:
            table = self._tables[probe.count] = rtt_table(probe.count)
        salt = zlib.crc32(username.encode())
        size = len(table)
        lines = [f"{t} : {table[(zlib.crc32(t.encode()) ^ salt) % size]}" for t in probe.targets]
        if probe.tunnel == "tunnel":
            head = f"@@fleet tunnel\n{self._own_inet6(username)}\n"
        else:
            head = f"@@fleet addr\n{self._own_addr(username)}\n"
        return (head + "@@fleet method fping\n"
                + "\n".join(lines) + ("\n" if lines else "") + "@@fleet-rc 0\n")

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        self.counts["commands"] += 1
        command = process.command or ""
        probe = parse_probe(command)
        try:
            if probe is None:
                self.counts["other"] += 1
                process.stderr.write("simserver: not a fleet mesh probe; this server runs no "
                                     "commands (simulation)\n")
                process.exit(127)
                return
            self.counts["probes"] += 1
            self.counts["pairs"] += len(probe.targets)
            text = self.answer(process.get_extra_info("username") or "", probe)
            delay = round_seconds(probe, self.model, self.reply_ms)
            if delay:
                await asyncio.sleep(delay)
            process.stdout.write(text)
            await process.stdout.drain()
            process.exit(0)
        except (asyncssh.Error, OSError, asyncio.CancelledError):
            process.close()  # the client went away


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when stdin reaches EOF: the driver that started us is gone."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)


async def serve(options: argparse.Namespace) -> None:
    server = SimServer(options.workdir, prefix=IPv6Network(options.prefix), model=options.round,
                       reply_ms=options.reply_ms, addresses=options.addresses,
                       first=options.first, keys_from=options.keys_from)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    port = (await server.start(options.port)).port
    if options.watch_stdin:
        _watch_stdin(loop, stop)
    print(f"PORT {port}", flush=True)
    last = options.first + options.addresses - 1
    print(f"simserver: SIMULATION on {sim_address(options.first)} .. {sim_address(last)} "
          f"port {port}, round model {options.round} "
          f"(reply {options.reply_ms:g} ms)", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        print(f"simserver: stopped: {json.dumps(server.stats)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simserver",
                                     description="SIMULATION: one asyncssh server that answers "
                                     "every host's mesh probe with generated replies.")
    parser.add_argument("--workdir", type=Path, required=True,
                        help="where client_key and known_hosts are written")
    parser.add_argument("--addresses", type=int, default=1, metavar="N",
                        help="loopback addresses to listen on, one per simulated host: 127.1.0.1 "
                             "and up (default 1)")
    parser.add_argument("--first", type=int, default=0, metavar="I",
                        help="the first address is simulated host I's (default 0: 127.1.0.1); "
                             "with --port and --keys-from, this process plays hosts I.. of a "
                             "server of several processes (each holds two files a host)")
    parser.add_argument("--port", type=int, default=0,
                        help="listen on this port (default 0: the kernel picks one)")
    parser.add_argument("--keys-from", type=Path, default=None, metavar="DIR",
                        help="use the host key and client key of the first process (its "
                             "--workdir) instead of new ones")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"ISATAP /64 (default {DEFAULT_PREFIX})")
    parser.add_argument("--round", choices=ROUND_MODELS, default="fixed",
                        help="stand-in for the ping round (default fixed: (count-1)*period + reply)")
    parser.add_argument("--reply-ms", type=float, default=1.0,
                        help="added to the round for the last reply (default 1 ms)")
    parser.add_argument("--no-watch-stdin", dest="watch_stdin", action="store_false",
                        help="do not stop when stdin closes")
    options = parser.parse_args(argv)
    asyncio.run(serve(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
