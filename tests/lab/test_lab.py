"""Tests of fleet.lab on a real lab of 2 QEMU guests (its pure parts: tests/unit/test_lab_parts.py,
its loopback parts: tests/inproc/test_lab_loopback.py).

The lab tests need root and the packages that check_prerequisites() names; without them they
skip and say why. They share one lab (module fixture) that is torn down in the fixture's
finalizer, also when a test fails or the run is interrupted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fleet.lab import (
    LabInfo,
    check_prerequisites,
    down,
    network,
    status,
    stop_guest,
    up,
)
from fleet.lab.errors import LabError


def _yaml(path: Path) -> Any:
    """Load YAML the way nornir does (ruamel.yaml, safe)."""
    return YAML(typ="safe").load(path.read_text())


# ---- a real lab -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    problems = check_prerequisites()
    if problems:
        pytest.skip("the lab cannot run here: " + "; ".join(problems))
    workdir = tmp_path_factory.mktemp("lab")
    try:
        yield up(2, workdir=workdir, name=f"t{uuid.uuid4().hex[:8]}", progress=print)
    finally:
        down(workdir=workdir)


def _ssh_options(info: LabInfo) -> dict[str, object]:
    defaults = _yaml(info.inventory_dir / "defaults.yaml")
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    return {"username": defaults["username"], "client_keys": extras["client_keys"],
            "known_hosts": extras["known_hosts"]}


def _port(info: LabInfo, guest: str) -> int:
    return int(_yaml(info.inventory_dir / "hosts.yaml")[guest]["port"])


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
    assert [guest.name for guest in info.guests] == ["h1", "h2"]
    assert all(guest.running and guest.pid and guest.ssh_port for guest in info.guests)
    assert info.forwarder_pid is not None
    assert network.namespace_exists(info.netns)
    hosts = _yaml(info.inventory_dir / "hosts.yaml")
    assert {name: host["data"]["ipv4"] for name, host in hosts.items()} == {
        "h1": "172.31.0.11", "h2": "172.31.0.12"}


def test_up_refuses_a_namespace_it_did_not_create(lab: LabInfo, tmp_path: Path) -> None:
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
    assert [(guest.name, guest.running) for guest in info.guests] == [("h1", True), ("h2", False)]

    async def scenario() -> None:
        assert (await _run(lab, "h1", "echo alive"))[1].strip() == "alive"
        with pytest.raises((OSError, asyncssh.Error, asyncio.TimeoutError)):
            await _run(lab, "h2", "true", timeout=3)

    asyncio.run(scenario())
    with pytest.raises(LabError, match="no guest"):
        stop_guest("h9", workdir=lab.workdir)


def test_down_leaves_nothing_behind(lab: LabInfo) -> None:
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
