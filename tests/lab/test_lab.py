"""Tests of fleet.lab on real QEMU guests (its pure parts: tests/unit/test_lab_parts.py, its
loopback parts: tests/inproc/test_lab_loopback.py).

The lab tests need root and the packages that check_prerequisites() names; without them they
skip and say why. Most use the session's shared lab of 4 guests (tests/lab/conftest.py); the
tests of `up` and `down` themselves boot small labs of their own, torn down in a finally.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_yaml

from fleet.lab import (
    LabInfo,
    check_prerequisites,
    down,
    network,
    reset,
    status,
    stop_guest,
    up,
)
from fleet.lab.errors import LabError

PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
needs_the_lab = pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[LabInfo]:
    """A lab of one guest of this test's own, for tests that take a lab down."""
    if PROBLEMS:
        pytest.skip("the lab cannot run here: " + "; ".join(PROBLEMS))
    workdir = tmp_path / "own"
    try:
        yield up(1, workdir=workdir, name=f"t{uuid.uuid4().hex[:8]}", progress=print)
    finally:
        down(workdir=workdir)


def _ssh_options(info: LabInfo) -> dict[str, object]:
    defaults = load_yaml(info.inventory_dir / "defaults.yaml")
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    return {"username": defaults["username"], "client_keys": extras["client_keys"],
            "known_hosts": extras["known_hosts"]}


def _port(info: LabInfo, guest: str) -> int:
    return int(load_yaml(info.inventory_dir / "hosts.yaml")[guest]["port"])


async def _run(info: LabInfo, guest: str, command: str, timeout: float = 30) -> tuple[int, str]:
    import asyncssh

    async with asyncssh.connect("127.0.0.1", _port(info, guest), connect_timeout=timeout,
                                **_ssh_options(info)) as connection:
        result = await connection.run(command, timeout=timeout)
        exit_status: int = result.exit_status or 0
        return exit_status, str(result.stdout) + str(result.stderr)


def test_lab_is_up_and_described(lab: LabInfo) -> None:
    info = status(workdir=lab.workdir)
    assert info is not None and info == lab
    assert [guest.name for guest in info.guests] == ["h1", "h2", "h3", "h4"]
    assert all(guest.running and guest.pid and guest.ssh_port for guest in info.guests)
    assert info.forwarder_pid is not None
    assert network.namespace_exists(info.netns)
    hosts = load_yaml(info.inventory_dir / "hosts.yaml")
    assert {name: host["data"]["ipv4"] for name, host in hosts.items()} == {
        "h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13", "h4": "172.31.0.14"}


@needs_the_lab
def test_up_refuses_a_namespace_it_did_not_create(tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", f"fleet-{name}"], check=True)
    try:
        with pytest.raises(LabError, match="already exists"):
            up(1, workdir=tmp_path, name=name)
        assert not (tmp_path / "lab.json").exists()
        assert network.namespace_exists(f"fleet-{name}")  # not ours: left alone
    finally:
        subprocess.run(["ip", "netns", "delete", f"fleet-{name}"], check=True)


def test_second_up_in_the_same_workdir_is_refused(lab: LabInfo) -> None:
    with pytest.raises(LabError, match="already up"):
        up(1, workdir=lab.workdir, name="other")


def test_guests_answer_with_checked_host_keys_and_run_isatap(lab: LabInfo) -> None:
    setup = ("ip tunnel add sit1 mode isatap local {v4} && "
             "ip addr add fd00:5efe:1ab::5efe:{hex}/64 dev sit1 && ip link set sit1 up && "
             "ip -j -d link show dev sit1")

    def isatap_hex(address: str) -> str:
        packed = ipaddress.IPv4Address(address).packed
        return f"{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}"

    async def scenario() -> None:
        for guest in lab.guests:
            code, out = await _run(lab, guest.name,
                                   "uname -r; hostname; test ! -e /usr/bin/sudo && echo nosudo")
            release, hostname, sudo = out.split()
            assert code == 0 and release.endswith("-amd64") and (hostname, sudo) == (guest.name, "nosudo")
            code, out = await _run(lab, guest.name, setup.format(v4=guest.ipv4, hex=isatap_hex(guest.ipv4)))
            assert code == 0, out
            link = json.loads(out)[0]
            assert link["linkinfo"]["info_kind"] == "sit"
            assert link["linkinfo"]["info_data"]["isatap"] is True
            assert link["linkinfo"]["info_data"]["local"] == guest.ipv4
        peer = f"fd00:5efe:1ab::5efe:{isatap_hex(lab.guests[1].ipv4)}"
        code, out = await _run(lab, "h1", f"ping -6 -c 2 -W 5 {peer}")
        assert code == 0, out

    asyncio.run(scenario())


def test_a_wrong_host_key_is_rejected(lab: LabInfo, tmp_path: Path) -> None:
    import asyncssh

    lines = (Path(str(_ssh_options(lab)["known_hosts"]))).read_text().splitlines()
    swapped = tmp_path / "known_hosts"  # h1's port paired with h2's key
    swapped.write_text(f"{lines[0].split()[0]} {' '.join(lines[1].split()[1:])}\n")
    options = {**_ssh_options(lab), "known_hosts": str(swapped)}

    async def scenario() -> None:
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            async with asyncssh.connect("127.0.0.1", _port(lab, "h1"), **options):
                pass

    asyncio.run(scenario())


def test_stop_guest_leaves_the_other_answering(lab: LabInfo) -> None:
    import asyncssh

    stop_guest("h2", workdir=lab.workdir)
    info = status(workdir=lab.workdir)
    assert info is not None
    assert [(guest.name, guest.running) for guest in info.guests] == [
        ("h1", True), ("h2", False), ("h3", True), ("h4", True)]

    async def scenario() -> None:
        assert (await _run(lab, "h1", "echo alive"))[1].strip() == "alive"
        with pytest.raises((OSError, asyncssh.Error, asyncio.TimeoutError)):
            await _run(lab, "h2", "true", timeout=3)

    asyncio.run(scenario())
    with pytest.raises(LabError, match="no guest"):
        stop_guest("h9", workdir=lab.workdir)


def _in_namespace(info: LabInfo, *command: str) -> Any:
    done = subprocess.run(["ip", "netns", "exec", info.netns, *command], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout or "null")


def test_reset_puts_back_what_up_left_and_boots_only_the_guests_that_are_gone(lab: LabInfo) -> None:
    if shutil.which("nft") is None:
        pytest.skip("needs nft (nftables)")
    known_hosts = (lab.inventory_dir / "known_hosts").read_text()
    ports = {guest.name: guest.ssh_port for guest in lab.guests}

    async def break_things() -> None:
        code, out = await _run(lab, "h1", "ip tunnel add sit1 mode isatap local 172.31.0.11; "
                               "ip addr add 2001:db8:2::1/128 dev lo; mkdir -p /usr/local/sbin; "
                               "touch /tmp/left; (sleep 300 > /dev/null 2>&1 &); echo broken")
        assert code == 0 and "broken" in out, out
        await _run(lab, "h4", "kill $(cat /run/sshd.pid)")  # the listener: h4 lives, no sshd

    asyncio.run(break_things())
    stop_guest("h2", workdir=lab.workdir)
    subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "-f", "-"], check=True, text=True,
                   input="table bridge broken {\n chain c {\n  type filter hook forward priority 0;\n"
                         '  iifname "tap3" ip protocol 41 drop\n }\n}\n')
    subprocess.run(["tc", "-n", lab.netns, "qdisc", "add", "dev", "tap1", "root", "tbf", "rate",
                    "1mbit", "burst", "32kbit", "latency", "400ms"], check=True)
    subprocess.run(["ip", "-n", lab.netns, "link", "set", "tap3", "mtu", "1400"], check=True)
    (lab.inventory_dir / "known_hosts").write_text("# emptied by a test\n")
    before = {guest.name: guest.pid for guest in status(workdir=lab.workdir).guests}  # type: ignore[union-attr]

    said: list[str] = []
    info = reset(workdir=lab.workdir, progress=said.append)

    assert all(guest.running for guest in info.guests)
    assert {guest.name: guest.ssh_port for guest in info.guests} == ports
    after = {guest.name: guest.pid for guest in info.guests}
    assert [name for name in after if after[name] != before[name]] == ["h2", "h4"], said
    assert any(line.startswith("h2: its QEMU is not running") for line in said), said
    assert any(line.startswith("h4: its sshd gave no banner") for line in said), said
    assert (lab.inventory_dir / "known_hosts").read_text() == known_hosts

    async def read_guests() -> None:  # every guest, host key checked, as booted
        for guest in info.guests:
            code, out = await _run(info, guest.name, "ip -j link show")
            assert code == 0 and {link["ifname"] for link in json.loads(out)} == {"lo", "eth0", "sit0"}
            code, out = await _run(info, guest.name, "ip -j addr show dev lo scope global")
            assert not [a for link in json.loads(out) for a in link.get("addr_info", [])], out
            code, out = await _run(info, guest.name, "ls -A /tmp; test -e /usr/local && echo "
                                   "/usr/local; pidof sleep")
            assert out.strip() == "", (guest.name, out)

    asyncio.run(read_guests())
    assert _in_namespace(info, "nft", "-j", "list", "ruleset")["nftables"][1:] == []
    qdiscs = _in_namespace(info, "tc", "-j", "qdisc", "show")
    assert {(q["dev"], q["handle"]) for q in qdiscs if q.get("root")} == {
        (dev, "0:") for dev in ("lo", "br0", "tap1", "tap2", "tap3", "tap4")}
    assert not [q for q in qdiscs if not q.get("root")]
    taps = {link["ifname"]: link for link in _in_namespace(info, "ip", "-j", "link", "show")
            if link["ifname"].startswith("tap")}
    assert {(name, link["mtu"], link.get("master"), "UP" in link["flags"])
            for name, link in taps.items()} == {(f"tap{i}", 1500, "br0", True) for i in range(1, 5)}


def test_down_leaves_nothing_behind(own_lab: LabInfo) -> None:
    lab = own_lab
    pids = [guest.pid for guest in lab.guests] + [lab.forwarder_pid]
    down(workdir=lab.workdir)
    assert status(workdir=lab.workdir) is None
    assert not network.namespace_exists(lab.netns)
    for pid in pids:
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or str(lab.workdir) not in cmdline.read_bytes().decode(errors="replace")
    assert sorted(path.name for path in lab.workdir.iterdir()) == []
    down(workdir=lab.workdir)  # idempotent


def test_a_guest_that_dies_while_booting_is_started_once_more(tmp_path: Path) -> None:
    problems = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
    if problems:
        pytest.skip("the lab cannot run here: " + "; ".join(problems))
    said: list[str] = []
    pidfile = tmp_path / "lab" / "guests" / "h2" / "qemu.pid"
    killed: list[int] = []

    def kill_h2_once_it_starts() -> None:
        # the kernel panic under load, played by a kill while h2 boots (its QEMU is ours)
        for _ in range(600):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                threading.Event().wait(0.05)
                continue
            threading.Event().wait(1.0)  # QEMU has daemonized; the kernel is booting (>3 s)
            os.kill(pid, 9)
            killed.append(pid)
            return

    def progress(line: str) -> None:
        said.append(line)
        if line.startswith("booting"):
            threading.Thread(target=kill_h2_once_it_starts, daemon=True).start()

    workdir = tmp_path / "lab"
    try:
        info = up(2, workdir=workdir, name=f"r{uuid.uuid4().hex[:8]}", progress=progress)
        assert killed, "the test never found h2's QEMU to kill"
        assert any(line.startswith("h2's QEMU exited while booting") and "once more" in line
                   for line in said), said
        assert all(g.running for g in info.guests)
        assert next(g.pid for g in info.guests if g.name == "h2") != killed[0]
    finally:
        down(workdir=workdir)
