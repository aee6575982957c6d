"""Many cheap SSH hosts on this machine: one network namespace per host, each running OpenSSH.

The hosts share this machine's kernel, so they cannot do ISATAP (this kernel has no sit); they are
for testing and benchmarking the runner at scale. Each host's veth carries its ISATAP-format IPv6
address as a plain address, a clearly named stand-in for a tunnel address, so a mesh can be
measured. Layout:

    netns <tag>-hub : bridge br0 172.31.1.1/24; the SSH forwarder relays 127.0.0.1:PORT -> host:22
    netns <tag>-hN  : eth0 172.31.1.(10+N-1)/24 + stand-in IPv6, sshd on 172.31.1.(10+N-1):22

A bed of more than 240 hosts carries on past 172.31.1.249 in 172.31.0.0/20 (fleet.lab.nsbed_plan),
and one of more than 200 raises the kernel's neighbour tables, shared by every namespace, for its
lifetime (fleet.lab.neighbour_tables): it says so, and puts the old values back at teardown.

Neighbour entries are pinned (a full mesh resolving every neighbour at once over one bridge loses
pairs to an NDP storm), and each sshd runs with an empty tmpfs over /root, so a login shell reads
no start-up files. Traffic stays inside the namespaces. `NamespaceBed` is a context manager that
tears everything down on exit, failure or Ctrl-C, stopping only the processes it started.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from pathlib import Path

from fleet.inventory import HOSTS_FILE, write_inventory
from fleet.lab import neighbour_tables
from fleet.lab.commands import run
from fleet.lab.errors import LabError
from fleet.lab.forwarder import ForwarderFiles, start_forwarder
from fleet.lab.keys import generate_ed25519, known_hosts_line
from fleet.lab.nsbed_plan import (  # noqa: F401  (BedHost and the plan's names are this module's API)
    DEFAULT_PREFIX,
    FIRST_HOST,
    MAX_HOSTS,
    SUBNET_BASE,
    BedHost,
    plan_bed,
)
from fleet.lab.readiness import wait_for_banners

SSHD = "/usr/sbin/sshd"
BANNER_TIMEOUT_S = 30.0
BANNER_TIMEOUT_PER_HOST_S = 0.05  # 1,000 sshds just started, on a busy machine: 80 s


def say_on_stderr(text: str) -> None:
    print(f"nsbed: {text}", file=sys.stderr, flush=True)


@dataclass
class NamespaceBed:
    """`count` SSH hosts in namespaces; use `with NamespaceBed(10) as bed:`."""

    count: int
    prefix: IPv6Network = DEFAULT_PREFIX
    tag: str = field(default_factory=lambda: f"fb{os.getpid() % 100000}")
    workdir: Path | None = None
    hosts: list[BedHost] = field(default_factory=list)
    inventory_dir: Path | None = None
    _pids: list[int] = field(default_factory=list)
    sshd_pids: dict[str, int] = field(default_factory=dict)  # host name -> its sshd's PID
    forwarder_pid: int | None = None
    _host_keys: dict[str, str] = field(default_factory=dict)  # host name -> public key line
    _namespaces: list[str] = field(default_factory=list)
    _own_workdir: bool = False
    say: Callable[[str], None] = say_on_stderr  # progress of a big bed, and changes to the machine
    _sysctl_changes: tuple[neighbour_tables.Change, ...] = ()

    def __post_init__(self) -> None:
        plan_bed(self.count, self.tag, self.prefix)  # LabError for a count the plan cannot hold

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> NamespaceBed:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for tool in ("ip", SSHD, "ssh-keygen", "unshare"):
            if shutil.which(tool) is None:
                raise LabError(f"{tool} not found (apt-get install iproute2 openssh-server "
                               "openssh-client util-linux)")
        if os.geteuid() != 0:
            raise LabError("the namespace bed needs root")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="fleet-nsbed-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        plan = plan_bed(self.count, self.tag, self.prefix)
        big = neighbour_tables.needs_room(self.count)
        if big:
            self._sysctl_changes = neighbour_tables.make_room(self.say)
            _raise_open_files(4 * self.count + 256)  # the readiness probes: one socket per host
            self.say(f"building {self.count} hosts in namespaces {self.tag}-h1..h{self.count} "
                     f"({plan.subnet})")
        hub = f"{self.tag}-hub"
        self._netns_add(hub)
        hub_cmds = ["link set lo up", "link add br0 type bridge", "link set br0 up",
                    f"addr add {plan.hub} dev br0"]
        self._batch(hub, hub_cmds)
        planned = list(plan.hosts)
        for host in planned:
            self._netns_add(host.netns)
            run(["ip", "-n", hub, "link", "add", f"v{host.name}", "type", "veth", "peer", "name",
                 "eth0", "netns", host.netns], what=f"wiring {host.name} to the bridge")
            self._batch(hub, [f"link set v{host.name} master br0", f"link set v{host.name} up"])
        neighbours = [f"neigh replace {h.ipv6} lladdr {h.mac} dev eth0 nud permanent"
                      for h in planned] + [
                      f"neigh replace {h.ipv4} lladdr {h.mac} dev eth0 nud permanent"
                      for h in planned]
        for host in planned:
            self._batch(host.netns, [
                "link set lo up", f"link set eth0 address {host.mac}",
                f"addr add {plan.interface(host)} dev eth0", f"addr add {host.ipv6}/64 dev eth0 nodad",
                "link set eth0 up"] + [n for n in neighbours if f" {host.ipv6} " not in n
                                       and f" {host.ipv4} " not in n])
        if big:
            self.say(f"namespaces wired, neighbours pinned; starting {self.count} sshds")
        client_key = generate_ed25519(self.workdir / "client_key", "fleet-nsbed")
        (self.workdir / "authorized_keys").write_text(client_key + "\n")
        for host in planned:
            self._start_sshd(host)
        self.forwarder_pid, ports = start_forwarder(
            ForwarderFiles(self.workdir / "forwarder"), Path("/run/netns", hub),
            {h.name: (str(h.ipv4), 22) for h in planned})
        self._pids.append(self.forwarder_pid)
        self.hosts = [BedHost(h.name, h.netns, h.ipv4, h.ipv6, h.mac, ports[h.name]) for h in planned]
        timeout = max(BANNER_TIMEOUT_S, BANNER_TIMEOUT_PER_HOST_S * self.count)
        silent = wait_for_banners(ports, timeout=timeout, on_ready=lambda name: None)
        if silent:
            shown = ", ".join(silent[:20]) + (f" and {len(silent) - 20} more" if len(silent) > 20 else "")
            raise LabError(f"sshd did not answer within {timeout:.0f} s on: {shown}")
        self.inventory_dir = self._write_inventory()
        if big:
            self.say(f"{self.count} hosts answer SSH")

    def stop(self) -> None:
        for pid in reversed(self._pids):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for pid in self._pids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self._pids.clear()
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()
        if self._sysctl_changes:  # after the namespaces, whose entries filled the tables
            neighbour_tables.restore(self._sysctl_changes, self.say)
            self._sysctl_changes = ()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- pieces ---------------------------------------------------------------------------------
    def _netns_add(self, name: str) -> None:
        if Path("/run/netns", name).exists():
            raise LabError(f"network namespace {name} already exists (another bed?)")
        run(["ip", "netns", "add", name], what=f"creating namespace {name}")
        self._namespaces.append(name)

    def _batch(self, netns: str, commands: list[str]) -> None:
        run(["ip", "-n", netns, "-batch", "-"], input=("\n".join(commands) + "\n").encode(),
            what=f"configuring namespace {netns}")

    def _start_sshd(self, host: BedHost) -> None:
        assert self.workdir is not None
        hostdir = self.workdir / host.name
        hostdir.mkdir()
        key = hostdir / "ssh_host_ed25519_key"
        self._host_keys[host.name] = generate_ed25519(key, host.name)
        config = hostdir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {host.ipv4}:22", f"HostKey {key}", f"PidFile {hostdir / 'sshd.pid'}",
            "UsePAM no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
            "StrictModes no", "MaxStartups 1000", "MaxSessions 100", "UseDNS no", "PrintMotd no",
            "PrintLastLog no", "LogLevel ERROR", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)
        self._launch_sshd(host, "wb")

    def _launch_sshd(self, host: BedHost, log_mode: str) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        hostdir = self.workdir / host.name
        # An empty tmpfs over /root: the login shell finds no start-up files to read.
        with open(hostdir / "sshd.log", log_mode) as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", f'mount -t tmpfs fleet-nsbed /root && exec {SSHD} -D -e -f "$0"',
                 str(hostdir / "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)
        self._pids.append(process.pid)
        self.sshd_pids[host.name] = process.pid
        return process

    def stop_sshd(self, name: str) -> None:
        """Stop one host's sshd (the host itself keeps answering on the network)."""
        _signal(self.sshd_pids[name], signal.SIGTERM)

    def sshd_killed(self, name: str) -> None:
        """The host's sshd listener was killed from outside: never signal its PID again."""
        pid = self.sshd_pids.get(name)
        if pid in self._pids:
            self._pids.remove(pid)

    def restart_sshd(self, name: str) -> subprocess.Popen[bytes]:
        """Start a host's sshd again, with the configuration and host key it had; the bed's
        teardown stops it like the others."""
        host = next(h for h in self.hosts if h.name == name)
        return self._launch_sshd(host, "ab")

    def known_hosts_lines(self) -> list[str]:
        return [known_hosts_line("127.0.0.1", h.ssh_port, self._host_keys[h.name]) for h in self.hosts]

    def _write_inventory(self) -> Path:
        assert self.workdir is not None
        directory = self.workdir / "inventory"
        directory.mkdir(exist_ok=True)
        known_hosts = directory / "known_hosts"
        known_hosts.write_text("\n".join(self.known_hosts_lines()) + "\n")
        return self.write_inventory(directory, {h.name: ("127.0.0.1", h.ssh_port) for h in self.hosts},
                                    "root", self.workdir / "client_key", known_hosts)

    def write_inventory(self, directory: Path, targets: Mapping[str, tuple[str, int]], username: str,
                        client_key: Path, known_hosts: Path) -> Path:
        """An inventory of the bed in `directory`: each host at its SSH target (address, port), in
        group `bed`, with its ipv4, logging in as `username` with `client_key`."""
        return write_inventory(
            directory,
            hosts={h.name: {"hostname": targets[h.name][0], "port": targets[h.name][1],
                            "groups": ["bed"], "data": {"ipv4": str(h.ipv4)}} for h in self.hosts},
            groups={"bed": {}},
            defaults={"username": username, "data": {"isatap_prefix": str(self.prefix)},
                      "connection_options": {"asyncssh": {"extras": {
                          "client_keys": [str(client_key)], "known_hosts": str(known_hosts)}}}},
            comments={HOSTS_FILE: "generated by fleet's namespace bed; IPv6 addresses are stand-ins "
                                  "on plain veths"})


def _raise_open_files(needed: int) -> None:
    """Let this process (and the forwarder it starts) hold `needed` descriptors, within the hard
    limit; LabError if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise LabError(f"the bed needs {needed} open files and the hard limit is {hard} "
                           "(ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the process and what it exec'd/spawned (own session)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return finished == 0
