"""fleet's command line run in this process against SSH hosts in this process, with no root.

Each host is an in-process asyncssh server (sshserver.CommandServer) that runs commands with a
real /bin/sh over a stand-in host of its own (standins.StandInHost: `ip`, `sudo`, `fping` ...,
its own sysfs and /proc files). The servers run on an event loop of their own on a background
thread: `fleet.cli.main` starts its own loop with `asyncio.run` and installs SIGINT handlers, so it
runs on the main thread, as it does from a shell.

    fleet = InProcessFleet(tmp_path, capsys)
    h1 = fleet.add_host("h1", "172.31.0.11")
    done = fleet.run("setup")                       # fleet run setup -i INV --json FILE
    done.code, done.out, done.err, done.report      # exit code, what it printed, the JSON report
    h1.stand_in.files()                             # sit1 as the stand-in `ip` keeps it
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

from sshserver import CommandServer
from standins import StandInHost

from fleet import cli
from fleet.isatap import isatap_address, parse_prefix
from fleet.tunnel.iproute import TunnelState

PREFIX = "fd00:5efe:1ab::/64"
T = TypeVar("T")


class ServerLoop:
    """An asyncio event loop running on a daemon thread, for the servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ssh-servers", daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Member:
    """One host of the fleet: its name and ipv4, its SSH server and its stand-in host."""

    name: str
    ipv4: str
    server: CommandServer
    stand_in: StandInHost

    @property
    def address(self) -> str:
        """Its ISATAP address, canonical text."""
        return str(isatap_address(parse_prefix(PREFIX), IPv4Address(self.ipv4)))

    @property
    def logins(self) -> int:
        return self.server.connections


@dataclass(frozen=True)
class CliRun:
    """What one `fleet` command did: exit code, stdout, stderr and the --json report (or None)."""

    code: int
    out: str
    err: str
    report: Any

    @property
    def table(self) -> str:
        """What it printed (stdout and stderr), each run of spaces made one: the tables align
        their columns to the longest name."""
        return "\n".join(" ".join(line.split()) for line in (self.out + self.err).splitlines())

    def host(self, name: str, task: str | None = None) -> dict[str, Any]:
        """A host's entry in the report (of `task` when the run had several)."""
        document = self.report
        if "tasks" in document:
            document = next(d for d in document["tasks"] if d["task"] == task)
        return next(h for h in document["hosts"] if h["name"] == name)


class InProcessFleet:
    def __init__(self, workdir: Path, capsys: Any) -> None:
        self.workdir = workdir
        self.capsys = capsys
        self.inventory = workdir / "inventory"
        self.members: dict[str, Member] = {}
        self._entries: dict[str, str] = {}
        self._loop = ServerLoop()

    def add_host(self, name: str, ipv4: str, state: TunnelState | None = None, *, sit: bool = True,
                 fping: bool = True, search_path: str | None = None,
                 accept_auth: bool = True) -> Member:
        """A host with its own SSH server and stand-in; `state`: its sit1 to begin with;
        `search_path`: the commands' PATH after the stand-ins' directory."""
        directory = self.workdir / name
        directory.mkdir(parents=True)
        stand_in = StandInHost(directory / "host", state, sit=sit, fping=fping)
        server = CommandServer(directory, path_prefix=stand_in.bin, paths=stand_in.paths,
                               search_path=search_path, accept_auth=accept_auth)
        self._loop.call(server.start())
        member = Member(name, ipv4, server, stand_in)
        self.members[name] = member
        self._entries[name] = server.inventory_entry(name, ipv4)
        return member

    def add_unreachable(self, name: str, ipv4: str) -> None:
        """A host on a port where nothing listens (with keys and a known_hosts line all the same)."""
        directory = self.workdir / name
        directory.mkdir(parents=True)
        server = CommandServer(directory)  # never started: only its key files are used
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            server.port = probe.getsockname()[1]
        server.known_hosts_path.write_text(server.host_key_line)
        self._entries[name] = server.inventory_entry(name, ipv4)

    def write_inventory(self) -> Path:
        self.inventory.mkdir(exist_ok=True)
        (self.inventory / "hosts.yaml").write_text("".join(self._entries.values()))
        (self.inventory / "defaults.yaml").write_text(f"data:\n  isatap_prefix: '{PREFIX}'\n")
        return self.inventory

    def cli(self, *argv: str) -> CliRun:
        """`fleet ARGV...` in this process: exit code and what it printed."""
        self.capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse's own errors: what the shell would see
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self.capsys.readouterr()
        return CliRun(code, captured.out, captured.err, None)

    def run(self, *tasks_and_options: str) -> CliRun:
        """`fleet run TASKS... OPTIONS... -i INVENTORY --json FILE --no-progress`."""
        inventory = self.write_inventory()
        report = self.workdir / "report.json"
        report.unlink(missing_ok=True)
        done = self.cli("run", *tasks_and_options, "-i", str(inventory), "--json", str(report),
                        "--no-progress")
        text = report.read_text() if report.exists() else ""
        return CliRun(done.code, done.out, done.err, json.loads(text) if text else None)

    def logins(self) -> dict[str, int]:
        return {name: member.logins for name, member in self.members.items()}

    def close(self) -> None:
        try:
            for member in self.members.values():
                self._loop.call(member.server.close())
        finally:
            self._loop.close()
